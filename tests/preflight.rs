//! `ignite preflight`, the preflight gate of `run`/`exec`, `--report FILE` and `ignite report`,
//! and the report's documented JSON shape (docs/report.schema.json).

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

use ignite::data::preflight::{self, BundleFact, ColdStart, Config, Facts, RuntimeFact};
use ignite::data::report::full::{Limits, RunReport};
use ignite::data::report::{InstallReport, Metrics, Report, Status};

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("docs/report.schema.json")).unwrap()).unwrap()
}

/// Validates `v` against the schema, or against one of its `$defs` (e.g. `preflight`).
fn validate(v: &Value, def: Option<&str>) -> Result<(), String> {
    let mut s = schema();
    if let Some(def) = def {
        s["$ref"] = json!(format!("#/$defs/{def}"));
        for key in ["required", "properties", "additionalProperties", "type"] {
            s.as_object_mut().unwrap().remove(key);
        }
    }
    let validator = jsonschema::draft202012::new(&s).map_err(|e| format!("the schema itself: {e}"))?;
    let errors: Vec<String> = validator.iter_errors(v).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
}

fn assert_valid(v: &Value, def: Option<&str>) {
    if let Err(e) = validate(v, def) {
        panic!(
            "does not match docs/report.schema.json{}:\n{e}\n{v:#}",
            def.map(|d| format!(" $defs/{d}")).unwrap_or_default()
        );
    }
}

const DIGEST: &str = "sha256:c5c87bf33c60c1531e96b92af7bed1fa97f015cff4e338e16dca64de3c057cd9";

fn facts(runtime: Result<RuntimeFact, String>, cold: Option<f64>) -> Facts {
    Facts {
        service: "svc".into(),
        runtime_spec: "bun".into(),
        runtime,
        memory_mb: 64,
        timeout_ms: 5000,
        dependencies: 2,
        dependencies_source: Some("package.json".into()),
        cold_start: Ok(cold.map(|ms| ColdStart {
            runtime: "bun@1.4.5".into(),
            ms,
            measured_at: "2026-01-01T00:00:00.000Z".into(),
        })),
    }
}

fn bun(bundle: BundleFact) -> Result<RuntimeFact, String> {
    Ok(RuntimeFact { key: "bun@1.4.5".into(), base_memory_mb: Some(24), recipe_digest: DIGEST.into(), bundle })
}

fn execution(status: Status) -> Report {
    Report {
        service: "svc".into(),
        runtime: "bun@1.4.5".into(),
        oci_runtime: "runc".into(),
        container_id: "ig-1".into(),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        status,
        success: status == Status::Ok,
        exit_code: (status != Status::Timeout).then_some(if status == Status::Ok { 0 } else { 3 }),
        signal: (status == Status::Timeout).then(|| "SIGTERM".to_string()),
        stdout: "hi\n".into(),
        stderr: String::new(),
        stdout_truncated: status == Status::Timeout,
        stderr_truncated: false,
        metrics: Metrics {
            init_time_ms: Some(700.0),
            memory_peak_mb: Some(63.0),
            memory_limit_mb: 64,
            ..Metrics::default()
        },
        message: (status == Status::Timeout).then(|| "stopped at the time limit".to_string()),
        // The successful run asked for an output directory; one entry was left out.
        files: (status == Status::Ok).then(|| {
            let file =
                ignite::data::report::OutputFile { size: 3, sha256: "ab".repeat(32), content: Some("aGkK".into()) };
            [("out/result.txt".to_string(), file)].into()
        }),
        files_limit: (status == Status::Ok)
            .then(|| "not returned (not regular files, or nested too deep): link".into()),
        install: (status == Status::Ok).then(|| InstallReport {
            cached: true,
            duration_ms: 1.0,
            packages: 2,
            installer: "bun@1.4.5".into(),
            lockfile: None,
            key: "ab".repeat(32),
        }),
        // The timed-out run was audited: a syscall event, a cgroup event and the stop.
        security_audit: (status == Status::Timeout).then(|| {
            use ignite::data::report::{AuditStatus, SecurityAudit, SecurityEvent, Verdict};
            let event = |kind: &str, syscall: Option<&str>, count: Option<u64>, verdict| SecurityEvent {
                time_ms: 12.5,
                kind: kind.into(),
                syscall: syscall.map(Into::into),
                args: syscall.map(|_| [("family".to_string(), "AF_INET".to_string())].into()).unwrap_or_default(),
                pid: syscall.map(|_| 7),
                count,
                verdict,
            };
            SecurityAudit {
                overall_status: AuditStatus::Violations,
                counts: [("network".to_string(), 1), ("pids_limit".to_string(), 3), ("timeout".to_string(), 1)].into(),
                events: vec![
                    event("network", Some("socket"), None, Verdict::Denied),
                    event("pids_limit", None, Some(3), Verdict::Denied),
                    event("timeout", None, None, Verdict::Stopped),
                ],
                dropped: 0,
                events_limit: 100,
                notifications: 1,
                notification_limit: 10_000,
                notification_limit_reached: false,
                audited_syscalls: vec!["mount".into(), "socket".into()],
            }
        }),
    }
}

