//! `ignite bench`: what isolation costs on this host. A matrix of runtime × isolation level
//! ([`Level`]) × OCI runtime × cold/warm runs of one small program, each cell run N times
//! (rounds interleave the cells, so drift on a busy host spreads over all of them), within a
//! time budget; summarised as percentiles, overhead against the bare runtime, and per-phase
//! times. The reduced isolation levels exist only here (see `levels`).

pub mod chart;
mod driver;
pub mod host;
mod levels;
pub mod output;
pub mod stats;
mod warm;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub use driver::{PhaseTimes, RunError, Sample};
pub use levels::Level;
pub use output::{BenchReport, CellResult, CellStatus, Mode, PhaseSummaries};

use crate::data::policy::{self, PolicyError};
use crate::data::runtime::RuntimeError;
use crate::data::service::{self, Overrides, ServiceError};
use crate::engine::supervisor::StateDir;
use crate::engine::{DEFAULT_GRACE, Engine, EngineError, Job, Settings};
use crate::fsutil::owned::{self, Leftover};
use crate::fsutil::{At, IoError};
use crate::sandbox::oci::{CliRuntime, OciKind};
use crate::store::bundle::{BundleStore, NoProgress};
use driver::{BareCommand, Sandboxed};
use warm::WarmRunner;

/// The runtimes benchmarked by default, when their bundle is present.
pub const DEFAULT_RUNTIMES: [&str; 4] = ["bun", "node", "deno", "quickjs"];
/// The program every run executes: the same source on every runtime.
const PROGRAM: &str = "console.log(\"hello from ignite bench\");\n";
const EXPECT: &str = "hello from ignite bench";
/// Under the state dir: the benchmark's service directory, owned by the live benchmark.
const BENCH_DIR: &str = "bench";

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Io(#[from] IoError),
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
    /// Index into the engines; `None` for bare runs.
    oci: Option<usize>,
    mode: Mode,
    samples: Vec<Sample>,
    status: CellStatus,
    note: Option<String>,
    warm: Option<WarmRunner>,
}

/// A runtime under test: its exact key and everything its runs need.
struct Subject {
    key: String,
    job: Job,
    audit_job: Job,
    bare: BareCommand,
}

struct Oci {
    name: String,
    engine: Arc<Engine>,
    driver: CliRuntime,
}

/// Runs the matrix. Ctrl-C (`cancel`) stops after cleaning up the run in flight; the report
/// then has what was measured so far.
pub async fn run(config: BenchConfig, cancel: CancellationToken) -> Result<BenchReport, BenchError> {
    let state = StateDir { root: config.settings.state_dir.clone() };
    let mut ocis = Vec::new();
    for choice in &config.ocis {
        let settings = Settings { oci_kind: choice.kind, oci_binary: choice.binary.clone(), ..config.settings.clone() };
        let engine = Arc::new(Engine::new(settings)?);
        let driver =
            CliRuntime::new(choice.kind, choice.binary.clone(), state.oci_root(choice.kind.as_str()), state.runs());
        ocis.push(Oci { name: choice.kind.as_str().to_string(), engine, driver });
    }
    // Bare runs need a spec too (the command comes from it), but no OCI runtime.
    let base = match ocis.first() {
        Some(o) => o.engine.clone(),
        None => Arc::new(Engine::new(config.settings.clone())?),
    };
    base.reap_stale().await;
    reap_bench_dirs(&state.root);

    let (dir, lock) =
        owned::create(&state.root.join(BENCH_DIR), &format!("run-{}", std::process::id()), 0o755, |tmp| {
            let svc = tmp.join("hello");
            std::fs::create_dir(&svc).at("create", &svc)?;
            std::fs::write(svc.join("hello.js"), PROGRAM).at("write", svc.join("hello.js"))?;
            std::fs::write(
                svc.join("service.yaml"),
                "service:\n  name: bench\n  entry: hello.js\n  timeoutMs: 30000\n",
            )
            .at("write", svc.join("service.yaml"))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&svc, std::fs::Permissions::from_mode(0o755)).at("chmod", &svc)
        })?;
    let result = measure(&config, &state, &ocis, &base, &dir.join("hello"), &cancel).await;
    drop(lock);
    let _ = std::fs::remove_dir_all(&dir);
    result
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

