//! Ignite: run untrusted JavaScript/TypeScript services in hardened OCI containers.
//!
//! Layering (a module uses only modules listed after it):
//! `engine` → `supervisor` → `oci`, `spec`, `bundle`, `cgroup` → `service`, `runtime`,
//! `report`, `init_proto` → `sys`.

pub mod cgroup;
pub mod init_proto;
pub mod oci;
pub mod report;
pub mod service;
pub mod spec;
pub mod sys;
