//! `ignite doctor`: whether this host can run sandboxes, and which of ignite's protections
//! and features it can provide — each check with what was found and, when something is
//! missing, what to do about it.
//!
//! Three parts: [`parse`] (pure parsers of kernel files and tool outputs), [`probe`] (reads the
//! host under an injected root, read-only) and [`checks`] (pure judgement of the facts). Tests
//! feed fixture hosts from `src/host/doctor/fixtures/` through the same probe and checks.

pub mod checks;
pub mod facts;
pub mod parse;
pub mod probe;
pub mod select;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

use crate::sandbox::cgroup::DriverChoice;
use crate::sandbox::oci::OciKind;

pub use checks::{Check, Status};
pub use facts::{Facts, LandlockSupport};

/// Everything that can go wrong while reading one fact. None of these stops `doctor`: the
/// message becomes the fact's value and the check that needs it says so.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("failed to read {path}: {source}", path = .path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("failed to parse {path}: {source}", path = .path.display())]
    Parse { path: PathBuf, source: parse::ParseError },

    #[error("failed to read the cgroup mounts: {source}")]
    Cgroup { source: crate::sandbox::cgroup::CgroupError },

    #[error("failed to run `{command}`: {source}")]
    Spawn { command: String, source: io::Error },

    #[error("`{command}` exited with {status}")]
    Exit { command: String, status: String },

    #[error("`{command}` did not finish within {after:?}; it was killed")]
    Hung { command: String, after: std::time::Duration },

    #[error("`{program} --version` printed no version (first line: {output:?})", program = .program.display())]
    NoVersion { program: PathBuf, output: String },

    #[error("failed to measure {path}: {errno}", path = .path.display())]
    Statvfs { path: PathBuf, errno: nix::errno::Errno },

    #[error("failed to load the built-in runtimes: {source}")]
    Registry { source: crate::data::runtime::RuntimeError },
}

/// What to examine. [`DoctorOptions::host`] fills in this host's root, PATH and Landlock.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// Where `/proc` and `/sys` are: `/`, or a fixture directory in tests.
    pub root: PathBuf,
    pub cache_dir: PathBuf,
    pub state_dir: PathBuf,
    /// `--oci-runtime` as given.
    pub oci_requested: String,
    /// The OCI runtime ignite resolved from it, or why it could not.
    pub oci_selected: Result<(OciKind, PathBuf), String>,
    /// The entrypoint binary, or why it was not found.
    pub entrypoint: Result<PathBuf, String>,
    pub path_env: Option<OsString>,
    pub landlock: LandlockSupport,
    /// `--cgroup-driver` as given.
    pub cgroup_driver: DriverChoice,
}

impl DoctorOptions {
    pub fn host(
        cache_dir: PathBuf,
        state_dir: PathBuf,
        oci_requested: String,
        oci_selected: Result<(OciKind, PathBuf), String>,
        entrypoint: Result<PathBuf, String>,
        cgroup_driver: DriverChoice,
    ) -> Self {
        DoctorOptions {
            root: PathBuf::from("/"),
            cache_dir,
            state_dir,
            oci_requested,
            oci_selected,
            entrypoint,
            path_env: std::env::var_os("PATH"),
            landlock: probe::landlock_support(),
            cgroup_driver,
        }
    }
}

/// The result: `ignite doctor --json` prints exactly this.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Doctor {
    /// No check failed: a default run works on this host (warnings limit optional features).
    pub ok: bool,
    pub summary: Summary,
    pub checks: Vec<Check>,
    /// The facts the checks were judged on.
    pub host: Facts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

/// Examines the host described by `opts`.
pub fn run(opts: &DoctorOptions) -> Doctor {
    judge(probe::gather(opts))
}

/// Judges already gathered facts.
pub fn judge(host: Facts) -> Doctor {
    let checks = checks::evaluate(&host);
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    let summary = Summary { ok: count(Status::Ok), warn: count(Status::Warn), fail: count(Status::Fail) };
    Doctor { ok: summary.fail == 0, summary, checks, host }
}

impl Doctor {
    /// The exit code of `ignite doctor`: 1 when a default run cannot work here.
    pub fn exit_code(&self) -> i32 {
        if self.ok { 0 } else { 1 }
    }

    /// The table people read: one row per check, then the remedies, then a verdict.
    pub fn table(&self) -> String {
        let mut rows = vec![["CHECK", "STATUS", "NEEDED FOR", "FOUND"].map(String::from)];
        for c in &self.checks {
            rows.push([c.name.to_owned(), c.status.as_str().to_owned(), c.needed_for.to_owned(), c.value.clone()]);
        }
        let widths: Vec<usize> = (0..3).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for row in &rows {
            let _ = writeln!(
                out,
                "{:<w0$}  {:<w1$}  {:<w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
        }
        let not_ok: Vec<&Check> = self.checks.iter().filter(|c| c.status != Status::Ok).collect();
        if !not_ok.is_empty() {
            out.push_str("\nto fix:\n");
            for c in not_ok {
                let _ = writeln!(out, "  {} ({}): {}", c.name, c.status.as_str(), c.remedy.as_deref().unwrap_or(""));
            }
        }
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let _ = writeln!(
            out,
            "\n{}, {}, {}: {}",
            plural(self.summary.ok, "ok", "ok"),
            plural(self.summary.warn, "warning", "warnings"),
            plural(self.summary.fail, "failure", "failures"),
            if self.ok {
                "this host can run sandboxes"
            } else {
                "runs will fail on this host until the failures are fixed"
            }
        );
        out
    }
}

#[cfg(test)]
mod tests;
