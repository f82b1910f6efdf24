//! The full isolation levels (`seccomp`, `audit`): real runs, through the engine's façade
//! ([`Engine::run`]) exactly as `ignite run` makes them — cold, or warm on an engine with a
//! pool ([`super::warm`]) — timed around the call, their phases taken from the report the
//! supervisor assembled.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::sample::{self, FirstOutput, RunError, Sample};
use crate::data::report::Report;
use crate::data::service::Service;
use crate::engine::{Engine, PreflightGate, Program, Request};

/// One timed run of `svc` at a full level (`audit` for the audit level). `warm` lets the
/// engine's pool serve it; the caller checks that it did.
pub(super) async fn run(
    engine: &Engine,
    svc: &Service,
    audit: bool,
    warm: bool,
    expect: &str,
    cancel: &CancellationToken,
) -> Result<(Report, Sample), RunError> {
    let mut req = Request::new(Program::Service(Box::new(svc.clone())));
    req.audit = audit;
    req.warm = warm;
    // Not gated: the program is ignite's own one-liner, whose runtime bundle was checked when
    // the runtimes were chosen, and the reduced levels (below the façade) have no gate;
    // without it the levels stay comparable with each other and with earlier benchmarks.
    req.preflight = PreflightGate::Skip;
    // Cold cells pay what `ignite run` pays (it keeps the last report); warm cells what a
    // server's execution pays (it keeps none).
    req.keep_report = !warm;
    let sink = Arc::new(FirstOutput::default());
    req.sink = Some(sink.clone());
    let began = Instant::now();
    let outcome = engine.run(req, cancel.clone()).await;
    let ended = Instant::now();
    if cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    let report = outcome?.report;
    let sample = sample::from_report(&report, began, sink.at(), ended, expect)?;
    Ok((report, sample))
}
