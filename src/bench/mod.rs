//! `ignite bench`: what isolation costs on this host. A matrix of runtime × isolation level
//! ([`Level`]) × OCI runtime × cold/warm runs of one small program, each cell run N times
//! (rounds interleave the cells, so drift on a busy host spreads over all of them), within a
//! time budget; summarised as percentiles, overhead against the bare runtime, and per-phase
//! times. Cells at the full isolation levels are real runs through the engine's façade; the
//! reduced isolation levels exist only here (see `levels`), and only their runs reach below
//! the façade (see `reduced`).

pub mod chart;
mod full;
pub mod host;
mod levels;
pub mod output;
mod reduced;
mod sample;
pub mod stats;
pub mod throughput;
mod warm;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use levels::Level;
pub use output::{BenchReport, CellResult, CellStatus, Mode, PhaseSummaries};
pub use reduced::ReducedError;
pub use sample::{PhaseTimes, RunError, Sample};
pub use throughput::{ThroughputConfig, ThroughputResult};

use crate::data::preflight::{BundleState, Check};
use crate::data::report::full::LastReports;
use crate::data::runtime::RuntimeError;
use crate::data::service::{self, Overrides, Service, ServiceError};
use crate::engine::{BenchDir, Engine, EngineError, OciKind, Program, Request, Settings};
use reduced::{BareCommand, Reduced};
use warm::WarmRunner;

/// The runtimes benchmarked by default, when their bundle is present.
pub const DEFAULT_RUNTIMES: [&str; 4] = ["bun", "node", "deno", "quickjs"];
/// The program every run executes: the same source on every runtime.
const PROGRAM: &str = "console.log(\"hello from ignite bench\");\n";
const EXPECT: &str = "hello from ignite bench";
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Run(#[from] crate::engine::RunError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Io(#[from] crate::engine::IoError),
    #[error(
        "no runtime bundle is present in {cache}: pull one first (`ignite runtime pull bun`), or name runtimes with --runtime"
    )]
    NoRuntimes { cache: PathBuf },
    #[error("the bundle of {runtime} is not in {cache}; run `ignite runtime pull {spec}` first")]
    BundleMissing { runtime: String, spec: String, cache: PathBuf },
    #[error("{runtime}: the bare command could not be derived: {source}")]
    Bare { runtime: String, source: Box<RunError> },
    #[error("nothing to run: the levels, OCI runtimes and modes chosen leave no cell")]
    Empty,
}

/// An OCI runtime to benchmark.
#[derive(Debug, Clone)]
pub struct OciChoice {
    pub kind: OciKind,
    pub binary: PathBuf,
}

/// What to run: resolved by the edge (CLI flags and defaults).
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Engine settings; the OCI runtime in them is replaced per [`OciChoice`].
    pub settings: Settings,
    /// Runtime specs (`bun`, `node@22`); empty: [`DEFAULT_RUNTIMES`] whose bundle is present.
    pub runtimes: Vec<String>,
    pub levels: Vec<Level>,
    pub ocis: Vec<OciChoice>,
    pub modes: Vec<Mode>,
    pub runs: usize,
    pub warmup: usize,
    /// No run starts after this much time; cells keep the runs they have.
    pub budget: Duration,
    /// Carried into the report (e.g. OCI runtimes found but not usable).
    pub notes: Vec<String>,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// A cell being measured.
struct Cell {
    runtime: usize,
    level: Level,
    /// Index into the OCI runtimes; `None` for bare runs.
    oci: Option<usize>,
    mode: Mode,
    samples: Vec<Sample>,
    status: CellStatus,
    note: Option<String>,
    warm: Option<WarmRunner>,
}

/// A runtime under test: its exact key, the service that runs on it, its bare command.
struct Subject {
    key: String,
    service: Service,
    bare: BareCommand,
}

/// One OCI runtime: the engine of its full-level runs, and what runs its reduced levels.
struct Oci {
    name: String,
    settings: Settings,
    engine: Arc<Engine>,
    reduced: Reduced,
}

/// One engine per OCI runtime of `config`: its name, settings and engine.
fn engines(config: &BenchConfig) -> Result<Vec<(String, Settings, Arc<Engine>)>, BenchError> {
    let mut out = Vec::new();
    for choice in &config.ocis {
        let settings = Settings { oci_kind: choice.kind, oci_binary: choice.binary.clone(), ..config.settings.clone() };
        let engine = Arc::new(Engine::new(settings.clone())?);
        out.push((choice.kind.as_str().to_string(), settings, engine));
    }
    Ok(out)
}

