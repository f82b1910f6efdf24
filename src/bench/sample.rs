//! One timed benchmark run as data: its total time and phases, how a run's report becomes
//! them, and what a failed run says. Every sandboxed run, at every level, is supervised by
//! ignite's supervisor, and its phases are the ones the supervisor recorded in the report
//! (`metrics.phases`, `initTimeMs`, `wallTimeMs`); the benchmark adds only the clock around the
//! whole run and the moment the first output arrived.

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use super::reduced::ReducedError;
use crate::data::report::Report;
use crate::engine::{OutputSink, Stream};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cell cannot run on this build or host (e.g. a job no sandbox started ahead serves).
    #[error("{0}")]
    Unavailable(String),
    /// A run through the engine's façade (the full isolation levels, cold and warm).
    #[error(transparent)]
    Run(#[from] crate::engine::RunError),
    /// A run at a reduced level, or a bare one.
    #[error(transparent)]
    Reduced(#[from] ReducedError),
    #[error("the program did not finish within {} s", super::reduced::BARE_TIMEOUT.as_secs())]
    Timeout,
    #[error("interrupted")]
    Cancelled,
    #[error("the program {0}")]
    Outcome(String),
}

/// Per-phase times of one run, in ms.
///
/// Sandboxed runs, from their report: `spec` is ignite's work outside the supervisor (request →
/// OCI runtime launched and back: resolving, preparing, the spec, grants, keeping the report);
/// `create` the OCI runtime launched → the program's exec, by the entrypoint's clock
/// (`initTimeMs`: `runc run` creates and starts the container in one step); `start` the same
/// as ignite saw it (`phases.launchMs`; warm: job handed over → exec); `run` the program alone:
/// its exec → its exit reported and the counters read (`phases.runMs`; a bare run's spawn →
/// exit); `delete` the teardown (`phases.teardownMs`: release → container gone). `firstOutput`
/// and `exit` count from the start of the run (the request; a bare run's spawn); `exit` is the
/// run less its teardown, so `exit − start` is not the program's time (`start` counts from the
/// OCI runtime's launch, `exit` also holds `spec`): compare levels' programs by `run`.
/// Warm runs have no `spec`, `create` or `delete` (set up ahead, removed after the report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTimes {
    pub spec: Option<f64>,
    pub create: Option<f64>,
    pub start: Option<f64>,
    pub run: Option<f64>,
    pub first_output: Option<f64>,
    pub exit: Option<f64>,
    pub delete: Option<f64>,
}

/// One run: its total time (everything ignite does for it, first step to last) and phases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub total_ms: f64,
    pub phases: PhaseTimes,
}

pub(super) fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// Notes when the program's first stdout byte reached ignite.
#[derive(Default)]
pub(super) struct FirstOutput(Mutex<Option<Instant>>);

