//! `GET /metrics`: counters kept by the server, written in the Prometheus text exposition
//! format (version 0.0.4) by hand — a handful of series does not need a metrics library.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

/// Upper bounds (seconds) of the execution duration histogram's buckets.
const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By report status, or `failed` when the engine returned no report.
    executions: BTreeMap<&'static str, u64>,
    /// Per bucket of `BUCKETS`, not cumulative.
    duration_buckets: [u64; BUCKETS.len()],
    duration_count: u64,
    duration_sum: f64,
    /// Error responses by (status, code).
    rejections: BTreeMap<(u16, &'static str), u64>,
}

/// Values read at scrape time rather than counted.
pub struct Gauges {
    pub running: usize,
    pub queued: usize,
    /// `--max-concurrent`: with `running` and `queued`, how full this server is (what an
    /// autoscaler compares them with).
    pub slots: usize,
    /// Sessions open: each holds a workspace on this server, lost if it goes away.
    pub sessions: usize,
    pub pool: crate::engine::PoolStats,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic mid-update; the counts are still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn execution(&self, status: &'static str, took: Duration) {
        let secs = took.as_secs_f64();
        let mut m = self.lock();
        *m.executions.entry(status).or_default() += 1;
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            m.duration_buckets[i] += 1;
        }
        m.duration_count += 1;
        m.duration_sum += secs;
    }

    pub fn rejection(&self, status: u16, code: &'static str) {
        *self.lock().rejections.entry((status, code)).or_default() += 1;
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let m = self.lock();
        let mut out = String::new();
        header(&mut out, "ignite_build_info", "gauge", "The ignite version serving; always 1.");
        sample(&mut out, "ignite_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);

        header(
            &mut out,
            "ignite_executions_total",
            "counter",
            "Finished executions by report status (failed: no report).",
        );
        for (status, n) in &m.executions {
            sample(&mut out, "ignite_executions_total", &[("status", status)], *n as f64);
        }

        let h = "ignite_execution_duration_seconds";
        header(&mut out, h, "histogram", "Time from a slot being granted to the end of the execution.");
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(m.duration_buckets) {
            cumulative += n;
            sample(&mut out, &format!("{h}_bucket"), &[("le", &bound.to_string())], cumulative as f64);
        }
        sample(&mut out, &format!("{h}_bucket"), &[("le", "+Inf")], m.duration_count as f64);
        sample(&mut out, &format!("{h}_sum"), &[], m.duration_sum);
        sample(&mut out, &format!("{h}_count"), &[], m.duration_count as f64);

        header(&mut out, "ignite_sandboxes_running", "gauge", "Executions holding a slot now.");
        sample(&mut out, "ignite_sandboxes_running", &[], gauges.running as f64);
        header(&mut out, "ignite_queue_depth", "gauge", "Executions waiting for a slot now.");
        sample(&mut out, "ignite_queue_depth", &[], gauges.queued as f64);
        header(&mut out, "ignite_execution_slots", "gauge", "Executions that may run at once (--max-concurrent).");
        sample(&mut out, "ignite_execution_slots", &[], gauges.slots as f64);
        header(&mut out, "ignite_sessions_open", "gauge", "Sessions open now, each with its workspace on this server.");
        sample(&mut out, "ignite_sessions_open", &[], gauges.sessions as f64);

        let pool = &gauges.pool;
        header(
            &mut out,
            "ignite_pool_sandboxes",
            "gauge",
            "Warm sandboxes by service and state (parked: ready for a job; starting).",
        );
        for (service, s) in &pool.services {
            sample(&mut out, "ignite_pool_sandboxes", &[("service", service), ("state", "parked")], s.parked as f64);
            sample(
                &mut out,
                "ignite_pool_sandboxes",
                &[("service", service), ("state", "starting")],
                s.starting as f64,
            );
        }
        header(
            &mut out,
            "ignite_pool_requests_total",
            "counter",
            "Executions through the pool by service and result (hit: warm; miss: none parked, ran cold; cold_only: cannot run warm).",
        );
        for (service, s) in &pool.services {
            for (result, n) in [("hit", s.hits), ("miss", s.misses), ("cold_only", s.cold_only)] {
                sample(&mut out, "ignite_pool_requests_total", &[("service", service), ("result", result)], n as f64);
            }
        }
        header(
            &mut out,
            "ignite_pool_discards_total",
            "counter",
            "Warm sandboxes removed without serving (idle past the TTL, or dead), and those that failed to start.",
        );
        for (service, s) in &pool.services {
            sample(
                &mut out,
                "ignite_pool_discards_total",
                &[("service", service), ("reason", "discarded")],
                s.discarded as f64,
            );
            sample(
                &mut out,
                "ignite_pool_discards_total",
                &[("service", service), ("reason", "launch_failed")],
                s.launch_failures as f64,
            );
        }
        header(
            &mut out,
            "ignite_pool_memory_reserved_mb",
            "gauge",
            "Memory limits of the sandboxes alive now (parked, starting, running), MiB.",
        );
        sample(&mut out, "ignite_pool_memory_reserved_mb", &[], pool.reserved_mb as f64);
        header(
            &mut out,
            "ignite_pool_memory_budget_mb",
            "gauge",
            "Memory the pool may reserve; no sandbox is started ahead beyond it, MiB.",
        );
        sample(&mut out, "ignite_pool_memory_budget_mb", &[], pool.budget_mb as f64);

        header(&mut out, "ignite_rejections_total", "counter", "Error responses by HTTP status and error code.");
        for ((status, code), n) in &m.rejections {
            sample(
                &mut out,
                "ignite_rejections_total",
                &[("status", &status.to_string()), ("reason", code)],
                *n as f64,
            );
        }
        out
    }
}