/// The benchmark's service: [`PROGRAM`] in a directory of its own under the state directory.
fn bench_dir(config: &BenchConfig) -> Result<BenchDir, BenchError> {
    Ok(BenchDir::create(
        &config.settings.state_dir,
        &[("hello.js", PROGRAM), ("service.yaml", "service:\n  name: bench\n  entry: hello.js\n  timeoutMs: 30000\n")],
    )?)
}

/// Runs the matrix. Ctrl-C (`cancel`) stops after cleaning up the run in flight; the report
/// then has what was measured so far.
pub async fn run(config: BenchConfig, cancel: CancellationToken) -> Result<BenchReport, BenchError> {
    let mut ocis = Vec::new();
    for (name, settings, engine) in engines(&config)? {
        let reduced = Reduced::new(&engine);
        ocis.push(Oci { name, settings, engine, reduced });
    }
    // Bare runs need a spec too (the command comes from it), but no OCI runtime.
    let base = match ocis.first() {
        Some(o) => o.engine.clone(),
        None => Arc::new(Engine::new(config.settings.clone())?),
    };
    base.reap_stale().await;
    let dir = bench_dir(&config)?;
    let svc_dir = dir.service_dir();
    let result = measure(&config, &ocis, &base, &svc_dir, &cancel).await;
    // The full-level runs kept their reports as the service's last one, as every run does:
    // this service goes with the benchmark, its report too.
    let _ = std::fs::remove_file(LastReports::new(&config.settings.cache_dir).path(&svc_dir));
    drop(dir);
    result
}

/// `ignite bench --throughput`: what one host sustains.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputReport {
    pub host: host::HostFacts,
    pub program: String,
    pub concurrency: usize,
    pub duration_seconds: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub results: Vec<ThroughputResult>,
}

impl ThroughputReport {
    /// A run failed, or a runtime × OCI runtime completed none.
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.failures > 0 || r.runs == 0)
    }
}

/// Runs the throughput measurement ([`throughput`]) for every runtime × OCI runtime of
/// `config`, one after the other. Ctrl-C (`cancel`) lets the runs in flight finish and reports
/// what was measured.
pub async fn run_throughput(
    config: BenchConfig,
    tp: ThroughputConfig,
    cancel: CancellationToken,
) -> Result<ThroughputReport, BenchError> {
    if config.ocis.is_empty() {
        return Err(BenchError::Empty);
    }
    let ocis: Vec<(String, Arc<Engine>)> =
        engines(&config)?.into_iter().map(|(name, _, engine)| (name, engine)).collect();
    let base = Arc::clone(&ocis[0].1);
    base.reap_stale().await;
    let dir = bench_dir(&config)?;
    let svc_dir = dir.service_dir();
    let subjects = subjects(&config, &base, &svc_dir)?;
    let mut results = Vec::new();
    for subject in &subjects {
        for (name, engine) in &ocis {
            if cancel.is_cancelled() {
                break;
            }
            if config.progress {
                eprintln!(
                    "ignite bench: {} on {name}: {} runs at a time for {} s",
                    subject.key,
                    tp.concurrency,
                    tp.duration.as_secs_f64()
                );
            }
            results.push(throughput::measure_one(engine, name, subject, tp, &cancel).await?);
        }
    }
    base.reap_stale().await;
    let _ = std::fs::remove_file(LastReports::new(&config.settings.cache_dir).path(&svc_dir));
    drop(dir);
    let oci_facts: Vec<(String, &Path)> =
        ocis.iter().zip(&config.ocis).map(|((name, _), c)| (name.clone(), c.binary.as_path())).collect();
    Ok(ThroughputReport {
        host: host::gather(&oci_facts),
        program: format!("hello.js: {}", PROGRAM.trim()),
        concurrency: tp.concurrency,
        duration_seconds: tp.duration.as_secs_f64(),
        notes: config.notes.clone(),
        results,
    })
}

/// A time budget as `--budget` takes it: `300`, `300s`, `90s`, `5m`, `1h`.
pub fn parse_budget(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration; use e.g. 300, 90s, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use s, m or h")),
    };
    if secs == 0 {
        return Err("the budget must be more than 0 seconds".into());
    }
    Ok(Duration::from_secs(secs))
}

