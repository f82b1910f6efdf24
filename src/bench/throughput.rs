//! `ignite bench --throughput`: how many runs a host sustains. For each runtime × OCI runtime,
//! N runs at a time (each a real cold run through the engine's façade, as `ignite run` makes
//! it) for T seconds, then the runs in flight finish. Reports runs per second, latency
//! percentiles, and the CPU each run cost, split three ways from counters the sandboxed
//! program cannot touch: ignite's own process (`getrusage(RUSAGE_SELF)`), the OCI runtime
//! (`getrusage(RUSAGE_CHILDREN)`, every `runc run` ignite waited for, less what the sandboxes
//! used), and the program (its cgroup's CPU time, from each report). The ceiling the OCI
//! runtime sets is then visible on any host: compare `ociRuntime` per run with `program`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::sample::RunError;
use super::stats::{Summary, summarize};
use super::{BenchError, EXPECT, Subject, full};
use crate::data::service::Service;
use crate::engine::Engine;

/// What a throughput measurement asks for, beside the matrix's configuration.
#[derive(Debug, Clone, Copy)]
pub struct ThroughputConfig {
    /// Runs in flight at once.
    pub concurrency: usize,
    /// How long new runs are started.
    pub duration: Duration,
}

/// CPU milliseconds per completed run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuPerRun {
    /// ignite's own process: the engine, its supervisor threads, the report.
    pub ignite: f64,
    /// The OCI runtime: its processes on the host and its init inside the container (with
    /// ignite's entrypoint, which that init becomes).
    pub oci_runtime: f64,
    /// The sandboxed program: the runtime and every process it started (their rusage).
    pub program: f64,
}

/// One runtime × OCI runtime under load.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputResult {
    pub runtime: String,
    pub oci: String,
    pub concurrency: usize,
    /// From the first run started to the last one finished.
    pub elapsed_seconds: f64,
    pub runs: usize,
    pub failures: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    pub runs_per_second: f64,
    /// Whole-run latency (request → report), ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Summary>,
    pub cpu_ms_per_run: CpuPerRun,
    /// Host CPU busy with this work, as a share of all CPUs over the window (0..1).
    pub cpu_share: f64,
}

/// CPU time so far of this process and of its waited-for children, in ms.
fn rusage_ms() -> (f64, f64) {
    use nix::sys::resource::{UsageWho, getrusage};
    let ms = |who| {
        getrusage(who).map_or(0.0, |u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1000.0 + tv.tv_usec() as f64 / 1000.0;
            t(u.user_time()) + t(u.system_time())
        })
    };
    (ms(UsageWho::RUSAGE_SELF), ms(UsageWho::RUSAGE_CHILDREN))
}

#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    program_cpu_ms: f64,
    failures: usize,
    first_failure: Option<String>,
}

/// Loads `svc` onto `engine` with `config.concurrency` runs at a time for `config.duration`.
pub(super) async fn measure_one(
    engine: &Arc<Engine>,
    oci: &str,
    subject: &Subject,
    config: ThroughputConfig,
    cancel: &CancellationToken,
) -> Result<ThroughputResult, BenchError> {
    // One unmeasured run: the page cache, the uid leases and the cold-start record are warm.
    if let Err(e) = full::run(engine, &subject.service, false, false, EXPECT, cancel).await {
        tracing::warn!(runtime = %subject.key, oci, error = %e, "warm-up run failed");
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (self0, children0) = rusage_ms();
    let began = Instant::now();
    let deadline = began + config.duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        let engine = Arc::clone(engine);
        let svc: Service = subject.service.clone();
        let tally = Arc::clone(&tally);
        let cancel = cancel.clone();
        workers.spawn(async move {
            while Instant::now() < deadline && !cancel.is_cancelled() {
                let outcome = full::run(&engine, &svc, false, false, EXPECT, &cancel).await;
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Ok((report, sample)) => {
                        t.latencies.push(sample.total_ms);
                        let m = &report.metrics;
                        t.program_cpu_ms += m.user_cpu_ms.unwrap_or(0.0) + m.system_cpu_ms.unwrap_or(0.0);
                    }
                    Err(RunError::Cancelled) => break,
                    Err(e) => {
                        t.failures += 1;
                        t.first_failure.get_or_insert_with(|| e.to_string());
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = began.elapsed().as_secs_f64();
    let (self1, children1) = rusage_ms();
    let t = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    let runs = t.latencies.len();
    let per_run = |ms: f64| if runs == 0 { 0.0 } else { ms / runs as f64 };
    let ignite_ms = self1 - self0;
    let children_ms = children1 - children0;
    let oci_ms = (children_ms - t.program_cpu_ms).max(0.0);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok(ThroughputResult {
        runtime: subject.key.clone(),
        oci: oci.to_string(),
        concurrency: config.concurrency,
        elapsed_seconds: elapsed,
        runs,
        failures: t.failures,
        first_failure: t.first_failure,
        runs_per_second: if elapsed > 0.0 { runs as f64 / elapsed } else { 0.0 },
        latency_ms: summarize(&t.latencies),
        cpu_ms_per_run: CpuPerRun {
            ignite: per_run(ignite_ms),
            oci_runtime: per_run(oci_ms),
            program: per_run(t.program_cpu_ms),
        },
        cpu_share: if elapsed > 0.0 { (ignite_ms + children_ms) / (elapsed * 1000.0 * cpus) } else { 0.0 },
    })
}

/// The results as a table, one row per runtime × OCI runtime.
pub fn table(results: &[ThroughputResult]) -> String {
    let mut out = String::from(
        "runtime            oci    conc  runs  fail   runs/s    p50 ms    p99 ms   cpu/run ms: ignite    oci  program   host cpu\n",
    );
    for r in results {
        let (p50, p99) = r.latency_ms.map_or((f64::NAN, f64::NAN), |s| (s.p50, s.p99));
        out.push_str(&format!(
            "{:<18} {:<6} {:>4} {:>5} {:>5} {:>8.1} {:>9.1} {:>9.1} {:>18.1} {:>6.1} {:>8.1} {:>9.0}%\n",
            r.runtime,
            r.oci,
            r.concurrency,
            r.runs,
            r.failures,
            r.runs_per_second,
            p50,
            p99,
            r.cpu_ms_per_run.ignite,
            r.cpu_ms_per_run.oci_runtime,
            r.cpu_ms_per_run.program,
            r.cpu_share * 100.0
        ));
        if let Some(why) = &r.first_failure {
            out.push_str(&format!("  first failure: {why}\n"));
        }
    }
    out
}
