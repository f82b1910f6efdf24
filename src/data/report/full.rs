//! The full report of one `ignite run`: the service, when, the preflight it passed, the
//! execution report, and warnings with a level and a suggestion. `ignite run --report FILE`
//! writes it; every CLI run keeps the last one per service directory in the cache, which
//! `ignite report DIR` shows. Its JSON shape is documented in docs/report.schema.json.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::preflight::{Level as CheckLevel, PreflightReport};
use crate::data::report::{Report, Status};
use crate::fsutil::{At, IoError};

/// A sandbox start slower than this is worth a warning on any host (this machine's are ≈ 40 ms).
pub const COLD_START_HIGH_MS: f64 = 500.0;
/// Peak memory at or above this share of the limit is "near the limit".
pub const NEAR_MEMORY_LIMIT: f64 = 0.9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarningLevel {
    /// Worth knowing; nothing went wrong.
    Info,
    /// The run worked, but something is close to a limit or slower than it should be.
    Warning,
    /// The run failed, or would have been refused.
    Critical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Warning {
    pub level: WarningLevel,
    pub message: String,
    pub suggestion: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub service: String,
    /// RFC 3339 UTC time the report was made (the run's end).
    pub timestamp: String,
    /// `null` when the run was started with `--skip-preflight`.
    pub preflight: Option<PreflightReport>,
    /// The execution report (what `ignite run --json` prints); `null` when preflight failed
    /// and nothing ran.
    pub execution: Option<Report>,
    pub warnings: Vec<Warning>,
}

/// What the warnings compare against, from the service's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub timeout_ms: u64,
    /// `preflight.timeout.coldStartWarnRatio`: the same line preflight draws, applied to this
    /// run's own cold start.
    pub cold_start_warn_ratio: f64,
}

impl RunReport {
    pub fn new(
        service: &str,
        timestamp: String,
        preflight: Option<PreflightReport>,
        execution: Option<Report>,
        limits: Limits,
    ) -> RunReport {
        let warnings = warnings(preflight.as_ref(), execution.as_ref(), limits);
        RunReport { service: service.to_string(), timestamp, preflight, execution, warnings }
    }
}

/// The warnings of a run, most severe first (stable within a level).
pub fn warnings(preflight: Option<&PreflightReport>, exec: Option<&Report>, limits: Limits) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut push = |level, message: String, suggestion: &str| {
        out.push(Warning { level, message, suggestion: suggestion.to_string() })
    };
    match preflight {
        None => push(
            WarningLevel::Info,
            "preflight was skipped (--skip-preflight)".into(),
            "run without --skip-preflight, or `ignite preflight DIR`, to check the settings before a run",
        ),
        Some(p) => {
            for check in &p.checks {
                let level = match check.status() {
                    CheckLevel::Fail => WarningLevel::Critical,
                    CheckLevel::Warn => WarningLevel::Warning,
                    CheckLevel::Pass | CheckLevel::Skip => continue,
                };
                push(
                    level,
                    format!("preflight {}: {}", check.name(), check.message()),
                    check.suggestion().unwrap_or(""),
                );
            }
        }
    }
    let Some(r) = exec else {
        out.sort_by_key(|w| std::cmp::Reverse(w.level));
        return out;
    };
    let m = &r.metrics;
    match r.status {
        Status::Ok => {}
        Status::Error => {
            let how = match (r.exit_code, &r.signal) {
                (Some(c), _) => format!("exited with code {c}"),
                (None, Some(s)) => format!("was killed by {s}"),
                (None, None) => "failed".to_string(),
            };
            push(
                WarningLevel::Critical,
                format!("the program {how}"),
                "read its stderr (in this report, or `ignite report DIR`) for the error",
            );
        }
        Status::Timeout => push(
            WarningLevel::Critical,
            format!("the program hit its time limit of {} ms and was stopped", limits.timeout_ms),
            "raise service.timeoutMs (or --timeout), or make the program finish sooner",
        ),
        Status::Oom => push(
            WarningLevel::Critical,
            format!("the program ran out of memory (limit {} MiB) and was killed", m.memory_limit_mb),
            "raise service.memoryMb (or --memory), or use less memory",
        ),
        Status::OutputLimit => push(
            WarningLevel::Critical,
            "the program exceeded the output limit and was stopped".into(),
            "write less output, or raise --output-limit",
        ),
    }
    if let Some(audit) = &r.security_audit
        && audit.overall_status == crate::data::report::AuditStatus::Violations
    {
        let counts: Vec<String> = audit.counts.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        push(
            WarningLevel::Critical,
            format!("security audit: violations ({})", counts.join(", ")),
            "read securityAudit.events: each is something the kernel denied or stopped; a program that needs it must say so in its policy file",
        );
    }
    if r.stdout_truncated || r.stderr_truncated {
        let which = match (r.stdout_truncated, r.stderr_truncated) {
            (true, true) => "stdout and stderr were",
            (true, false) => "stdout was",
            _ => "stderr was",
        };
        push(
            WarningLevel::Warning,
            format!("output truncated: {which} cut at the output limit"),
            "write less output, or raise --output-limit",
        );
    }
    if r.status != Status::Oom
        && let Some(peak) = m.memory_peak_mb
        && m.memory_limit_mb > 0
        && peak >= f64::from(m.memory_limit_mb) * NEAR_MEMORY_LIMIT
    {
        push(
            WarningLevel::Warning,
            format!(
                "near the memory limit: peak {peak:.1} of {} MiB (≥ {:.0}%; the peak includes page cache the kernel reclaims under pressure, which slows the program)",
                m.memory_limit_mb,
                NEAR_MEMORY_LIMIT * 100.0
            ),
            "raise service.memoryMb (or --memory)",
        );
    }
    if let Some(cold) = m.init_time_ms {
        let share =
            limits.cold_start_warn_ratio > 0.0 && cold * limits.cold_start_warn_ratio > limits.timeout_ms as f64;
        if cold > COLD_START_HIGH_MS || share {
            let why = if cold > COLD_START_HIGH_MS {
                format!("above {COLD_START_HIGH_MS:.0} ms")
            } else {
                format!(
                    "× coldStartWarnRatio {} exceeds timeoutMs {}",
                    crate::data::preflight::num(limits.cold_start_warn_ratio),
                    limits.timeout_ms
                )
            };
            push(
                WarningLevel::Warning,
                format!("cold start high: the sandbox took {cold:.0} ms to start ({why})"),
                "check the host's load and disk (a cold page cache slows the first runs); a warm host starts one in about 40 ms",
            );
        }
    }
    out.sort_by_key(|w| std::cmp::Reverse(w.level));
    out
}

