//! Warm mode of `ignite bench`: runs served by the warm pool inside an engine
//! ([`Engine::with_pool`]), one sandbox created and started ahead, its entrypoint waiting for
//! the job. Each cell has an engine (and so a pool) of its own holding one sandbox; its first,
//! untimed run goes cold and makes the pool start one. Before every measured run the
//! benchmark waits (untimed) until the replacement of the previous run is parked, so every
//! sample is a warm hit, as a request finds it on a server whose pool keeps up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::full;
use super::sample::{RunError, Sample};
use crate::data::service::Service;
use crate::engine::{Engine, PoolConfig, Settings, Sizing};

/// How long a run waits (untimed) for the cell's sandbox to be parked.
const PARK_WAIT: Duration = Duration::from_secs(30);

/// One warm cell's engine, kept across its runs.
pub(super) struct WarmRunner {
    engine: Engine,
    service: String,
}

impl WarmRunner {
    /// Makes the engine that serves the cell of `svc` (`audit` for the audit level), and runs
    /// it once, untimed and cold, so that its pool starts the cell's sandbox.
    pub(super) async fn start(
        settings: &Settings,
        svc: &Service,
        audit: bool,
        expect: &str,
        cancel: &CancellationToken,
    ) -> Result<WarmRunner, RunError> {
        let config = PoolConfig {
            default: Sizing { min: 1, max: 1 },
            overrides: BTreeMap::new(),
            idle_ttl: Duration::from_secs(3600),
            // Room for the parked sandbox, the one whose run just ended (still being removed,
            // in the background) and the one in use.
            memory_budget_mb: 3 * u64::from(svc.memory_mb),
        };
        let engine = Engine::new(settings.clone()).map_err(crate::engine::RunError::from)?.with_pool(config);
        let runner = WarmRunner { engine, service: svc.name.clone() };
        if let Err(e) = full::run(&runner.engine, svc, audit, true, expect, cancel).await {
            runner.shutdown().await;
            return Err(e);
        }
        if runner.stats().cold_only > 0 {
            runner.shutdown().await;
            return Err(RunError::Unavailable(
                "this job cannot be served warm (it needs per-run resources)".to_string(),
            ));
        }
        Ok(runner)
    }

    /// One timed run through the pool: from the request to its report (the container's
    /// removal continues in the background, as on the server).
    pub(super) async fn run(
        &self,
        svc: &Service,
        audit: bool,
        expect: &str,
        cancel: &CancellationToken,
    ) -> Result<Sample, RunError> {
        tokio::select! {
            parked = self.parked() => parked?,
            _ = cancel.cancelled() => return Err(RunError::Cancelled),
        }
        let (report, sample) = full::run(&self.engine, svc, audit, true, expect, cancel).await?;
        if !report.metrics.warm {
            return Err(RunError::Outcome("the pool had no warm sandbox ready: the run went cold".to_string()));
        }
        Ok(sample)
    }

    /// The pool's counters of the benchmark's service.
    fn stats(&self) -> Counters {
        let stats = self.engine.pool_stats().unwrap_or_default();
        let s = stats.services.get(&self.service).cloned().unwrap_or_default();
        Counters { parked: s.parked, cold_only: s.cold_only, launch_failures: s.launch_failures }
    }

    /// Waits until the cell's sandbox is parked: the replacement of the previous run starts
    /// once that run's report is out, so it may not even be counted as starting yet.
    async fn parked(&self) -> Result<(), RunError> {
        let since = Instant::now();
        loop {
            let s = self.stats();
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
    pub(super) async fn shutdown(&self) {
        self.engine.shutdown().await;
    }
}

/// What the benchmark reads of the pool's counters.
struct Counters {
    parked: usize,
    cold_only: u64,
    launch_failures: u64,
}
