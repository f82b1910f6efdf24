//! Warm mode of `ignite bench`: runs served by a warm pool ([`crate::engine::pool::Pool`]), one
//! sandbox created and started ahead, its entrypoint waiting for the job. Each cell has a pool
//! of its own holding one sandbox; before every measured run the benchmark waits (untimed)
//! until the replacement of the previous run is parked, so every sample is a warm hit, as a
//! request finds it on a server whose pool keeps up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::driver::{PhaseTimes, RunError, Sample};
use crate::engine::pool::{Pool, PoolConfig, Sizing};
use crate::engine::supervisor::{OutputSink, Stream};
use crate::engine::{Engine, Job};

/// How long a run waits (untimed) for the cell's sandbox to be parked.
const PARK_WAIT: Duration = Duration::from_secs(30);

/// One warm cell's pool, kept across its runs.
pub(super) struct WarmRunner {
    pool: Pool,
}

/// Notes when the program's first stdout byte reached ignite.
struct FirstOutput(Mutex<Option<Instant>>);

impl OutputSink for FirstOutput {
    fn chunk(&self, stream: Stream, bytes: &[u8]) {
        if stream == Stream::Stdout && !bytes.is_empty() {
            let mut first = self.0.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(Instant::now);
        }
    }
}

impl WarmRunner {
    /// Makes the pool that serves `job`'s cell and starts its one sandbox.
    pub(super) fn start(engine: &Arc<Engine>, job: &Job) -> Result<WarmRunner, RunError> {
        let config = PoolConfig {
            default: Sizing { min: 1, max: 1 },
            overrides: BTreeMap::new(),
            idle_ttl: Duration::from_secs(3600),
            // Room for the parked sandbox, the one whose run just ended (still being removed,
            // in the background) and the one in use.
            memory_budget_mb: 3 * u64::from(job.service.memory_mb),
        };
        let pool = Pool::new(engine.runner().clone(), config);
        if pool.warm_up(job, 1) == 0 {
            return Err(RunError::Unavailable(
                "this job cannot be served warm (it needs per-run resources)".to_string(),
            ));
        }
        Ok(WarmRunner { pool })
    }

    /// One timed run through the pool: from the request to its report (the container's
    /// removal continues in the background, as on the server).
    pub(super) async fn run(&self, job: &Job, expect: &str, cancel: &CancellationToken) -> Result<Sample, RunError> {
        tokio::select! {
            parked = self.parked(job) => parked?,
            _ = cancel.cancelled() => return Err(RunError::Cancelled),
        }
        let sink = Arc::new(FirstOutput(Mutex::new(None)));
        let begin = Instant::now();
        let report = self.pool.execute(job.clone(), Some(sink.clone()), cancel.clone()).await?;
        let end = Instant::now();
        if cancel.is_cancelled() {
            return Err(RunError::Cancelled);
        }
        if !report.metrics.warm {
            return Err(RunError::Outcome("the pool had no warm sandbox ready: the run went cold".to_string()));
        }
        if report.exit_code != Some(0) || !report.stdout.contains(expect) {
            return Err(RunError::Outcome(format!(
                "expected exit 0 and {expect:?} on stdout, got {:?} and {:?}",
                report.exit_code, report.stdout
            )));
        }
        let ms = |to: Instant| to.saturating_duration_since(begin).as_secs_f64() * 1000.0;
        let first = *sink.0.lock().unwrap_or_else(|e| e.into_inner());
        let phases = PhaseTimes {
            spec: None,
            create: None,
            start: Some(report.metrics.phases.launch_ms),
            first_output: first.map(|t| ms(t).min(ms(end))),
            exit: Some(ms(end)),
            delete: None,
        };
        Ok(Sample { total_ms: ms(end), phases })
    }

    /// Waits until the cell's sandbox is parked: the replacement of the previous run starts
    /// once that run's report is out, so it may not even be counted as starting yet.
    async fn parked(&self, job: &Job) -> Result<(), RunError> {
        let since = Instant::now();
        loop {
            let stats = self.pool.stats();
            let s = stats.services.get(&job.service.name).cloned().unwrap_or_default();
            if s.parked > 0 {
                return Ok(());
            }
            if since.elapsed() > PARK_WAIT {
                return Err(RunError::Outcome(format!(
                    "no warm sandbox was parked within {} s ({} launch failure(s))",
                    PARK_WAIT.as_secs(),
                    s.launch_failures
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Removes the pool's sandboxes; called once at the end of the benchmark, on every path.
    pub(super) async fn shutdown(self) {
        self.pool.shutdown().await;
    }
}
