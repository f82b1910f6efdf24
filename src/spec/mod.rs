//! The OCI spec: a pure builder from validated inputs, and a validator of the result.

mod build;

pub use build::*;
