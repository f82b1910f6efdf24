//! `ignite run`, `ignite exec` and `ignite install`: the flags → an engine [`Request`], the
//! program's output streamed as it comes, the report printed; SIGINT/SIGTERM cancel the run and
//! end it with 128+N.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio_util::sync::CancellationToken;

use ignite::data::program_io::MAX_STDIN_BYTES;
use ignite::data::runtime::Registry;
use ignite::data::service::{self, Overrides};
use ignite::engine::{
    Input, LockCheck, Modules, NoProgress, OutputSink, PolicyChoice, PreflightGate, Program, Progress, Request,
    RunError, StderrProgress, Stream,
};

use super::args::RunArgs;
use super::settings::{engine, tokio_rt};
use super::{GlobalArgs, error_text, preflight, runtimes_dirs};

fn parse_env(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--env {p:?}: expected KEY=VALUE"))
        })
        .collect()
}

/// Streams the program's output to ours as it arrives.
struct LiveOutput;

impl OutputSink for LiveOutput {
    fn chunk(&self, stream: Stream, bytes: &[u8]) {
        // A closed terminal or pipe must not stop the run; the report still has the output.
        let _ = match stream {
            Stream::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(bytes).and_then(|()| o.flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(bytes),
        };
    }
}

pub(super) fn run_service(
    g: &GlobalArgs,
    dir: &Path,
    required: bool,
    entry: Option<String>,
    a: RunArgs,
) -> anyhow::Result<i32> {
    let overrides = Overrides {
        runtime: a.runtime.clone(),
        entry,
        memory_mb: a.memory,
        timeout_ms: a.timeout,
        cpu_limit: a.cpu,
        env: parse_env(&a.env)?,
    };
    let engine = engine(g)?;
    let progress: Arc<dyn Progress> = if a.quiet { Arc::new(NoProgress) } else { Arc::new(StderrProgress::new()) };
    let mut req = Request::new(Program::Dir { dir: dir.to_path_buf(), required, overrides, pass_env: g.passed_env()? });
    req.input = match a.input.as_deref() {
        None => Input::Json("{}".to_string()),
        Some(s) => match s.strip_prefix('@') {
            Some(file) => Input::File(PathBuf::from(file)),
            None => Input::Json(s.to_string()),
        },
    };
    req.io.args = a.args.clone();
    req.io.outputs = a.out.is_some();
    if !a.print_spec
        && let Some(bytes) = program_stdin(a.stdin.as_deref())?
    {
        req.io.stdin = bytes.into();
    }
    req.policy = PolicyChoice::Service { file: a.policy.clone() };
    req.audit = a.audit;
    req.output_limit = a.output_limit.map(|bytes| (bytes, "--output-limit"));
    req.lock = if a.locked { LockCheck::Required } else { LockCheck::Off };
    req.progress = progress;
    if a.print_spec {
        let spec = engine.spec(req)?;
        let text = serde_json::to_string_pretty(&spec).context("failed to serialise the spec")?;
        println!("{text}");
        return Ok(0);
    }
    req.preflight = if a.skip_preflight { PreflightGate::Skip } else { PreflightGate::Enforce };
    if !a.quiet {
        req.on_preflight = Some(Box::new(preflight::print_warnings));
    }
    if !a.json {
        req.sink = Some(Arc::new(LiveOutput));
    }
    let (outcome, signal) = with_signals(|cancel| engine.run(req, cancel))?;
    let outcome = match outcome {
        Ok(o) => o,
        Err(RunError::Preflight { full }) => {
            preflight::write_report_file(&full, a.report.as_deref())?;
            return Err(RunError::Preflight { full }.into());
        }
        Err(e) => return interrupted_or(e, signal),
    };
    let mut report = outcome.report;
    let mut full = outcome.full;
    if let Some(dir) = &a.out {
        write_outputs(&mut report, dir)?;
        if let Some(exec) = full.execution.as_mut() {
            exec.files = report.files.clone();
        }
    }
    preflight::write_report_file(&full, a.report.as_deref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).context("failed to serialise the report")?);
    } else if !a.quiet {
        eprintln!("{}", report.summary());
    }
    Ok(match signal {
        Some(sig) => 128 + sig,
        None => report.cli_exit_code(),
    })
}

