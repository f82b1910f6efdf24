//! One run's lifecycle: launch (one foreground `run` of the OCI runtime) → drive (timeout,
//! output caps, cancellation, kill ladder) → read the cgroup counters while the entrypoint
//! holds the container → report → finish: release → the runtime removes the container;
//! `delete --force` on any path where that may not have happened; and the reaping of runs
//! left behind by a crashed ignite. A warm sandbox is launched ahead, waits for `ready`, and
//! is driven later with its job handed over (see [`crate::engine::pool`]).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::Flock;
use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::data::report::{Metrics, Phases, Report, Status, rfc3339, signal_name};
use crate::fsutil::owned::{self, Leftover};
use crate::fsutil::{At, IoError};
use crate::sandbox::audit::{self, AuditPlan, Listener};
use crate::sandbox::cgroup::{self, CgroupPaths, CgroupStats};
use crate::sandbox::init_proto::{InitEvent, JobMessage, MAX_REPORT_BYTES, parse_events};
use crate::sandbox::oci::{CreateIo, Foreground, OciError, OciRuntime};
use crate::sys::monotonic_ns;

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
}

/// Where per-run state lives: `<state>/runs/<id>/` (bundle dir with config.json, a lock
/// held for the run's lifetime, the cgroup paths) and `<state>/runs/<id>.log`.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runs().join(id)
    }
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.runs().join(format!("{id}.log"))
    }
    pub fn oci_root(&self, oci: &str) -> PathBuf {
        self.root.join("oci").join(oci)
    }
}

const CGROUP_FILE: &str = "cgroup.json";
/// After the program is gone, how long to wait for its output pipes to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// After SIGKILL, how long to wait for the container's init to disappear.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Time allowed for creating the container before the program's own limit starts.
const LAUNCH_ALLOWANCE: Duration = Duration::from_secs(30);

/// The next step when the program does not stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escalation {
    /// Ask the entrypoint to SIGKILL the program (it reports, then waits for release).
    Hard,
    /// SIGKILL the entrypoint itself.
    Last,
    /// Nothing left to send.
    Done,
}

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

struct Captured {
    bytes: Vec<u8>,
    total: u64,
    truncated: bool,
}

