//! `ignite bench` through the real binary: a tiny matrix (bun; bare and seccomp; cold and warm;
//! 2 runs) checked in its JSON, CSV and SVG forms, the reduced levels, and Ctrl-C in the middle
//! of a benchmark, under the OCI runtime the tests drive (runc; crun in the host matrix).

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;

/// The benchmark's own service directories under the state directory are all gone.
fn assert_bench_dir_empty(sb: &Sandbox) {
    let bench_dir = sb.state.path().join("bench");
    let left: Vec<_> = std::fs::read_dir(&bench_dir).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left in {}: {left:?}", bench_dir.display());
}

#[test]
fn tiny_matrix_reports_every_cell_and_leaves_nothing() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let csv = sb.work.path().join("bench.csv");
    let svg = sb.work.path().join("bench.svg");
    let out = sb
        .cmd()
        .args(["bench", "--runtime", "bun", "--level", "bare", "--level", "seccomp", "--runs", "2", "--warmup", "0"])
        .args(["--json", "--oci", &test_oci_runtime()])
        .arg("--csv")
        .arg(&csv)
        .arg("--chart")
        .arg(&svg)
        .output()
        .expect("spawn ignite");
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", stdout_of(&out), stderr_of(&out)));
    assert!(r["host"]["kernel"].as_str().is_some_and(|k| !k.is_empty()), "{r}");
    let oci = oci_name();
    assert_eq!(r["host"]["ociRuntimes"][0]["name"], oci, "{r}");
    assert_eq!(r["runs"], 2);
    let cells = r["cells"].as_array().unwrap();
    let shape: Vec<(String, String, String)> = cells
        .iter()
        .map(|c| {
            (
                c["level"].as_str().unwrap().into(),
                c["mode"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(shape, [s("bare", "cold", "ok"), s("seccomp", "cold", "ok"), s("seccomp", "warm", "ok")], "{r}");
    let (bare, full, warm) = (&cells[0], &cells[1], &cells[2]);
    assert!(cells.iter().all(|c| c["runtime"].as_str().unwrap().starts_with("bun@")), "{r}");

    assert_eq!(bare["runs"], 2, "{bare}");
    assert!(bare["oci"].is_null(), "{bare}");
    assert!(bare["total"]["p50"].as_f64().unwrap() > 0.0, "{bare}");
    assert!(bare["phases"].get("create").is_none(), "a bare run has no container: {bare}");
    assert_eq!(bare["phases"]["run"], bare["phases"]["exit"], "a bare run's program is the whole run: {bare}");
    assert_eq!(bare["overhead"]["ratio"], 1.0, "{bare}");

    assert_eq!((full["runs"].as_u64(), full["oci"].as_str()), (Some(2), Some(oci.as_str())), "{full}");
    let t = &full["total"];
    let (min, p50, p95, p99) = (
        t["min"].as_f64().unwrap(),
        t["p50"].as_f64().unwrap(),
        t["p95"].as_f64().unwrap(),
        t["p99"].as_f64().unwrap(),
    );
    assert!(min <= p50 && p50 <= p95 && p95 <= p99, "{t}");
    for phase in ["spec", "create", "start", "run", "firstOutput", "exit", "delete"] {
        assert!(full["phases"][phase]["p50"].as_f64().is_some_and(|v| v >= 0.0), "phase {phase}: {full}");
    }
    let o = &full["overhead"];
    let base = bare["total"]["p50"].as_f64().unwrap();
    assert!((o["ms"].as_f64().unwrap() - (p50 - base)).abs() < 1e-6, "{o}");
    assert!((o["ratio"].as_f64().unwrap() - p50 / base).abs() < 1e-9, "{o}");

    // Warm: every sample was a warm hit (the runner refuses a cold one), timed request to report.
    assert_eq!((warm["runs"].as_u64(), warm["status"].as_str()), (Some(2), Some("ok")), "{warm}");
    assert!(warm["total"]["p50"].as_f64().is_some_and(|v| v > 0.0), "{warm}");
    for phase in ["start", "run", "firstOutput", "exit"] {
        assert!(warm["phases"][phase]["p50"].as_f64().is_some_and(|v| v >= 0.0), "warm phase {phase}: {warm}");
    }

    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("runtime,level,oci,mode,status,runs,p50_ms,"), "{csv}");
    assert!(lines[2].contains(&format!(",seccomp,{oci},cold,ok,2,")), "{csv}");
    assert!(lines[3].contains(&format!(",seccomp,{oci},warm,ok,2,")), "{csv}");

    let svg = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the chart is XML");
    let bars = doc.descendants().filter(|n| n.attribute("class") == Some("bar")).count();
    assert_eq!(bars, 3, "{svg}");

    sb.assert_no_leaks();
    assert_bench_dir_empty(&sb);
}

#[test]
fn throughput_reports_runs_per_second_latency_and_cpu_per_run_and_leaves_nothing() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let out = sb
        .cmd()
        .args(["bench", "--throughput", "--runtime", "bun", "--concurrency", "2", "--duration", "3s"])
        .args(["--json", "--oci", &test_oci_runtime()])
        .output()
        .expect("spawn ignite");
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", stdout_of(&out), stderr_of(&out)));
    assert_eq!((r["concurrency"].as_u64(), r["durationSeconds"].as_f64()), (Some(2), Some(3.0)), "{r}");
    let results = r["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "one runtime × one OCI runtime: {r}");
    let res = &results[0];
    assert_eq!(res["oci"], oci_name(), "{res}");
    assert!(res["runtime"].as_str().is_some_and(|k| k.starts_with("bun@")), "{res}");
    let runs = res["runs"].as_u64().expect("runs");
    assert!(runs >= 2, "two workers for 3 s complete at least a run each: {res}");
    assert_eq!(res["failures"], 0, "{res}");
    // The window covers the last runs' tails, so it is at least the duration.
    let elapsed = res["elapsedSeconds"].as_f64().expect("elapsed");
    assert!(elapsed >= 3.0, "{res}");
    let rate = res["runsPerSecond"].as_f64().expect("rate");
    assert!((rate - runs as f64 / elapsed).abs() < 1e-6, "runs/s is runs over the window: {res}");
    let lat = &res["latencyMs"];
    assert_eq!(lat["n"].as_u64(), Some(runs), "{res}");
    assert!(lat["p50"].as_f64() <= lat["p99"].as_f64() && lat["p50"].as_f64().is_some_and(|v| v > 0.0), "{res}");
    // Each of the three CPU shares is measured: ignite works per run, every run starts an OCI
    // runtime, and the program (bun) burns CPU in its cgroup.
    for part in ["ignite", "ociRuntime", "program"] {
        assert!(res["cpuMsPerRun"][part].as_f64().is_some_and(|v| v > 0.0), "{part}: {res}");
    }
    let share = res["cpuShare"].as_f64().expect("cpu share");
    assert!(share > 0.0 && share <= 1.05, "{res}");
    sb.assert_no_leaks();
    assert_bench_dir_empty(&sb);

    // The matrix's flags do not mix with it, and a concurrency of 0 is refused.
    let mixed = sb.cmd().args(["bench", "--throughput", "--runs", "3"]).output().expect("spawn ignite");
    assert_eq!(mixed.status.code(), Some(2), "{}", stderr_of(&mixed));
    assert!(stderr_of(&mixed).contains("cannot be used with"), "{}", stderr_of(&mixed));
    let zero = sb.cmd().args(["bench", "--throughput", "--concurrency", "0"]).output().expect("spawn ignite");
    assert!(stderr_of(&zero).contains("--concurrency must be between 1 and 256"), "{}", stderr_of(&zero));
}

#[test]
fn reduced_levels_are_supervised_like_real_runs_and_leave_nothing() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let out = sb
        .cmd()
        .args(["bench", "--runtime", "bun", "--level", "namespaces", "--level", "cgroups", "--mode", "cold"])
        .args(["--runs", "2", "--warmup", "0", "--json", "--oci", &test_oci_runtime()])
        .output()
        .expect("spawn ignite");
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", stdout_of(&out), stderr_of(&out)));
    let cells = r["cells"].as_array().unwrap();
    let levels: Vec<&str> = cells.iter().map(|c| c["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["namespaces", "cgroups"], "{r}");
    for c in cells {
        assert_eq!((c["runs"].as_u64(), c["status"].as_str(), c["mode"].as_str()), (Some(2), Some("ok"), Some("cold")));
        // The same phases as a real run's: they come from the supervisor's report.
        for phase in ["spec", "create", "start", "run", "firstOutput", "exit", "delete"] {
            assert!(c["phases"][phase]["p50"].as_f64().is_some_and(|v| v >= 0.0), "phase {phase}: {c}");
        }
        // No bare cell to compare with.
        assert!(c["overhead"].is_null(), "{c}");
    }
    sb.assert_no_leaks();
    assert_bench_dir_empty(&sb);
}

#[test]
fn ctrl_c_stops_cleans_up_and_still_reports() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let mut child = sb
        .cmd()
        .args(["bench", "--runtime", "bun", "--level", "seccomp", "--level", "audit", "--mode", "cold"])
        .args(["--runs", "10000", "--warmup", "0", "--budget", "1h", "--json", "--oci", &test_oci_runtime()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ignite");
    // Progress lines name each round: interrupt once a few are done, i.e. mid-benchmark.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ignite ended early: {seen}");
        seen.push_str(&line);
        if line.contains("round 4/") {
            break;
        }
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stdout_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON after Ctrl-C");
    assert_eq!(r["stopped"], "interrupted", "{r}");
    let runs: Vec<u64> = r["cells"].as_array().unwrap().iter().map(|c| c["runs"].as_u64().unwrap()).collect();
    assert!(runs.iter().all(|n| *n >= 3), "three rounds were complete: {r}");
    sb.assert_no_leaks();
}
