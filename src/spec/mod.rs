//! The OCI spec: a pure builder from validated inputs, a validator of the result, the install
//! step's variant of both, and the seccomp profile loaded from `policies/`.

mod build;
mod install;
pub mod seccomp;

pub use build::*;
pub use install::*;