/// Why ignite ended the run, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Timeout,
    OutputLimit(Stream),
    Cancelled,
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

    /// Creates the run directory (locked) and launches the container: one foreground OCI
    /// runtime process (`run`) creates, starts and finally removes it. With `wait_job` the
    /// spec must be a warm one (`--wait-job`): the entrypoint then waits for its job on
    /// [`crate::sandbox::spec::JOB_FD`]. On error nothing is left behind.
    pub async fn launch(&self, plan: RunPlan, wait_job: bool) -> Result<Launched, SupervisorError> {
        let run_dir = self.state.run_dir(&plan.id);
        std::fs::create_dir_all(self.state.runs()).at("create", self.state.runs())?;
        let lock = match self.create_locked_run_dir(&run_dir) {
            Ok(lock) => lock,
            Err(e) => {
                remove_run_files(&self.state, &plan.id);
                return Err(e);
            }
        };
        match self.start_container(plan, run_dir, lock, wait_job) {
            Ok(launched) => Ok(launched),
            Err((e, id, lock)) => {
                self.cleanup(&id).await;
                remove_run_files(&self.state, &id);
                drop(lock);
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn start_container(
        &self,
        plan: RunPlan,
        run_dir: PathBuf,
        lock: Flock<File>,
        wait_job: bool,
    ) -> Result<Launched, (SupervisorError, String, Flock<File>)> {
        let started = (|| {
            self.oci.adapt_spec(&plan.spec)?.save(run_dir.join("config.json"))?;
            let (out_r, out_w) = pipe_pair()?;
            let (err_r, err_w) = pipe_pair()?;
            let (rep_r, rep_w) = pipe_pair()?;
            let (rel_r, rel_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
            // The runtime's own stdio gets copies: whatever it (or the entrypoint before it
            // takes fds 5 and 6) writes still lands in the run's output.
            let dup = |fd: &OwnedFd| {
                fd.try_clone().map_err(|e| SupervisorError::Pipe(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))
            };
            let (runtime_out, runtime_err) = (dup(&out_w)?, dup(&err_w)?);
            let mut extra_fds = vec![rep_w, rel_r, out_w, err_w];
            let job = if wait_job {
                let (job_r, job_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
                extra_fds.push(job_r);
                Some(job_w)
            } else {
                None
            };
            let io = CreateIo { stdout: runtime_out, stderr: runtime_err, extra_fds };
            let launch = Instant::now();
            let launch_ns = monotonic_ns();
            // Listening before the runtime starts: it connects as soon as the filter is loaded.
            let listener = plan.audit.as_ref().map(|a| Listener::start(a, launch)).transpose()?;
            let fg = self.oci.run(&plan.id, &run_dir, io)?;
            let (ev_tx, ev_rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(read_events(rep_r, ev_tx));
            Ok((out_r, err_r, rel_w, job, listener, fg, ev_rx, launch, launch_ns))
        })();
        match started {
            Ok((out_r, err_r, rel_w, job, listener, fg, ev_rx, launch, launch_ns)) => Ok(Launched {
                plan,
                run_dir,
                lock,
                fg,
                out_r,
                err_r,
                ev_rx,
                release: Some(rel_w),
                job,
                listener,
                launch,
                launch_ns,
            }),
            Err(e) => Err((e, plan.id, lock)),
        }
    }

    /// Waits until a warm sandbox's entrypoint reports `ready` (set up, confined, waiting for
    /// its job). An error means the sandbox is unusable: [`Supervisor::discard`] it.
    pub async fn wait_ready(&self, l: &mut Launched) -> Result<(), SupervisorError> {
        tokio::select! {
            ev = l.ev_rx.recv() => match ev {
                Some(InitEvent::Ready) => Ok(()),
                Some(InitEvent::SpawnFailed { message }) => Err(SupervisorError::NotReady(message)),
                Some(other) => Err(SupervisorError::NotReady(format!("unexpected event before the job: {other:?}"))),
                None => Err(SupervisorError::NotReady("the entrypoint exited before it was ready".into())),
            },
            _ = l.fg.child.wait() => Err(self.oci.launch_failure(&l.plan.id, &l.fg).into()),
            _ = tokio::time::sleep(LAUNCH_ALLOWANCE) => {
                Err(SupervisorError::NotReady(format!("not ready within {} s", LAUNCH_ALLOWANCE.as_secs())))
            }
        }
    }

    /// Resolves when a parked (ready, waiting) sandbox can no longer serve: its entrypoint
    /// reported something or went away, or the runtime process exited. Cancel-safe.
    pub async fn parked_failure(&self, l: &mut Launched) -> String {
        tokio::select! {
            ev = l.ev_rx.recv() => match ev {
                Some(ev) => format!("the entrypoint reported {ev:?} while waiting for a job"),
                None => "the entrypoint exited while waiting for a job".to_string(),
            },
            status = l.fg.child.wait() => format!("{} exited while the sandbox waited: {status:?}", self.oci.name()),
        }
    }

    /// Gives up a launched sandbox that never ran a job: closing the job pipe makes its
    /// entrypoint exit without starting anything; then everything is removed.
    pub async fn discard(&self, mut l: Launched) {
        l.job.take();
        let listener = l.listener.take();
        let teardown = Teardown {
            id: l.plan.id.clone(),
            run_dir: l.run_dir,
            lock: l.lock,
            fg: l.fg,
            release: l.release,
            runtime_exited: false,
            stats_read: false,
        };
        self.finish(teardown).await;
        drop(listener);
    }

    /// Runs a launched container to its report. `job`: the sandbox is a warm one, and its run
    /// starts now, with this handover (the time limit, `initTimeMs` and the launch phase count
    /// from here). Returns the report as soon as the entrypoint has reported the exit and the
    /// final counters are read; what remains (release, removal) is the [`Teardown`], for
    /// [`Supervisor::finish`].
    pub async fn drive(
        &self,
        mut l: Launched,
        job: Option<&JobMessage>,
        sink: Option<Arc<dyn OutputSink>>,
        cancel: CancellationToken,
        wall: Instant,
        started_at: String,
    ) -> (Result<Report, SupervisorError>, Teardown) {
        let warm = job.is_some();
        let (launch, launch_ns) = if warm { (Instant::now(), monotonic_ns()) } else { (l.launch, l.launch_ns) };
        if let (true, Some(listener)) = (warm, &l.listener) {
            listener.restart_clock(launch);
        }
        let plan = &l.plan;
        let limit_hit = Arc::new(Notify::new());
        // Set once the entrypoint reported the exit: everything that could write output is gone
        // (it killed the rest), so what is in the pipes is all there is.
        let exited = CancellationToken::new();
        let out_task = tokio::spawn(pump(
            l.out_r,
            Stream::Stdout,
            plan.output_limit,
            sink.clone(),
            limit_hit.clone(),
            exited.clone(),
        ));
        let err_task =
            tokio::spawn(pump(l.err_r, Stream::Stderr, plan.output_limit, sink, limit_hit.clone(), exited.clone()));
        let mut teardown = Teardown {
            id: plan.id.clone(),
            run_dir: l.run_dir.clone(),
            lock: l.lock,
            fg: l.fg,
            release: l.release.take(),
            runtime_exited: false,
            stats_read: false,
        };
        if let Some(job) = job
            && let Err(e) = hand_over(l.job.take(), job).await
        {
            return (Err(e), teardown);
        }

        let mut events: Vec<InitEvent> = Vec::new();
        let mut stats: Option<CgroupStats> = None;
        let mut cgroups: Option<CgroupPaths> = None;
        let mut stop: Option<Stop> = None;
        let mut phases = Phases::default();
        let mut exec_at: Option<Instant> = None;
        let mut stopped_at: Option<f64> = None;
        let mut counters_at = 0.0;
        // Until the program runs, the limit also covers creating the container.
        let deadline = tokio::time::sleep(plan.timeout + LAUNCH_ALLOWANCE);
        tokio::pin!(deadline);
        let escalate = tokio::time::sleep(Duration::from_secs(365 * 86_400));
        tokio::pin!(escalate);
        let mut escalation = Escalation::Hard;
        let listener = l.listener.take();

        loop {
            tokio::select! {
                ev = l.ev_rx.recv() => match ev {
                    Some(ev @ InitEvent::Exec { .. }) => {
                        exec_at = Some(Instant::now());
                        phases.launch_ms = ms_since(launch);
                        deadline.as_mut().reset(tokio::time::Instant::now() + plan.timeout);
                        events.push(ev);
                        // While the program runs: the exit then only has to read the counters.
                        cgroups = self.locate_cgroups(&teardown.run_dir);
                    }
                    Some(ev @ InitEvent::Exit { .. }) => {
                        events.push(ev);
                        // The entrypoint waits for the release: read the final counters now.
                        stats = self.final_stats(&teardown.run_dir, cgroups.take()).await;
                        teardown.stats_read = stats.is_some();
                        counters_at = ms_since(launch);
                        break;
                    }
                    Some(InitEvent::Pins { pins }) => {
                        if let Some(l) = &listener {
                            l.give_pins(pins);
                        }
                    }
                    Some(ev) => events.push(ev),
                    // The entrypoint is gone without an exit report (killed outright), or it
                    // never ran: a runtime that fails to launch may close the entrypoint's
                    // pipes before it exits itself (youki does), and then its own words
                    // explain the failure.
                    None => {
                        if events.is_empty()
                            && !teardown.runtime_exited
                            && let Ok(Ok(status)) = tokio::time::timeout(KILL_WAIT, teardown.fg.child.wait()).await
                        {
                            teardown.runtime_exited = true;
                            if !status.success() {
                                return (Err(self.oci.launch_failure(&plan.id, &teardown.fg).into()), teardown);
                            }
                        }
                        break;
                    }
                },
                status = teardown.fg.child.wait(), if !teardown.runtime_exited => {
                    teardown.runtime_exited = true;
                    if events.is_empty() {
                        tracing::debug!("{} exited before the program started: {status:?}", self.oci.name());
                        return (Err(self.oci.launch_failure(&plan.id, &teardown.fg).into()), teardown);
                    }
                }
                _ = &mut deadline, if stop.is_none() => {
                    stop = Some(Stop::Timeout);
                    stopped_at = Some(ms_since(launch));
                    let _ = self.oci.kill(&plan.id, Signal::SIGTERM).await;
                    escalate.as_mut().reset(tokio::time::Instant::now() + plan.grace);
                }
                _ = limit_hit.notified(), if stop.is_none() => {
                    stop = Some(Stop::OutputLimit(Stream::Stdout));
                    stopped_at = Some(ms_since(launch));
                    escalation = self.escalate(&plan.id, escalation, escalate.as_mut()).await;
                }
                _ = cancel.cancelled(), if stop.is_none() => {
                    stop = Some(Stop::Cancelled);
                    escalation = self.escalate(&plan.id, escalation, escalate.as_mut()).await;
                }
                _ = &mut escalate => {
                    if escalation == Escalation::Done {
                        // Nothing reacted to SIGKILL: leave the rest to `delete --force`.
                        break;
                    }
                    escalation = self.escalate(&plan.id, escalation, escalate.as_mut()).await;
                }
            }
        }
        phases.run_ms = exec_at.map_or(0.0, ms_since);

        let exit_reported = events.iter().any(|e| matches!(e, InitEvent::Exit { .. }));
        if exit_reported {
            exited.cancel();
        } else {
            // No exit report: the output pipes close only when the runtime is gone.
            let t = Instant::now();
            teardown.release.take();
            teardown.runtime_exited = teardown.runtime_exited || wait_runtime(&mut teardown.fg).await;
            phases.teardown_ms = ms_since(t);
        }
        let stdout = drain(out_task).await;
        let stderr = drain(err_task).await;
        if let Some(Stop::OutputLimit(_)) = stop {
            // Name the stream that actually crossed the cap.
            let which = if stdout.truncated { Stream::Stdout } else { Stream::Stderr };
            stop = Some(Stop::OutputLimit(which));
        }
        // Nothing in the sandbox runs any more but (at most) its entrypoint, which waits for
        // the release and makes no call the filter reports.
        let collected = listener.map(Listener::finish);
        let observed = audit::Observed {
            timeout_at: stopped_at.filter(|_| stop == Some(Stop::Timeout)),
            output_limit_at: match stop {
                Some(Stop::OutputLimit(s)) => {
                    Some((stopped_at.unwrap_or_default(), if s == Stream::Stdout { "stdout" } else { "stderr" }))
                }
                _ => None,
            },
            oom_kills: stats.as_ref().map_or(0, |s| s.oom_kills),
            pids_limit_hits: stats.as_ref().map_or(0, |s| s.pids_limit_hits),
            counters_at,
        };
        let mut report =
            assemble(plan, events, stats, stdout, stderr, stop, launch_ns, wall, started_at, self.oci.name());
        report.metrics.phases = phases;
        report.metrics.warm = warm;
        if let (Some(audit_plan), Some(collected)) = (&plan.audit, collected) {
            if let Some(e) = &collected.error {
                tracing::warn!("audit listener: {e}");
            }
            report.security_audit = Some(audit::assemble(audit_plan, collected, &observed));
        }
        (Ok(report), teardown)
    }

    /// Ends what [`Supervisor::drive`] left: releases the entrypoint, waits for the runtime to
    /// remove the container, forces the removal where that may not have happened, and removes
    /// the run directory. Returns how long it took, in milliseconds.
    pub async fn finish(&self, mut t: Teardown) -> f64 {
        let started = Instant::now();
        t.release.take();
        let runtime_done = t.runtime_exited || wait_runtime(&mut t.fg).await;
        let may_remain = !runtime_done || !t.stats_read || self.cgroups_remain(&t.run_dir);
        if may_remain {
            self.cleanup(&t.id).await;
        }
        // Removed while the lock is held: a scan by another run never sees it unlocked.
        remove_run_files(&self.state, &t.id);
        drop(t.lock);
        ms_since(started)
    }

    /// Creates `runs/<id>/` already holding its lock: the directory is prepared under a
    /// hidden name and renamed into place, so a concurrent `reap_stale` never sees a run
    /// directory whose lock is not yet taken.
    fn create_locked_run_dir(&self, run_dir: &Path) -> Result<Flock<File>, SupervisorError> {
        let name = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (_, lock) = owned::create(&self.state.runs(), &name, 0o755, |_| Ok(()))?;
        Ok(lock)
    }

    /// One step up the kill ladder: ask the entrypoint to SIGKILL the program (it reports
    /// and waits for release); if that does not end it, SIGKILL the entrypoint itself.
    async fn escalate(&self, id: &str, step: Escalation, timer: std::pin::Pin<&mut tokio::time::Sleep>) -> Escalation {
        let (signal, next) = match step {
            Escalation::Hard => (Signal::SIGALRM, Escalation::Last),
            Escalation::Last | Escalation::Done => (Signal::SIGKILL, Escalation::Done),
        };
        let _ = self.oci.kill(id, signal).await;
        timer.reset(tokio::time::Instant::now() + KILL_WAIT);
        next
    }

    /// Reads the cgroup counters of a container whose entrypoint is alive and waiting. The
    /// cgroup paths come from [`locate_cgroups`](Self::locate_cgroups) at the program's start
    /// when the runtime had written the pid file by then, or are found now.
    async fn final_stats(&self, run_dir: &Path, located: Option<CgroupPaths>) -> Option<CgroupStats> {
        let paths = match located {
            Some(paths) => paths,
            None => {
                // The runtime writes the pid file right after starting the container; the
                // program has run since, but allow for a slow writer.
                let mut pid = None;
                for _ in 0..50 {
                    pid = init_pid(run_dir);
                    if pid.is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                self.record_cgroups(pid?, run_dir)?
            }
        };
        cgroup::read_stats(&paths).map_err(|e| tracing::warn!("failed to read cgroup counters: {e}")).ok()
    }

    /// The cgroups of the container's init, if the runtime has written its pid file by now.
    fn locate_cgroups(&self, run_dir: &Path) -> Option<CgroupPaths> {
        self.record_cgroups(init_pid(run_dir)?, run_dir)
    }

    /// Finds the cgroups of `pid` and records them, so that a later ignite can remove them if
    /// needed.
    fn record_cgroups(&self, pid: u32, run_dir: &Path) -> Option<CgroupPaths> {
        let paths = match CgroupPaths::for_pid(pid, &self.proc_root) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("failed to find the sandbox's cgroup: {e}");
                return None;
            }
        };
        if let Ok(json) = serde_json::to_vec(&paths) {
            let _ = std::fs::write(run_dir.join(CGROUP_FILE), json);
        }
        Some(paths)
    }

    /// Whether any cgroup directory recorded for this run still exists.
    fn cgroups_remain(&self, run_dir: &Path) -> bool {
        let recorded = std::fs::read(run_dir.join(CGROUP_FILE)).ok();
        match recorded.and_then(|t| serde_json::from_slice::<CgroupPaths>(&t).ok()) {
            Some(paths) => paths.dirs().iter().any(|d| d.exists()),
            None => true,
        }
    }

    /// Removes the container (and with it the cgroup). Errors are logged, not returned:
    /// cleanup runs after the report is final, and a failure here is retried by the next
    /// ignite through the run's state directory.
    async fn cleanup(&self, id: &str) {
        match self.oci.delete(id, true).await {
            Ok(()) | Err(OciError::NotFound { .. }) => {}
            Err(e) => tracing::warn!("failed to delete container {id}: {e}"),
        }
        let cg = self.state.run_dir(id).join(CGROUP_FILE);
        if let Ok(text) = std::fs::read(&cg)
            && let Ok(paths) = serde_json::from_slice::<CgroupPaths>(&text)
            && let Err(e) = cgroup::remove_cgroup_dirs(&paths)
        {
            tracing::warn!("failed to remove cgroup of {id}: {e}");
        }
    }

    /// Finds runs whose owner died (their lock is free) and removes what they left:
    /// container, cgroup, run directory. Returns the ids it cleaned.
    pub async fn reap_stale(&self) -> Vec<String> {
        let mut reaped = Vec::new();
        for leftover in owned::leftovers(&self.state.runs()) {
            let (id, lock) = match leftover {
                // Half-made by a process that died during set-up (nothing was started yet).
                Leftover::Abandoned { dir, .. } => {
                    let _ = std::fs::remove_dir_all(&dir);
                    continue;
                }
                Leftover::Dead { name, lock, .. } => (name, lock),
            };
            tracing::info!("removing leftovers of run {id}");
            self.cleanup(&id).await;
            remove_run_files(&self.state, &id);
            drop(lock);
            reaped.push(id);
        }
        reaped
    }
}

/// The pid of the container's init, from the pid file the runtime writes once it started it.
fn init_pid(run_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(run_dir.join("init.pid")).ok()?.trim().parse().ok()
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Removes a run's state; called with the run's lock still held (see [`owned::remove`]).
fn remove_run_files(state: &StateDir, id: &str) {
    let dir = state.run_dir(id);
    if let Err(e) = owned::remove(&dir) {
        tracing::warn!("failed to remove {}: {e}", dir.display());
    }
    let _ = std::fs::remove_file(state.log_path(id));
}

fn pipe_pair() -> Result<(pipe::Receiver, OwnedFd), SupervisorError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
    let r = pipe::Receiver::from_owned_fd(r)
        .map_err(|e| SupervisorError::Pipe(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
    Ok((r, w))
}

/// Reads one output stream to EOF, or, once `exited` is set, to what the pipe holds: captures
/// up to `cap` bytes, forwards them live, counts and discards the rest, and signals when the
/// cap is crossed.
async fn pump(
    mut rx: pipe::Receiver,
    stream: Stream,
    cap: usize,
    sink: Option<Arc<dyn OutputSink>>,
    limit_hit: Arc<Notify>,
    exited: CancellationToken,
) -> Captured {
    let mut c = Captured { bytes: Vec::new(), total: 0, truncated: false };
    let mut buf = vec![0u8; 64 * 1024];
    let take = |c: &mut Captured, bytes: &[u8]| {
        let n = bytes.len();
        c.total += n as u64;
        let room = cap.saturating_sub(c.bytes.len());
        let keep = room.min(n);
        if keep > 0 {
            c.bytes.extend_from_slice(&bytes[..keep]);
            if let Some(s) = &sink {
                s.chunk(stream, &bytes[..keep]);
            }
        }
        if keep < n && !c.truncated {
            c.truncated = true;
            limit_hit.notify_one();
        }
    };
    loop {
        tokio::select! {
            biased;
            r = rx.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => take(&mut c, &buf[..n]),
            },
            _ = exited.cancelled() => {
                // The writers are gone but hold the pipe open (the entrypoint, the runtime):
                // read what is buffered without waiting for an end of file. A plain read of the
                // non-blocking pipe, not `try_read`, which answers from the reactor's view of
                // readiness and may not have seen the last write yet.
                while let Ok(n) = nix::unistd::read(&rx, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    take(&mut c, &buf[..n]);
                }
                break;
            }
        }
    }
    c
}

/// Writes the job message to a warm sandbox's job pipe and closes it.
async fn hand_over(fd: Option<OwnedFd>, job: &JobMessage) -> Result<(), SupervisorError> {
    let fd = fd.ok_or_else(|| SupervisorError::Handover("the sandbox has no job pipe (not a warm one)".into()))?;
    let line = job.to_line().map_err(|e| SupervisorError::Handover(e.to_string()))?;
    let mut tx = pipe::Sender::from_owned_fd(fd).map_err(|e| SupervisorError::Handover(e.to_string()))?;
    tx.write_all(line.as_bytes()).await.map_err(|e| SupervisorError::Handover(e.to_string()))?;
    Ok(())
}

/// Waits for the runtime process to exit (it removes the container first); after
/// [`KILL_WAIT`] kills it and says so.
async fn wait_runtime(fg: &mut Foreground) -> bool {
    match tokio::time::timeout(KILL_WAIT, fg.child.wait()).await {
        Ok(_) => true,
        Err(_) => {
            let _ = fg.child.start_kill();
            false
        }
    }
}

async fn drain(task: tokio::task::JoinHandle<Captured>) -> Captured {
    let empty = || Captured { bytes: Vec::new(), total: 0, truncated: false };
    match tokio::time::timeout(DRAIN_TIMEOUT, task).await {
        Ok(Ok(c)) => c,
        _ => empty(),
    }
}

/// Reads the entrypoint's report pipe until EOF (the entrypoint exited), forwarding each
/// event as it arrives. Bounded: a stream longer than the entrypoint ever writes is cut.
pub(crate) async fn read_events(mut rx: pipe::Receiver, tx: tokio::sync::mpsc::UnboundedSender<InitEvent>) {
    let mut pending = Vec::new();
    let mut total = 0usize;
    let mut buf = [0u8; 4096];
    loop {
        let n = match rx.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        total += n;
        if total > MAX_REPORT_BYTES {
            return;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            for ev in parse_events(&line) {
                let _ = tx.send(ev);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    plan: &RunPlan,
    events: Vec<InitEvent>,
    stats: Option<CgroupStats>,
    stdout: Captured,
    stderr: Captured,
    stop: Option<Stop>,
    launch_ns: u64,
    wall: Instant,
    started_at: String,
    oci_name: &str,
) -> Report {
    let exec_ns = events.iter().find_map(|e| match e {
        InitEvent::Exec { mono_ns } => Some(*mono_ns),
        _ => None,
    });
    let spawn_failed = events.iter().find_map(|e| match e {
        InitEvent::SpawnFailed { message } => Some(message.clone()),
        _ => None,
    });
    let exit = events.iter().find_map(|e| match e {
        InitEvent::Exit { mono_ns, exit_code, signal, user_us, sys_us, max_rss_kb } => {
            Some((*mono_ns, *exit_code, *signal, *user_us, *sys_us, *max_rss_kb))
        }
        _ => None,
    });
    let ms = |ns: u64| ns as f64 / 1e6;
    let stats = stats.unwrap_or_default();

    let mut metrics = Metrics {
        init_time_ms: exec_ns.filter(|e| *e >= launch_ns).map(|e| ms(e - launch_ns)),
        wall_time_ms: wall.elapsed().as_secs_f64() * 1000.0,
        memory_peak_mb: stats.memory_peak_bytes.map(|b| b as f64 / (1024.0 * 1024.0)),
        memory_limit_mb: plan.memory_limit_mb,
        cpu_time_ms: stats.cpu_usage_ns.map(ms),
        pids_peak: stats.pids_peak,
        pids_limit_hits: stats.pids_limit_hits,
        oom_kills: stats.oom_kills,
        stdout_bytes: stdout.total,
        stderr_bytes: stderr.total,
        ..Metrics::default()
    };

    let (mut exit_code, mut signal) = (None, None);
    if let Some((end_ns, code, sig, user_us, sys_us, rss_kb)) = exit {
        metrics.execution_time_ms = exec_ns.filter(|e| end_ns >= *e).map(|e| ms(end_ns - e));
        metrics.user_cpu_ms = Some(user_us as f64 / 1000.0);
        metrics.system_cpu_ms = Some(sys_us as f64 / 1000.0);
        metrics.max_rss_mb = Some(rss_kb as f64 / 1024.0);
        exit_code = code;
        signal = sig.map(signal_name);
    } else if stop.is_some() || stats.oom_kills > 0 {
        // The entrypoint itself was killed before it could report: SIGKILL is what hit it.
        signal = Some("SIGKILL".to_string());
        if let Some(e) = exec_ns {
            metrics.execution_time_ms = Some(ms(monotonic_ns().saturating_sub(e)));
        }
    }

    let mut notes = Vec::new();
    let status = match stop {
        Some(Stop::Timeout) => {
            notes.push(format!(
                "stopped at the {} ms time limit (SIGTERM, then SIGKILL after {} ms)",
                plan.timeout.as_millis(),
                plan.grace.as_millis()
            ));
            Status::Timeout
        }
        Some(Stop::OutputLimit(which)) => {
            let name = if which == Stream::Stdout { "stdout" } else { "stderr" };
            notes.push(format!("{name} exceeded the {}-byte output limit; the program was killed", plan.output_limit));
            Status::OutputLimit
        }
        Some(Stop::Cancelled) => {
            notes.push("interrupted: ignite was asked to stop, and killed the program".to_string());
            Status::Error
        }
        None if stats.oom_kills > 0 => {
            notes.push(format!("killed by the kernel OOM killer at the {} MiB memory limit", plan.memory_limit_mb));
            Status::Oom
        }
        // Over the cap, but the program exited before ignite got to stop it: the output is
        // still cut, and the run must not pass for a clean one.
        None if stdout.truncated || stderr.truncated => {
            let name = if stdout.truncated { "stdout" } else { "stderr" };
            notes.push(format!(
                "{name} exceeded the {}-byte output limit; the program exited before ignite stopped it",
                plan.output_limit
            ));
            Status::OutputLimit
        }
        None if exit_code == Some(0) => Status::Ok,
        None => {
            if exit.is_none() {
                notes.push(match &spawn_failed {
                    Some(m) => m.clone(),
                    None => "the sandbox's entrypoint exited without reporting an exit status".to_string(),
                });
            }
            Status::Error
        }
    };
    if stats.oom_kills > 0 && status != Status::Oom {
        notes.push(format!("the OOM killer fired {} time(s) in the sandbox", stats.oom_kills));
    }
    if stats.pids_limit_hits > 0 {
        notes.push(format!(
            "{} process/thread creation(s) were refused at the pids limit of {}",
            stats.pids_limit_hits, plan.pids_limit
        ));
    }

    Report {
        service: plan.service.clone(),
        runtime: plan.runtime.clone(),
        oci_runtime: oci_name.to_string(),
        container_id: plan.id.clone(),
        started_at,
        status,
        success: status == Status::Ok,
        exit_code,
        signal,
        stdout: String::from_utf8_lossy(&stdout.bytes).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.bytes).into_owned(),
        stdout_truncated: stdout.truncated,
        stderr_truncated: stderr.truncated,
        metrics,
        message: if notes.is_empty() { None } else { Some(notes.join("; ")) },
        install: None,
        security_audit: None,
    }
}

/// A fresh container id: unique on this host (time + pid + a counter).
pub fn new_run_id() -> String {
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("ig-{nanos:x}-{:x}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::owned::{HIDDEN_PREFIX, LOCK_FILE};

    fn plan() -> RunPlan {
        RunPlan {
            id: "ig-1".into(),
            spec: Spec::default(),
            timeout: Duration::from_millis(1000),
            grace: Duration::from_millis(100),
            output_limit: 10,
            memory_limit_mb: 64,
            pids_limit: 128,
            service: "s".into(),
            runtime: "bun@1.4.5".into(),
            audit: None,
        }
    }

    fn cap(s: &str, truncated: bool) -> Captured {
        Captured { bytes: s.as_bytes().to_vec(), total: s.len() as u64, truncated }
    }

    fn exit_ev(code: Option<i32>, sig: Option<i32>) -> Vec<InitEvent> {
        vec![
            InitEvent::Exec { mono_ns: 2_000_000 },
            InitEvent::Exit {
                mono_ns: 12_000_000,
                exit_code: code,
                signal: sig,
                user_us: 1500,
                sys_us: 500,
                max_rss_kb: 2048,
            },
        ]
    }

    fn run(events: Vec<InitEvent>, stats: CgroupStats, stop: Option<Stop>) -> Report {
        assemble(
            &plan(),
            events,
            Some(stats),
            cap("hi", false),
            cap("", false),
            stop,
            1_000_000,
            Instant::now(),
            "t".into(),
            "runc",
        )
    }

    #[test]
    fn clean_exit_is_ok_with_metrics() {
        let stats = CgroupStats {
            memory_peak_bytes: Some(10 * 1024 * 1024),
            cpu_usage_ns: Some(3_000_000),
            pids_peak: Some(7),
            ..Default::default()
        };
        let r = run(exit_ev(Some(0), None), stats, None);
        assert_eq!(r.status, Status::Ok);
        assert!(r.success);
        assert_eq!(r.exit_code, Some(0));
        assert_eq!(r.metrics.init_time_ms, Some(1.0));
        assert_eq!(r.metrics.execution_time_ms, Some(10.0));
        assert_eq!(r.metrics.memory_peak_mb, Some(10.0));
        assert_eq!(r.metrics.cpu_time_ms, Some(3.0));
        assert_eq!(r.metrics.pids_peak, Some(7));
        assert_eq!(r.metrics.user_cpu_ms, Some(1.5));
        assert_eq!(r.stdout, "hi");
    }

    #[test]
    fn status_derivation() {
        let r = run(exit_ev(Some(3), None), CgroupStats::default(), None);
        assert_eq!((r.status, r.exit_code), (Status::Error, Some(3)));
        let r = run(exit_ev(None, Some(9)), CgroupStats { oom_kills: 1, ..Default::default() }, None);
        assert_eq!((r.status, r.signal.as_deref()), (Status::Oom, Some("SIGKILL")));
        let r = run(exit_ev(None, Some(15)), CgroupStats::default(), Some(Stop::Timeout));
        assert_eq!(r.status, Status::Timeout);
        assert!(r.message.unwrap().contains("1000 ms time limit"));
        let r =
            run(vec![InitEvent::Exec { mono_ns: 2 }], CgroupStats::default(), Some(Stop::OutputLimit(Stream::Stderr)));
        assert_eq!((r.status, r.signal.as_deref()), (Status::OutputLimit, Some("SIGKILL")));
        let r = run(vec![], CgroupStats::default(), None);
        assert_eq!(r.status, Status::Error);
        assert!(r.message.unwrap().contains("without reporting"));
        let r = run(exit_ev(Some(0), None), CgroupStats { pids_limit_hits: 4, ..Default::default() }, None);
        assert!(r.message.unwrap().contains("pids limit of 128"));
    }

    #[test]
    fn output_over_the_cap_is_output_limit_even_if_the_program_exited_first() {
        let r = assemble(
            &plan(),
            exit_ev(Some(0), None),
            Some(CgroupStats::default()),
            cap("0123456789", true),
            cap("", false),
            None,
            1_000_000,
            Instant::now(),
            "t".into(),
            "runc",
        );
        assert_eq!((r.status, r.success, r.exit_code), (Status::OutputLimit, false, Some(0)));
        assert!(r.stdout_truncated);
        assert!(r.message.unwrap().contains("stdout exceeded the 10-byte output limit"));
    }

    #[tokio::test]
    async fn pump_caps_and_signals() {
        let (rx, tx) = pipe_pair().unwrap();
        let hit = Arc::new(Notify::new());
        let task = tokio::spawn(pump(rx, Stream::Stdout, 10, None, hit.clone(), CancellationToken::new()));
        // A writer thread: the pipe holds 64 KiB, so the write blocks until pump reads.
        let writer = std::thread::spawn(move || {
            let mut f = File::from(tx);
            std::io::Write::write_all(&mut f, &[b'x'; 100_000]).unwrap();
        });
        let c = task.await.unwrap();
        writer.join().unwrap();
        assert_eq!(c.bytes.len(), 10);
        assert_eq!(c.total, 100_000);
        assert!(c.truncated);
        tokio::time::timeout(Duration::from_secs(1), hit.notified()).await.unwrap();
    }

    #[tokio::test]
    async fn pump_takes_what_is_buffered_once_the_program_exited_though_the_pipe_stays_open() {
        let (rx, tx) = pipe_pair().unwrap();
        let exited = CancellationToken::new();
        let task = tokio::spawn(pump(rx, Stream::Stdout, 100, None, Arc::new(Notify::new()), exited.clone()));
        // Written and the exit known at once, before the reactor may have seen the pipe
        // readable; the writer stays open, as the waiting entrypoint's stdout does.
        let mut f = File::from(tx);
        std::io::Write::write_all(&mut f, b"hello\n").unwrap();
        exited.cancel();
        let c = task.await.unwrap();
        assert_eq!(c.bytes, b"hello\n");
        drop(f);
    }

    #[tokio::test]
    async fn reap_stale_removes_only_runs_whose_owner_died() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let fake = d.path().join("fake-runc");
        std::fs::write(&fake, "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let state = StateDir { root: d.path().join("state") };
        let oci = crate::sandbox::oci::CliRuntime::new(
            crate::sandbox::oci::OciKind::Runc,
            fake,
            state.oci_root("runc"),
            state.runs(),
        );
        let sup = Supervisor::new(oci, state.clone());
        std::fs::create_dir_all(state.runs()).unwrap();

        // Alive: created through the real path, lock held by this process.
        let _alive = sup.create_locked_run_dir(&state.run_dir("alive")).unwrap();
        // Dead: a lock file nobody holds.
        std::fs::create_dir(state.run_dir("dead")).unwrap();
        std::fs::write(state.run_dir("dead").join(LOCK_FILE), "").unwrap();
        std::fs::write(state.log_path("dead"), "").unwrap();
        // Being set up right now: hidden and fresh.
        std::fs::create_dir(state.runs().join(format!("{HIDDEN_PREFIX}new"))).unwrap();

        let reaped = sup.reap_stale().await;
        assert_eq!(reaped, vec!["dead".to_string()]);
        assert!(!state.run_dir("dead").exists() && !state.log_path("dead").exists());
        assert!(state.run_dir("alive").exists());
        assert!(state.runs().join(format!("{HIDDEN_PREFIX}new")).exists());
        let calls = std::fs::read_to_string(d.path().join("calls")).unwrap();
        assert!(calls.contains("delete --force dead"), "{calls}");
        assert!(!calls.contains("alive"), "{calls}");
    }

    #[test]
    fn run_ids_are_unique() {
        assert_ne!(new_run_id(), new_run_id());
    }
}