/// Prometheus metrics: executions, durations, slots, queue, rejections.
#[utoipa::path(get, path = "/metrics", responses((status = 200, body = String, content_type = "text/plain; version=0.0.4")))]
pub(super) async fn scrape(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let gauges = Gauges {
        running: st.admission.running(),
        queued: st.admission.queued(),
        slots: st.admission.slots(),
        sessions: st.sessions.open(),
        pool: st.engine.pool_stats().unwrap_or_default(),
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], st.metrics.render(&gauges))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
            .collect();
        let _ = write!(out, "{{{}}}", labels.join(","));
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_labels_are_escaped() {
        let m = Metrics::default();
        m.execution("ok", Duration::from_millis(70));
        m.execution("ok", Duration::from_secs(1000));
        m.execution("timeout", Duration::from_secs(2));
        let mut pool = crate::engine::PoolStats { reserved_mb: 128, budget_mb: 1024, ..Default::default() };
        pool.services.insert("hello".into(), crate::engine::ServiceStats { parked: 2, hits: 5, ..Default::default() });
        let text = m.render(&Gauges { running: 1, queued: 0, slots: 2, sessions: 0, pool });
        assert!(text.contains("ignite_pool_sandboxes{service=\"hello\",state=\"parked\"} 2\n"), "{text}");
        assert!(text.contains("ignite_pool_requests_total{service=\"hello\",result=\"hit\"} 5\n"), "{text}");
        assert!(text.contains("ignite_pool_memory_budget_mb 1024\n"), "{text}");
        assert!(text.contains("ignite_executions_total{status=\"ok\"} 2\n"), "{text}");
        assert!(text.contains("ignite_execution_duration_seconds_bucket{le=\"0.05\"} 0\n"), "{text}");
        assert!(text.contains("ignite_execution_duration_seconds_bucket{le=\"0.1\"} 1\n"), "{text}");
        assert!(text.contains("ignite_execution_duration_seconds_bucket{le=\"2.5\"} 2\n"), "{text}");
        assert!(text.contains("ignite_execution_duration_seconds_bucket{le=\"300\"} 2\n"), "{text}");
        assert!(text.contains("ignite_execution_duration_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("ignite_execution_duration_seconds_count 3\n"), "{text}");
        assert!(text.contains("ignite_sandboxes_running 1\n"), "{text}");
        let mut out = String::new();
        sample(&mut out, "x", &[("a", "q\"b\\n\nl")], 1.5);
        assert_eq!(out, "x{a=\"q\\\"b\\\\n\\nl\"} 1.5\n");
    }
}
