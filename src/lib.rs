//! Ignite: run untrusted JavaScript/TypeScript services in hardened OCI containers.
//!
//! Layering (a module uses only modules listed after it):
//! `engine` → `supervisor` → `oci`, `spec`, `bundle`, `cgroup` → `service`, `runtime`,
//! `report` → `sys`.

pub mod bundle;
pub mod runtime;
