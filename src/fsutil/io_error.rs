//! The one I/O error of the crate: what was being done, to which path, and the OS's reason.
//! Every module's error enum holds it as one transparent variant, and `.at(op, path)` on an
//! `io::Result` or a `nix` result builds it where the call is made.

use std::io;
use std::path::{Path, PathBuf};

/// An I/O operation that failed: `failed to {op} {path}: {source}`. `op` is a verb phrase
/// ("open", "create", "rename into place") so the message reads as a sentence.
#[derive(Debug, thiserror::Error)]
#[error("failed to {op} {path}: {source}")]
pub struct IoError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl IoError {
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Self {
        IoError { op, path: path.into(), source: source.into() }
    }

    /// The OS error's kind (for callers that treat `NotFound` as "absent").
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// Names the operation and the path of a failed I/O call: `fs::read(&p).at("read", &p)?`.
pub trait At<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, IoError>;
}

impl<T> At<T> for Result<T, io::Error> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, IoError> {
        self.map_err(|source| IoError { op, path: path.as_ref().to_path_buf(), source })
    }
}

impl<T> At<T> for Result<T, nix::errno::Errno> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, IoError> {
        self.map_err(|errno| IoError { op, path: path.as_ref().to_path_buf(), source: errno.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_operation_path_and_reason() {
        let err = std::fs::read("/nonexistent/ignite-io-error").at("read", "/nonexistent/ignite-io-error");
        let err = err.expect_err("missing file");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().starts_with("failed to read /nonexistent/ignite-io-error: "), "{err}");
        let errno: Result<(), nix::errno::Errno> = Err(nix::errno::Errno::EACCES);
        let err = errno.at("open", Path::new("/x")).expect_err("errno");
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().starts_with("failed to open /x: "), "{err}");
    }
}