/// The runtimes under test, through the façade: each resolved, its bundle looked up (as the
/// preflight checks see it: nothing is fetched), its bare command derived from the spec a real
/// run of it gets.
fn subjects(config: &BenchConfig, base: &Engine, svc_dir: &Path) -> Result<Vec<Subject>, BenchError> {
    let cache = config.settings.cache_dir.clone();
    let explicit = !config.runtimes.is_empty();
    let specs: Vec<String> =
        if explicit { config.runtimes.clone() } else { DEFAULT_RUNTIMES.iter().map(|s| s.to_string()).collect() };
    let mut out = Vec::new();
    for spec in specs {
        let key = base.registry().resolve(&spec)?.key();
        let overrides = Overrides { runtime: Some(key.clone()), ..Overrides::default() };
        let service = service::load(svc_dir, true, &overrides, &service::PassEnv::none())?;
        let present = base.preflight(&service)?.checks.iter().any(|c| match c {
            Check::Runtime(r) => r.bundle == BundleState::Present,
            _ => false,
        });
        if !present {
            if explicit {
                return Err(BenchError::BundleMissing { runtime: key, spec, cache });
            }
            continue;
        }
        // Built and validated like a run's, nothing started; its uid lease is released at once.
        let run_spec = base.spec(Request::new(Program::Service(Box::new(service.clone()))))?;
        let bare = reduced::bare_command(&run_spec, &service.dir)
            .map_err(|source| BenchError::Bare { runtime: key.clone(), source: Box::new(source.into()) })?;
        out.push(Subject { key, service, bare });
    }
    if out.is_empty() {
        return Err(BenchError::NoRuntimes { cache });
    }
    Ok(out)
}

fn cells(levels: &[Level], modes: &[Mode], subjects: usize, ocis: usize) -> Vec<Cell> {
    let new = |runtime, level, oci, mode| Cell {
        runtime,
        level,
        oci,
        mode,
        samples: Vec::new(),
        status: CellStatus::Ok,
        note: None,
        warm: None,
    };
    let mut out = Vec::new();
    for rt in 0..subjects {
        for &level in levels {
            if level == Level::Bare {
                // Bare runs have neither an OCI runtime nor a pool.
                if modes.contains(&Mode::Cold) {
                    out.push(new(rt, level, None, Mode::Cold));
                }
                continue;
            }
            for oci in 0..ocis {
                for &mode in modes {
                    // A pool serves real runs only: the reduced levels have no warm form.
                    if mode == Mode::Warm && !level.is_full() {
                        continue;
                    }
                    out.push(new(rt, level, Some(oci), mode));
                }
            }
        }
    }
    out
}

/// One run of a cell.
async fn run_cell(
    cell: &mut Cell,
    subject: &Subject,
    ocis: &[Oci],
    cancel: &CancellationToken,
) -> Result<Sample, RunError> {
    let audit = cell.level == Level::Audit;
    let svc = &subject.service;
    match (cell.oci, cell.mode) {
        (None, _) => reduced::run_bare(&subject.bare, EXPECT, cancel).await,
        (Some(o), Mode::Cold) if cell.level.is_full() => {
            full::run(&ocis[o].engine, svc, audit, false, EXPECT, cancel).await.map(|(_, sample)| sample)
        }
        (Some(o), Mode::Cold) => ocis[o].reduced.run(svc, cell.level, EXPECT, cancel).await,
        (Some(o), Mode::Warm) => {
            if cell.warm.is_none() {
                cell.warm = Some(WarmRunner::start(&ocis[o].settings, svc, audit, EXPECT, cancel).await?);
            }
            match &cell.warm {
                Some(w) => w.run(svc, audit, EXPECT, cancel).await,
                None => Err(RunError::Unavailable("no warm pool".to_string())),
            }
        }
    }
}

