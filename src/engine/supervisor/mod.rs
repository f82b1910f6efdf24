//! One run's lifecycle: launch (one foreground `run` of the OCI runtime) → drive (timeout,
//! output caps, cancellation, kill ladder) → read the cgroup counters while the entrypoint
//! holds the container → report → finish: release → the runtime removes the container;
//! `delete --force` on any path where that may not have happened; and the reaping of runs
//! left behind by a crashed ignite. A warm sandbox is launched ahead, waits for `ready`, and
//! is driven later with its job handed over (see [`crate::engine::pool`]).
//!
//! This file holds the public API (the plan, the supervisor, a launched run, its teardown);
//! the steps live beside it: `state` (the run directory, its lock and records, run ids),
//! `launch` (the container and its pipes, warm readiness), `drive` (waiting, output caps, the
//! kill ladder, teardown), `assemble` (the report from what was observed), `reap` (removing
//! a run's container and cgroup, and runs a dead ignite left behind).

mod assemble;
mod drive;
mod launch;
mod reap;
mod state;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::Flock;
use oci_spec::runtime::Spec;
use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;

use crate::data::report::{Report, rfc3339};
use crate::fsutil::IoError;
use crate::sandbox::audit::{self, AuditPlan, Listener};
use crate::sandbox::grants::out::Collected;
use crate::sandbox::init_proto::InitEvent;
use crate::sandbox::oci::{Foreground, OciError, OciRuntime};

pub use state::{StateDir, new_run_id};

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("failed to create a pipe: {0}")]
    Pipe(nix::Error),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("failed to write the OCI spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("the warm sandbox did not get ready: {0}")]
    NotReady(String),
    #[error("failed to hand the job to the warm sandbox: {0}")]
    Handover(String),
}

/// Which stream a chunk of live output belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives output as it is produced (only the captured part, up to the cap).
pub trait OutputSink: Send + Sync {
    fn chunk(&self, stream: Stream, bytes: &[u8]);
}

/// Everything the supervisor needs for one run; the spec is already validated.
pub struct RunPlan {
    pub id: String,
    pub spec: Spec,
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL when the time limit expires.
    pub grace: Duration,
    /// Cap per stream; beyond it the run is stopped with `output_limit`.
    pub output_limit: usize,
    pub memory_limit_mb: u32,
    pub pids_limit: i64,
    pub service: String,
    pub runtime: String,
    /// Audit mode: the seccomp listener to run beside the container (the spec's filter was
    /// built for it), and a `securityAudit` in the report.
    pub audit: Option<AuditPlan>,
    /// The program's stdin: written into its stdin pipe when the run starts, then end of file.
    pub stdin: Arc<[u8]>,
    /// An input too large for its variable: written to the run directory's input directory
    /// (mounted read-only in the sandbox) before the program starts.
    pub input_file: Option<Arc<str>>,
    /// Rootless runs with an output directory: it is read from inside the container once the
    /// program is gone, while the entrypoint waits for its release (see [`ReadOut`]).
    pub read_out: Option<ReadOut>,
}

/// Reading a run's output directory from inside its container (rootless, where it is a tmpfs
/// the OCI runtime mounted there; see [`crate::sandbox::grants::out`]): the supervisor reads it
/// when the entrypoint reports the program's exit, before it releases the entrypoint, and
/// leaves the result here for the caller, which holds a clone.
#[derive(Debug, Clone)]
pub struct ReadOut {
    /// The `ignite` binary, run as the reading helper.
    exe: PathBuf,
    result: Arc<std::sync::Mutex<Option<std::io::Result<Collected>>>>,
}

impl ReadOut {
    pub fn new(exe: PathBuf) -> ReadOut {
        ReadOut { exe, result: Arc::default() }
    }

    /// Reads the directory of the container whose entrypoint is `pid` (blocking).
    fn read(&self, pid: Option<u32>) {
        let read = match pid {
            Some(pid) => crate::sandbox::grants::out::read_from_container(&self.exe, pid),
            None => Err(std::io::Error::other("the pid of the sandbox's entrypoint is unknown (no init.pid)")),
        };
        if let Ok(mut slot) = self.result.lock() {
            *slot = Some(read);
        }
    }

