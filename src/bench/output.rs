//! The benchmark's result as data (what `--json` prints) and its renderings: the table for
//! people, CSV (one row per cell) for spreadsheets.

use std::fmt::Write as _;

use serde::Serialize;

use super::host::HostFacts;
use super::levels::Level;
use super::sample::PhaseTimes;
use super::stats::{Summary, summarize};

/// Cold: every run creates its sandbox from nothing. Warm: runs are served by a warm pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Cold,
    Warm,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cold => "cold",
            Mode::Warm => "warm",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "cold" => Ok(Mode::Cold),
            "warm" => Ok(Mode::Warm),
            _ => Err(format!("unknown mode {s:?}; expected cold or warm")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CellStatus {
    /// Every run so far succeeded (see `runs` for how many the budget allowed).
    Ok,
    /// A run failed; the cell was not run again (`note` says why).
    Failed,
    /// This build or host cannot run the cell (`note` says why, e.g. `no pool`).
    Unavailable,
}

/// Overhead of a cell's median over the bare median of the same runtime.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Overhead {
    pub ms: f64,
    pub ratio: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseSummaries {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_output: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<Summary>,
}

impl PhaseSummaries {
    pub fn of(samples: &[PhaseTimes]) -> PhaseSummaries {
        let s = |f: fn(&PhaseTimes) -> Option<f64>| summarize(&samples.iter().filter_map(f).collect::<Vec<_>>());
        PhaseSummaries {
            spec: s(|p| p.spec),
            create: s(|p| p.create),
            start: s(|p| p.start),
            run: s(|p| p.run),
            first_output: s(|p| p.first_output),
            exit: s(|p| p.exit),
            delete: s(|p| p.delete),
        }
    }

    /// Name and summary of each phase, in order (absent ones too).
    pub fn named(&self) -> [(&'static str, Option<&Summary>); 7] {
        [
            ("spec", self.spec.as_ref()),
            ("create", self.create.as_ref()),
            ("start", self.start.as_ref()),
            ("run", self.run.as_ref()),
            ("firstOutput", self.first_output.as_ref()),
            ("exit", self.exit.as_ref()),
            ("delete", self.delete.as_ref()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CellResult {
    /// Exact runtime, e.g. `bun@1.4.5`.
    pub runtime: String,
    pub level: Level,
    /// The OCI runtime (`None` for bare runs, which use none).
    pub oci: Option<String>,
    pub mode: Mode,
    pub status: CellStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Measured runs (warm-up runs excluded).
    pub runs: usize,
    /// Whole runs, ms.
    pub total: Option<Summary>,
    pub overhead: Option<Overhead>,
    pub phases: PhaseSummaries,
}

impl CellResult {
    /// `audit · runc · cold`, or `bare` for bare runs.
    pub fn label(&self) -> String {
        match &self.oci {
            None => self.level.to_string(),
            Some(oci) => format!("{} · {oci} · {}", self.level, self.mode.as_str()),
        }
    }

    /// What to show instead of numbers when there are none.
    pub fn absent(&self) -> String {
        match (self.status, &self.note) {
            (CellStatus::Unavailable, Some(n)) => format!("n/a ({n})"),
            (CellStatus::Failed, _) => "failed".to_string(),
            _ => "no runs".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchReport {
    pub host: HostFacts,
    /// What every run executes.
    pub program: String,
    /// Measured runs asked for per cell, and warm-up runs before them.
    pub runs: usize,
    pub warmup: usize,
    pub budget_seconds: f64,
    pub elapsed_seconds: f64,
    /// Why the benchmark stopped before every cell had its runs (budget, interruption).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Things the reader should know (OCI runtimes skipped, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub cells: Vec<CellResult>,
}

/// Fills in each cell's overhead against the bare cell of the same runtime.
pub fn add_overheads(cells: &mut [CellResult]) {
    let bare: Vec<(String, f64)> = cells
        .iter()
        .filter(|c| c.level == Level::Bare)
        .filter_map(|c| c.total.map(|t| (c.runtime.clone(), t.p50)))
        .collect();
    for c in cells.iter_mut() {
        let base = bare.iter().find(|(rt, _)| *rt == c.runtime).map(|(_, b)| *b);
        c.overhead = match (c.total, base) {
            (Some(t), Some(b)) if b > 0.0 => Some(Overhead { ms: t.p50 - b, ratio: t.p50 / b }),
            _ => None,
        };
    }
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// The table for people: one row per cell, times in ms (p50 of each phase on the right).
pub fn table(r: &BenchReport) -> String {
    let header = [
        "RUNTIME", "LEVEL", "OCI", "MODE", "RUNS", "P50", "P95", "P99", "MEAN", "MIN", "OVERHEAD", "SPEC", "CREATE",
        "START", "RUN", "1ST OUT", "EXIT", "DELETE",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for c in &r.cells {
        let mut row = vec![
            c.runtime.clone(),
            c.level.to_string(),
            c.oci.clone().unwrap_or_else(|| "-".into()),
            c.mode.as_str().to_string(),
            c.runs.to_string(),
        ];
        match &c.total {
            Some(t) => {
                row.extend([f1(t.p50), f1(t.p95), f1(t.p99), f1(t.mean), f1(t.min)]);
                row.push(match (c.level, c.overhead) {
                    (Level::Bare, _) => "baseline".into(),
                    (_, Some(o)) => format!("{:+.1} ({:.2}×)", o.ms, o.ratio),
                    _ => "-".into(),
                });
                for (_, s) in c.phases.named() {
                    row.push(s.map_or_else(|| "-".into(), |s| f1(s.p50)));
                }
            }
            None => {
                row.push(c.absent());
                row.extend(std::iter::repeat_n(String::new(), header.len() - row.len()));
            }
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("ignite bench — {}\n", r.host.line());
    let _ = writeln!(
        out,
        "{} measured run(s) per cell after {} warm-up run(s); times in ms; phases are medians, from each run's report (run: program exec → exit reported; 1st out and exit count from the start of the run)\n",
        r.runs, r.warmup
    );
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths[i];
                // Numbers right-aligned, names left-aligned; an "n/a (…)" spans the rest.
                if i >= 4 && c.parse::<f64>().is_ok() { format!("{c:>w$}") } else { format!("{c:<w$}") }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for c in r.cells.iter().filter(|c| c.status == CellStatus::Failed) {
        let _ = writeln!(out, "\n{} {}: {}", c.runtime, c.label(), c.note.as_deref().unwrap_or("failed"));
    }
    if let Some(s) = &r.stopped {
        let _ = writeln!(out, "\nstopped early: {s}");
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// Columns of [`csv`], in order.
pub const CSV_COLUMNS: [&str; 24] = [
    "runtime",
    "level",
    "oci",
    "mode",
    "status",
    "runs",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "min_ms",
    "max_ms",
    "overhead_ms",
    "overhead_ratio",
    "spec_p50_ms",
    "create_p50_ms",
    "start_p50_ms",
    "run_p50_ms",
    "first_output_p50_ms",
    "exit_p50_ms",
    "delete_p50_ms",
    "kernel",
    "cgroup",
    "note",
];

/// One row per cell (RFC 4180 quoting); empty fields where a value does not apply.
pub fn csv(r: &BenchReport) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    let num = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.3}"));
    for c in &r.cells {
        let t = c.total.as_ref();
        let status = serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let mut fields = vec![
            c.runtime.clone(),
            c.level.to_string(),
            c.oci.clone().unwrap_or_default(),
            c.mode.as_str().to_string(),
            status,
            c.runs.to_string(),
            num(t.map(|t| t.p50)),
            num(t.map(|t| t.p95)),
            num(t.map(|t| t.p99)),
            num(t.map(|t| t.mean)),
            num(t.map(|t| t.min)),
            num(t.map(|t| t.max)),
            num(c.overhead.map(|o| o.ms)),
            num(c.overhead.map(|o| o.ratio)),
        ];
        fields.extend(c.phases.named().iter().map(|(_, s)| num(s.map(|s| s.p50))));
        fields.extend([r.host.kernel.clone(), r.host.cgroup.clone(), c.note.clone().unwrap_or_default()]);
        out.push_str(&fields.iter().map(|f| quote(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::bench::host::OciFact;

    fn summary(p50: f64) -> Summary {
        Summary { n: 2, p50, p95: p50 * 1.5, p99: p50 * 1.6, mean: p50, min: p50 * 0.9, max: p50 * 1.7 }
    }

    /// A small report: bun bare + seccomp (ok), warm seccomp (no pool), node audit (failed).
    pub fn sample() -> BenchReport {
        let cell = |runtime: &str, level, oci: Option<&str>, mode, total: Option<f64>| CellResult {
            runtime: runtime.into(),
            level,
            oci: oci.map(String::from),
            mode,
            status: if total.is_some() { CellStatus::Ok } else { CellStatus::Unavailable },
            note: if total.is_some() { None } else { Some("no pool".into()) },
            runs: if total.is_some() { 2 } else { 0 },
            total: total.map(summary),
            overhead: None,
            phases: PhaseSummaries {
                create: total.filter(|_| oci.is_some()).map(|t| summary(t / 3.0)),
                run: total.map(|t| summary(t / 5.0)),
                exit: total.map(|t| summary(t / 2.0)),
                ..PhaseSummaries::default()
            },
        };
        let mut cells = vec![
            cell("bun@1.4.5", Level::Bare, None, Mode::Cold, Some(4.0)),
            cell("bun@1.4.5", Level::Seccomp, Some("runc"), Mode::Cold, Some(45.0)),
            cell("bun@1.4.5", Level::Seccomp, Some("runc"), Mode::Warm, None),
            cell("node@24.1.0", Level::Audit, Some("runc"), Mode::Cold, None),
        ];
        cells[3].status = CellStatus::Failed;
        cells[3].note = Some("the program exited with code 1; stderr: a, \"b\"".into());
        add_overheads(&mut cells);
        BenchReport {
            host: HostFacts {
                kernel: "6.18.0".into(),
                cgroup: "hybrid".into(),
                cpus: 2,
                memory_mib: None,
                ignite: "0.1.0".into(),
                oci_runtimes: vec![OciFact { name: "runc".into(), path: "/usr/sbin/runc".into(), version: None }],
            },
            program: "hello.js".into(),
            runs: 2,
            warmup: 0,
            budget_seconds: 60.0,
            elapsed_seconds: 1.0,
            stopped: None,
            notes: vec![],
            cells,
        }
    }

    #[test]
    fn overhead_is_against_the_same_runtimes_bare_median() {
        let r = sample();
        let o = r.cells[1].overhead.unwrap();
        assert_eq!((o.ms, o.ratio), (41.0, 11.25));
        assert_eq!(r.cells[0].overhead.unwrap().ratio, 1.0);
        assert!(r.cells[3].overhead.is_none(), "node has no bare cell");
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["host"]["cgroup"], "hybrid");
        assert_eq!(v["host"]["ociRuntimes"][0]["name"], "runc");
        let c = &v["cells"][1];
        assert_eq!(
            (c["level"].as_str(), c["oci"].as_str(), c["mode"].as_str()),
            (Some("seccomp"), Some("runc"), Some("cold"))
        );
        assert_eq!(c["status"], "ok");
        assert_eq!(c["total"]["p50"], 45.0);
        assert_eq!(c["overhead"]["ratio"], 11.25);
        assert_eq!(c["phases"]["create"]["p50"], 15.0);
        assert_eq!(c["phases"]["run"]["p50"], 9.0);
        assert!(c["phases"].get("spec").is_none(), "absent phases are left out");
        assert!(v["cells"][0]["oci"].is_null());
        assert_eq!(v["cells"][2]["status"], "unavailable");
        assert_eq!(v["cells"][2]["note"], "no pool");
        assert!(v.get("stopped").is_none() && v.get("notes").is_none());
    }

    #[test]
    fn csv_shape() {
        let text = csv(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0].split(',').count(), CSV_COLUMNS.len());
        assert!(lines[1].starts_with("bun@1.4.5,bare,,cold,ok,2,4.000,6.000,"), "{}", lines[1]);
        assert!(lines[2].starts_with("bun@1.4.5,seccomp,runc,cold,ok,2,45.000,"), "{}", lines[2]);
        assert!(lines[2].contains(",41.000,11.250,,15.000,,9.000,,22.500,,6.18.0,hybrid,"), "{}", lines[2]);
        assert!(lines[3].ends_with(",6.18.0,hybrid,no pool"), "{}", lines[3]);
        // A note with a comma and quotes is one quoted field.
        assert!(lines[4].ends_with(",\"the program exited with code 1; stderr: a, \"\"b\"\"\""), "{}", lines[4]);
    }

    #[test]
    fn table_shows_every_cell() {
        let t = table(&sample());
        assert!(t.contains("kernel 6.18.0 · cgroup hybrid · 2 CPUs"), "{t}");
        assert!(t.contains("baseline"), "{t}");
        assert!(t.contains("+41.0 (11.25×)"), "{t}");
        assert!(t.contains("n/a (no pool)"), "{t}");
        assert!(t.contains("failed") && t.contains("exited with code 1"), "{t}");
    }
}
