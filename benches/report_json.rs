//! Report serialisation: what `--json` prints and the HTTP API returns after every run — a
//! typical report (short output, full metrics), and one carrying 64 KiB of output.
//! Run: `cargo bench --bench report_json`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ignite::data::report::{Metrics, Phases, Report, Status};

fn report(stdout: String) -> Report {
    Report {
        service: "data-processor".into(),
        runtime: "bun@1.4.5".into(),
        oci_runtime: "runc".into(),
        container_id: "ig-18c2f0a1b2c3d4e5-1f2e-0".into(),
        started_at: "2026-11-01T12:00:00.123Z".into(),
        status: Status::Ok,
        success: true,
        exit_code: Some(0),
        signal: None,
        stdout,
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        metrics: Metrics {
            execution_time_ms: Some(11.2),
            init_time_ms: Some(31.4),
            wall_time_ms: 58.9,
            memory_peak_mb: Some(31.2),
            memory_limit_mb: 128,
            cpu_time_ms: Some(14.0),
            user_cpu_ms: Some(9.0),
            system_cpu_ms: Some(5.0),
            max_rss_mb: Some(30.5),
            pids_peak: Some(6),
            stdout_bytes: 64,
            phases: Phases { launch_ms: 31.4, run_ms: 11.2, teardown_ms: 8.1 },
            ..Metrics::default()
        },
        message: None,
        install: None,
        security_audit: None,
        files: None,
        files_limit: None,
    }
}

fn bench(c: &mut Criterion) {
    let typical = report("{\"result\":6,\"operation\":\"sum\",\"count\":3}\n".into());
    let large = report("x".repeat(64 * 1024));
    c.bench_function("Report to JSON (typical)", |b| b.iter(|| serde_json::to_vec(black_box(&typical))));
    c.bench_function("Report to pretty JSON (typical, --json)", |b| {
        b.iter(|| serde_json::to_string_pretty(black_box(&typical)))
    });
    c.bench_function("Report to JSON (64 KiB stdout)", |b| b.iter(|| serde_json::to_vec(black_box(&large))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
