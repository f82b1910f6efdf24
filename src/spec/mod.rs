//! Pure OCI spec builder: service + runtime + policy + limits → `oci_spec::runtime::Spec`, no I/O.

pub mod seccomp;
