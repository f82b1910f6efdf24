use super::*;
use crate::data::report::Metrics;

fn exec(status: Status) -> Report {
    Report {
        service: "s".into(),
        runtime: "bun@1.4.5".into(),
        oci_runtime: "runc".into(),
        container_id: "id".into(),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        status,
        success: status == Status::Ok,
        exit_code: Some(if status == Status::Ok { 0 } else { 3 }),
        signal: None,
        stdout: "out\n".into(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        metrics: Metrics {
            init_time_ms: Some(40.0),
            memory_peak_mb: Some(10.0),
            memory_limit_mb: 100,
            ..Metrics::default()
        },
        message: None,
        install: None,
        security_audit: None,
        files: None,
        files_limit: None,
    }
}

const LIMITS: Limits = Limits { timeout_ms: 30_000, cold_start_warn_ratio: 5.0 };

fn preflight() -> PreflightReport {
    let facts = crate::data::preflight::Facts {
        service: "s".into(),
        runtime_spec: "bun".into(),
        runtime: Ok(crate::data::preflight::RuntimeFact {
            key: "bun@1.4.5".into(),
            base_memory_mb: Some(24),
            recipe_digest: "sha256:r".into(),
            bundle: crate::data::preflight::BundleFact::Present { digest: "sha256:b".into(), bytes: 1 },
        }),
        memory_mb: 128,
        timeout_ms: 30_000,
        dependencies: 0,
        dependencies_source: None,
        cold_start: Ok(None),
    };
    crate::data::preflight::evaluate(&facts, &crate::data::preflight::Config::default())
}

fn messages(w: &[Warning]) -> Vec<String> {
    w.iter().map(|w| format!("{:?}: {}", w.level, w.message)).collect()
}

#[test]
fn a_clean_run_has_no_warnings() {
    let w = warnings(Some(&preflight()), Some(&exec(Status::Ok)), LIMITS);
    assert!(w.is_empty(), "{:?}", messages(&w));
}

#[test]
fn each_problem_becomes_a_warning_with_a_suggestion() {
    let mut e = exec(Status::Error);
    e.stdout_truncated = true;
    e.metrics.memory_peak_mb = Some(95.0);
    e.metrics.init_time_ms = Some(612.0);
    let w = warnings(None, Some(&e), LIMITS);
    let m = messages(&w);
    assert_eq!(w[0].level, WarningLevel::Critical, "most severe first: {m:?}");
    assert!(m[0].contains("exited with code 3"), "{m:?}");
    assert!(m.iter().any(|x| x.starts_with("Warning: output truncated: stdout was")), "{m:?}");
    assert!(m.iter().any(|x| x.starts_with("Warning: near the memory limit: peak 95.0 of 100 MiB")), "{m:?}");
    assert!(m.iter().any(|x| x.starts_with("Warning: cold start high") && x.contains("612 ms")), "{m:?}");
    assert!(m.iter().any(|x| x.starts_with("Info: preflight was skipped")), "{m:?}");
    assert!(w.iter().all(|w| !w.suggestion.is_empty()), "{w:?}");

    let w = warnings(None, Some(&exec(Status::Timeout)), LIMITS);
    assert!(messages(&w).iter().any(|x| x.contains("time limit of 30000 ms")), "{w:?}");
    let w = warnings(None, Some(&exec(Status::Oom)), LIMITS);
    assert!(messages(&w).iter().any(|x| x.contains("out of memory")), "{w:?}");
}

#[test]
fn warning_lines_at_their_boundaries() {
    let near = |peak: f64| {
        let mut e = exec(Status::Ok);
        e.metrics.memory_peak_mb = Some(peak);
        warnings(Some(&preflight()), Some(&e), LIMITS).iter().any(|w| w.message.starts_with("near the memory limit"))
    };
    assert!(!near(89.9));
    assert!(near(90.0));
    let high = |ms: f64, limits: Limits| {
        let mut e = exec(Status::Ok);
        e.metrics.init_time_ms = Some(ms);
        warnings(Some(&preflight()), Some(&e), limits).iter().any(|w| w.message.starts_with("cold start high"))
    };
    assert!(!high(500.0, LIMITS));
    assert!(high(500.1, LIMITS));
    // The preflight line applied to this run: 40 ms × 5 against a 200 ms limit.
    assert!(!high(40.0, Limits { timeout_ms: 200, cold_start_warn_ratio: 5.0 }));
    assert!(high(40.1, Limits { timeout_ms: 200, cold_start_warn_ratio: 5.0 }));
}

#[test]
fn preflight_problems_are_carried_over() {
    let mut p = preflight();
    p.checks.retain(|c| c.name() != "dependencies");
    let mut f = crate::data::preflight::evaluate(
        &crate::data::preflight::Facts {
            service: "s".into(),
            runtime_spec: "bun".into(),
            runtime: Err("unknown runtime".into()),
            memory_mb: 128,
            timeout_ms: 50,
            dependencies: 60,
            dependencies_source: Some("package.json".into()),
            cold_start: Ok(None),
        },
        &crate::data::preflight::Config::default(),
    );
    f.status = crate::data::preflight::Level::Fail;
    let w = warnings(Some(&f), None, LIMITS);
    let m = messages(&w);
    assert!(m.iter().any(|x| x.starts_with("Critical: preflight timeout")), "{m:?}");
    assert!(m.iter().any(|x| x.starts_with("Critical: preflight runtime")), "{m:?}");
    assert!(m.iter().any(|x| x.starts_with("Warning: preflight dependencies")), "{m:?}");
}

#[test]
fn last_reports_are_kept_per_directory_privately_and_read_back() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let store = LastReports::new(cache.path());
    let a = Path::new("/srv/a/hello");
    let b = Path::new("/srv/b/hello");
    assert_eq!(store.load(a).unwrap(), None);
    let r = RunReport::new("hello", "t".into(), Some(preflight()), Some(exec(Status::Ok)), LIMITS);
    let path = store.save(a, &r).unwrap();
    assert_eq!(store.load(a).unwrap(), Some(r.clone()));
    assert_eq!(store.load(b).unwrap(), None, "same name, other directory");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    std::fs::write(&path, "{}").unwrap();
    let e = store.load(a).unwrap_err().to_string();
    assert!(e.contains("next run of the service replaces it"), "{e}");
}

#[test]
fn human_report_has_each_part() {
    let mut e = exec(Status::Error);
    e.stderr = "boom\n".into();
    let r = RunReport::new("hello", "2026-01-01T00:00:01.000Z".into(), Some(preflight()), Some(e), LIMITS);
    let text = render(&r);
    for needle in [
        "IGNITE REPORT",
        "Service: hello",
        "[preflight] Analyzing service",
        "EXECUTION",
        "s error · exit 3",
        "stderr:",
        "    boom",
        "WARNINGS",
        "✗ the program exited with code 3",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}
