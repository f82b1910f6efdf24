//! The report of a run, assembled from what the supervisor observed: the entrypoint's events
//! (exec and exit times, exit status, rusage), the cgroup counters, the captured output, and
//! why ignite stopped the run if it did (the [`Captured`] output and the [`Stop`] that `drive`
//! hands over). Pure apart from reading the clock; tested on its own.

use std::time::Instant;

use super::{RunPlan, Stream};
use crate::data::report::{Metrics, Report, Status, signal_name};
use crate::sandbox::cgroup::CgroupStats;
use crate::sandbox::init_proto::InitEvent;
use crate::sys::monotonic_ns;

/// One stream's output as captured: the bytes kept (up to the cap), all bytes seen, and
/// whether the cap was crossed.
pub(super) struct Captured {
    pub(super) bytes: Vec<u8>,
    pub(super) total: u64,
    pub(super) truncated: bool,
}

/// Why ignite ended the run, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    Timeout,
    OutputLimit(Stream),
    Cancelled,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn assemble(
    plan: &RunPlan,
    events: Vec<InitEvent>,
    stats: Option<CgroupStats>,
    stdout: Captured,
    stderr: Captured,
    stop: Option<Stop>,
    launch_ns: u64,
    wall: Instant,
    started_at: String,
    oci_name: &str,
) -> Report {
    let exec_ns = events.iter().find_map(|e| match e {
        InitEvent::Exec { mono_ns } => Some(*mono_ns),
        _ => None,
    });
    let spawn_failed = events.iter().find_map(|e| match e {
        InitEvent::SpawnFailed { message } => Some(message.clone()),
        _ => None,
    });
    let exit = events.iter().find_map(|e| match e {
        InitEvent::Exit { mono_ns, exit_code, signal, user_us, sys_us, max_rss_kb } => {
            Some((*mono_ns, *exit_code, *signal, *user_us, *sys_us, *max_rss_kb))
        }
        _ => None,
    });
    let ms = |ns: u64| ns as f64 / 1e6;
    let stats = stats.unwrap_or_default();

    let mut metrics = Metrics {
        init_time_ms: exec_ns.filter(|e| *e >= launch_ns).map(|e| ms(e - launch_ns)),
        wall_time_ms: wall.elapsed().as_secs_f64() * 1000.0,
        memory_peak_mb: stats.memory_peak_bytes.map(|b| b as f64 / (1024.0 * 1024.0)),
        memory_limit_mb: plan.memory_limit_mb,
        cpu_time_ms: stats.cpu_usage_ns.map(ms),
        pids_peak: stats.pids_peak,
        pids_limit_hits: stats.pids_limit_hits,
        oom_kills: stats.oom_kills,
        stdout_bytes: stdout.total,
        stderr_bytes: stderr.total,
        ..Metrics::default()
    };

    let (mut exit_code, mut signal) = (None, None);
    if let Some((end_ns, code, sig, user_us, sys_us, rss_kb)) = exit {
        metrics.execution_time_ms = exec_ns.filter(|e| end_ns >= *e).map(|e| ms(end_ns - e));
        metrics.user_cpu_ms = Some(user_us as f64 / 1000.0);
        metrics.system_cpu_ms = Some(sys_us as f64 / 1000.0);
        metrics.max_rss_mb = Some(rss_kb as f64 / 1024.0);
        exit_code = code;
        signal = sig.map(signal_name);
    } else if stop.is_some() || stats.oom_kills > 0 {
        // The entrypoint itself was killed before it could report: SIGKILL is what hit it.
        signal = Some("SIGKILL".to_string());
        if let Some(e) = exec_ns {
            metrics.execution_time_ms = Some(ms(monotonic_ns().saturating_sub(e)));
        }
    }

    let mut notes = Vec::new();
    let status = match stop {
        Some(Stop::Timeout) => {
            notes.push(format!(
                "stopped at the {} ms time limit (SIGTERM, then SIGKILL after {} ms)",
                plan.timeout.as_millis(),
                plan.grace.as_millis()
            ));
            Status::Timeout
        }
        Some(Stop::OutputLimit(which)) => {
            let name = if which == Stream::Stdout { "stdout" } else { "stderr" };
            notes.push(format!("{name} exceeded the {}-byte output limit; the program was killed", plan.output_limit));
            Status::OutputLimit
        }
        Some(Stop::Cancelled) => {
            notes.push("interrupted: ignite was asked to stop, and killed the program".to_string());
            Status::Error
        }
        None if stats.oom_kills > 0 => {
            notes.push(format!("killed by the kernel OOM killer at the {} MiB memory limit", plan.memory_limit_mb));
            Status::Oom
        }
        // Over the cap, but the program exited before ignite got to stop it: the output is
        // still cut, and the run must not pass for a clean one.
        None if stdout.truncated || stderr.truncated => {
            let name = if stdout.truncated { "stdout" } else { "stderr" };
            notes.push(format!(
                "{name} exceeded the {}-byte output limit; the program exited before ignite stopped it",
                plan.output_limit
            ));
            Status::OutputLimit
        }
        None if exit_code == Some(0) => Status::Ok,
        None => {
            if exit.is_none() {
                notes.push(match &spawn_failed {
                    Some(m) => m.clone(),
                    None => "the sandbox's entrypoint exited without reporting an exit status".to_string(),
                });
            }
            Status::Error
        }
    };
    if stats.oom_kills > 0 && status != Status::Oom {
        notes.push(format!("the OOM killer fired {} time(s) in the sandbox", stats.oom_kills));
    }
    if stats.pids_limit_hits > 0 {
        notes.push(format!(
            "{} process/thread creation(s) were refused at the pids limit of {}",
            stats.pids_limit_hits, plan.pids_limit
        ));
    }

    Report {
        service: plan.service.clone(),
        runtime: plan.runtime.clone(),
        oci_runtime: oci_name.to_string(),
        container_id: plan.id.clone(),
        started_at,
        status,
        success: status == Status::Ok,
        exit_code,
        signal,
        stdout: String::from_utf8_lossy(&stdout.bytes).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.bytes).into_owned(),
        stdout_truncated: stdout.truncated,
        stderr_truncated: stderr.truncated,
        metrics,
        message: if notes.is_empty() { None } else { Some(notes.join("; ")) },
        install: None,
        security_audit: None,
        files: None,
        files_limit: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Spec;
    use std::time::Duration;

    fn plan() -> RunPlan {
        RunPlan {
            id: "ig-1".into(),
            spec: Spec::default(),
            timeout: Duration::from_millis(1000),
            grace: Duration::from_millis(100),
            output_limit: 10,
            memory_limit_mb: 64,
            pids_limit: 128,
            service: "s".into(),
            runtime: "bun@1.4.5".into(),
            audit: None,
            stdin: Default::default(),
            input_file: None,
            read_out: None,
        }
    }

    fn cap(s: &str, truncated: bool) -> Captured {
        Captured { bytes: s.as_bytes().to_vec(), total: s.len() as u64, truncated }
    }

    fn exit_ev(code: Option<i32>, sig: Option<i32>) -> Vec<InitEvent> {
        vec![
            InitEvent::Exec { mono_ns: 2_000_000 },
            InitEvent::Exit {
                mono_ns: 12_000_000,
                exit_code: code,
                signal: sig,
                user_us: 1500,
                sys_us: 500,
                max_rss_kb: 2048,
            },
        ]
    }

    fn run(events: Vec<InitEvent>, stats: CgroupStats, stop: Option<Stop>) -> Report {
        assemble(
            &plan(),
            events,
            Some(stats),
            cap("hi", false),
            cap("", false),
            stop,
            1_000_000,
            Instant::now(),
            "t".into(),
            "runc",
        )
    }

    #[test]
    fn clean_exit_is_ok_with_metrics() {
        let stats = CgroupStats {
            memory_peak_bytes: Some(10 * 1024 * 1024),
            cpu_usage_ns: Some(3_000_000),
            pids_peak: Some(7),
            ..Default::default()
        };
        let r = run(exit_ev(Some(0), None), stats, None);
        assert_eq!(r.status, Status::Ok);
        assert!(r.success);
        assert_eq!(r.exit_code, Some(0));
        assert_eq!(r.metrics.init_time_ms, Some(1.0));
        assert_eq!(r.metrics.execution_time_ms, Some(10.0));
        assert_eq!(r.metrics.memory_peak_mb, Some(10.0));
        assert_eq!(r.metrics.cpu_time_ms, Some(3.0));
        assert_eq!(r.metrics.pids_peak, Some(7));
        assert_eq!(r.metrics.user_cpu_ms, Some(1.5));
        assert_eq!(r.stdout, "hi");
    }

    #[test]
    fn status_derivation() {
        let r = run(exit_ev(Some(3), None), CgroupStats::default(), None);
        assert_eq!((r.status, r.exit_code), (Status::Error, Some(3)));
        let r = run(exit_ev(None, Some(9)), CgroupStats { oom_kills: 1, ..Default::default() }, None);
        assert_eq!((r.status, r.signal.as_deref()), (Status::Oom, Some("SIGKILL")));
        let r = run(exit_ev(None, Some(15)), CgroupStats::default(), Some(Stop::Timeout));
        assert_eq!(r.status, Status::Timeout);
        assert!(r.message.unwrap().contains("1000 ms time limit"));
        let r =
            run(vec![InitEvent::Exec { mono_ns: 2 }], CgroupStats::default(), Some(Stop::OutputLimit(Stream::Stderr)));
        assert_eq!((r.status, r.signal.as_deref()), (Status::OutputLimit, Some("SIGKILL")));
        let r = run(vec![], CgroupStats::default(), None);
        assert_eq!(r.status, Status::Error);
        assert!(r.message.unwrap().contains("without reporting"));
        let r = run(exit_ev(Some(0), None), CgroupStats { pids_limit_hits: 4, ..Default::default() }, None);
        assert!(r.message.unwrap().contains("pids limit of 128"));
    }

    #[test]
    fn output_over_the_cap_is_output_limit_even_if_the_program_exited_first() {
        let r = assemble(
            &plan(),
            exit_ev(Some(0), None),
            Some(CgroupStats::default()),
            cap("0123456789", true),
            cap("", false),
            None,
            1_000_000,
            Instant::now(),
            "t".into(),
            "runc",
        );
        assert_eq!((r.status, r.success, r.exit_code), (Status::OutputLimit, false, Some(0)));
        assert!(r.stdout_truncated);
        assert!(r.message.unwrap().contains("stdout exceeded the 10-byte output limit"));
    }
}