const LIMITS: Limits = Limits { timeout_ms: 5000, cold_start_warn_ratio: 5.0 };

#[test]
fn every_shape_of_the_report_matches_the_documented_schema() {
    let c = Config::default();
    let reports = [
        // Passed preflight, a run with installed dependencies.
        RunReport::new(
            "svc",
            "2026-01-01T00:00:01.000Z".into(),
            Some(preflight::evaluate(
                &facts(bun(BundleFact::Present { digest: DIGEST.into(), bytes: 1 << 20 }), Some(40.0)),
                &c,
            )),
            Some(execution(Status::Ok)),
            LIMITS,
        ),
        // Refused: unknown runtime, so no bundle and no execution.
        RunReport::new(
            "svc",
            "2026-01-01T00:00:01.000Z".into(),
            Some(preflight::evaluate(&facts(Err("unknown runtime".into()), None), &c)),
            None,
            LIMITS,
        ),
        // Skipped preflight; a run that timed out, slow to start and near its memory limit.
        RunReport::new("svc", "2026-01-01T00:00:01.000Z".into(), None, Some(execution(Status::Timeout)), LIMITS),
        // Stale and absent bundles.
        RunReport::new(
            "svc",
            "2026-01-01T00:00:01.000Z".into(),
            Some(preflight::evaluate(
                &facts(
                    bun(BundleFact::Stale { digest: DIGEST.into(), bytes: 1, reason: "another recipe".into() }),
                    None,
                ),
                &c,
            )),
            Some(execution(Status::Error)),
            LIMITS,
        ),
    ];
    for r in &reports {
        let v = serde_json::to_value(r).unwrap();
        assert_valid(&v, None);
        if !v["preflight"].is_null() {
            assert_valid(&v["preflight"], Some("preflight"));
        }
    }
    let levels: Vec<Value> = reports[2].warnings.iter().map(|w| serde_json::to_value(w.level).unwrap()).collect();
    assert!(levels.contains(&json!("critical")) && levels.contains(&json!("info")), "{levels:?}");

    // The check can fail: drift in either direction is caught.
    let good = serde_json::to_value(&reports[0]).unwrap();
    let mut extra = good.clone();
    extra["execution"]["metrics"]["surprise"] = json!(1);
    assert!(validate(&extra, None).is_err(), "an undocumented field must not pass");
    let mut extra = good.clone();
    extra["preflight"]["checks"][0]["surprise"] = json!(1);
    assert!(validate(&extra, None).is_err(), "an undocumented check field must not pass");
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("warnings");
    assert!(validate(&missing, None).is_err(), "a missing field must not pass");
    let mut wrong = good.clone();
    wrong["warnings"] = json!([{ "level": "fatal", "message": "x", "suggestion": "y" }]);
    assert!(validate(&wrong, None).is_err(), "an undocumented level must not pass");
    let mut reordered = good;
    reordered["preflight"]["checks"].as_array_mut().unwrap().swap(0, 1);
    assert!(validate(&reordered, None).is_err(), "checks come in their documented order");
}

fn svc(sb: &Sandbox, name: &str, yaml_extra: &str, code: &str) -> std::path::PathBuf {
    sb.ts_service(name, yaml_extra, code)
}

fn preflight_cmd(sb: &Sandbox, dir: &Path, args: &[&str]) -> std::process::Output {
    sb.cmd().arg("preflight").arg(dir).args(args).output().unwrap()
}

