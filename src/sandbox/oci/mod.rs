//! The seam to the OCI runtime binary: a driver trait, the CLI driver for runc, crun and
//! youki, and the kind of runtime a binary is.

mod cli;
pub mod hook;
mod kind;

use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::Spec;

pub use cli::{CliRuntime, NO_MESSAGE};
pub use kind::OciKind;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("failed to run the OCI runtime {binary}: {source}")]
    Spawn { binary: String, source: std::io::Error },
    #[error("{runtime} {op} {id}: {message}")]
    Command { runtime: String, op: &'static str, id: String, message: String },
    #[error("{runtime}: container {id} does not exist")]
    NotFound { runtime: String, id: String },
    #[error("{runtime} {op}: unexpected output: {message}")]
    Output { runtime: String, op: &'static str, message: String },
    #[error(transparent)]
    Hook(#[from] hook::HookError),
}

/// Descriptors the container's init receives: stdout, stderr, and extra fds numbered
/// from 3 (`--preserve-fds`). stdin is always /dev/null.
pub struct CreateIo {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub extra_fds: Vec<OwnedFd>,
}

/// A container launched with [`OciRuntime::run`]: the runtime process, which exits once the
/// container is gone, and where its log stood at launch.
pub struct Foreground {
    pub child: tokio::process::Child,
    pub log_start: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ContainerState {
    pub id: String,
    #[serde(default)]
    pub pid: u32,
    pub status: String,
}

/// Operations ignite needs from an OCI runtime. Implementations must not assume runc:
/// they report their own error text and let the caller derive exit status itself.
pub trait OciRuntime: Send + Sync {
    /// Short name for reports (`runc`, `crun`, `youki`).
    fn name(&self) -> &str;
    /// The spec as this runtime must be given it, when it needs more than the spec says to
    /// behave like runc (youki: a hook that brings the loopback interface up).
    fn adapt_spec<'a>(&self, spec: &'a Spec) -> Result<std::borrow::Cow<'a, Spec>, OciError> {
        Ok(std::borrow::Cow::Borrowed(spec))
    }
    /// Creates the container from `bundle/config.json`; returns the init's host pid.
    fn create(&self, id: &str, bundle: &Path, io: CreateIo) -> impl Future<Output = Result<u32, OciError>> + Send;
    /// Creates and starts the container with one runtime process that stays in the
    /// foreground and removes the container (cgroup included) before it exits.
    fn run(&self, id: &str, bundle: &Path, io: CreateIo) -> Result<Foreground, OciError>;
    /// The runtime's own explanation after a `run` ended before the program started; its
    /// exit status (when known) says more where the runtime logged nothing.
    fn launch_failure(&self, id: &str, fg: &Foreground, status: Option<std::process::ExitStatus>) -> OciError;
    fn start(&self, id: &str) -> impl Future<Output = Result<(), OciError>> + Send;
    fn kill(&self, id: &str, signal: nix::sys::signal::Signal) -> impl Future<Output = Result<(), OciError>> + Send;
    /// Removes the container and its cgroup; `force` kills it first if it still runs.
    fn delete(&self, id: &str, force: bool) -> impl Future<Output = Result<(), OciError>> + Send;
    fn state(&self, id: &str) -> impl Future<Output = Result<ContainerState, OciError>> + Send;
    fn list(&self) -> impl Future<Output = Result<Vec<ContainerState>, OciError>> + Send;
}
