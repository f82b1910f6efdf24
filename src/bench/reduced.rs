//! The reduced isolation levels' runs — the only part of the benchmark below the engine's
//! façade, because their spec is a real run's spec with pieces taken away ([`levels::reduce`]),
//! which no request can ask for. A reduced run is prepared as a real one ([`Runner::prepare`]),
//! its spec reduced, and handed to the runner's supervisor ([`Runner::supervise`]), which every
//! run has — one lifecycle, so that the levels differ only in what their spec takes away and
//! their phases are measured alike.
//! A bare run starts the runtime binary from the unpacked rootfs as a plain host process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use super::levels::{self, Level};
use super::sample::{self, FirstOutput, PhaseTimes, RunError, Sample, ms};
use crate::data::policy::{self, PolicyError};
use crate::data::runtime::APP_DIR;
use crate::data::service::Service;
use crate::engine::runner::{Job, Runner};
use crate::engine::supervisor::RunPlan;
use crate::engine::{DEFAULT_GRACE, Engine, EngineError, NoProgress};
use crate::fsutil::{At, IoError};

/// A bare run that has not finished by then is stopped and counted as failed (a sandboxed run
/// has the service's time limit).
pub(super) const BARE_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of each output stream of a bare run is kept to check the program's answer.
const OUTPUT_CAP: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReducedError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("the spec has no {0}; cannot derive the bare command")]
    NoBare(&'static str),
}

/// Runs at the reduced levels with one OCI runtime: the runner below that runtime's engine.
pub(super) struct Reduced {
    runner: Arc<Runner>,
}

impl Reduced {
    pub(super) fn new(engine: &Engine) -> Reduced {
        Reduced { runner: engine.runner().clone() }
    }

    /// One run at `level` (`Namespaces` or `Cgroups`). Whatever happens, the container, its
    /// cgroup, its run directory and its uid lease are gone when this returns (the supervisor
    /// sees to the first three, the prepared run holds the last).
    pub(super) async fn run(
        &self,
        svc: &Service,
        level: Level,
        expect: &str,
        cancel: &CancellationToken,
    ) -> Result<Sample, RunError> {
        let began = Instant::now();
        let job = reduced_job(svc)?;
        // Held to the end: it owns the run's uid lease (and a staged copy, if any).
        let prepared = self.runner.prepare(&job, &NoProgress).map_err(ReducedError::from)?;
        let spec = levels::reduce(self.runner.preview_spec(&prepared, &job).map_err(ReducedError::from)?, level);
        let plan = RunPlan {
            id: prepared.id.clone(),
            spec,
            timeout: Duration::from_millis(svc.timeout_ms),
            grace: job.grace,
            output_limit: usize::try_from(job.policy.output_max_bytes).unwrap_or(usize::MAX),
            memory_limit_mb: svc.memory_mb,
            pids_limit: prepared.limits.pids,
            service: svc.name.clone(),
            runtime: prepared.runtime.key(),
            audit: None,
            stdin: Default::default(),
            input_file: None,
            read_out: None,
        };
        let sink = Arc::new(FirstOutput::default());
        let report = self.runner.supervise(plan, Some(sink.clone()), cancel.clone()).await;
        drop(prepared);
        let ended = Instant::now();
        if cancel.is_cancelled() {
            return Err(RunError::Cancelled);
        }
        let report = report.map_err(ReducedError::from)?;
        sample::from_report(&report, began, sink.at(), ended, expect)
    }
}

/// The job of a reduced run: the benchmark's service with its own policy, never audited (the
/// audit level is a full one).
fn reduced_job(svc: &Service) -> Result<Job, ReducedError> {
    Ok(Job {
        service: svc.clone(),
        input: "{}".into(),
        policy: policy::resolve(&svc.dir, None, false)?.policy,
        grace: DEFAULT_GRACE,
        workspace: None,
        audit: false,
        identity: None,
        inline: false,
        session_end: None,
        io: Default::default(),
    })
}

/// The runtime's own command line, from a run's spec: the program after the entrypoint's
/// `--`, its binary taken from the rootfs, `/app` pointing at the host directory, the same
/// environment.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BareCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

pub(super) fn bare_command(spec: &Spec, app_dir: &Path) -> Result<BareCommand, ReducedError> {
    let root = spec.root().as_ref().ok_or(ReducedError::NoBare("root"))?.path().clone();
    let process = spec.process().as_ref().ok_or(ReducedError::NoBare("process"))?;
    let args = process.args().as_ref().ok_or(ReducedError::NoBare("process.args"))?;
    let sep = args.iter().position(|a| a == "--").ok_or(ReducedError::NoBare("entrypoint `--`"))?;
    let (program, rest) = args[sep + 1..].split_first().ok_or(ReducedError::NoBare("program"))?;
    let app = app_dir.to_string_lossy();
    let map = |a: &String| match a.strip_prefix(APP_DIR) {
        Some(tail) if tail.is_empty() || tail.starts_with('/') => format!("{app}{tail}"),
        _ => a.clone(),
    };
    let env = process
        .env()
        .iter()
        .flatten()
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    Ok(BareCommand {
        program: root.join(program.trim_start_matches('/')),
        args: rest.iter().map(map).collect(),
        env,
        cwd: app_dir.to_path_buf(),
    })
}

