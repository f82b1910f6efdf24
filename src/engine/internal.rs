//! The hidden commands through which the engine has the `ignite` binary run parts of itself in
//! a process of their own: the OCI runtime's hook and the TypeScript stripper. The binary only
//! dispatches to them; what they do stays below the engine.

/// `ignite oci-hook NAME`: run by the OCI runtime with the container's state on stdin.
pub mod hook {
    use std::io::Read;
    use std::path::Path;

    pub use crate::sandbox::oci::hook::{HOOK_COMMAND, HookError};

    /// Runs the hook `name` with the container state read from `stdin`.
    pub fn run(name: &str, stdin: &mut dyn Read) -> Result<(), HookError> {
        crate::sandbox::oci::hook::run(name, stdin, Path::new("/proc"))
    }
}

/// `ignite __strip-types`: a confined child that strips TypeScript types for its parent.
pub mod strip_worker {
    pub use crate::store::stage::WORKER_COMMAND;

    /// Serves one request on stdin; returns the process exit code.
    pub fn serve() -> i32 {
        crate::store::stage::serve_worker()
    }
}
