//! What an edge asks of [`Engine::run`](super::Engine::run), and what it gets back: the program
//! (a service directory, a service already loaded, or files sent with the request), its input,
//! which policy applies, which checks gate the run, a session's workspace, where the output
//! streams.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::policy::PolicyError;
use crate::data::preflight::PreflightReport;
use crate::data::report::Report;
use crate::data::report::full::RunReport;
use crate::data::service::{Overrides, PassEnv, Service, ServiceError};
use crate::engine::supervisor::OutputSink;
use crate::engine::{EngineError, InlineError, InlineProgram, Progress, Workspace};
use crate::fsutil::svcdir::{self, Rule};
use crate::store::lock::LockError;

/// The largest input a program can receive: it travels in one environment variable
/// (`IGNITE_INPUT=`), and one environment string may not exceed 32 pages (MAX_ARG_STRLEN),
/// name included.
pub const MAX_INPUT_BYTES: usize = 128 * 1024 - 64;

/// Called with the preflight checks of a run that passed them, before it starts.
pub type OnPreflight = Box<dyn FnOnce(&PreflightReport) + Send>;

/// Called once a request passed every check (service, policy, lock, preflight), right before
/// its run starts.
pub type OnStart = Box<dyn FnOnce() + Send>;

/// One run, as an edge asks for it. Build it with [`Request::new`] and set what differs.
pub struct Request {
    pub program: Program,
    pub input: Input,
    pub policy: PolicyChoice,
    /// Audit mode: audited syscalls are denied and recorded, the report gets a
    /// `securityAudit`; the policy gets audit mode's strict base (see [`crate::data::policy`]).
    pub audit: bool,
    /// Lowers (or raises, within its range) the policy's `security.output.maxBytes`;
    /// `origin` names where it came from in errors (`--output-limit`).
    pub output_limit: Option<(u64, &'static str)>,
    pub lock: LockCheck,
    pub preflight: PreflightGate,
    /// May run in a sandbox of the warm pool, if the engine has one and a sandbox of the run's
    /// kind is parked: a service's, inline code's (its files are linked into the sandbox's own
    /// empty directory at the handover) or a session's (parked with its workspace and uid).
    pub warm: bool,
    /// A session's workspace, mounted read-write at [`WORKSPACE_DIR`](super::WORKSPACE_DIR);
    /// the run has the session's uid, which owns it.
    pub workspace: Option<Arc<Workspace>>,
    /// Receives the program's output as it is written (the report has it too).
    pub sink: Option<Arc<dyn OutputSink>>,
    /// Told about downloads, builds and installs the run waits for.
    pub progress: Arc<dyn Progress>,
    /// Keep the full report as the service directory's last one (`ignite report DIR`); the
    /// command line does, the HTTP API does not (a server would write a file per request).
    pub keep_report: bool,
    /// Told the preflight checks before the run starts (an edge prints their warnings).
    pub on_preflight: Option<OnPreflight>,
    /// Told when the checks are passed and the run starts: an edge that streams the output
    /// commits to its response then, so that a refusal still gets its own status.
    pub on_start: Option<OnStart>,
}

impl Request {
    /// A cold run of `program` with the default input `{}`, the service directory's policy,
    /// no audit, no lock check, the preflight gate enforced, no streaming, no progress, the
    /// report kept as the service's last one.
    pub fn new(program: Program) -> Request {
        Request {
            program,
            input: Input::Json("{}".to_string()),
            policy: PolicyChoice::Service { file: None },
            audit: false,
            output_limit: None,
            lock: LockCheck::Off,
            preflight: PreflightGate::Enforce,
            warm: false,
            workspace: None,
            sink: None,
            progress: Arc::new(crate::store::bundle::NoProgress),
            keep_report: true,
            on_preflight: None,
            on_start: None,
        }
    }
}

/// The program to run.
pub enum Program {
    /// A service directory: its `service.yaml` (optional unless `required`) with `overrides`;
    /// `${NAME}` expands from `pass_env` only.
    Dir { dir: PathBuf, required: bool, overrides: Overrides, pass_env: PassEnv },
    /// A service already loaded (an edge that resolved it itself, e.g. by name).
    Service(Box<Service>),
    /// Files sent with the request (`POST /v1/execute`): checked, written to a directory of
    /// their own under the state dir for this run, and removed when it is over. Gets the
    /// built-in policy whatever [`Request::policy`] says, and no last report is kept for it.
    Inline(Box<InlineProgram>),
}

/// The program's input (`IGNITE_INPUT`), which must be JSON.
pub enum Input {
    Json(String),
    /// `--input @FILE`: found from the current directory (or absolute), it is the operator's
    /// own file; found only in the service directory, it is read the safe way (no link, no
    /// pipe). Either is capped at [`MAX_INPUT_BYTES`].
    File(PathBuf),
}

/// Which security policy applies (always on top of the built-in one).
pub enum PolicyChoice {
    /// The service directory's policy file, if any, or `file` instead when given.
    Service { file: Option<PathBuf> },
    /// The built-in policy alone: for code whose directory is not the operator's.
    Builtin,
}

/// Whether the service must match its `ignite.lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockCheck {
    Off,
    /// Checked when the service has a lock file (`ignite serve --locked`).
    IfPresent,
    /// The lock file must exist and match (`ignite run --locked`).
    Required,
}