#[test]
fn preflight_exit_codes_for_pass_warn_and_fail() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let code = "console.log('hi')";

    let pass = svc(&sb, "pass", "  memoryMb: 64\n  timeoutMs: 5000\n", code);
    let out = preflight_cmd(&sb, &pass, &[]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(stdout_of(&out).is_empty(), "the analysis goes to stderr");
    for needle in [
        "[preflight] Analyzing service: pass (bun@1.4.5)",
        "✓ Memory",
        "Allocated: 64 MiB",
        "✓ Timeout",
        "✓ Bundle size",
        "✓ Dependencies",
        "✓ Runtime bundle",
        "All checks passed",
    ] {
        assert!(err.contains(needle), "{needle:?} missing:\n{err}");
    }

    // bun's base is 24 MiB: 30 is above the fail line (24) and below the warn line (36).
    let warn = svc(&sb, "warn", "  memoryMb: 30\n", code);
    let out = preflight_cmd(&sb, &warn, &[]);
    assert_eq!(out.status.code(), Some(0), "warnings do not fail: {}", stderr_of(&out));
    assert!(stderr_of(&out).contains("⚠ Memory"), "{}", stderr_of(&out));
    assert_eq!(preflight_cmd(&sb, &warn, &["--strict"]).status.code(), Some(1));

    let fail = svc(&sb, "fail", "  memoryMb: 23\n", code);
    let out = preflight_cmd(&sb, &fail, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("✗ Memory") && stderr_of(&out).contains("refuses to start it"),
        "{}",
        stderr_of(&out)
    );
    // The boundary itself (memoryMb equal to the estimate) is not a failure.
    let out = preflight_cmd(&sb, &fail, &["--memory", "24"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));

    // Thresholds from service.yaml move the lines; a bad one is a precise error (125).
    let tuned = svc(&sb, "tuned", "  memoryMb: 23\npreflight:\n  memory:\n    failRatio: 0.5\n", code);
    assert_eq!(preflight_cmd(&sb, &tuned, &[]).status.code(), Some(0));
    let bad = svc(&sb, "bad", "preflight:\n  memory:\n    warnRatio: 0.5\n", code);
    let out = preflight_cmd(&sb, &bad, &[]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr_of(&out).contains("field `preflight.memory.failRatio`") && stderr_of(&out).contains("warnRatio (0.5)"),
        "{}",
        stderr_of(&out)
    );
    sb.assert_no_leaks();
}

#[test]
fn preflight_json_is_one_document_on_stdout() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = svc(&sb, "doc", "  memoryMb: 16\n", "console.log('hi')");
    std::fs::write(dir.join("package.json"), r#"{"dependencies":{"a":"1","b":"2"},"devDependencies":{"c":"1"}}"#)
        .unwrap();
    let out = preflight_cmd(&sb, &dir, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).is_empty(), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("exactly one JSON document");
    assert_valid(&v, Some("preflight"));
    assert_eq!(v["status"], "fail");
    assert_eq!(v["checks"][0]["status"], "fail");
    assert_eq!(v["checks"][0]["estimateMb"], 28.0, "24 MiB base + 2 dependencies × 2 MiB: {v}");
    assert_eq!(v["checks"][3]["count"], 2);
    // Nothing was installed or run for it.
    sb.assert_no_leaks();
}

#[test]
fn a_failing_preflight_stops_run_and_exec_with_125_and_says_what_to_change() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = svc(&sb, "tight", "  memoryMb: 16\n", "console.log('ran')");
    for cmd in ["run", "exec"] {
        let out = sb.cmd().arg(cmd).arg(&dir).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(125), "{cmd}: {err}");
        assert!(!stdout_of(&out).contains("ran"), "{cmd}: the program must not run");
        for needle in [
            "preflight failed for tight",
            "the run was not started",
            "✗ memory",
            "service.memoryMb",
            "preflight.memory.failRatio",
            "--skip-preflight",
        ] {
            assert!(err.contains(needle), "{cmd}: {needle:?} missing:\n{err}");
        }
    }
    // --json: one JSON document with the reason and the preflight.
    let out = sb.cmd().arg("run").arg(&dir).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["error"]["code"], "preflight_failed", "{v}");
    assert_eq!(v["preflight"]["status"], "fail", "{v}");
    assert_valid(&v["preflight"], Some("preflight"));

    // --skip-preflight runs it; so does the knob that moves the line.
    let (out, r) = sb.run_json(&dir, &["--skip-preflight"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(r["stdout"], "ran\n");
    let tuned = svc(&sb, "tuned", "  memoryMb: 16\npreflight:\n  memory: {failRatio: 0.5}\n", "console.log('ran')");
    let out = sb.cmd().arg("run").arg(&tuned).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "ran\n");
    assert!(
        stderr_of(&out).contains("preflight warnings for tuned") && stderr_of(&out).contains("⚠ memory"),
        "{}",
        stderr_of(&out)
    );
    // --quiet keeps the warnings to itself.
    let out = sb.cmd().arg("run").arg(&tuned).arg("--quiet").output().unwrap();
    assert!(!stderr_of(&out).contains("preflight"), "{}", stderr_of(&out));
    sb.assert_no_leaks();
}

