//! Ignite: run untrusted JavaScript/TypeScript services in hardened OCI containers.
//!
//! Layering (a module uses only modules listed after it):
//! `server`, `bench` → `server_dirs`, `engine`, `inventory`, `doctor`, `envinfo` → `lock`, `template`, `deps`, `grants` → `supervisor`, `netns` → `audit`, `oci`, `spec`, `bundle`, `stage`, `cgroup` →
//! `service`, `policy`, `runtime`, `report`, `run_report`, `preflight`, `init_proto`, `spawn_guard` → `bpf`, `sys`, `nofile`.

pub mod audit;
pub mod audit_gate;
pub mod bench;
pub mod bpf;
pub mod bundle;
pub mod cgroup;
pub mod confinement;
pub mod deps;
pub mod doctor;
pub mod engine;
pub mod envinfo;
pub mod fsutil;
pub mod grants;
pub mod identity;
pub mod init_proto;
pub mod inventory;
pub mod lock;
pub mod netns;
pub mod nofile;
pub mod oci;
pub mod policy;
pub mod pool;
pub mod preflight;
pub mod report;
pub mod run_report;
pub mod runtime;
pub mod server;
pub mod server_dirs;
pub mod service;
pub mod spawn_guard;
pub mod spec;
pub mod stage;
pub mod supervisor;
pub mod sys;
pub mod template;