/// The program's stdin: `--stdin FILE` (`-`: ours), or ours when it is a regular file (never a
/// terminal or a pipe we merely inherited: reading those could block, or take input that was
/// not meant for the program). `None`: empty.
fn program_stdin(flag: Option<&Path>) -> anyhow::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let cap = MAX_STDIN_BYTES as u64;
    let too_large =
        |what: &str| anyhow!("{what} is larger than {MAX_STDIN_BYTES} bytes, the most a program's stdin may be given");
    let read = |mut from: Box<dyn Read>, what: &str| -> anyhow::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        from.by_ref().take(cap + 1).read_to_end(&mut bytes).with_context(|| format!("failed to read {what}"))?;
        if bytes.len() as u64 > cap {
            return Err(too_large(what));
        }
        Ok(bytes)
    };
    match flag {
        Some(p) if p == Path::new("-") => {
            Ok(Some(read(Box::new(std::io::stdin().lock()), "--stdin - (ignite's stdin)")?))
        }
        Some(p) => {
            let what = format!("--stdin {}", p.display());
            let file = std::fs::File::open(p).with_context(|| format!("{what}: failed to open"))?;
            if file.metadata().with_context(|| format!("{what}: failed to inspect"))?.is_dir() {
                return Err(anyhow!("{what}: is a directory; give a file, or - for ignite's own stdin"));
            }
            Ok(Some(read(Box::new(file), &what)?))
        }
        None => {
            // A duplicate of fd 0, only to look at what it is (and read it if it is a file).
            let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() else { return Ok(None) };
            let mut file = std::fs::File::from(fd);
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                return Ok(None);
            }
            // Read from where the file stands without moving it: the offset is shared with
            // whoever gave us the file, e.g. a `while read …; do ignite run …; done < list`
            // loop, whose next line must still be there when we are done.
            let at = std::io::Seek::stream_position(&mut file).context("failed to read ignite's stdin")?;
            Ok(Some(read(Box::new(ReadAt { file, at }), "ignite's stdin (a regular file)")?))
        }
    }
}

/// Reads a file from an offset on, with `pread`: the file's own offset does not move.
struct ReadAt {
    file: std::fs::File,
    at: u64,
}

impl std::io::Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(&self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Writes the files of the report's output directory into `dir` (created if missing) and drops
/// their content from the report. Never follows a link and never overwrites: each file and
/// directory is created new, beneath `dir`; a path that exists is an error naming it.
fn write_outputs(report: &mut ignite::data::report::Report, dir: &Path) -> anyhow::Result<()> {
    use base64::Engine as _;
    use std::os::unix::fs::OpenOptionsExt;
    let Some(files) = report.files.as_mut() else { return Ok(()) };
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}: failed to create it", dir.display()))?;
    for (rel, file) in files.iter_mut() {
        let Some(content) = file.content.take() else { continue };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content)
            .with_context(|| format!("--out: {rel}: content is not base64"))?;
        // The names come from the sandbox: only plain relative components.
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
            return Err(anyhow!("--out: refusing the output path {rel:?}"));
        }
        let mut at = dir.to_path_buf();
        for part in &parts[..parts.len() - 1] {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(anyhow!("--out: {} exists and is not a directory", at.display())),
                Err(_) => {
                    std::fs::create_dir(&at).with_context(|| format!("--out: failed to create {}", at.display()))?
                }
            }
        }
        let path = dir.join(rel);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| {
                format!("--out: failed to create {} (an existing file is never overwritten)", path.display())
            })?;
        f.write_all(&bytes).with_context(|| format!("--out: failed to write {}", path.display()))?;
    }
    Ok(())
}

/// Runs `work` to completion with SIGINT/SIGTERM wired to its cancellation token; returns its
/// output and the signal that cut it short, if any.
pub(super) fn with_signals<F: std::future::Future>(
    work: impl FnOnce(CancellationToken) -> F,
) -> anyhow::Result<(F::Output, Option<i32>)> {
    let rt = tokio_rt()?;
    let cancel = CancellationToken::new();
    Ok(rt.block_on(async {
        let watcher = tokio::spawn(watch_signals(cancel.clone()));
        let output = work(cancel.clone()).await;
        let signal = if cancel.is_cancelled() { watcher.await.ok().flatten() } else { None };
        (output, signal)
    }))
}