/// Whether the preflight checks gate the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreflightGate {
    /// A failing check refuses the run ([`RunError::Preflight`]).
    Enforce,
    /// Not checked (`--skip-preflight`).
    Skip,
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The execution report (`ignite run --json`, the HTTP API's report).
    pub report: Report,
    /// The full report: preflight, execution, warnings (`--report FILE`, `ignite report`).
    pub full: RunReport,
}

/// Why a run did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("--input {what}")]
    Input { what: String },
    #[error(transparent)]
    Inline(#[from] InlineError),
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A preflight check failed; nothing was started. `full` has the checks (and was kept as
    /// the service's last report).
    #[error("{}", preflight_message(.full))]
    Preflight { full: Box<RunReport> },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl RunError {
    /// The failed preflight's checks, when that is why the run was refused.
    pub fn preflight(&self) -> Option<&PreflightReport> {
        match self {
            RunError::Preflight { full } => full.preflight.as_ref(),
            _ => None,
        }
    }
}

fn preflight_message(full: &RunReport) -> String {
    let reasons = full
        .preflight
        .as_ref()
        .map(|p| crate::data::preflight::render_problems(p, &[crate::data::preflight::Level::Fail]))
        .unwrap_or_default();
    format!("preflight failed for {}; the run was not started:\n{}", full.service, reasons.trim_end())
}

impl Input {
    /// The input text, checked to be JSON.
    pub(crate) fn read(&self, service_dir: &Path) -> Result<String, RunError> {
        let rule = Rule {
            what: "--input file (the program receives it in IGNITE_INPUT, one environment variable)",
            max_bytes: MAX_INPUT_BYTES as u64,
        };
        let err = |what: String| RunError::Input { what };
        let text = match self {
            Input::Json(text) => text.clone(),
            Input::File(p) => {
                let shown = p.display();
                let from_here = std::fs::symlink_metadata(p).is_ok();
                if p.is_absolute() && !from_here {
                    return Err(err(format!("@{shown}: no such file")));
                }
                if from_here {
                    svcdir::read_operator_text(p, rule).map_err(|e| err(format!("@{shown}: {e}")))?
                } else {
                    match svcdir::read_text(service_dir, &p.to_string_lossy(), rule) {
                        Ok(Some(text)) => text,
                        Ok(None) => {
                            return Err(err(format!(
                                "@{shown}: no such file (looked in {shown} and {})",
                                service_dir.join(p).display()
                            )));
                        }
                        Err(e) => return Err(err(format!("@{shown}: {e}"))),
                    }
                }
            }
        };
        serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| err(format!("is not valid JSON ({e}); pass JSON text or @file.json")))?;
        Ok(text)
    }
}
