//! One timed benchmark run. A sandboxed run drives the OCI runtime step by step — create,
//! start, wait for the entrypoint's exit report (fd 3; fd 4 is the release pipe, as in
//! [`crate::engine::supervisor`]), delete — so that each step has its own time; a bare run starts the
//! runtime binary from the unpacked rootfs as a plain host process. Both check that the
//! program printed what it should and exited 0: a level that broke the program is an error,
//! not a fast sample.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;

use super::levels::{self, Level};
use crate::data::runtime::APP_DIR;
use crate::engine::supervisor::StateDir;
use crate::engine::{Engine, EngineError, Job};
use crate::fsutil::owned;
use crate::fsutil::{At, IoError};
use crate::sandbox::audit::{AuditError, Listener};
use crate::sandbox::init_proto::InitEvent;
use crate::sandbox::oci::{CliRuntime, CreateIo, OciError, OciRuntime};
use crate::store::bundle::NoProgress;

/// A run that has not finished by then is stopped and counted as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of each output stream is kept to check the program's answer.
const OUTPUT_CAP: usize = 64 * 1024;
/// After the release, how long the entrypoint gets to exit before the container is forced.
const EXIT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cell cannot run on this build or host (e.g. warm mode without a pool).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("failed to create a pipe: {0}")]
    Pipe(std::io::Error),
    #[error("the program did not finish within {} s", RUN_TIMEOUT.as_secs())]
    Timeout,
    #[error("interrupted")]
    Cancelled,
    #[error("the program {0}")]
    Outcome(String),
    #[error("the spec has no {0}; cannot derive the bare command")]
    NoBare(&'static str),
}

/// Per-phase times of one run, in ms. `start`, `firstOutput` and `exit` count from the moment
/// the program was started (`runc start`, or the spawn of the bare process); `delete` from the
/// exit report to the container being gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTimes {
    /// `Engine::prepare` (resolve, bundle lookup, uid lease, spec build and validation), the
    /// level's reduction and writing config.json.
    pub spec: Option<f64>,
    pub create: Option<f64>,
    pub start: Option<f64>,
    pub first_output: Option<f64>,
    pub exit: Option<f64>,
    pub delete: Option<f64>,
}

/// One run: its total time (everything ignite does for it, first step to last) and phases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub total_ms: f64,
    pub phases: PhaseTimes,
}

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// What a sandboxed run needs from its surroundings.
pub(super) struct Sandboxed<'a> {
    pub engine: &'a Engine,
    pub oci: &'a CliRuntime,
    pub state: &'a StateDir,
    /// Text the program's stdout must contain.
    pub expect: &'a str,
    /// Containers created and not yet known to be deleted; swept once more at the end (a
    /// Ctrl-C at the terminal also reaches a `runc delete` in flight).
    pub live: &'a Mutex<BTreeSet<String>>,
}

/// One sandboxed run at `level` (not `Bare`). Whatever happens, the container, its cgroup, its
/// run directory and its uid lease are gone when this returns.
pub(super) async fn run_sandboxed(
    ctx: &Sandboxed<'_>,
    job: &Job,
    level: Level,
    cancel: &CancellationToken,
) -> Result<Sample, RunError> {
    let t0 = Instant::now();
    // Held to the end: it owns the run's uid lease (and a staged copy, if any).
    let prepared = ctx.engine.runner().prepare(job, &NoProgress)?;
    let spec = levels::reduce(ctx.engine.runner().preview_spec(&prepared, job)?, level);
    let id = prepared.id.clone();
    let (run_dir, lock) = owned::create(&ctx.state.runs(), &id, 0o755, |tmp| {
        let path = tmp.join("config.json");
        spec.save(&path).map_err(std::io::Error::other).at("write", &path)
    })?;
    let mut deleted = false;
    let result = drive(ctx, &id, &run_dir, prepared.audit.as_ref(), t0, cancel, &mut deleted).await;
    if !deleted {
        remove_container(ctx, &id).await;
    }
    drop(lock);
    let _ = std::fs::remove_dir_all(&run_dir);
    let _ = std::fs::remove_file(ctx.state.log_path(&id));
    drop(prepared);
    result
}