/// An error from interrupted work (e.g. killed while installing dependencies) still ends with
/// the documented 128+N, after saying what was cut short; any other error is ignite's own.
fn interrupted_or(e: impl Into<anyhow::Error>, signal: Option<i32>) -> anyhow::Result<i32> {
    let e = e.into();
    match signal {
        Some(sig) => {
            eprintln!("ignite: {}", error_text(&e));
            Ok(128 + sig)
        }
        None => Err(e),
    }
}

/// `ignite install DIR`: only the dependency step.
pub(super) fn install_service(
    g: &GlobalArgs,
    dir: &Path,
    json: bool,
    quiet: bool,
    export: Option<&Path>,
    import: Option<&Path>,
) -> anyhow::Result<i32> {
    let svc = service::load(dir, false, &Overrides::default(), &g.passed_env()?)?;
    if let Some(file) = import {
        // No sandbox and no network: the tree comes from the archive, verified.
        let registry = Registry::load(&runtimes_dirs(g))?;
        let imported = ignite::engine::import_deps(&svc, &registry, &g.cache_dir, file)?;
        if json {
            let v = serde_json::json!({ "service": svc.name, "modules": "installed", "imported": imported });
            println!("{v}");
        } else if !quiet {
            eprintln!(
                "ignite: {}: {} package{} {} from {} ({}, key {})",
                svc.name,
                imported.packages,
                if imported.packages == 1 { "" } else { "s" },
                if imported.unchanged == Some(true) { "already cached; nothing imported" } else { "imported" },
                file.display(),
                imported.digest,
                imported.key.get(..12).unwrap_or(&imported.key),
            );
        }
        return Ok(0);
    }
    let engine = engine(g)?;
    let progress: Box<dyn Progress> = if quiet { Box::new(NoProgress) } else { Box::new(StderrProgress::new()) };
    let (result, signal) = with_signals(|cancel| engine.install(&svc, progress.as_ref(), cancel))?;
    let (modules, report) = match result {
        Ok(r) => r,
        Err(e) => return interrupted_or(e, signal),
    };
    let kind = match &modules {
        Modules::None => "none",
        Modules::Vendored(_) => "vendored",
        Modules::Install(_) => "installed",
    };
    let exported = match export {
        Some(out) => Some(ignite::engine::export_deps(&svc, engine.registry(), &g.cache_dir, out)?),
        None => None,
    };
    if json {
        let mut v = serde_json::json!({ "service": svc.name, "modules": kind, "install": report });
        if let Some(exported) = &exported {
            v["exported"] = serde_json::to_value(exported)?;
        }
        println!("{v}");
    } else if !quiet {
        let line = match (&modules, &report) {
            (_, Some(r)) => format!(
                "{} package{} ready ({}{}, {})",
                r.packages,
                if r.packages == 1 { "" } else { "s" },
                if r.cached { "cached" } else { "installed" },
                r.lockfile.as_ref().map(|l| format!(" from {l}")).unwrap_or_default(),
                r.installer
            ),
            (Modules::Vendored(p), None) => {
                format!("uses its own {} as it is; nothing to install", p.display())
            }
            _ => "no dependencies to install".to_string(),
        };
        eprintln!("ignite: {}: {line}", svc.name);
        if let Some(e) = &exported {
            eprintln!("ignite: {}: wrote {} ({}, {})", svc.name, e.archive.display(), e.digest, megabytes(e.bytes));
        }
    }
    Ok(0)
}

/// "12.3 MB" (decimal, as the download progress prints).
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Cancels the run on SIGINT or SIGTERM; returns the signal number received.
async fn watch_signals(cancel: CancellationToken) -> Option<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return None;
    };
    let sig = tokio::select! {
        _ = int.recv() => 2,
        _ = term.recv() => 15,
        _ = cancel.cancelled() => return None,
    };
    cancel.cancel();
    Some(sig)
}
