//! Driving a launched run to its report: live output up to the cap, the time limit, cancellation
//! and the kill ladder, the final cgroup counters read while the entrypoint holds the
//! container; then the teardown (release, removal) that [`Supervisor::finish`] completes.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::assemble::{Captured, Stop, assemble};
use super::state::{init_pid, remove_run_files};
use super::{
    KILL_WAIT, LAUNCH_ALLOWANCE, Launched, OutputSink, Stream, Supervisor, SupervisorError, Teardown, ms_since,
};
use crate::data::report::{Phases, Report};
use crate::sandbox::audit::{self, Listener};
use crate::sandbox::cgroup::{self, CgroupPaths, CgroupStats};
use crate::sandbox::init_proto::{InitEvent, JobMessage};
use crate::sandbox::oci::{Foreground, NO_MESSAGE, OciError, OciRuntime};
use crate::sys::monotonic_ns;

/// After the program is gone, how long to wait for its output pipes to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

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

impl<R: OciRuntime> Supervisor<R> {
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
        if let Some(job) = job {
            // The input file first: the program may read it as soon as the job is in.
            let written = match &plan.input_file {
                Some(text) => super::launch::write_input_file(&teardown.run_dir, text),
                None => Ok(()),
            };
            if let Err(e) = written {
                return (Err(e), teardown);
            }
            if let Err(e) = hand_over(l.job.take(), job).await {
                return (Err(e), teardown);
            }
        }
        // Fed beside the run (a program may write before it reads, or never read); aborted
        // when the run is over, which closes the pipe if it is still open.
        let stdin_task = l.stdin.take().map(|fd| tokio::spawn(feed_stdin(fd, plan.stdin.clone())));
        let _stdin_guard = AbortOnDrop(stdin_task);

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
                        // And the output directory the container holds (only its entrypoint
                        // is left in it, waiting).
                        if let Some(read_out) = plan.read_out.clone() {
                            let pid = init_pid(&teardown.run_dir);
                            let _ = tokio::task::spawn_blocking(move || read_out.read(pid)).await;
                        }
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
                                let e = self.oci.launch_failure(&plan.id, &teardown.fg, Some(status));
                                return (Err(with_stderr(e, &drain(err_task).await).into()), teardown);
                            }
                        }
                        break;
                    }
                },
                status = teardown.fg.child.wait(), if !teardown.runtime_exited => {
                    teardown.runtime_exited = true;
                    if events.is_empty() {
                        tracing::debug!("{} exited before the program started: {status:?}", self.oci.name());
                        let e = self.oci.launch_failure(&plan.id, &teardown.fg, status.ok());
                        return (Err(with_stderr(e, &drain(err_task).await).into()), teardown);
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

/// Writes the program's stdin and closes it: the program reads these bytes, then end of file.
/// A program that exits (or closes its stdin) early ends the write with EPIPE, which is no
/// error of the run.
async fn feed_stdin(fd: OwnedFd, bytes: Arc<[u8]>) {
    let Ok(mut tx) = pipe::Sender::from_owned_fd(fd) else { return };
    if !bytes.is_empty() {
        let _ = tx.write_all(&bytes).await;
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
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

/// A launch that failed without the runtime's own words, with the last lines the container's
/// stderr carried: before the program starts only the entrypoint and the runtime write there
/// (an entrypoint that gives up says why on it, and the runtime then exits with its status).
fn with_stderr(e: OciError, stderr: &Captured) -> OciError {
    const MAX: usize = 400;
    match e {
        OciError::Command { runtime, op, id, message } if message.starts_with(NO_MESSAGE) => {
            let text = String::from_utf8_lossy(&stderr.bytes);
            let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            if lines.is_empty() {
                return OciError::Command { runtime, op, id, message };
            }
            let mut said = lines[lines.len().saturating_sub(3)..].join(" | ");
            if let Some((cut, _)) = said.char_indices().nth(MAX) {
                said.truncate(cut);
                said.push('…');
            }
            OciError::Command { runtime, op, id, message: format!("{message}; the container's stderr: {said}") }
        }
        other => other,
    }
}

async fn drain(task: tokio::task::JoinHandle<Captured>) -> Captured {
    let empty = || Captured { bytes: Vec::new(), total: 0, truncated: false };
    match tokio::time::timeout(DRAIN_TIMEOUT, task).await {
        Ok(Ok(c)) => c,
        _ => empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::supervisor::launch::pipe_pair;
    use std::fs::File;

    #[test]
    fn a_silent_launch_failure_gets_the_containers_last_stderr_lines() {
        let e = |message: &str| OciError::Command {
            runtime: "runc".into(),
            op: "run",
            id: "c1".into(),
            message: message.into(),
        };
        let said = Captured {
            bytes: b"one\n\ntwo\nthree\nignite-init: cannot read the job\n".to_vec(),
            total: 0,
            truncated: false,
        };
        assert_eq!(
            with_stderr(e("failed without a message: it exited with status 1"), &said).to_string(),
            "runc run c1: failed without a message: it exited with status 1; the container's stderr: two | three | ignite-init: cannot read the job"
        );
        let nothing = Captured { bytes: Vec::new(), total: 0, truncated: false };
        assert_eq!(
            with_stderr(e("failed without a message"), &nothing).to_string(),
            "runc run c1: failed without a message"
        );
        // The runtime's own words stay as they are.
        assert_eq!(with_stderr(e("no such file"), &said).to_string(), "runc run c1: no such file");
        let long = Captured { bytes: vec![b'x'; 1000], total: 0, truncated: false };
        assert!(with_stderr(e("failed without a message"), &long).to_string().ends_with("xx…"));
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
}