impl FirstOutput {
    pub(super) fn at(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl OutputSink for FirstOutput {
    fn chunk(&self, stream: Stream, bytes: &[u8]) {
        if stream == Stream::Stdout && !bytes.is_empty() {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Instant::now);
        }
    }
}

/// The sample of a sandboxed run timed from `began` to `ended`, from its report (checked: the
/// program must have printed `expect` and exited 0; a level that broke it is an error, not a
/// fast sample).
pub(super) fn from_report(
    report: &Report,
    began: Instant,
    first: Option<Instant>,
    ended: Instant,
    expect: &str,
) -> Result<Sample, RunError> {
    check_outcome(
        report.exit_code,
        report.signal.as_deref(),
        report.stdout.as_bytes(),
        report.stderr.as_bytes(),
        expect,
    )?;
    let total = ms(began, ended);
    let m = &report.metrics;
    let cold = !m.warm;
    let exit = (total - m.phases.teardown_ms).max(0.0);
    Ok(Sample {
        total_ms: total,
        phases: PhaseTimes {
            spec: cold.then(|| (total - m.wall_time_ms).max(0.0)),
            create: m.init_time_ms.filter(|_| cold),
            start: Some(m.phases.launch_ms),
            // Zero only when the program never started, which the outcome check refuses.
            run: Some(m.phases.run_ms),
            // Seen by the output reader, which may run after the exit was reported: the byte
            // was written before the program exited, so the exit bounds it.
            first_output: first.map(|t| ms(began, t).min(exit)),
            exit: Some(exit),
            delete: cold.then_some(m.phases.teardown_ms),
        },
    })
}

pub(super) fn check_outcome(
    exit_code: Option<i32>,
    signal: Option<&str>,
    stdout: &[u8],
    stderr: &[u8],
    expect: &str,
) -> Result<(), RunError> {
    let out = String::from_utf8_lossy(stdout);
    if exit_code == Some(0) && out.contains(expect) {
        return Ok(());
    }
    let err = String::from_utf8_lossy(stderr);
    let tail: String = err.trim().chars().rev().take(300).collect::<Vec<_>>().into_iter().rev().collect();
    let how = match (exit_code, signal) {
        (Some(0), _) => format!("exited 0 without printing {expect:?} (stdout: {:?})", out.trim()),
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        (None, None) => "ended without an exit status".to_string(),
    };
    Err(RunError::Outcome(if tail.is_empty() { how } else { format!("{how}; stderr: {tail}") }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::report::{Metrics, Phases, Status};
    use std::time::Duration;

    fn report(warm: bool) -> Report {
        Report {
            service: "bench".into(),
            runtime: "bun@1".into(),
            oci_runtime: "runc".into(),
            container_id: "x".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            status: Status::Ok,
            success: true,
            exit_code: Some(0),
            signal: None,
            stdout: "hello\n".into(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            metrics: Metrics {
                init_time_ms: Some(30.0),
                wall_time_ms: if warm { 9.0 } else { 70.0 },
                phases: Phases { launch_ms: 31.0, run_ms: 20.0, teardown_ms: if warm { 0.0 } else { 15.0 } },
                warm,
                ..Metrics::default()
            },
            message: None,
            install: None,
            security_audit: None,
            files: None,
            files_limit: None,
        }
    }

    #[test]
    fn cold_phases_come_from_the_report() {
        let began = Instant::now();
        let ended = began + Duration::from_millis(100);
        let first = began + Duration::from_millis(60);
        let s = from_report(&report(false), began, Some(first), ended, "hello").unwrap();
        let p = s.phases;
        assert!((s.total_ms - 100.0).abs() < 1e-6);
        // Outside the supervisor: the whole run less the supervisor's own wall time.
        assert!((p.spec.unwrap() - 30.0).abs() < 1e-6, "{p:?}");
        assert_eq!((p.create, p.start, p.delete), (Some(30.0), Some(31.0), Some(15.0)));
        // The program alone: exec → exit reported, as the supervisor timed it.
        assert_eq!(p.run, Some(20.0));
        assert!((p.exit.unwrap() - 85.0).abs() < 1e-6, "{p:?}");
        assert!((p.first_output.unwrap() - 60.0).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn warm_phases_have_no_set_up_or_teardown() {
        let began = Instant::now();
        let ended = began + Duration::from_millis(40);
        // Read after the exit was reported: bounded by it.
        let first = began + Duration::from_millis(50);
        let p = from_report(&report(true), began, Some(first), ended, "hello").unwrap().phases;
        assert_eq!((p.spec, p.create, p.delete), (None, None, None));
        assert_eq!((p.start, p.run), (Some(31.0), Some(20.0)));
        assert!((p.exit.unwrap() - 40.0).abs() < 1e-6 && p.first_output == p.exit, "{p:?}");
    }

    #[test]
    fn a_run_that_broke_the_program_is_an_error() {
        let mut r = report(false);
        r.stdout = String::new();
        let now = Instant::now();
        let e = from_report(&r, now, None, now, "hello").unwrap_err().to_string();
        assert!(e.contains("without printing"), "{e}");
    }

    #[test]
    fn outcome_needs_exit_zero_and_the_answer() {
        assert!(check_outcome(Some(0), None, b"hello\n", b"", "hello").is_ok());
        let e = check_outcome(Some(0), None, b"", b"", "hello").unwrap_err().to_string();
        assert!(e.contains("without printing"), "{e}");
        let e = check_outcome(Some(1), None, b"", b"boom", "hello").unwrap_err().to_string();
        assert!(e.contains("code 1") && e.contains("boom"), "{e}");
        let e = check_outcome(None, Some("SIGKILL"), b"", b"", "hello").unwrap_err().to_string();
        assert!(e.contains("signal SIGKILL"), "{e}");
    }
}
