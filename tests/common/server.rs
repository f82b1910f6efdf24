//! `ignite serve` as the integration tests drive it: the real binary on an ephemeral port, a
//! plain HTTP client, and SIGTERM to stop it (a server a failing test leaves is killed).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};

use serde_json::Value;

use super::Sandbox;

pub struct Server {
    pub child: Child,
    pub base: String,
    pub stderr: Option<std::thread::JoinHandle<String>>,
}

/// A test that panics before `stop` must not leave its server running.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Asserts an error response: the status and `{"error": {"code", "message"}}`.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{}", self.body);
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", self.body);
    }

    /// Asserts an error response with exactly this message.
    pub fn assert_error_message(&self, status: u16, code: &str, message: &str) {
        self.assert_error(status, code);
        assert_eq!(self.json()["error"]["message"], message, "{}", self.body);
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into()
}

pub fn response(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.expect("HTTP request");
    let headers =
        r.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect();
    Resp {
        status: r.status().as_u16(),
        headers,
        body: r.body_mut().with_config().limit(64 << 20).read_to_string().unwrap_or_default(),
    }
}

impl Server {
    /// Without `--pool…` arguments the warm pool is off, so that a test sees only the
    /// sandboxes of its own requests; the pool's tests (at the end) turn it on.
    pub fn start(sb: &Sandbox, services: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_from(sb.cmd(), services, args, env)
    }

    pub fn start_from(mut cmd: std::process::Command, services: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        cmd.arg("serve").arg("--services").arg(services).args(["--port", "0"]).args(args);
        if !args.iter().any(|a| a.starts_with("--pool")) {
            cmd.args(["--pool-min", "0", "--pool-max", "0"]);
        }
        cmd.env_remove("IGNITE_API_KEYS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn ignite serve");
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read stdout");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            let _ = child.wait();
            panic!("no listening line (got {line:?}); stderr:\n{}", stderr.join().unwrap_or_default());
        };
        let addr = v["listening"].as_str().expect("listening address").to_string();
        Server { child, base: format!("http://{addr}"), stderr: Some(stderr) }
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> Resp {
        let mut req = agent().get(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        response(req.call())
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = agent().get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        response(req.call())
    }

    pub fn post(&self, path: &str, content_type: Option<&str>, body: &str) -> Resp {
        let mut req = agent().post(format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        response(req.send(body))
    }

    pub fn sigterm(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }

    /// SIGTERM, then the exit status and everything it logged.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.sigterm();
        let status = self.child.wait().expect("wait");
        (status, self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default())
    }

    /// POSTs `body` as JSON.
    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.post(path, Some("application/json"), &body.to_string())
    }

    /// The value of one sample of /metrics (`series` with its labels), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        let text = self.get("/metrics", None).body;
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
    }

    /// Polls /metrics until `n` sandboxes of `service` are parked (a condition, not a clock).
    pub fn wait_parked(&self, service: &str, n: f64) {
        let series = format!("ignite_pool_sandboxes{{service=\"{service}\",state=\"parked\"}}");
        for _ in 0..3000 {
            if self.metric(&series) == n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("never saw {n} parked sandbox(es) of {service}: {}", self.get("/metrics", None).body);
    }
}
