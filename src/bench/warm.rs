//! Warm mode of `ignite bench`: runs served by a warm pool (a sandbox created and started
//! ahead, its entrypoint waiting for the job). This build has no pool, so every warm cell is
//! reported as unavailable ("n/a (no pool)").
//!
//! Wiring the pool in (`ignite::pool::Pool`) is [`WarmRunner::start`] and [`WarmRunner::run`]:
//! `start` makes `Pool::new(engine.clone(), PoolConfig { min: 1, max: 1, .. })` for the cell's
//! job and keeps it; `run` times `pool.execute(job.clone(), Some(sink), cancel.clone())` (a sink
//! that notes the instant of the first stdout chunk gives `firstOutput`), checks that the
//! report is marked warm and its stdout holds `expect` (else `RunError::Outcome`), and
//! returns the wall time as `total_ms` with `exit` = wall time at return; `shutdown` calls
//! `pool.shutdown()`. The matrix, summaries, table, JSON, CSV and chart need no change.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::driver::{RunError, Sample};
use crate::engine::{Engine, Job};

/// Why warm cells are empty in this build.
pub const NO_POOL: &str = "no pool";

/// One warm cell's pool, kept across its runs.
pub(super) struct WarmRunner {
    _engine: Arc<Engine>,
}

impl WarmRunner {
    /// Prepares the pool that serves `job`'s cell.
    pub(super) fn start(_engine: &Arc<Engine>, _job: &Job) -> Result<WarmRunner, RunError> {
        Err(RunError::Unavailable(NO_POOL.to_string()))
    }

    /// One timed run through the pool.
    pub(super) async fn run(&self, _job: &Job, _expect: &str, _cancel: &CancellationToken) -> Result<Sample, RunError> {
        Err(RunError::Unavailable(NO_POOL.to_string()))
    }

    /// Stops the pool's sandboxes; called once at the end of the benchmark, on every path.
    pub(super) async fn shutdown(self) {}
}