#[test]
fn run_report_file_and_the_last_report() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = svc(&sb, "reported", "  memoryMb: 64\n", "console.log('out'); console.error('err'); process.exit(3);");
    let file = sb.work.path().join("report.json");

    let never = sb.cmd().arg("report").arg(&dir).output().unwrap();
    assert_eq!(never.status.code(), Some(125));
    assert!(
        stderr_of(&never).contains("no report for") && stderr_of(&never).contains("ignite run"),
        "{}",
        stderr_of(&never)
    );

    let out = sb.cmd().arg("run").arg(&dir).arg("--report").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "the program's own exit code: {}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "out\n", "the report goes to the file, not stdout");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_valid(&v, None);
    assert_eq!(v["service"], "reported");
    assert_eq!(v["preflight"]["status"], "pass", "{v}");
    assert_eq!(v["execution"]["exitCode"], 3);
    assert_eq!((v["execution"]["stdout"].clone(), v["execution"]["stderr"].clone()), (json!("out\n"), json!("err\n")));
    let critical: Vec<&Value> = v["warnings"].as_array().unwrap().iter().filter(|w| w["level"] == "critical").collect();
    assert!(critical.iter().any(|w| w["message"] == "the program exited with code 3"), "{v}");
    assert!(v["timestamp"].as_str().unwrap() >= v["execution"]["startedAt"].as_str().unwrap(), "{v}");

    // The same report is kept as the service's last one.
    let out = sb.cmd().arg("report").arg(&dir).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let last: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(last, v);
    let out = sb.cmd().arg("report").arg(&dir).output().unwrap();
    assert!(stdout_of(&out).is_empty());
    let text = stderr_of(&out);
    for needle in [
        "IGNITE REPORT",
        "Service: reported",
        "EXECUTION",
        "reported error · exit 3",
        "    err",
        "✗ the program exited with code 3",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }

    // A run preflight refused is a report too, without an execution, and replaces the last one.
    let out = sb.cmd().arg("run").arg(&dir).args(["--memory", "16", "--report"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_valid(&v, None);
    assert_eq!((v["execution"].clone(), v["preflight"]["status"].clone()), (Value::Null, json!("fail")));
    let out = sb.cmd().arg("report").arg(&dir).arg("--json").output().unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), v);

    // Skipped preflight: null, and an info warning that says so.
    let out =
        sb.cmd().arg("run").arg(&dir).args(["--skip-preflight", "--json", "--report"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    serde_json::from_slice::<Value>(&out.stdout).expect("--json still prints exactly one document");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_valid(&v, None);
    assert_eq!(v["preflight"], Value::Null);
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["level"] == "info" && w["message"].as_str().unwrap().contains("--skip-preflight")),
        "{v}"
    );
    sb.assert_no_leaks();
}

#[test]
fn a_run_records_its_cold_start_for_the_next_preflight() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = svc(&sb, "cold", "", "console.log('hi')");
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = preflight_cmd(&sb, &dir, &["--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cold = &v["checks"][1]["coldStart"];
    assert_eq!(cold["runtime"], "bun@1.4.5", "{v}");
    // Tests running at the same time may have measured since; never before this run.
    assert!(cold["measuredAt"].as_str().unwrap() >= r["startedAt"].as_str().unwrap(), "{cold} vs {}", r["startedAt"]);
    assert!(cold["ms"].as_f64().unwrap() > 0.0);
    let text = stderr_of(&preflight_cmd(&sb, &dir, &[]));
    assert!(text.contains("Cold start: ") && text.contains("last measured on this host for bun@1.4.5"), "{text}");
    sb.assert_no_leaks();
}
