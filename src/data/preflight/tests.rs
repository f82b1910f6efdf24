use super::*;

const MIB_U: u64 = 1024 * 1024;

fn facts() -> Facts {
    Facts {
        service: "s".into(),
        runtime_spec: "bun".into(),
        runtime: Ok(RuntimeFact {
            key: "bun@1.4.5".into(),
            base_memory_mb: Some(24),
            recipe_digest: "sha256:r".into(),
            bundle: BundleFact::Present { digest: "sha256:b".into(), bytes: 54 * MIB_U },
        }),
        // service.yaml's defaults (128 MiB, 30 s); that the built-in runtimes pass at the real
        // defaults is checked beside them, in data::service.
        memory_mb: 128,
        timeout_ms: 30_000,
        dependencies: 0,
        dependencies_source: None,
        cold_start: Ok(None),
    }
}

fn check<'a>(r: &'a PreflightReport, name: &str) -> &'a Check {
    r.checks.iter().find(|c| c.name() == name).unwrap()
}

fn status(f: &Facts, c: &Config, name: &str) -> Level {
    check(&evaluate(f, c), name).status()
}

fn raw(yaml: &str) -> RawConfig {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn cold(ms: f64) -> Result<Option<ColdStart>, String> {
    Ok(Some(ColdStart { runtime: "bun@1.4.5".into(), ms, measured_at: "2026-01-01T00:00:00.000Z".into() }))
}

#[test]
fn memory_lines_at_and_around_each_boundary() {
    let c = Config::default();
    let mut f = facts();
    // estimate 24 → fail below 24, warn below 36.
    for (mb, want) in [(23, Level::Fail), (24, Level::Warn), (35, Level::Warn), (36, Level::Pass), (37, Level::Pass)] {
        f.memory_mb = mb;
        assert_eq!(status(&f, &c, "memory"), want, "memoryMb {mb}");
    }
    // Three dependencies at 2 MiB each: estimate 30 → fail below 30, warn below 45.
    f.dependencies = 3;
    for (mb, want) in [(29, Level::Fail), (30, Level::Warn), (44, Level::Warn), (45, Level::Pass)] {
        f.memory_mb = mb;
        assert_eq!(status(&f, &c, "memory"), want, "memoryMb {mb} with 3 dependencies");
    }
    let r = evaluate(&f, &c);
    let Check::Memory(m) = check(&r, "memory") else { unreachable!() };
    assert_eq!((m.estimate_mb, m.warn_below_mb, m.fail_below_mb), (Some(30.0), Some(45.0), Some(30.0)));
    // A failRatio of 0 never fails; the service's baseMb replaces the runtime's.
    let c = raw("memory: {failRatio: 0, baseMb: 100}").validate().unwrap();
    f.dependencies = 0;
    f.memory_mb = 16;
    assert_eq!(status(&f, &c, "memory"), Level::Warn);
    let r = evaluate(&f, &c);
    let Check::Memory(m) = check(&r, "memory") else { unreachable!() };
    assert_eq!((m.base_mb, m.base_from.as_deref()), (Some(100), Some("preflight.memory.baseMb")));
    f.memory_mb = 150;
    assert_eq!(status(&f, &c, "memory"), Level::Pass);
}

#[test]
fn memory_without_a_base_is_skipped_and_says_how_to_give_one() {
    let mut f = facts();
    if let Ok(r) = &mut f.runtime {
        r.base_memory_mb = None;
    }
    let r = evaluate(&f, &Config::default());
    let m = check(&r, "memory");
    assert_eq!(m.status(), Level::Skip);
    assert!(m.message().contains("preflight.memory.baseMb"), "{}", m.message());
    assert_eq!(r.status, Level::Pass, "a skipped check does not make the whole warn");
}

#[test]
fn timeout_lines_at_and_around_each_boundary() {
    let c = Config::default();
    let mut f = facts();
    for (ms, want) in [(99, Level::Fail), (100, Level::Pass), (300_000, Level::Pass), (300_001, Level::Warn)] {
        f.timeout_ms = ms;
        assert_eq!(status(&f, &c, "timeout"), want, "timeoutMs {ms}");
    }
    // Last cold start 40 ms × warn ratio 5 → warn below 200 ms; no fail line by default.
    f.cold_start = cold(40.0);
    for (ms, want) in [(100, Level::Warn), (199, Level::Warn), (200, Level::Pass)] {
        f.timeout_ms = ms;
        assert_eq!(status(&f, &c, "timeout"), want, "timeoutMs {ms}");
    }
    // With a fail ratio of 3: fail below 120 ms.
    let c = raw("timeout: {coldStartFailRatio: 3}").validate().unwrap();
    for (ms, want) in [(119, Level::Fail), (120, Level::Warn), (200, Level::Pass)] {
        f.timeout_ms = ms;
        assert_eq!(status(&f, &c, "timeout"), want, "timeoutMs {ms}");
    }
    let r = evaluate(&f, &c);
    let Check::Timeout(t) = check(&r, "timeout") else { unreachable!() };
    assert_eq!((t.warn_below_ms, t.fail_below_ms), (Some(200.0), Some(120.0)));
}

#[test]
fn timeout_says_when_there_is_no_measurement_or_it_cannot_be_read() {
    let mut f = facts();
    let r = evaluate(&f, &Config::default());
    let Check::Timeout(t) = check(&r, "timeout") else { unreachable!() };
    assert!(t.cold_start.is_none());
    assert!(t.cold_start_note.as_deref().is_some_and(|n| n.contains("no measurement yet")), "{t:?}");
    assert!(render(&r).contains("Cold start: no measurement yet"), "{}", render(&r));
    f.cold_start = Err("x.json is not a cold-start measurement".into());
    let r = evaluate(&f, &Config::default());
    let Check::Timeout(t) = check(&r, "timeout") else { unreachable!() };
    assert_eq!(t.cold_start_note.as_deref(), Some("x.json is not a cold-start measurement"));
    assert_eq!(t.outcome.status, Level::Pass);
}

#[test]
fn bundle_size_lines_at_and_around_each_boundary() {
    let c = Config::default();
    let mut f = facts();
    for (bytes, want) in [
        (150 * MIB_U, Level::Pass),
        (150 * MIB_U + 1, Level::Warn),
        (500 * MIB_U, Level::Warn),
        (500 * MIB_U + 1, Level::Fail),
    ] {
        if let Ok(r) = &mut f.runtime {
            r.bundle = BundleFact::Present { digest: "sha256:b".into(), bytes };
        }
        assert_eq!(status(&f, &c, "bundleSize"), want, "{bytes} bytes");
    }
    // A bundle built but not unpacked has a recorded size; one not built yet has none.
    if let Ok(r) = &mut f.runtime {
        r.bundle = BundleFact::Packed { digest: "sha256:b".into(), bytes: 10 };
    }
    assert_eq!(status(&f, &c, "bundleSize"), Level::Pass);
    if let Ok(r) = &mut f.runtime {
        r.bundle = BundleFact::Absent;
    }
    assert_eq!(status(&f, &c, "bundleSize"), Level::Skip);
}

#[test]
fn dependency_count_lines_at_and_around_each_boundary() {
    let c = Config::default();
    let mut f = facts();
    f.memory_mb = 2048;
    for (n, want) in [(0, Level::Pass), (50, Level::Pass), (51, Level::Warn), (200, Level::Warn), (201, Level::Fail)] {
        f.dependencies = n;
        assert_eq!(status(&f, &c, "dependencies"), want, "{n} dependencies");
    }
    let c = raw("dependencies: {warn: 0, fail: 0}").validate().unwrap();
    f.dependencies = 1;
    assert_eq!(status(&f, &c, "dependencies"), Level::Fail);
}

#[test]
fn runtime_bundle_states() {
    let mut f = facts();
    let c = Config::default();
    assert_eq!(status(&f, &c, "runtime"), Level::Pass);
    for bundle in [
        BundleFact::Packed { digest: "sha256:b".into(), bytes: 1 },
        BundleFact::Stale { digest: "sha256:b".into(), bytes: 1, reason: "another recipe".into() },
        BundleFact::Absent,
    ] {
        if let Ok(r) = &mut f.runtime {
            r.bundle = bundle.clone();
        }
        let r = evaluate(&f, &c);
        let rc = check(&r, "runtime");
        assert_eq!(rc.status(), Level::Warn, "{bundle:?}");
        assert!(rc.suggestion().is_some_and(|s| s.contains("ignite runtime pull bun@1.4.5")), "{rc:?}");
    }
    f.runtime = Err("unknown runtime \"cobol\" (available: bun, deno, node, quickjs)".into());
    f.runtime_spec = "cobol".into();
    let r = evaluate(&f, &c);
    assert_eq!(r.status, Level::Fail);
    assert_eq!(r.runtime, "cobol");
    assert_eq!(check(&r, "runtime").status(), Level::Fail);
    assert_eq!(check(&r, "memory").status(), Level::Skip);
}

#[test]
fn overall_status_is_the_worst_check() {
    let mut f = facts();
    let c = Config::default();
    assert_eq!(evaluate(&f, &c).status, Level::Pass);
    f.memory_mb = 2048;
    f.dependencies = 60;
    assert_eq!(evaluate(&f, &c).status, Level::Warn);
    f.timeout_ms = 50;
    let r = evaluate(&f, &c);
    assert_eq!(r.status, Level::Fail);
    assert_eq!(r.failed().map(Check::name).collect::<Vec<_>>(), ["timeout"]);
    let problems = render_problems(&r, &[Level::Warn, Level::Fail]);
    assert!(problems.contains("✗ timeout") && problems.contains("⚠ dependencies"), "{problems}");
    assert!(problems.contains("--skip-preflight"), "{problems}");
    assert!(render_problems(&evaluate(&facts(), &c), &[Level::Warn, Level::Fail]).is_empty());
    assert!(!render_problems(&r, &[Level::Warn]).contains("timeout"));
}

#[test]
fn config_ranges_and_order_are_checked_with_the_field_path() {
    let e = |yaml: &str| raw(yaml).validate().unwrap_err().to_string();
    let msg = e("memory: {warnRatio: 11}");
    assert!(msg.contains("preflight.memory.warnRatio") && msg.contains("between 0 and 10"), "{msg}");
    let msg = e("memory: {failRatio: -1}");
    assert!(msg.contains("preflight.memory.failRatio"), "{msg}");
    let msg = e("memory: {failRatio: 2, warnRatio: 1.5}");
    assert!(msg.contains("preflight.memory.failRatio") && msg.contains("warnRatio (1.5)"), "{msg}");
    let msg = e("memory: {baseMb: 0}");
    assert!(msg.contains("preflight.memory.baseMb"), "{msg}");
    let msg = e("memory: {perDependencyMb: .nan}");
    assert!(msg.contains("preflight.memory.perDependencyMb"), "{msg}");
    let msg = e("timeout: {minMs: 500, maxMs: 400}");
    assert!(msg.contains("preflight.timeout.minMs") && msg.contains("maxMs (400)"), "{msg}");
    let msg = e("timeout: {coldStartFailRatio: 6}");
    assert!(msg.contains("preflight.timeout.coldStartFailRatio") && msg.contains("coldStartWarnRatio (5)"), "{msg}");
    let msg = e("bundle: {warnMb: 600}");
    assert!(msg.contains("preflight.bundle.warnMb") && msg.contains("failMb (500)"), "{msg}");
    let msg = e("bundle: {failMb: 0}");
    assert!(msg.contains("preflight.bundle.failMb") && msg.contains("between 1"), "{msg}");
    let msg = e("dependencies: {warn: 10, fail: 9}");
    assert!(msg.contains("preflight.dependencies.warn") && msg.contains("fail (9)"), "{msg}");
    // Equal lines are allowed: the check then goes straight from pass to fail.
    let c = raw("memory: {warnRatio: 1, failRatio: 1}\nbundle: {warnMb: 5, failMb: 5}\ndependencies: {warn: 3, fail: 3}\ntimeout: {minMs: 10, maxMs: 10, coldStartWarnRatio: 2, coldStartFailRatio: 2}")
        .validate()
        .unwrap();
    assert_eq!((c.memory_warn_ratio, c.bundle_fail_mb, c.dependencies_fail, c.timeout_max_ms), (1.0, 5, 3, 10));
}

#[test]
fn json_shape_is_tagged_by_name_and_round_trips() {
    let mut f = facts();
    f.cold_start = cold(42.0);
    f.dependencies = 2;
    f.dependencies_source = Some("package.json".into());
    let r = evaluate(&f, &Config::default());
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["status"], "pass");
    assert_eq!(v["runtime"], "bun@1.4.5");
    let names: Vec<&str> = v["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["memory", "timeout", "bundleSize", "dependencies", "runtime"]);
    assert_eq!(v["checks"][0]["allocatedMb"], 128);
    assert_eq!(v["checks"][0]["estimateMb"], 28.0);
    assert_eq!(v["checks"][1]["coldStart"]["ms"], 42.0);
    assert_eq!(v["checks"][2]["bundleMb"], 54.0);
    assert_eq!(v["checks"][3]["source"], "package.json");
    assert_eq!(v["checks"][4]["bundle"], "present");
    assert!(v["checks"][0].get("suggestion").is_none());
    let back: PreflightReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

#[test]
fn human_output_shows_each_check_with_values_and_thresholds() {
    let mut f = facts();
    f.memory_mb = 30;
    f.cold_start = cold(40.0);
    let text = render(&evaluate(&f, &Config::default()));
    for needle in [
        "[preflight] Analyzing service: s (bun@1.4.5)",
        "⚠ Memory",
        "Allocated: 30 MiB",
        "Estimated: 24 MiB",
        "warn below 36 MiB",
        "✓ Timeout",
        "Configured: 30000 ms",
        "Cold start: 40 ms",
        "✓ Bundle size",
        "Bundle: 54.0 MiB",
        "✓ Dependencies",
        "Count: 0",
        "✓ Runtime bundle",
        "1 warning(s)",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}
