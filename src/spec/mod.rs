//! The OCI spec: a pure builder from validated inputs, a validator of the result, and
//! the seccomp profile loaded from `policies/`.

mod build;
pub mod seccomp;

pub use build::*;