    /// What was read; an error if nothing could be (the entrypoint was gone without reporting
    /// the exit, so the container and its directory were gone with it).
    pub fn take(&self) -> std::io::Result<Collected> {
        self.result.lock().ok().and_then(|mut slot| slot.take()).unwrap_or_else(|| {
            Err(std::io::Error::other(
                "the sandbox ended before the program's exit was reported, and its output directory with it",
            ))
        })
    }
}

/// The run directory's subdirectory every run's spec mounts read-only at
/// [`crate::sandbox::abi::INPUT_DIR`] (its input file, when the input is too large for the
/// variable).
pub const INPUT_SUBDIR: &str = "input";

/// Time allowed for creating the container before the program's own limit starts.
const LAUNCH_ALLOWANCE: Duration = Duration::from_secs(30);
/// After SIGKILL (or the release), how long to wait for the container's init or the runtime
/// to disappear.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub struct Supervisor<R: OciRuntime> {
    oci: R,
    state: StateDir,
    /// Root of `/proc` (a parameter so tests can point elsewhere).
    proc_root: PathBuf,
}

/// A container launched by [`Supervisor::launch`] and not yet driven: its run directory (locked),
/// the runtime process, and the host ends of its pipes. Give it to [`Supervisor::drive`] or
/// [`Supervisor::discard`]; dropping it leaves the container to the next `reap_stale`.
pub struct Launched {
    plan: RunPlan,
    run_dir: PathBuf,
    lock: Flock<File>,
    fg: Foreground,
    out_r: pipe::Receiver,
    err_r: pipe::Receiver,
    ev_rx: tokio::sync::mpsc::UnboundedReceiver<InitEvent>,
    release: Option<OwnedFd>,
    /// The program's stdin pipe (host end), written and closed when the run starts.
    stdin: Option<OwnedFd>,
    /// A warm sandbox's job pipe (host end).
    job: Option<OwnedFd>,
    listener: Option<Listener>,
    launch: Instant,
    launch_ns: u64,
}

impl Launched {
    pub fn plan(&self) -> &RunPlan {
        &self.plan
    }

    /// The time limit of the run it will serve (a warm sandbox learns it at handover).
    pub fn set_timeout(&mut self, timeout: Duration, grace: Duration) {
        self.plan.timeout = timeout;
        self.plan.grace = grace;
    }

    /// The stdin of the run it will serve (a warm sandbox learns it at handover).
    pub fn set_stdin(&mut self, stdin: Arc<[u8]>) {
        self.plan.stdin = stdin;
    }

    /// The input file of the run it will serve, written at handover.
    pub fn set_input_file(&mut self, input: Option<Arc<str>>) {
        self.plan.input_file = input;
    }
}

/// What is left of a run once its report is out: the release of the entrypoint and the
/// container's removal (see [`Supervisor::finish`]).
pub struct Teardown {
    id: String,
    run_dir: PathBuf,
    lock: Flock<File>,
    fg: Foreground,
    release: Option<OwnedFd>,
    runtime_exited: bool,
    /// The final counters were read (and the cgroup paths recorded).
    stats_read: bool,
}

impl<R: OciRuntime> Supervisor<R> {
    pub fn new(oci: R, state: StateDir) -> Self {
        Supervisor { oci, state, proc_root: PathBuf::from("/proc") }
    }

    /// Runs the plan to completion. Whatever happens, the container, its cgroup and the
    /// run directory are gone when this returns.
    pub async fn run(
        &self,
        plan: RunPlan,
        sink: Option<Arc<dyn OutputSink>>,
        cancel: CancellationToken,
    ) -> Result<Report, SupervisorError> {
        let wall = Instant::now();
        let started_at = rfc3339(SystemTime::now());
        let launched = self.launch(plan, false).await?;
        let (result, teardown) = self.drive(launched, None, sink, cancel, wall, started_at).await;
        let teardown_ms = self.finish(teardown).await;
        result.map(|mut report| {
            report.metrics.phases.teardown_ms += teardown_ms;
            report.metrics.wall_time_ms = ms_since(wall);
            report
        })
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
