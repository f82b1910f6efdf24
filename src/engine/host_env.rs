//! ignite's own configuration as the edges read it from the host: operator files (API keys)
//! through the one reader that refuses links, pipes, devices and oversized files, and
//! environment variables that must reach no child process.

use std::path::Path;

pub use crate::fsutil::svcdir::ReadError as OperatorFileError;
use crate::fsutil::svcdir::{self, Rule};

/// The text of an operator's file (`what` names it in messages): a regular file, opened
/// without blocking, at most `max_bytes` long, so a pipe or /dev/zero named by mistake fails
/// at once instead of hanging or filling memory.
pub fn read_operator_text(path: &Path, what: &'static str, max_bytes: u64) -> Result<String, OperatorFileError> {
    svcdir::read_operator_text(path, Rule { what, max_bytes })
}

/// The value of `name` (`None` when unset or not UTF-8), which is then overwritten and removed
/// from this process's environment, so that no child process inherits it. Fails once the
/// process runs more than one thread (the environment is not thread-safe): call it first.
pub fn take_env_var(name: &str) -> std::io::Result<Option<String>> {
    let value = std::env::var(name).ok();
    crate::sys::scrub_env_var(name)?;
    Ok(value)
}
