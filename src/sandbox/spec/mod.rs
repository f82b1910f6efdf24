//! The OCI spec: a pure builder from validated inputs, a validator of the result (with the
//! grants a policy adds), the install step's variant of both, and the seccomp profile loaded
//! from `policies/`.

mod build;
#[cfg(test)]
mod fixtures;
mod install;
mod network;
pub mod seccomp;

pub use build::*;
pub use install::*;
pub use network::*;
