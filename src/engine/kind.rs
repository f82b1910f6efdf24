//! What kind of failure an [`EngineError`] or a [`RunError`] is, so that the edges can map
//! failures to their own terms (HTTP statuses, exit codes) without naming the mechanisms that
//! failed.

use super::{EngineError, RunError};
use crate::sandbox::identity::IdentityError;
use crate::sandbox::nofile::NofileError;
use crate::store::deps::DepsError;
use crate::store::lock::LockError;

/// Whose problem a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The service (its definition, code, package.json, runtime) cannot run as it is: the
    /// caller's or the service author's to fix.
    Service,
    /// The host cannot start sandboxes until its operator acts (e.g. raises a limit).
    HostNotReady,
    /// Every resource of a kind is in use by live runs: retry later.
    Capacity,
    /// The service no longer matches its `ignite.lock` (and the run asked for the check).
    LockDrift,
    /// A preflight check failed (and the run was gated on it).
    PreflightFailed,
    /// A host step failed.
    Internal,
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Runtime(_)
            | EngineError::ServiceRuntime { .. }
            | EngineError::Jsx { .. }
            | EngineError::EntryType { .. }
            | EngineError::MissingDependency { .. }
            | EngineError::Unreadable { .. }
            | EngineError::Stage(_)
            // A rootless host cannot give what the request asks for (root can).
            | EngineError::Rootless(_) => ErrorKind::Service,
            // A package.json the installer must not see: the service's to fix.
            EngineError::Deps(DepsError::Manifest { .. }) => ErrorKind::Service,
            // The host cannot start sandboxes until its operator raises a limit (/ready says so).
            EngineError::Nofile(NofileError::TooLow { .. }) => ErrorKind::HostNotReady,
            // Every run uid is taken by a live run: capacity, like a full admission queue.
            EngineError::Identity(IdentityError::Exhausted { .. }) => ErrorKind::Capacity,
            _ => ErrorKind::Internal,
        }
    }
}

impl RunError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RunError::Service(_)
            | RunError::Policy(_)
            | RunError::Input { .. }
            | RunError::Inline(_)
            | RunError::Io(_) => ErrorKind::Service,
            RunError::Lock(LockError::Drifted { .. }) => ErrorKind::LockDrift,
            // Reading the directory or the bundle failed on the host, not in the service.
            RunError::Lock(LockError::Io(_) | LockError::Bundle(_) | LockError::BundleDigest { .. }) => {
                ErrorKind::Internal
            }
            // A lock file that is malformed, of another format, or names what cannot be locked.
            RunError::Lock(_) => ErrorKind::Service,
            RunError::Preflight { .. } => ErrorKind::PreflightFailed,
            RunError::Engine(e) => e.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn mechanism_errors_are_classified_for_the_edges() {
        let engine = |e: EngineError| e.kind();
        assert_eq!(
            engine(EngineError::Identity(IdentityError::Exhausted { dir: PathBuf::from("/s/uids"), count: 2 })),
            ErrorKind::Capacity
        );
        assert_eq!(engine(EngineError::Nofile(NofileError::TooLow { hard: 64 })), ErrorKind::HostNotReady);
        let manifest = DepsError::Manifest { path: PathBuf::from("/s/package.json"), reason: "bad".into() };
        assert_eq!(engine(EngineError::Deps(manifest)), ErrorKind::Service);
        assert_eq!(engine(EngineError::Unreadable { path: PathBuf::from("/s") }), ErrorKind::Service);
        let io = crate::fsutil::IoError::new("read", "/s", std::io::Error::other("x"));
        assert_eq!(RunError::Lock(LockError::Io(io)).kind(), ErrorKind::Internal);
        let drifted =
            LockError::Drifted { lock_file: PathBuf::from("/s/ignite.lock"), dir: "/s".into(), drift: vec![] };
        assert_eq!(RunError::Lock(drifted).kind(), ErrorKind::LockDrift);
        let missing = LockError::Missing { path: PathBuf::from("/s/ignite.lock"), dir: "/s".into() };
        assert_eq!(RunError::Lock(missing).kind(), ErrorKind::Service);
        let capacity =
            RunError::Engine(EngineError::Identity(IdentityError::Exhausted { dir: PathBuf::new(), count: 2 }));
        assert_eq!(capacity.kind(), ErrorKind::Capacity, "a run's engine error keeps its kind");
    }
}
