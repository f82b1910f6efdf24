//! Preflight for people: the full analysis (`ignite preflight`), and only its problems (before
//! a run, which should stay quiet when everything passes).

use super::{Check, Level, PreflightReport, num};

fn symbol(level: Level) -> &'static str {
    match level {
        Level::Pass => "✓",
        Level::Skip => "·",
        Level::Warn => "⚠",
        Level::Fail => "✗",
    }
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "unknown".to_string(), |v| format!("{} MiB", num(v)))
}

/// The lines under a check's title: its values and thresholds.
fn details(check: &Check) -> Vec<String> {
    match check {
        Check::Memory(c) => {
            let mut lines = vec![format!("Allocated: {} MiB", c.allocated_mb)];
            if let Some(e) = c.estimate_mb {
                lines.push(format!(
                    "Estimated: {} ({} MiB base from {} + {} dependencies × {} MiB)",
                    mib(Some(e)),
                    c.base_mb.unwrap_or_default(),
                    c.base_from.as_deref().unwrap_or("?"),
                    c.dependencies,
                    num(c.per_dependency_mb)
                ));
                lines.push(format!(
                    "Thresholds: warn below {} (estimate × {}), fail below {} (estimate × {})",
                    mib(c.warn_below_mb),
                    num(c.warn_ratio),
                    mib(c.fail_below_mb),
                    num(c.fail_ratio)
                ));
            }
            lines
        }
        Check::Timeout(c) => {
            let mut lines = vec![
                format!("Configured: {} ms", c.timeout_ms),
                format!("Thresholds: fail below {} ms, warn above {} ms", c.min_ms, c.max_ms),
            ];
            match (&c.cold_start, &c.cold_start_note) {
                (Some(m), _) => {
                    let mut line = format!(
                        "Cold start: {} ms (last measured on this host for {}, {}); warn below {} ms (× {})",
                        num(m.ms),
                        m.runtime,
                        m.measured_at,
                        c.warn_below_ms.map_or_else(|| "?".into(), num),
                        num(c.cold_start_warn_ratio)
                    );
                    if let (Some(f), Some(r)) = (c.fail_below_ms, c.cold_start_fail_ratio) {
                        line.push_str(&format!(", fail below {} ms (× {})", num(f), num(r)));
                    }
                    lines.push(line);
                }
                (None, Some(note)) => lines.push(format!("Cold start: {note}")),
                (None, None) => {}
            }
            lines
        }
        Check::BundleSize(c) => {
            let mut lines = Vec::new();
            if let Some(mb) = c.bundle_mb {
                let digest = c.digest.as_deref().map(|d| d.get(..19).unwrap_or(d)).unwrap_or("?");
                lines.push(format!("Bundle: {mb:.1} MiB compressed ({digest})"));
            }
            lines.push(format!("Thresholds: warn above {} MiB, fail above {} MiB", c.warn_mb, c.fail_mb));
            lines
        }
        Check::Dependencies(c) => vec![
            format!("Count: {}{}", c.count, c.source.as_deref().map(|s| format!(" (from {s})")).unwrap_or_default()),
            format!("Thresholds: warn above {}, fail above {}", c.warn, c.fail),
        ],
        Check::Runtime(c) => {
            let mut lines = vec![format!("Runtime: {}", c.runtime)];
            if let Some(d) = &c.digest {
                lines.push(format!("Bundle: {d}"));
            }
            if let Some(r) = &c.recipe_digest {
                lines.push(format!("Recipe: {r}"));
            }
            lines
        }
    }
}

/// The full analysis, in the shape of the seed's "Preflight Safety Analysis".
pub fn render(report: &PreflightReport) -> String {
    let mut out = format!("[preflight] Analyzing service: {} ({})\n", report.service, report.runtime);
    for check in &report.checks {
        out.push_str(&format!("\n{} {}\n", symbol(check.status()), check.title()));
        for line in details(check) {
            out.push_str(&format!("  {line}\n"));
        }
        let status = match check.status() {
            Level::Pass => "OK".to_string(),
            Level::Skip => format!("SKIPPED: {}", check.message()),
            Level::Warn => format!("WARN: {}", check.message()),
            Level::Fail => format!("FAIL: {}", check.message()),
        };
        out.push_str(&format!("  Status: {status}\n"));
        if let Some(s) = check.suggestion() {
            out.push_str(&format!("  → {s}\n"));
        }
    }
    let count = |l: Level| report.checks.iter().filter(|c| c.status() == l).count();
    let verdict = match report.status {
        Level::Pass | Level::Skip => "All checks passed".to_string(),
        Level::Warn => format!("{} warning(s); `ignite run` will start it", count(Level::Warn)),
        Level::Fail => format!(
            "{} check(s) failed, {} warning(s); `ignite run` refuses to start it (exit 125) unless --skip-preflight",
            count(Level::Fail),
            count(Level::Warn)
        ),
    };
    out.push_str(&format!("\n[preflight] {verdict}\n"));
    out
}

/// Only the checks whose status is in `levels`, one line each with its suggestion; empty when
/// there are none.
pub fn render_problems(report: &PreflightReport, levels: &[Level]) -> String {
    let mut out = String::new();
    for check in report.checks.iter().filter(|c| levels.contains(&c.status())) {
        out.push_str(&format!("  {} {}: {}\n", symbol(check.status()), check.name(), check.message()));
        if let Some(s) = check.suggestion() {
            out.push_str(&format!("    → {s}\n"));
        }
    }
    out
}
