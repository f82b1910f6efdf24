//! `ignite preflight`, `ignite report`, and how `run` shows its preflight and writes `--report`.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};

use ignite::data::preflight::{Level, PreflightReport, render, render_problems};
use ignite::data::report::full::{LastReports, RunReport};
use ignite::data::service::{self, Overrides};

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

/// `ignite preflight DIR`.
pub(super) fn preflight_command(
    g: &GlobalArgs,
    dir: &Path,
    overrides: &Overrides,
    json: bool,
    strict: bool,
) -> anyhow::Result<i32> {
    let svc = service::load(dir, false, overrides, &g.passed_env()?)?;
    let report = ignite::engine::preflight(&svc, &runtimes_dirs(g), &g.cache_dir)?;
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

/// Before a run: the warnings of its preflight checks, on stderr.
pub(super) fn print_warnings(report: &PreflightReport) {
    let warnings = render_problems(report, &[Level::Warn]);
    if !warnings.is_empty() {
        eprint!("ignite: preflight warnings for {}:\n{warnings}", report.service);
    }
}

/// `--report FILE`: the full report of the run (or of the run preflight refused).
pub(super) fn write_report_file(report: &RunReport, file: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = file {
        let mut text = serde_json::to_string_pretty(report).context("failed to serialise the report")?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("failed to write the report to {}", path.display()))?;
    }
    Ok(())
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
