//! Ignite: run untrusted JavaScript/TypeScript services in hardened OCI containers.
//!
//! Layering (a module uses only modules listed after it):
//! `server` → `engine`, `inventory` → `deps` → `supervisor` → `audit`, `oci`, `spec`, `bundle`, `stage`, `cgroup` →
//! `service`, `policy`, `runtime`, `report`, `init_proto` → `sys`.

pub mod audit;
pub mod bundle;
pub mod cgroup;
pub mod confinement;
pub mod deps;
pub mod engine;
pub mod fsutil;
pub mod init_proto;
pub mod inventory;
pub mod oci;
pub mod policy;
pub mod report;
pub mod runtime;
pub mod server;
pub mod service;
pub mod spec;
pub mod stage;
pub mod supervisor;
pub mod sys;
