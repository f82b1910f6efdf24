//! Ignite: run untrusted JavaScript/TypeScript services in hardened OCI containers.
//!
//! Layering (a module uses only modules listed after it):
//! `server` → `engine`, `inventory` → `deps` → `supervisor` → `oci`, `spec`, `bundle`, `stage`, `cgroup` →
//! `service`, `runtime`, `report`, `run_report`, `preflight`, `init_proto` → `sys`.

pub mod bundle;
pub mod cgroup;
pub mod confinement;
pub mod deps;
pub mod engine;
pub mod fsutil;
pub mod init_proto;
pub mod inventory;
pub mod oci;
pub mod preflight;
pub mod report;
pub mod run_report;
pub mod runtime;
pub mod server;
pub mod service;
pub mod spec;
pub mod stage;
pub mod supervisor;
pub mod sys;
