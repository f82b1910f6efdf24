//! `ignite bench`: flags → [`ignite::bench::BenchConfig`], then the table, JSON, CSV and chart.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use super::{GlobalArgs, error_text, print_stdout, settings, with_signals};
use ignite::bench::{self, BenchConfig, Level, Mode, OciChoice};
use ignite::host::doctor::select;

pub const BENCH_HELP: &str = "\
Every run executes the same one-line program (console.log) on each runtime. Levels, from least
to most isolation:
  bare        the runtime binary from the unpacked bundle, run directly on the host
  namespaces  OCI container: namespaces, read-only root, own uid, no capabilities; no limits,
              no seccomp
  cgroups     + memory, CPU and pids limits
  seccomp     + the seccomp profile and the spawn guard: exactly what `ignite run` does
  audit       + audit mode (`ignite run --audit`)
The reduced levels exist only inside `ignite bench` (the spec of a real run with pieces taken
away); no run outside it can get one.

Every sandboxed run is supervised as `ignite run`'s are: seccomp and audit are real runs
through the engine, the reduced levels get the same supervisor with their reduced spec. Cold
runs create every sandbox from nothing; warm runs go through the engine's warm pool (one sandbox
started ahead, its replacement parked, untimed, before each run). Rounds interleave the cells.
Times per run: p50/p95/p99/mean/min of the whole run (everything ignite does), overhead vs the
runtime's bare p50, and the median of each phase, as the run's report records it: spec
(ignite's work outside the supervisor: prepare, the spec, grants, keeping the report), create
(OCI runtime launched → program exec, by the entrypoint's clock), start (the same, as ignite saw
it; warm: job handover → exec), first output and exit (counted from the start of the run),
delete (release → container gone). Containers, cgroups, run directories and uids are removed
after each run, also on Ctrl-C (the report then has what was measured).

THROUGHPUT (--throughput): instead of the matrix, each runtime × OCI runtime is loaded with
--concurrency cold runs at a time (real runs, as `ignite run` makes them) for --duration; the
runs in flight then finish. Reported: runs/s, latency p50/p99, the CPU per run split into
ignite's own process (getrusage self), the program (the runtime and its children, the
entrypoint's rusage in each report) and the OCI runtime (the rest of what ignite's waited-for
children used: `runc run` and its init inside the container), and the share of the host's CPUs
the work kept busy. The OCI runtime's share is the ceiling ignite cannot lower.

EXAMPLES:
  ignite bench                                   # present bundles × all levels × runc, cold
  ignite bench --throughput --runtime bun --oci runc --oci crun --concurrency 8 --duration 30s
  ignite bench --runtime bun --level bare --level seccomp --runs 50
  ignite bench --json > bench.json               # one JSON document on stdout
  ignite bench --csv bench.csv --chart bench.svg # table on stdout, files beside it
  ignite bench --oci runc --oci youki --budget 10m";

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Runtime to measure, e.g. `bun` or `node@22` (repeatable) [default: bun, node, deno and
    /// quickjs, those whose bundle is present].
    #[arg(long, short = 'r', value_name = "RUNTIME")]
    runtime: Vec<String>,
    /// Isolation level (repeatable): bare, namespaces, cgroups, seccomp, audit [default: all].
    #[arg(long, value_name = "LEVEL")]
    level: Vec<Level>,
    /// OCI runtime, a name looked up in PATH or a path (repeatable) [default: --oci-runtime
    /// when given, else runc, crun and youki, those installed].
    #[arg(long, value_name = "NAME|PATH")]
    oci: Vec<String>,
    /// cold, warm (repeatable) [default: both].
    #[arg(long, value_name = "MODE")]
    mode: Vec<Mode>,
    /// Measured runs per cell.
    #[arg(long, value_name = "N", default_value_t = 20)]
    runs: usize,
    /// Unmeasured runs per cell before them.
    #[arg(long, value_name = "N", default_value_t = 2)]
    warmup: usize,
    /// Total time allowed: no run starts after it (the report says so), e.g. 300, 90s, 5m.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = bench::parse_budget)]
    budget: Duration,
    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write one CSV row per cell to FILE.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Also write an SVG chart to FILE.
    #[arg(long, value_name = "FILE.svg")]
    chart: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Measure throughput instead of the matrix: --concurrency cold runs at a time for
    /// --duration, per runtime × OCI runtime (see THROUGHPUT below).
    #[arg(long, conflicts_with_all = ["level", "mode", "runs", "warmup", "budget", "csv", "chart"])]
    throughput: bool,
    /// With --throughput: runs in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8, requires = "throughput")]
    concurrency: usize,
    /// With --throughput: how long new runs are started, e.g. 30, 30s, 2m.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = bench::parse_budget, requires = "throughput")]
    duration: Duration,
}