/// One bare run: the runtime as a plain child of ignite (own process group, killed if the
/// run is abandoned).
pub(super) async fn run_bare(cmd: &BareCommand, expect: &str, cancel: &CancellationToken) -> Result<Sample, RunError> {
    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&cmd.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let t0 = Instant::now();
    let mut child = c.spawn().at("start", &cmd.program).map_err(ReducedError::from)?;
    let spawned = Instant::now();
    let out_task = child.stdout.take().map(|o| tokio::spawn(collect(o)));
    let err_task = child.stderr.take().map(|e| tokio::spawn(collect(e)));
    let status = tokio::select! {
        s = child.wait() => s.at("wait for", &cmd.program).map_err(ReducedError::from)?,
        _ = tokio::time::sleep(BARE_TIMEOUT) => return Err(RunError::Timeout),
        _ = cancel.cancelled() => return Err(RunError::Cancelled),
    };
    let exited = Instant::now();
    let (first_output, stdout) = match out_task {
        Some(t) => finish(t).await,
        None => (None, Vec::new()),
    };
    let stderr = match err_task {
        Some(t) => finish(t).await.1,
        None => Vec::new(),
    };
    use std::os::unix::process::ExitStatusExt;
    let signal = status
        .signal()
        .map(|s| nix::sys::signal::Signal::try_from(s).map_or_else(|_| s.to_string(), |n| n.to_string()));
    sample::check_outcome(status.code(), signal.as_deref(), &stdout, &stderr, expect)?;
    Ok(Sample {
        total_ms: ms(t0, exited),
        phases: PhaseTimes {
            start: Some(ms(t0, spawned)),
            // Like a sandboxed run's `runMs`, which counts from just before the program's fork.
            run: Some(ms(t0, exited)),
            // As for sandboxed runs: the reader may be scheduled after the exit was seen.
            first_output: first_output.map(|t| ms(t0, t.min(exited))),
            exit: Some(ms(t0, exited)),
            ..PhaseTimes::default()
        },
    })
}

/// Reads a stream to EOF: when its first byte arrived, and up to [`OUTPUT_CAP`] bytes of it.
async fn collect(mut rx: impl AsyncRead + Unpin) -> (Option<Instant>, Vec<u8>) {
    let mut first = None;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) | Err(_) => return (first, bytes),
            Ok(n) => {
                first.get_or_insert_with(Instant::now);
                let keep = n.min(OUTPUT_CAP.saturating_sub(bytes.len()));
                bytes.extend_from_slice(&buf[..keep]);
            }
        }
    }
}

async fn finish(task: tokio::task::JoinHandle<(Option<Instant>, Vec<u8>)>) -> (Option<Instant>, Vec<u8>) {
    match tokio::time::timeout(Duration::from_secs(2), task).await {
        Ok(Ok(r)) => r,
        _ => (None, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{ProcessBuilder, RootBuilder};

    #[test]
    fn bare_command_comes_from_the_spec() {
        let mut spec = Spec::default();
        spec.set_root(Some(RootBuilder::default().path("/cache/rootfs/x").build().unwrap()));
        let args = ["/.ignite/init", "--spawn", "none", "--", "/usr/local/bin/bun", "run", "/app/hello.js", "/apple"];
        spec.set_process(Some(
            ProcessBuilder::default()
                .args(args.map(String::from).to_vec())
                .env(vec!["HOME=/tmp".to_string(), "IGNITE_INPUT={\"a\":\"=\"}".to_string()])
                .build()
                .unwrap(),
        ));
        let cmd = bare_command(&spec, Path::new("/srv/hello")).unwrap();
        assert_eq!(cmd.program, Path::new("/cache/rootfs/x/usr/local/bin/bun"));
        assert_eq!(cmd.args, ["run", "/srv/hello/hello.js", "/apple"]);
        assert_eq!(cmd.env[1], ("IGNITE_INPUT".to_string(), "{\"a\":\"=\"}".to_string()));
        assert_eq!(cmd.cwd, Path::new("/srv/hello"));
    }

    #[tokio::test]
    async fn bare_run_times_a_real_process() {
        let cmd = BareCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "echo hello".into()],
            env: vec![],
            cwd: "/".into(),
        };
        let s = run_bare(&cmd, "hello", &CancellationToken::new()).await.unwrap();
        let p = s.phases;
        assert!(p.spec.is_none() && p.create.is_none());
        assert!(p.first_output.unwrap() <= p.exit.unwrap());
        assert!(s.total_ms >= p.exit.unwrap());
        // The process's whole life, spawn included, like a sandboxed run's runMs.
        assert_eq!(p.run, p.exit);
        let bad = BareCommand { args: vec!["-c".into(), "exit 3".into()], ..cmd.clone() };
        assert!(matches!(run_bare(&bad, "hello", &CancellationToken::new()).await, Err(RunError::Outcome(_))));
        let killed = BareCommand { args: vec!["-c".into(), "kill -9 $$".into()], ..cmd };
        let e = run_bare(&killed, "hello", &CancellationToken::new()).await.unwrap_err().to_string();
        assert!(e.contains("signal SIGKILL"), "{e}");
    }
}
