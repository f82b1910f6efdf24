//! What users write and what ignite writes back: service.yaml, security policies, runtime
//! definitions, `ignite init` templates, preflight checks and the run report. Pure data and its
//! validation; nothing here starts a process or touches a sandbox.

pub mod policy;
pub mod preflight;
pub mod program_io;
pub mod report;
pub mod runtime;
pub mod service;
pub mod template;
