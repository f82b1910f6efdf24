//! The hidden commands through which the engine has the `ignite` binary run parts of itself in
//! a process of their own: the OCI runtime's hook, the TypeScript stripper and (rootless) the
//! reader of a container's output directory. The binary only
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

/// `ignite __read-out PID`: run by a rootless ignite joined to the user namespace of the
/// container whose entrypoint is `PID`; writes that container's output directory to stdout.
pub mod read_out {
    pub use crate::sandbox::grants::out::READ_OUT_COMMAND;

    /// Reads and writes it; returns the process exit code (errors on stderr, never a file's
    /// content).
    pub fn serve(pid: u32) -> i32 {
        let collected = match crate::sandbox::grants::out::read_in_container(pid) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("reading the output directory of the container of pid {pid}: {e}");
                return 1;
            }
        };
        let mut stdout = std::io::stdout().lock();
        match collected.encode(&mut stdout) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("writing the output directory: {e}");
                1
            }
        }
    }
}
