//! What kind of failure an [`EngineError`] is, so that the edges can map failures to their own
//! terms (HTTP statuses, exit codes) without naming the mechanisms that failed.

use super::EngineError;
use crate::sandbox::identity::IdentityError;
use crate::sandbox::nofile::NofileError;
use crate::store::deps::DepsError;

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
            | EngineError::Stage(_) => ErrorKind::Service,
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
