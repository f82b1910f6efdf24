//! `ignite preflight`, `ignite report`, and the preflight gate and report keeping of `run`.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};

use ignite::data::preflight::{Level, PreflightReport, render, render_problems};
use ignite::data::report::full::{LastReports, Limits, RunReport};
use ignite::data::report::{Report, rfc3339};
use ignite::data::service::{self, Overrides, Service};
use ignite::engine::Engine;
use ignite::store::bundle::BundleStore;

use super::{GlobalArgs, print_stdout, runtimes_dirs};

pub(super) const PREFLIGHT_HELP: &str = "\
Checks, without starting or downloading anything:
  memory        memoryMb against an estimate = the runtime's base (runtime.yaml baseMemoryMb)
                + perDependencyMb × dependencies; fail below estimate × failRatio (default 1),
                warn below estimate × warnRatio (default 1.5)
  timeout       fail below minMs (100), warn above maxMs (300000), warn below the last cold
                start of this runtime on this host × coldStartWarnRatio (5)
  bundleSize    the runtime's bundle (compressed, as the store recorded it): warn above 150
                MiB, fail above 500 MiB
  dependencies  package.json dependencies + optionalDependencies: warn above 50, fail above 200
  runtime       the runtime resolves and its bundle is in the store, built from the pinned
                package and the current recipe
Thresholds: `preflight:` in service.yaml (see docs/service-yaml.md). The analysis goes to stderr;
--json prints one JSON document on stdout instead. `ignite run` and `ignite exec` run the same
checks first, print only warnings and failures, and refuse to start on a failure (exit 125)
unless --skip-preflight.

EXIT CODES:
  0    no check failed (warnings are allowed unless --strict)
  1    a check failed (`ignite run` would refuse to start the service), or --strict and a
       check warned
  125  the service could not be checked: bad service.yaml or package.json

EXAMPLES:
  ignite preflight examples/hello
  ignite preflight svc/ --json | jq '.checks[] | select(.status != \"pass\")'
  ignite preflight svc/ --runtime node --memory 32     # would this pass?";

pub(super) const REPORT_HELP: &str = "\
Every `ignite run` / `ignite exec` keeps its full report (service, timestamp, preflight,
execution with the program's output, warnings) for the service directory in the cache
(<cache>/reports/, readable by root only; a later run replaces it, also one refused by
preflight). This shows the last one: as text on stderr, or with --json as one JSON document on
stdout (the shape is in docs/report.schema.json; `ignite run --report FILE` writes the same).
Exit code 0, or 125 when the directory has no report yet.

EXAMPLES:
  ignite run svc/ --input '{\"n\":1}' && ignite report svc/
  ignite report svc/ --json | jq '.warnings'";

/// A failed preflight stops a run; `main` gives it its own error code in `--json` mode.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(super) struct PreflightFailed {
    pub message: String,
    pub report: Box<PreflightReport>,
}

impl PreflightFailed {
    fn new(report: PreflightReport) -> PreflightFailed {
        let reasons = render_problems(&report, &[Level::Fail]);
        PreflightFailed {
            message: format!(
                "preflight failed for {}; the run was not started:\n{}",
                report.service,
                reasons.trim_end()
            ),
            report: Box::new(report),
        }
    }
}

/// `ignite preflight DIR`.
pub(super) fn preflight_command(
    g: &GlobalArgs,
    dir: &Path,
    overrides: &Overrides,
    json: bool,
    strict: bool,
) -> anyhow::Result<i32> {
    let svc = service::load(dir, false, overrides, &g.passed_env()?)?;
    let registry = ignite::data::runtime::Registry::load(&runtimes_dirs(g))?;
    let store = BundleStore::new(g.cache_dir.clone());
    let report = ignite::engine::preflight(&svc, &registry, &store)?;
    if json {
        let text = serde_json::to_string_pretty(&report).context("failed to serialise the preflight report")?;
        print_stdout(&(text + "\n"))?;
    } else {
        eprint!("{}", render(&report));
    }
    Ok(match report.status {
        Level::Fail => 1,
        Level::Warn if strict => 1,
        _ => 0,
    })
}

/// Before a run: the checks, their warnings on stderr (unless quiet), and a refusal on a failure.
pub(super) fn gate(engine: &Engine, svc: &Service, skip: bool, quiet: bool) -> anyhow::Result<Gate> {
    if skip {
        return Ok(Gate::Go(None));
    }
    let report = engine.preflight(svc)?;
    let warnings = render_problems(&report, &[Level::Warn]);
    if !quiet && !warnings.is_empty() {
        eprint!("ignite: preflight warnings for {}:\n{warnings}", svc.name);
    }
    Ok(if report.status == Level::Fail { Gate::Stop(report) } else { Gate::Go(Some(report)) })
}

pub(super) enum Gate {
    /// Run; with the preflight report unless it was skipped.
    Go(Option<PreflightReport>),
    Stop(PreflightReport),
}

fn limits(svc: &Service) -> Limits {
    Limits { timeout_ms: svc.timeout_ms, cold_start_warn_ratio: svc.preflight.cold_start_warn_ratio }
}

/// Keeps the full report of a run (or of a run preflight refused) as the service's last one,
/// and writes it to `--report FILE`. Failing to keep the last one is logged; failing to write
/// the file that was asked for is an error.
pub(super) fn keep_report(
    g: &GlobalArgs,
    svc: &Service,
    preflight: Option<PreflightReport>,
    execution: Option<Report>,
    file: Option<&Path>,
) -> anyhow::Result<()> {
    let report = RunReport::new(&svc.name, rfc3339(std::time::SystemTime::now()), preflight, execution, limits(svc));
    if let Err(e) = LastReports::new(&g.cache_dir).save(&svc.dir, &report) {
        tracing::warn!(error = %e, "failed to keep the report for `ignite report`");
    }
    if let Some(path) = file {
        let mut text = serde_json::to_string_pretty(&report).context("failed to serialise the report")?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("failed to write the report to {}", path.display()))?;
    }
    Ok(())
}

/// What stops a run when preflight failed: its report is kept first, like a run's.
pub(super) fn refuse(
    g: &GlobalArgs,
    svc: &Service,
    report: PreflightReport,
    file: Option<&Path>,
) -> anyhow::Result<i32> {
    keep_report(g, svc, Some(report.clone()), None, file)?;
    Err(PreflightFailed::new(report).into())
}

/// `ignite report DIR`.
pub(super) fn report_command(g: &GlobalArgs, dir: &Path, json: bool) -> anyhow::Result<i32> {
    // The directory alone names the report: a service.yaml broken since its last run must not
    // hide that run.
    let canonical: PathBuf = dir.canonicalize().with_context(|| format!("service directory {}", dir.display()))?;
    let report = LastReports::new(&g.cache_dir).load(&canonical)?.ok_or_else(|| {
        anyhow!(
            "no report for {} yet: every `ignite run` of it keeps one (cache {})",
            canonical.display(),
            g.cache_dir.display()
        )
    })?;
    if json {
        let text = serde_json::to_string_pretty(&report).context("failed to serialise the report")?;
        print_stdout(&(text + "\n"))?;
    } else {
        eprint!("{}", ignite::data::report::full::render(&report));
    }
    Ok(0)
}
