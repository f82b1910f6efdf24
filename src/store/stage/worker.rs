//! Where type stripping runs: in this process (tests), or in a child process of the ignite
//! binary that drops to the sandbox user and runs under CPU and memory limits before it parses
//! anything.
//!
//! The parser is recursive: a hostile file nested deeply enough overflows any stack, and a stack
//! overflow aborts the whole process — which for a long-lived ignite (a server) would take every
//! other run down with it. In a child, it costs one failed staging with a clear error. The
//! child also never holds root while it reads untrusted source.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::strip::{self, Diagnostic};

/// The hidden subcommand of the `ignite` binary that serves one strip request on stdin/stdout.
pub const WORKER_COMMAND: &str = "__strip-types";

/// Stack of the thread that parses: deep enough for any hand- or machine-written code, and the
/// bound beyond which a file is reported as too deeply nested.
const PARSER_STACK: usize = 256 * 1024 * 1024;
/// CPU seconds the child may use (the kernel kills it beyond): strips of the largest allowed
/// directory take well under this.
const WORKER_CPU_SECONDS: u64 = 120;
/// Address space of the child: bounds what a pathological file can make the parser allocate.
const WORKER_ADDRESS_SPACE: u64 = 8 * 1024 * 1024 * 1024;

/// How to run the stripper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stripper {
    /// In the calling process (unit tests; a hostile file can crash the caller).
    InProcess,
    /// In a child process: `exe __strip-types`, with `exe` an ignite binary (the CLI passes
    /// `/proc/self/exe`, which is always the running binary even if the file was replaced).
    Subprocess { exe: PathBuf },
}

/// One TypeScript file to strip.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// Path relative to the service directory (decides `.mts`/`.cts` semantics).
    pub name: String,
    pub text: String,
}

/// How stripping a set of files ended short of success.
#[derive(Debug)]
pub enum Failure {
    /// File `index` does not parse or uses syntax that cannot be erased.
    Rejected { index: usize, diagnostics: Vec<Diagnostic> },
    /// The stripper died while working on file `index` (if known).
    Crashed { index: Option<usize>, detail: String },
}

/// What the child writes per file: one JSON line each, in request order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    Ok(String),
    Err(Vec<Diagnostic>),
}

impl Stripper {
    /// Strips every file, in order; stops at the first file that fails.
    pub fn strip_all(&self, sources: &[Source]) -> Result<Vec<String>, Failure> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Stripper::InProcess => strip_in_process(sources),
            Stripper::Subprocess { exe } => strip_in_child(exe, sources),
        }
    }
}

fn strip_in_process(sources: &[Source]) -> Result<Vec<String>, Failure> {
    let mut out = Vec::with_capacity(sources.len());
    for (index, source) in sources.iter().enumerate() {
        let code =
            strip::strip(&source.name, &source.text).map_err(|diagnostics| Failure::Rejected { index, diagnostics })?;
        out.push(code);
    }
    Ok(out)
}

fn strip_in_child(exe: &PathBuf, sources: &[Source]) -> Result<Vec<String>, Failure> {
    let crashed = |index, detail: String| Failure::Crashed { index, detail };
    let request =
        serde_json::to_vec(sources).map_err(|e| crashed(None, format!("could not be given its request: {e}")))?;
    let mut child = Command::new(exe)
        .arg(WORKER_COMMAND)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| crashed(None, format!("could not be started ({} {WORKER_COMMAND}: {e})", exe.display())))?;
    // The child reads its whole request before it writes anything, so writing first and then
    // reading cannot deadlock. A child that died early shows up in its exit status below.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&request);
    }
    let output = child.wait_with_output().map_err(|e| crashed(None, format!("could not be waited for: {e}")))?;

    let mut out = Vec::with_capacity(sources.len());
    for line in output.stdout.lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Ok(code)) => out.push(code),
            Ok(Reply::Err(diagnostics)) => return Err(Failure::Rejected { index: out.len(), diagnostics }),
            Err(_) => break,
        }
    }
    if out.len() == sources.len() && output.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let status = describe_status(&output.status);
    let index = (out.len() < sources.len()).then_some(out.len());
    Err(crashed(index, if last.is_empty() { status } else { format!("{status}: {last}") }))
}

fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("unknown signal");
            let hint = match sig {
                libc::SIGXCPU | libc::SIGKILL => " (CPU time limit)",
                libc::SIGABRT | libc::SIGSEGV => " (too deeply nested, or out of memory)",
                _ => "",
            };
            format!("was killed by {name}{hint}")
        }
        (Some(code), None) => format!("exited with status {code}"),
        (None, None) => "ended abnormally".to_string(),
    }
}

