//! Launching a run: the locked run directory, the spec saved for the OCI runtime, the pipes
//! (output, report, release, stdin, a warm sandbox's job), the audit listener, and the one
//! foreground `run` of the runtime; then, for a warm sandbox, waiting until it is ready, or
//! giving it up.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Instant;

use nix::fcntl::Flock;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::state::remove_run_files;
use super::{LAUNCH_ALLOWANCE, Launched, RunPlan, Supervisor, SupervisorError, Teardown};
use crate::fsutil::At;
use crate::sandbox::audit::Listener;
use crate::sandbox::init_proto::{InitEvent, MAX_REPORT_BYTES, parse_events};
use crate::sandbox::oci::{CreateIo, OciRuntime};
use crate::sys::monotonic_ns;

impl<R: OciRuntime> Supervisor<R> {
    /// Creates the run directory (locked) and launches the container: one foreground OCI
    /// runtime process (`run`) creates, starts and finally removes it. With `wait_job` the
    /// spec must be a warm one (`--wait-job`): the entrypoint then waits for its job on
    /// [`crate::sandbox::abi::JOB_FD`]. On error nothing is left behind.
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
            // The run's input directory, which a run's spec mounts read-only (empty unless its
            // input is too large for the variable; a warm sandbox's is filled at handover).
            create_input_dir(&run_dir, plan.input_file.as_deref())?;
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
            // The program's stdin (fd 7 of the entrypoint): written by `drive`, then closed.
            let (in_r, in_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
            let mut extra_fds = vec![rep_w, rel_r, out_w, err_w, in_r];
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
            Ok((out_r, err_r, rel_w, in_w, job, listener, fg, ev_rx, launch, launch_ns))
        })();
        match started {
            Ok((out_r, err_r, rel_w, in_w, job, listener, fg, ev_rx, launch, launch_ns)) => Ok(Launched {
                plan,
                run_dir,
                lock,
                fg,
                out_r,
                err_r,
                ev_rx,
                release: Some(rel_w),
                stdin: Some(in_w),
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
            status = l.fg.child.wait() => Err(self.oci.launch_failure(&l.plan.id, &l.fg, status.ok()).into()),
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
        l.stdin.take();
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
}

/// Creates the run directory's input directory, with the input file in it when there is one.
fn create_input_dir(run_dir: &std::path::Path, input: Option<&str>) -> Result<(), SupervisorError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = run_dir.join(super::INPUT_SUBDIR);
    std::fs::DirBuilder::new().mode(0o755).create(&dir).at("create", &dir)?;
    if let Some(text) = input {
        write_input_file(run_dir, text)?;
    }
    Ok(())
}

/// Writes the input file into a run's input directory: a new file (never through a link),
/// readable by the sandbox's user, which does not own it.
pub(super) fn write_input_file(run_dir: &std::path::Path, text: &str) -> Result<(), SupervisorError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = run_dir.join(super::INPUT_SUBDIR).join(crate::sandbox::abi::INPUT_FILE_NAME);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .at("create", &path)?;
    f.write_all(text.as_bytes()).at("write", &path)?;
    Ok(())
}

pub(super) fn pipe_pair() -> Result<(pipe::Receiver, OwnedFd), SupervisorError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SupervisorError::Pipe)?;
    let r = pipe::Receiver::from_owned_fd(r)
        .map_err(|e| SupervisorError::Pipe(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
    Ok((r, w))
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