/// `delete --force`, tolerating a container that is already gone.
pub(super) async fn remove_container(ctx: &Sandboxed<'_>, id: &str) {
    match ctx.oci.delete(id, true).await {
        Ok(()) | Err(OciError::NotFound { .. }) => {
            ctx.live.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        }
        Err(e) => tracing::warn!("failed to delete container {id}: {e}"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    ctx: &Sandboxed<'_>,
    id: &str,
    run_dir: &Path,
    audit: Option<&crate::sandbox::audit::AuditPlan>,
    t0: Instant,
    cancel: &CancellationToken,
    deleted: &mut bool,
) -> Result<Sample, RunError> {
    let (out_r, out_w) = pipe_pair()?;
    let (err_r, err_w) = pipe_pair()?;
    let (rep_r, rep_w) = pipe_pair()?;
    let (rel_r, rel_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunError::Pipe(e.into()))?;
    // Listening before the runtime starts: it connects as soon as the filter is loaded.
    let listener = audit.map(|a| Listener::start(a, Instant::now())).transpose()?;
    let out_task = tokio::spawn(collect(out_r));
    let err_task = tokio::spawn(collect(err_r));
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(crate::engine::supervisor::read_events(rep_r, ev_tx));

    let spec_done = Instant::now();
    ctx.live.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string());
    // Not raced against the cancellation: an abandoned `create` would go on without us.
    let io = CreateIo { stdout: out_w, stderr: err_w, extra_fds: vec![rep_w, rel_r] };
    ctx.oci.create(id, run_dir, io).await?;
    let created = Instant::now();
    if cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    ctx.oci.start(id).await?;
    let started = Instant::now();

    let deadline = tokio::time::sleep(RUN_TIMEOUT);
    tokio::pin!(deadline);
    let mut exit = None;
    let mut spawn_failed = None;
    loop {
        tokio::select! {
            ev = ev_rx.recv() => match ev {
                Some(InitEvent::Pins { pins }) => {
                    if let Some(l) = &listener {
                        l.give_pins(pins);
                    }
                }
                Some(InitEvent::Exit { exit_code, signal, .. }) => {
                    exit = Some((Instant::now(), exit_code, signal));
                    break;
                }
                Some(InitEvent::SpawnFailed { message }) => spawn_failed = Some(message),
                Some(InitEvent::Exec { .. } | InitEvent::Ready) => {}
                None => break,
            },
            _ = &mut deadline => return Err(RunError::Timeout),
            _ = cancel.cancelled() => return Err(RunError::Cancelled),
        }
    }
    // The entrypoint exits once the release pipe closes (its report pipe then ends); a plain
    // delete of the stopped container follows, as `runc run` does it. `--force` only if it
    // is somehow still running (force waits for the kill it sends).
    drop(rel_w);
    let delete_from = exit.map_or_else(Instant::now, |e| e.0);
    let _ = tokio::time::timeout(EXIT_WAIT, async { while ev_rx.recv().await.is_some() {} }).await;
    match ctx.oci.delete(id, false).await {
        Ok(()) => {
            ctx.live.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        }
        Err(_) => remove_container(ctx, id).await,
    }
    let gone = Instant::now();
    *deleted = true;
    if let Some(l) = listener {
        let collected = l.finish();
        if let Some(e) = collected.error {
            tracing::warn!("audit listener: {e}");
        }
    }
    let (first_output, stdout) = finish(out_task).await;
    let (_, stderr) = finish(err_task).await;
    let Some((exited, exit_code, signal)) = exit else {
        return Err(RunError::Outcome(
            spawn_failed.unwrap_or_else(|| "ended without an exit report from the entrypoint".into()),
        ));
    };
    check_outcome(exit_code, signal, &stdout, &stderr, ctx.expect)?;
    Ok(Sample {
        total_ms: ms(t0, gone),
        phases: PhaseTimes {
            spec: Some(ms(t0, spec_done)),
            create: Some(ms(spec_done, created)),
            start: Some(ms(created, started)),
            // Seen by ignite's reader, which may run after the exit report arrived: the byte
            // was written before the program exited, so the exit bounds it.
            first_output: first_output.map(|t| ms(created, t.min(exited))),
            exit: Some(ms(created, exited)),
            delete: Some(ms(delete_from, gone)),
        },
    })
}

fn check_outcome(
    exit_code: Option<i32>,
    signal: Option<i32>,
    stdout: &[u8],
    stderr: &[u8],
    expect: &str,
) -> Result<(), RunError> {
    let out = String::from_utf8_lossy(stdout);
    if exit_code == Some(0) && out.contains(expect) {
        return Ok(());
    }
    let err = String::from_utf8_lossy(stderr);
    let tail: String = err.trim().chars().rev().take(300).collect::<Vec<_>>().into_iter().rev().collect();
    let how = match (exit_code, signal) {
        (Some(0), _) => format!("exited 0 without printing {expect:?} (stdout: {:?})", out.trim()),
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        (None, None) => "ended without an exit status".to_string(),
    };
    Err(RunError::Outcome(if tail.is_empty() { how } else { format!("{how}; stderr: {tail}") }))
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

pub(super) fn bare_command(spec: &Spec, app_dir: &Path) -> Result<BareCommand, RunError> {
    let root = spec.root().as_ref().ok_or(RunError::NoBare("root"))?.path().clone();
    let process = spec.process().as_ref().ok_or(RunError::NoBare("process"))?;
    let args = process.args().as_ref().ok_or(RunError::NoBare("process.args"))?;
    let sep = args.iter().position(|a| a == "--").ok_or(RunError::NoBare("entrypoint `--`"))?;
    let (program, rest) = args[sep + 1..].split_first().ok_or(RunError::NoBare("program"))?;
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
    let mut child = c.spawn().at("start", &cmd.program)?;
    let spawned = Instant::now();
    let out_task = child.stdout.take().map(|o| tokio::spawn(collect(o)));
    let err_task = child.stderr.take().map(|e| tokio::spawn(collect(e)));
    let status = tokio::select! {
        s = child.wait() => s.at("wait for", &cmd.program)?,
        _ = tokio::time::sleep(RUN_TIMEOUT) => return Err(RunError::Timeout),
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
    check_outcome(status.code(), status.signal(), &stdout, &stderr, expect)?;
    Ok(Sample {
        total_ms: ms(t0, exited),
        phases: PhaseTimes {
            start: Some(ms(t0, spawned)),
            // As for sandboxed runs: the reader may be scheduled after the exit was seen.
            first_output: first_output.map(|t| ms(t0, t.min(exited))),
            exit: Some(ms(t0, exited)),
            ..PhaseTimes::default()
        },
    })
}

fn pipe_pair() -> Result<(pipe::Receiver, OwnedFd), RunError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunError::Pipe(e.into()))?;
    let r = pipe::Receiver::from_owned_fd(r).map_err(RunError::Pipe)?;
    Ok((r, w))
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

    #[test]
    fn outcome_needs_exit_zero_and_the_answer() {
        assert!(check_outcome(Some(0), None, b"hello\n", b"", "hello").is_ok());
        let e = check_outcome(Some(0), None, b"", b"", "hello").unwrap_err().to_string();
        assert!(e.contains("without printing"), "{e}");
        let e = check_outcome(Some(1), None, b"", b"boom", "hello").unwrap_err().to_string();
        assert!(e.contains("code 1") && e.contains("boom"), "{e}");
        let e = check_outcome(None, Some(9), b"", b"", "hello").unwrap_err().to_string();
        assert!(e.contains("signal 9"), "{e}");
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
        let bad = BareCommand { args: vec!["-c".into(), "exit 3".into()], ..cmd };
        assert!(matches!(run_bare(&bad, "hello", &CancellationToken::new()).await, Err(RunError::Outcome(_))));
    }
}