/// The child side: drop privileges, limit resources, read the request from stdin, strip each
/// file on a large stack, write one reply line per file. Returns the process exit code.
pub fn serve() -> i32 {
    if let Err(e) = confine() {
        eprintln!("ignite {WORKER_COMMAND}: failed to confine the stripper: {e}");
        return 125;
    }
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut request) {
        eprintln!("ignite {WORKER_COMMAND}: failed to read the request: {e}");
        return 125;
    }
    let sources: Vec<Source> = match serde_json::from_slice(&request) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ignite {WORKER_COMMAND}: bad request: {e}");
            return 125;
        }
    };
    drop(request);
    let worker = std::thread::Builder::new().name("strip".into()).stack_size(PARSER_STACK).spawn(move || {
        let mut stdout = std::io::stdout().lock();
        for source in &sources {
            let reply = match strip::strip(&source.name, &source.text) {
                Ok(code) => Reply::Ok(code),
                Err(diags) => Reply::Err(diags),
            };
            let stop = matches!(reply, Reply::Err(_));
            let written = serde_json::to_writer(&mut stdout, &reply)
                .map_err(std::io::Error::other)
                .and_then(|()| stdout.write_all(b"\n"))
                .and_then(|()| stdout.flush());
            if written.is_err() {
                return 125;
            }
            if stop {
                break;
            }
        }
        0
    });
    match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => 101,
        Err(e) => {
            eprintln!("ignite {WORKER_COMMAND}: failed to start the parser thread: {e}");
            125
        }
    }
}

/// Runs as the sandbox user when started as root, with CPU, memory and core-dump limits.
fn confine() -> nix::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    use nix::unistd::{Gid, Uid, geteuid, setgid, setgroups, setuid};
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    setrlimit(Resource::RLIMIT_CPU, WORKER_CPU_SECONDS, WORKER_CPU_SECONDS)?;
    setrlimit(Resource::RLIMIT_AS, WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE)?;
    if geteuid().is_root() {
        setgroups(&[])?;
        setgid(Gid::from_raw(crate::sandbox::spec::NOBODY_GID))?;
        setuid(Uid::from_raw(crate::sandbox::spec::NOBODY_UID))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_stops_at_the_first_rejected_file() {
        let sources = vec![
            Source { name: "a.ts".into(), text: "let a: number = 1;\n".into() },
            Source { name: "b.ts".into(), text: "enum E { A }\n".into() },
            Source { name: "c.ts".into(), text: "let c = 1;\n".into() },
        ];
        match Stripper::InProcess.strip_all(&sources) {
            Err(Failure::Rejected { index: 1, diagnostics }) => assert!(diagnostics[0].message.contains("enum")),
            other => panic!("expected b.ts rejected, got {other:?}"),
        }
        let ok = Stripper::InProcess.strip_all(&sources[..1]).expect("strip");
        assert_eq!(ok, ["let a         = 1;\n"]);
    }

    #[test]
    fn a_missing_worker_binary_is_a_clear_error() {
        let stripper = Stripper::Subprocess { exe: "/nonexistent/ignite".into() };
        let sources = vec![Source { name: "a.ts".into(), text: "let a = 1;\n".into() }];
        match stripper.strip_all(&sources) {
            Err(Failure::Crashed { index: None, detail }) => {
                assert!(detail.contains("/nonexistent/ignite"), "{detail}")
            }
            other => panic!("expected a start failure, got {other:?}"),
        }
    }

    #[test]
    fn a_worker_that_dies_is_reported_at_the_file_in_progress() {
        // A script that answers for the first file and then aborts stands in for a crashing stripper.
        let t = tempfile::tempdir().expect("tempdir");
        let exe = t.path().join("crash");
        std::fs::write(&exe, "#!/bin/sh\necho '{\"ok\":\"1\"}'\nkill -ABRT $$\n").expect("write");
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let sources =
            vec![Source { name: "a.ts".into(), text: "1".into() }, Source { name: "b.ts".into(), text: "2".into() }];
        match (Stripper::Subprocess { exe }).strip_all(&sources) {
            Err(Failure::Crashed { index: Some(1), detail }) => assert!(detail.contains("SIGABRT"), "{detail}"),
            other => panic!("expected a crash at b.ts, got {other:?}"),
        }
    }
}