async fn measure(
    config: &BenchConfig,
    ocis: &[Oci],
    base: &Engine,
    svc_dir: &Path,
    cancel: &CancellationToken,
) -> Result<BenchReport, BenchError> {
    let began = Instant::now();
    let subjects = subjects(config, base, svc_dir)?;
    let mut cells = cells(&config.levels, &config.modes, subjects.len(), ocis.len());
    if cells.is_empty() {
        return Err(BenchError::Empty);
    }
    let rounds = config.warmup + config.runs;
    let mut stopped = None;
    'rounds: for round in 0..rounds {
        if config.progress {
            let phase = if round < config.warmup { " (warm-up)" } else { "" };
            eprintln!(
                "ignite bench: round {}/{rounds}{phase} · {} cells · {:.1} s of {} s budget",
                round + 1,
                cells.len(),
                began.elapsed().as_secs_f64(),
                config.budget.as_secs()
            );
        }
        for cell in cells.iter_mut() {
            if cancel.is_cancelled() {
                stopped = Some("interrupted".to_string());
                break 'rounds;
            }
            if began.elapsed() >= config.budget {
                stopped = Some(format!(
                    "the {} s time budget ran out after round {} of {rounds} (--budget)",
                    config.budget.as_secs(),
                    round + 1
                ));
                break 'rounds;
            }
            if cell.status != CellStatus::Ok {
                continue;
            }
            let subject = &subjects[cell.runtime];
            match run_cell(cell, subject, ocis, cancel).await {
                Ok(sample) if round >= config.warmup => cell.samples.push(sample),
                Ok(_) => {}
                Err(RunError::Cancelled) => {
                    stopped = Some("interrupted".to_string());
                    break 'rounds;
                }
                Err(RunError::Unavailable(why)) => {
                    cell.status = CellStatus::Unavailable;
                    cell.note = Some(why);
                }
                Err(e) => {
                    let label = format!(
                        "{} {}{}",
                        subject.key,
                        cell.level,
                        cell.oci.map(|o| format!(" {} {}", ocis[o].name, cell.mode.as_str())).unwrap_or_default()
                    );
                    if config.progress {
                        eprintln!("ignite bench: {label}: {e}; this cell is not run again");
                    }
                    cell.status = CellStatus::Failed;
                    cell.note = Some(e.to_string());
                }
            }
        }
    }
    for cell in cells.iter_mut() {
        if let Some(w) = cell.warm.take() {
            w.shutdown().await;
        }
    }
    // Every run removed its own container; this is for a run the supervisor could not finish
    // removing (it says so in the log), as `ignite cleanup` would.
    base.reap_stale().await;

    let mut results: Vec<CellResult> = cells
        .iter()
        .map(|c| CellResult {
            runtime: subjects[c.runtime].key.clone(),
            level: c.level,
            oci: c.oci.map(|o| ocis[o].name.clone()),
            mode: c.mode,
            status: c.status,
            note: c.note.clone(),
            runs: c.samples.len(),
            total: stats::summarize(&c.samples.iter().map(|s| s.total_ms).collect::<Vec<_>>()),
            overhead: None,
            phases: PhaseSummaries::of(&c.samples.iter().map(|s| s.phases).collect::<Vec<_>>()),
        })
        .collect();
    output::add_overheads(&mut results);
    let oci_facts: Vec<(String, &Path)> =
        ocis.iter().zip(&config.ocis).map(|(o, c)| (o.name.clone(), c.binary.as_path())).collect();
    Ok(BenchReport {
        host: host::gather(&oci_facts),
        program: format!("hello.js: {}", PROGRAM.trim()),
        runs: config.runs,
        warmup: config.warmup,
        budget_seconds: config.budget.as_secs_f64(),
        elapsed_seconds: began.elapsed().as_secs_f64(),
        stopped,
        notes: config.notes.clone(),
        cells: results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets() {
        assert_eq!(parse_budget("300").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_budget("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_budget("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_budget("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_budget("5 minutes").unwrap_err().contains("unknown unit"));
        assert!(parse_budget("m").is_err());
        assert!(parse_budget("0").is_err());
    }

    #[test]
    fn matrix_shape() {
        let all = cells(&Level::ALL, &[Mode::Cold, Mode::Warm], 2, 2);
        // Per runtime: bare once, then 4 levels × 2 OCI runtimes cold, and seccomp + audit warm.
        assert_eq!(all.len(), 2 * (1 + 4 * 2 + 2 * 2));
        assert!(all.iter().filter(|c| c.level == Level::Bare).all(|c| c.oci.is_none() && c.mode == Mode::Cold));
        assert!(all.iter().filter(|c| c.mode == Mode::Warm).all(|c| matches!(c.level, Level::Seccomp | Level::Audit)));
        let warm_only = cells(&[Level::Bare, Level::Namespaces], &[Mode::Warm], 1, 1);
        assert!(warm_only.is_empty());
    }
}