fn icon(level: WarningLevel) -> &'static str {
    match level {
        WarningLevel::Info => "ℹ",
        WarningLevel::Warning => "⚠",
        WarningLevel::Critical => "✗",
    }
}

/// The report for people (`ignite report DIR`).
pub fn render(r: &RunReport) -> String {
    let rule = "─".repeat(60);
    let mut out = format!("IGNITE REPORT\n  Service: {}\n  Time: {}\n{rule}\n", r.service, r.timestamp);
    match &r.preflight {
        Some(p) => out.push_str(&crate::data::preflight::render(p)),
        None => out.push_str("[preflight] skipped (--skip-preflight)\n"),
    }
    out.push_str(&format!("{rule}\nEXECUTION\n"));
    match &r.execution {
        None => out.push_str("  not run: preflight failed\n"),
        Some(e) => {
            out.push_str(&format!("  {}\n", e.summary().trim_start_matches("ignite: ").replace('\n', "\n  ")));
            out.push_str(&format!(
                "  Runtime: {} · container {} · started {}\n",
                e.runtime, e.container_id, e.started_at
            ));
            for (name, text, truncated) in
                [("stdout", &e.stdout, e.stdout_truncated), ("stderr", &e.stderr, e.stderr_truncated)]
            {
                if text.is_empty() {
                    continue;
                }
                out.push_str(&format!("  {name}{}:\n", if truncated { " (truncated)" } else { "" }));
                for line in text.trim_end().lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    out.push_str(&format!("{rule}\nWARNINGS\n"));
    if r.warnings.is_empty() {
        out.push_str("  none\n");
    }
    for w in &r.warnings {
        out.push_str(&format!("  {} {}\n", icon(w.level), w.message));
        if !w.suggestion.is_empty() {
            out.push_str(&format!("    → {}\n", w.suggestion));
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum ReportStoreError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(
        "{path} is not a report this version of ignite can read ({reason}); the next run of the service replaces it"
    )]
    Invalid { path: PathBuf, reason: String },
}

/// The last report of each service directory, under `<cache>/reports/` (mode 0700; each file
/// 0600: reports hold the program's output).
#[derive(Debug, Clone)]
pub struct LastReports {
    dir: PathBuf,
}

impl LastReports {
    pub fn new(cache_dir: &Path) -> LastReports {
        LastReports { dir: cache_dir.join("reports") }
    }

    /// The file of a service directory: named by a hash of its canonical path, so that two
    /// services with the same name in different directories keep their own.
    pub fn path(&self, service_dir: &Path) -> PathBuf {
        let hash = Sha256::digest(service_dir.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{}.json", hex::encode(&hash[..16])))
    }

    /// Replaces the last report of `service_dir`, atomically.
    pub fn save(&self, service_dir: &Path, report: &RunReport) -> Result<PathBuf, ReportStoreError> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).at("create", &self.dir)?;
        let path = self.path(service_dir);
        let temp = crate::fsutil::Cleanup::new(self.dir.join(crate::fsutil::temp_name(".report")));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(temp.path())
            .at("create", temp.path())?;
        let json = serde_json::to_vec_pretty(report)
            .map_err(|e| ReportStoreError::Invalid { path: path.clone(), reason: e.to_string() })?;
        file.write_all(&json).and_then(|()| file.write_all(b"\n")).at("write", temp.path())?;
        fs::rename(temp.path(), &path).at("rename into place", &path)?;
        temp.keep();
        Ok(path)
    }

    /// The last report of `service_dir`, `None` if it never ran (through the CLI) here.
    pub fn load(&self, service_dir: &Path) -> Result<Option<RunReport>, ReportStoreError> {
        let path = self.path(service_dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ReportStoreError::from(IoError::new("read", path, source))),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| ReportStoreError::Invalid { path, reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests;