impl BenchArgs {
    pub fn json(&self) -> bool {
        self.json
    }
}

pub fn bench(g: &GlobalArgs, oci_explicit: bool, a: BenchArgs) -> anyhow::Result<i32> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut notes = Vec::new();
    let names: Vec<String> = if !a.oci.is_empty() {
        a.oci.clone()
    } else if oci_explicit {
        vec![g.oci_runtime.clone()]
    } else {
        Vec::new()
    };
    let path_env = std::env::var_os("PATH");
    // Resolved as a run resolves `--oci-runtime`: its kind from `--version`, refused when this
    // host is known to break it.
    let choose = |name: &str| -> anyhow::Result<OciChoice> {
        let s = select::select(name, path_env.as_deref(), &g.state_dir, std::path::Path::new("/"))?;
        Ok(OciChoice { kind: s.kind, binary: s.path })
    };
    let mut ocis = Vec::new();
    if names.is_empty() {
        // Whatever is installed and usable here; the others are said, not hidden.
        for name in ["runc", "crun", "youki"] {
            if select::locate(name, path_env.as_deref()).is_err() {
                continue;
            }
            match choose(name) {
                Ok(c) => ocis.push(c),
                Err(e) => notes.push(format!("{name} skipped: {}", error_text(&e))),
            }
        }
    } else {
        for name in &names {
            ocis.push(choose(name)?);
        }
    }
    let levels = if a.level.is_empty() { Level::ALL.to_vec() } else { dedup(a.level) };
    if ocis.is_empty() && levels.iter().any(|l| *l != Level::Bare) {
        bail!("no usable OCI runtime found in PATH; install runc (apt-get install runc) or pass --oci PATH");
    }
    let config = BenchConfig {
        settings: settings(g)?,
        runtimes: a.runtime.clone(),
        levels,
        ocis,
        modes: if a.mode.is_empty() { vec![Mode::Cold, Mode::Warm] } else { dedup(a.mode) },
        runs: a.runs,
        warmup: a.warmup,
        budget: a.budget,
        notes,
        progress: !a.quiet,
    };
    if a.throughput {
        if a.concurrency == 0 || a.concurrency > 256 {
            bail!("--concurrency must be between 1 and 256");
        }
        let tp = bench::ThroughputConfig { concurrency: a.concurrency, duration: a.duration };
        let (report, signal) = with_signals(|cancel| bench::run_throughput(config, tp, cancel))?;
        let report = report?;
        if a.json {
            print_stdout(&(serde_json::to_string_pretty(&report).context("failed to serialise the result")? + "\n"))?;
        } else {
            print_stdout(&format!("{}\n{}", report.host.line(), bench::throughput::table(&report.results)))?;
        }
        return Ok(match signal {
            Some(sig) => 128 + sig,
            None if report.failed() => 1,
            None => 0,
        });
    }
    let (report, signal) = with_signals(|cancel| bench::run(config, cancel))?;
    let report = report?;
    if let Some(path) = &a.csv {
        std::fs::write(path, bench::output::csv(&report))
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    if let Some(path) = &a.chart {
        std::fs::write(path, bench::chart::svg(&report))
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    if a.json {
        print_stdout(&(serde_json::to_string_pretty(&report).context("failed to serialise the result")? + "\n"))?;
    } else {
        print_stdout(&bench::output::table(&report))?;
    }
    Ok(match signal {
        Some(sig) => 128 + sig,
        None if report.cells.iter().any(|c| c.status == bench::CellStatus::Failed) => 1,
        None => 0,
    })
}

fn dedup<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out = Vec::new();
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}