/// Removes benchmark directories whose benchmark died (a crash, SIGKILL).
fn reap_bench_dirs(state_root: &Path) {
    for leftover in owned::leftovers(&state_root.join(BENCH_DIR)) {
        let dir = match leftover {
            Leftover::Abandoned { dir, .. } | Leftover::Dead { dir, .. } => dir,
        };
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn subjects(config: &BenchConfig, base: &Engine, svc_dir: &Path) -> Result<Vec<Subject>, BenchError> {
    let store = BundleStore::new(config.settings.cache_dir.clone());
    let explicit = !config.runtimes.is_empty();
    let specs: Vec<String> =
        if explicit { config.runtimes.clone() } else { DEFAULT_RUNTIMES.iter().map(|s| s.to_string()).collect() };
    let mut out = Vec::new();
    for spec in specs {
        let rt = base.registry().resolve(&spec)?;
        if store.present(&rt).is_none() {
            if explicit {
                return Err(BenchError::BundleMissing { runtime: rt.key(), spec, cache: store.root().to_path_buf() });
            }
            continue;
        }
        let overrides = Overrides { runtime: Some(rt.key()), ..Overrides::default() };
        let svc = service::load(svc_dir, true, &overrides, &service::PassEnv::none())?;
        let job = |audit: bool| -> Result<Job, BenchError> {
            Ok(Job {
                service: svc.clone(),
                input: "{}".into(),
                policy: policy::resolve(svc_dir, None, audit)?.policy,
                grace: DEFAULT_GRACE,
                workspace: None,
                audit,
                identity: None,
            })
        };
        let job_plain = job(false)?;
        // The uid lease and anything else prepared is released right away.
        let prepared = base.runner().prepare(&job_plain, &NoProgress)?;
        let spec = base.runner().preview_spec(&prepared, &job_plain)?;
        let bare = driver::bare_command(&spec, &svc.dir)
            .map_err(|source| BenchError::Bare { runtime: rt.key(), source: Box::new(source) })?;
        out.push(Subject { key: prepared.runtime.key(), audit_job: job(true)?, job: job_plain, bare });
    }
    if out.is_empty() {
        return Err(BenchError::NoRuntimes { cache: store.root().to_path_buf() });
    }
    Ok(out)
}

fn cells(config: &BenchConfig, subjects: usize, ocis: usize) -> Vec<Cell> {
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
        for &level in &config.levels {
            if level == Level::Bare {
                // Bare runs have neither an OCI runtime nor a pool.
                if config.modes.contains(&Mode::Cold) {
                    out.push(new(rt, level, None, Mode::Cold));
                }
                continue;
            }
            for oci in 0..ocis {
                for &mode in &config.modes {
                    // A pool serves real runs only: the reduced levels have no warm form.
                    if mode == Mode::Warm && !matches!(level, Level::Seccomp | Level::Audit) {
                        continue;
                    }
                    out.push(new(rt, level, Some(oci), mode));
                }
            }
        }
    }
    out
}

async fn measure(
    config: &BenchConfig,
    state: &StateDir,
    ocis: &[Oci],
    base: &Arc<Engine>,
    svc_dir: &Path,
    cancel: &CancellationToken,
) -> Result<BenchReport, BenchError> {
    let began = Instant::now();
    let subjects = subjects(config, base, svc_dir)?;
    let mut cells = cells(config, subjects.len(), ocis.len());
    if cells.is_empty() {
        return Err(BenchError::Empty);
    }
    let live = Mutex::new(BTreeSet::new());
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
            let job = if cell.level == Level::Audit { &subject.audit_job } else { &subject.job };
            let result = match (cell.oci, cell.mode) {
                (None, _) => driver::run_bare(&subject.bare, EXPECT, cancel).await,
                (Some(o), Mode::Cold) => {
                    let ctx =
                        Sandboxed { engine: &ocis[o].engine, oci: &ocis[o].driver, state, expect: EXPECT, live: &live };
                    driver::run_sandboxed(&ctx, job, cell.level, cancel).await
                }
                (Some(o), Mode::Warm) => match &cell.warm {
                    Some(w) => w.run(job, EXPECT, cancel).await,
                    None => match WarmRunner::start(&ocis[o].engine, job) {
                        Ok(w) => {
                            let r = w.run(job, EXPECT, cancel).await;
                            cell.warm = Some(w);
                            r
                        }
                        Err(e) => Err(e),
                    },
                },
            };
            match result {
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
    // A Ctrl-C at the terminal reaches the OCI runtime's own processes too: one more try for
    // any container whose deletion did not go through.
    let leftover: Vec<String> = live.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
    for id in leftover {
        for o in ocis {
            let ctx = Sandboxed { engine: &o.engine, oci: &o.driver, state, expect: EXPECT, live: &live };
            driver::remove_container(&ctx, &id).await;
        }
        let _ = std::fs::remove_dir_all(state.run_dir(&id));
        let _ = std::fs::remove_file(state.log_path(&id));
    }
    base.reap_stale().await;
    for cell in cells.iter_mut() {
        if let Some(w) = cell.warm.take() {
            w.shutdown().await;
        }
    }

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

    fn config(levels: Vec<Level>, modes: Vec<Mode>) -> BenchConfig {
        BenchConfig {
            settings: Settings {
                state_dir: "/s".into(),
                cache_dir: "/c".into(),
                oci_kind: OciKind::Runc,
                oci_binary: "/r".into(),
                init_binary: "/i".into(),
                hook_binary: "/h".into(),
                runtimes_dirs: vec![],
                ca_file: None,
                stripper: crate::store::stage::Stripper::Subprocess { exe: "/x".into() },
            },
            runtimes: vec![],
            levels,
            ocis: vec![],
            modes,
            runs: 2,
            warmup: 0,
            budget: Duration::from_secs(1),
            notes: vec![],
            progress: false,
        }
    }

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
        let all = cells(&config(Level::ALL.to_vec(), vec![Mode::Cold, Mode::Warm]), 2, 2);
        // Per runtime: bare once, then 4 levels × 2 OCI runtimes cold, and seccomp + audit warm.
        assert_eq!(all.len(), 2 * (1 + 4 * 2 + 2 * 2));
        assert!(all.iter().filter(|c| c.level == Level::Bare).all(|c| c.oci.is_none() && c.mode == Mode::Cold));
        assert!(all.iter().filter(|c| c.mode == Mode::Warm).all(|c| matches!(c.level, Level::Seccomp | Level::Audit)));
        let warm_only = cells(&config(vec![Level::Bare, Level::Namespaces], vec![Mode::Warm]), 1, 1);
        assert!(warm_only.is_empty());
    }
}
