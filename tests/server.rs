//! `ignite serve` end to end: the real binary on an ephemeral port, an HTTP client, real
//! sandboxes; every server is stopped with SIGTERM and must leave nothing behind.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{Sandbox, oci_cmd, require_sandbox};
use serde_json::{Value, json};

/// Waits for the file `/app/release` (the host creates it in the service directory), so a
/// test decides when the run ends without racing a clock.
const WAIT_FOR_RELEASE: &str = r#"import { existsSync } from "node:fs";
while (!existsSync("/app/release")) await new Promise((r) => setTimeout(r, 20));
console.log("released");
"#;

const ECHO: &str = r#"const input = JSON.parse(process.env.IGNITE_INPUT ?? "{}");
console.log("got " + JSON.stringify(input));
if (input.fail) { console.error("failing on purpose"); process.exit(3); }
"#;

use common::server::{Resp, Server, agent, response};

impl Server {
    fn execute(&self, name: &str, body: Value) -> Resp {
        self.post(&format!("/services/{name}/execute"), Some("application/json"), &body.to_string())
    }

    /// Executes `name` with an empty body on another thread; join it for the response.
    fn execute_in_background(&self, name: &str) -> std::thread::JoinHandle<Resp> {
        let url = format!("{}/services/{name}/execute", self.base);
        std::thread::spawn(move || response(agent().post(url).header("Content-Type", "application/json").send("{}")))
    }

    /// Polls /ready until `running` executions are in flight (a condition, not a clock).
    fn wait_running(&self, running: u64) {
        for _ in 0..3000 {
            if self.get("/ready", None).json()["running"] == running {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("never saw {running} running execution(s)");
    }

    /// Polls until a container of this state dir exists: the run got past admission and
    /// set-up, and its program is running.
    fn wait_sandbox(&self, sb: &Sandbox) {
        self.wait_running(1);
        // Started, not merely being created: a creation cut short (the server killed meanwhile)
        // is undone by the OCI runtime itself.
        for _ in 0..3000 {
            let out = oci_cmd(sb).args(["list", "--format", "json"]).output();
            let running = out
                .ok()
                .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
                .is_some_and(|v| v.as_array().is_some_and(|list| list.iter().any(|c| c["status"] == "running")));
            if running {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no container appeared under {}", sb.state.path().join("oci").display());
    }
}

fn services(sb: &Sandbox) -> PathBuf {
    sb.service("svc/echo", &[("service.yaml", "service:\n  name: echo\n  entry: index.ts\n"), ("index.ts", ECHO)]);
    sb.service(
        "svc/waiter",
        &[("service.yaml", "service:\n  name: waiter\n  entry: index.ts\n"), ("index.ts", WAIT_FOR_RELEASE)],
    );
    sb.service(
        "svc/broken",
        &[("service.yaml", "service:\n  name: broken\n  memoryMb: 1\n  entry: index.ts\n"), ("index.ts", ECHO)],
    );
    sb.service("svc/not-a-service", &[("README", "no service.yaml here")]);
    sb.work.path().join("svc")
}

#[test]
fn endpoints_reports_and_request_errors() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--max-body", "4096", "--max-input", "200"], &[]);

    let health = srv.get("/health", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["version"], env!("CARGO_PKG_VERSION"));
    let ready = srv.get("/ready", None);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["missing"], json!([]));

    let list = srv.get("/services", None).json();
    let names: Vec<&str> = list["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["broken", "echo", "waiter"], "{list}");
    let broken = &list["services"][0];
    assert_eq!(broken["valid"], false);
    let error = broken["error"].as_str().unwrap();
    assert!(error.starts_with("broken/service.yaml: field `service.memoryMb`"), "relative to DIR: {error}");
    let echo = srv.get("/services/echo", None);
    assert_eq!(echo.status, 200);
    assert_eq!(echo.json()["runtime"], "bun");
    srv.get("/services/nope", None).assert_error(404, "not_found");
    srv.get("/no/such/route", None).assert_error(404, "not_found");
    let wrong_method = srv.post("/health", Some("application/json"), "{}");
    wrong_method.assert_error(405, "method_not_allowed");
    assert_eq!(wrong_method.header("allow"), Some("GET,HEAD"));

    // Names never become paths outside DIR: DIR's parent holds a service.yaml to find.
    std::fs::write(sb.work.path().join("service.yaml"), "service:\n  name: outside\n").unwrap();
    for path in [
        "/services/..",
        "/services/%2e%2e",
        "/services/..%2fsvc%2fecho",
        "/services/%2e%2e%2f",
        "/services/echo%2f..%2fecho",
    ] {
        let r = srv.get(path, None);
        assert!(r.status == 404 || r.status == 400, "{path}: {} {}", r.status, r.body);
        assert!(r.json()["error"]["code"].is_string(), "{path}: {}", r.body);
        let r = srv.execute(&path["/services/".len()..], json!({}));
        assert!(r.status == 404 || r.status == 400, "{path} execute: {} {}", r.status, r.body);
    }

    let ok = srv.execute("echo", json!({ "input": { "n": 1 } }));
    assert_eq!(ok.status, 200, "{}", ok.body);
    let report = ok.json();
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["stdout"], "got {\"n\":1}\n");
    assert!(report["metrics"]["wallTimeMs"].is_number(), "{report}");
    sb.assert_cgroup_gone(report["containerId"].as_str().unwrap());

    let failed = srv.execute("echo", json!({ "input": { "fail": true } }));
    assert_eq!(failed.status, 200, "a failing program is a report, not a server error: {}", failed.body);
    let report = failed.json();
    assert_eq!(
        (report["success"].clone(), report["status"].clone(), report["exitCode"].clone()),
        (json!(false), json!("error"), json!(3))
    );
    assert_eq!(report["stderr"], "failing on purpose\n");

    let timeout = srv.execute("waiter", json!({ "timeoutMs": 300 }));
    assert_eq!(timeout.status, 200, "{}", timeout.body);
    assert_eq!((timeout.json()["success"].clone(), timeout.json()["status"].clone()), (json!(false), json!("timeout")));

    srv.execute("broken", json!({})).assert_error(422, "service_invalid");
    srv.execute("echo", json!({ "memoryMb": 8 })).assert_error(400, "invalid_request");
    srv.execute("echo", json!({ "timeoutMs": 1 })).assert_error(400, "invalid_request");
    srv.execute("echo", json!({ "inptu": {} })).assert_error(400, "invalid_request");
    let malformed = srv.post("/services/echo/execute", Some("application/json"), "{\"input\": ");
    malformed.assert_error(400, "malformed_json");
    assert!(malformed.json()["error"]["message"].as_str().unwrap().contains("EOF"), "{}", malformed.body);
    srv.post("/services/echo/execute", Some("text/plain"), "{}").assert_error(415, "unsupported_media_type");
    srv.post("/services/echo/execute", None, "{}").assert_error(415, "unsupported_media_type");
    let big = json!({ "input": "x".repeat(5000) }).to_string();
    srv.post("/services/echo/execute", Some("application/json"), &big).assert_error(413, "body_too_large");
    srv.execute("echo", json!({ "input": "x".repeat(300) })).assert_error(413, "input_too_large");

    let (status, log) = srv.stop();
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains("path=\"/services/echo/execute\" status=200"), "request log:\n{log}");
    sb.assert_no_leaks();
}

#[test]
fn keys_from_file_and_environment_guard_everything_but_health() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let file_key = "file-key-0123456789abcdef";
    let env_key = "env-key-0123456789abcdef";
    let key_file = sb.work.path().join("keys");
    std::fs::write(&key_file, format!("# operators\n\n{file_key}\n")).unwrap();
    let srv =
        Server::start(&sb, &dir, &["--api-key-file", key_file.to_str().unwrap()], &[("IGNITE_API_KEYS", env_key)]);

    assert_eq!(srv.get("/health", None).status, 200, "liveness stays public");
    for path in ["/ready", "/services", "/services/echo", "/no/such/route"] {
        let r = srv.get(path, None);
        r.assert_error(401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{path}");
        srv.get(path, Some("wrong-key-0123456789abcdef")).assert_error(401, "unauthorized");
        srv.get(path, Some(&file_key[..file_key.len() - 1])).assert_error(401, "unauthorized");
    }
    srv.execute("echo", json!({})).assert_error(401, "unauthorized");
    assert_eq!(srv.get("/services", Some(file_key)).status, 200);
    assert_eq!(srv.get("/services", Some(env_key)).status, 200);
    let run = response(
        agent()
            .post(format!("{}/services/echo/execute", srv.base))
            .header("Authorization", format!("Bearer {env_key}"))
            .header("Content-Type", "application/json")
            .send("{\"input\":{\"k\":1}}"),
    );
    assert_eq!(run.status, 200, "{}", run.body);
    assert_eq!(run.json()["success"], true);

    let (status, log) = srv.stop();
    assert!(status.success(), "{status}\n{log}");
    assert!(!log.contains(file_key) && !log.contains(env_key), "a key reached the log:\n{log}");
    use sha2::Digest;
    let id = hex::encode(&sha2::Sha256::digest(env_key.as_bytes())[..4]);
    assert!(log.contains(&format!("key=\"{id}\"")), "requests are logged with the key id {id}:\n{log}");
    sb.assert_no_leaks();
}

#[test]
fn public_address_without_keys_is_refused() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let out = sb
        .cmd()
        .args(["serve", "--host", "0.0.0.0", "--port", "0", "--services"])
        .arg(&dir)
        .env_remove("IGNITE_API_KEYS")
        .output()
        .expect("spawn");
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let err = common::stderr_of(&out);
    assert!(err.contains("without API keys") && err.contains("--insecure-no-auth"), "{err}");
    assert!(out.stdout.is_empty(), "it must not have listened: {}", common::stdout_of(&out));

    let bad = sb.work.path().join("bad-keys");
    std::fs::write(&bad, "# nothing but comments\n").unwrap();
    let out = sb
        .cmd()
        .args(["serve", "--port", "0", "--api-key-file"])
        .arg(&bad)
        .arg("--services")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(common::stderr_of(&out).contains("holds no API key"), "{}", common::stderr_of(&out));

    let missing = sb.work.path().join("no-such-dir");
    let out = sb.cmd().args(["serve", "--port", "0", "--services"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = common::stderr_of(&out);
    assert!(err.contains("services directory") && err.contains("no-such-dir"), "{err}");

    let srv = Server::start(&sb, &dir, &["--host", "0.0.0.0", "--insecure-no-auth"], &[]);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--rate-limit", "2"], &[]);
    assert_eq!(srv.get("/services", None).status, 200);
    assert_eq!(srv.get("/services/echo", None).status, 200);
    let limited = srv.get("/services", None);
    limited.assert_error(429, "rate_limited");
    let secs: u64 = limited.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!(secs >= 1, "{secs}");
    assert_eq!(srv.get("/health", None).status, 200, "liveness is not rate-limited");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn rate_limit_buckets_follow_keys_and_only_trusted_forwarded_addresses() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let (a, b) = ("key-a-0123456789abcdef", "key-b-0123456789abcdef");
    let srv = Server::start(&sb, &dir, &["--rate-limit", "1"], &[("IGNITE_API_KEYS", &format!("{a},{b}"))]);
    assert_eq!(srv.get("/services", Some(a)).status, 200);
    srv.get("/services", Some(a)).assert_error(429, "rate_limited");
    assert_eq!(srv.get("/services", Some(b)).status, 200, "each key has its own bucket");
    srv.get("/services", Some("guess-0123456789abcdef")).assert_error(401, "unauthorized");
    // Failed attempts count against the peer address: guessing keys is rate-limited too.
    srv.get("/services", Some("guess-2-0123456789abcdef")).assert_error(429, "rate_limited");
    assert!(srv.stop().0.success());

    let srv = Server::start(&sb, &dir, &["--rate-limit", "1"], &[]);
    assert_eq!(srv.get_with("/services", &[("X-Forwarded-For", "10.0.0.1")]).status, 200);
    srv.get_with("/services", &[("X-Forwarded-For", "10.0.0.2")]).assert_error(429, "rate_limited");
    assert!(srv.stop().0.success(), "without --trust-proxy the header is ignored: one peer, one bucket");

    let srv = Server::start(&sb, &dir, &["--rate-limit", "1", "--trust-proxy"], &[]);
    let get = |v: &str| srv.get_with("/services", &[("X-Forwarded-For", v)]);
    assert_eq!(get("1.1.1.1, 10.0.0.1").status, 200);
    assert_eq!(get("1.1.1.1, 10.0.0.2").status, 200, "the proxy's entry (the last) names the client");
    get("9.9.9.9, 10.0.0.1").assert_error(429, "rate_limited");
    assert!(srv.stop().0.success(), "entries before the proxy's are the client's to forge and are not used");
}

#[test]
fn full_queue_answers_503_and_the_running_execution_completes() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--max-concurrent", "1", "--queue", "0"], &[]);
    let first = srv.execute_in_background("waiter");
    srv.wait_running(1);
    let busy = srv.execute("echo", json!({}));
    busy.assert_error(503, "busy");
    assert!(busy.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{:?}", busy.headers);

    std::fs::write(dir.join("waiter/release"), "").unwrap();
    let first = first.join().unwrap();
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["stdout"], "released\n");
    assert_eq!(srv.execute("echo", json!({})).json()["success"], true, "the slot is free again");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn queued_executions_all_run_when_slots_free_up() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--max-concurrent", "2", "--queue", "8"], &[]);
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let base = srv.base.clone();
            std::thread::spawn(move || {
                let body = json!({ "input": { "n": i } }).to_string();
                response(
                    agent()
                        .post(format!("{base}/services/echo/execute"))
                        .header("Content-Type", "application/json")
                        .send(&body),
                )
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let r = c.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["stdout"], format!("got {{\"n\":{i}}}\n"), "each request gets its own run's report");
    }
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn shutdown_cancels_a_run_past_the_deadline_and_cleans_up() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--shutdown-timeout", "1"], &[]);
    let inflight = srv.execute_in_background("waiter");
    srv.wait_sandbox(&sb);
    let (status, log) = srv.stop();
    assert!(status.success(), "{status}\n{log}");
    let r = inflight.join().unwrap();
    assert_eq!(r.status, 200, "the run in flight still gets its report: {}", r.body);
    let report = r.json();
    assert_eq!(report["success"], false, "{report}");
    assert!(report["message"].as_str().unwrap_or_default().contains("interrupted"), "{report}");
    assert!(log.contains("cancelling the executions still running"), "{log}");
    sb.assert_cgroup_gone(report["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
fn shutdown_lets_a_running_execution_finish_before_the_deadline() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--shutdown-timeout", "600"], &[]);
    let inflight = srv.execute_in_background("waiter");
    srv.wait_sandbox(&sb);
    srv.sigterm();
    // Draining: the listener is closed, so a new connection is refused.
    let mut refused = false;
    for _ in 0..3000 {
        if agent().get(format!("{}/health", srv.base)).call().is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(refused, "the server kept accepting connections after SIGTERM");
    std::fs::write(dir.join("waiter/release"), "").unwrap();
    let r = inflight.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["success"], true, "the run finished on its own: {}", r.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{status}\n{log}");
    assert!(!log.contains("cancelling the executions"), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_restarted_server_reaps_the_sandboxes_of_a_killed_one() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let mut crashed = Server::start(&sb, &dir, &[], &[]);
    assert_eq!(crashed.post("/v1/sessions", None, "").status, 201);
    let base = crashed.base.clone();
    let inflight = std::thread::spawn(move || {
        // The server dies mid-request: the connection is cut, there is no response.
        agent()
            .post(format!("{base}/services/waiter/execute"))
            .header("Content-Type", "application/json")
            .send("{}")
            .is_err()
    });
    crashed.wait_sandbox(&sb);
    crashed.child.kill().expect("SIGKILL");
    crashed.child.wait().expect("wait");
    assert!(inflight.join().unwrap(), "the killed server answered");
    let runs: Vec<_> =
        std::fs::read_dir(sb.state.path().join("runs")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!runs.is_empty(), "the killed server left its sandbox (else this test proves nothing)");
    assert_eq!(session_dirs(&sb).len(), 1, "the killed server left its session's workspace");

    let srv = Server::start(&sb, &dir, &[], &[]);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("removed sandboxes left by an earlier process"), "{log}");
    assert!(session_dirs(&sb).is_empty(), "workspaces of the killed server: {:?}", session_dirs(&sb));
    sb.assert_no_leaks();
}

impl Server {
    fn inline(&self, body: Value) -> Resp {
        self.post("/v1/execute", Some("application/json"), &body.to_string())
    }
}

/// The per-run directories of `/v1/execute` under the state dir (none once runs are over).
fn inline_dirs(sb: &Sandbox) -> Vec<std::ffi::OsString> {
    match std::fs::read_dir(sb.state.path().join("inline")) {
        Ok(entries) => entries.flatten().map(|e| e.file_name()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn inline_code_and_files_run_on_bun_and_node_and_their_directory_is_removed() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &[], &[]);

    // `code` on bun is index.ts: type annotations run natively.
    let r = srv.inline(
        json!({ "runtime": "bun", "code": "const n: number = 41; console.log(n + 1, process.cwd());", "input": {} }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(report["service"], "inline", "{report}");
    assert!(report["stdout"].as_str().unwrap().starts_with("42"), "{report}");

    // Files with a relative import and the input, TypeScript on node (types stripped on the host).
    let files = json!({
        "main.ts": "import { twice } from \"./lib/math.ts\";\nconst input: { n: number } = JSON.parse(process.env.IGNITE_INPUT!);\nconsole.log(twice(input.n));\n",
        "lib/math.ts": "export function twice(n: number): number { return n * 2; }\n",
    });
    for runtime in ["node", "bun"] {
        let r = srv.inline(json!({ "runtime": runtime, "files": files, "entry": "main.ts", "input": { "n": 21 } }));
        assert_eq!(r.status, 200, "{runtime}: {}", r.body);
        assert_eq!(r.json()["stdout"], "42\n", "{runtime}: {}", r.body);
    }
    // `code` on node is index.js; the program cannot write to its own directory.
    let r = srv.inline(json!({
        "runtime": "node",
        "code": "const fs = require('node:fs'); try { fs.writeFileSync('/app/x', '1'); console.log('wrote'); } catch (e) { console.log(e.code); }",
        "limits": { "timeoutMs": 10000, "memoryMb": 128, "cpu": 0.5 },
    }));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["stdout"], "EROFS\n", "{}", r.body);
    // A failing program and a timeout are reports too, and their directories go as well.
    let r = srv.inline(json!({ "runtime": "bun", "code": "process.exit(3)" }));
    assert_eq!((r.status, r.json()["exitCode"].clone()), (200, json!(3)), "{}", r.body);
    let r = srv.inline(json!({ "runtime": "bun", "code": "while (true) {}", "limits": { "timeoutMs": 300 } }));
    assert_eq!(r.json()["status"], "timeout", "{}", r.body);
    // A package.json without dependencies is just a file.
    let r = srv.inline(json!({ "runtime": "bun", "files": { "package.json": "{\"type\":\"module\"}", "index.js": "console.log('esm')" } }));
    assert_eq!(r.json()["stdout"], "esm\n", "{}", r.body);
    assert_eq!(inline_dirs(&sb), Vec::<std::ffi::OsString>::new(), "per-run directories left behind");

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    assert!(inline_dirs(&sb).is_empty());
    sb.assert_no_leaks();
}

#[test]
fn inline_requests_with_bad_paths_runtimes_or_sizes_are_refused() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--max-body", "8388608"], &[]);
    let with_files = |files: Value| srv.inline(json!({ "runtime": "bun", "files": files }));
    for bad in ["../escape.js", "/etc/passwd", "a/../../b.js", "a\\..\\b.js", "a\u{0}b.js", "", "."] {
        let r = with_files(json!({ bad: "x", "index.js": "" }));
        r.assert_error(400, "invalid_files");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("files: path"), "{bad:?}: {}", r.body);
    }
    let dup = with_files(json!({ "index.js": "", "./index.js": "" }));
    dup.assert_error(400, "invalid_files");
    assert!(dup.body.contains("same path"), "{}", dup.body);
    // The same key twice in the JSON text is refused, not silently resolved to the last one.
    let twice = r#"{"runtime":"bun","files":{"index.js":"console.log(1)","index.js":"console.log(2)"}}"#;
    srv.post("/v1/execute", Some("application/json"), twice).assert_error(400, "invalid_files");
    let conflict = with_files(json!({ "lib": "", "lib/a.js": "", "index.js": "" }));
    conflict.assert_error(400, "invalid_files");
    assert!(conflict.body.contains("needs it to be a directory"), "{}", conflict.body);
    let many: serde_json::Map<String, Value> = (0..=256).map(|i| (format!("f{i}.js"), json!(""))).collect();
    with_files(Value::Object(many)).assert_error(413, "files_too_large");
    with_files(json!({ "index.js": "x".repeat(4 * 1024 * 1024 + 1) })).assert_error(413, "files_too_large");

    let unknown = srv.inline(json!({ "runtime": "python", "code": "print(1)" }));
    unknown.assert_error(400, "invalid_request");
    assert!(unknown.body.contains("bun") && unknown.body.contains("node"), "lists the runtimes: {}", unknown.body);
    srv.inline(json!({ "runtime": "bun" })).assert_error(400, "invalid_request");
    srv.inline(json!({ "runtime": "bun", "code": "", "files": {} })).assert_error(400, "invalid_request");
    srv.inline(json!({ "runtime": "bun", "files": { "a.js": "" } })).assert_error(400, "invalid_request");
    srv.inline(json!({ "runtime": "bun", "files": { "a.js": "" }, "entry": "b.js" }))
        .assert_error(400, "invalid_request");
    srv.inline(json!({ "runtime": "bun", "code": "", "entry": "../x.ts" })).assert_error(400, "invalid_files");
    srv.inline(json!({ "runtime": "bun", "code": "", "limits": { "memoryMb": 1 } }))
        .assert_error(400, "invalid_request");
    srv.inline(json!({ "runtime": "bun", "code": "", "limits": { "cpu": 0 } })).assert_error(400, "invalid_request");
    srv.inline(json!({ "runtime": "bun", "code": "", "limits": { "disk": 1 } })).assert_error(400, "invalid_request");
    let deps = with_files(json!({ "package.json": "{\"dependencies\":{\"lodash\":\"4.17.21\"}}", "index.js": "" }));
    deps.assert_error(400, "invalid_request");
    assert!(deps.body.contains("does not install npm packages"), "{}", deps.body);
    assert!(inline_dirs(&sb).is_empty(), "a refused request left its directory: {:?}", inline_dirs(&sb));

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

impl Server {
    /// A request with a key and an optional JSON body.
    fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> Resp {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {key}");
        let a = agent();
        response(match (method, body) {
            ("GET", _) => a.get(url).header("Authorization", auth).call(),
            ("DELETE", _) => a.delete(url).header("Authorization", auth).call(),
            (_, Some(b)) => {
                a.post(url).header("Authorization", auth).header("Content-Type", "application/json").send(b.to_string())
            }
            (_, None) => a.post(url).header("Authorization", auth).send_empty(),
        })
    }
}

/// Session workspaces (mount points) under the state dir.
fn session_dirs(sb: &Sandbox) -> Vec<std::ffi::OsString> {
    match std::fs::read_dir(sb.state.path().join("sessions")) {
        Ok(entries) => entries.flatten().map(|e| e.file_name()).collect(),
        Err(_) => Vec::new(),
    }
}

fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}

const WRITE_NOTE: &str = r#"import { writeFileSync } from "node:fs";
writeFileSync("/tmp/workspace/note.txt", JSON.parse(process.env.IGNITE_INPUT!).note);
console.log("written");
"#;

const READ_NOTE: &str = r#"import { readFileSync, readdirSync } from "node:fs";
try { console.log(readFileSync("/tmp/workspace/note.txt", "utf8"), readdirSync("/tmp/workspace").join(",")); }
catch (e) { console.log((e as NodeJS.ErrnoException).code); }
"#;

#[test]
fn sessions_share_a_quota_limited_workspace_per_session_and_key_and_are_removed() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let (a, b) = ("key-a-0123456789abcdef", "key-b-0123456789abcdef");
    let srv = Server::start(
        &sb,
        &dir,
        &["--session-quota-mb", "1", "--session-ttl", "60", "--session-max-ttl", "60"],
        &[("IGNITE_API_KEYS", &format!("{a},{b}"))],
    );
    let create = |key: &str, body: Option<Value>| {
        let r = srv.call("POST", "/v1/sessions", key, body);
        assert_eq!(r.status, 201, "{}", r.body);
        let v = r.json();
        let id = v["id"].as_str().unwrap().to_string();
        assert!(id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit()), "an unguessable id: {id}");
        assert!(v["expiresAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
        id
    };
    let run = |key: &str, id: &str, code: &str, input: Value| {
        let r = srv.call(
            "POST",
            &format!("/v1/sessions/{id}/execute"),
            key,
            Some(json!({ "runtime": "bun", "code": code, "input": input })),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["stdout"].as_str().unwrap().to_string()
    };
    let s1 = create(a, None);
    let s2 = create(a, Some(json!({ "ttlSeconds": 60 })));
    assert_eq!(session_dirs(&sb).len(), 2);

    assert_eq!(run(a, &s1, WRITE_NOTE, json!({ "note": "from run 1" })), "written\n");
    assert_eq!(run(a, &s1, READ_NOTE, json!({})), "from run 1 note.txt\n", "run 2 sees run 1's file");
    assert_eq!(run(a, &s2, READ_NOTE, json!({})), "ENOENT\n", "another session's workspace is not visible");
    // Outside a session there is no workspace at all.
    let r = srv.call("POST", "/v1/execute", a, Some(json!({ "runtime": "bun", "code": READ_NOTE })));
    assert_eq!(r.json()["stdout"], "ENOENT\n", "{}", r.body);

    // The quota is the kernel's: the 2nd MiB does not fit in a 1 MiB workspace.
    let fill = r#"import { writeFileSync } from "node:fs";
try { writeFileSync("/tmp/workspace/big", Buffer.alloc(2 * 1024 * 1024, 1)); console.log("fit"); }
catch (e) { console.log((e as NodeJS.ErrnoException).code); }"#;
    assert_eq!(run(a, &s2, fill, json!({})), "ENOSPC\n");
    let info = srv.call("GET", &format!("/v1/sessions/{s1}"), a, None);
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["quotaMb"], 1);
    assert!(info.json()["usedBytes"].as_u64().is_some_and(|n| n > 0), "{}", info.body);

    // Another key sees none of it.
    srv.call("GET", &format!("/v1/sessions/{s1}"), b, None).assert_error(404, "not_found");
    srv.call("POST", &format!("/v1/sessions/{s1}/execute"), b, Some(json!({ "runtime": "bun", "code": "" })))
        .assert_error(404, "not_found");
    srv.call("DELETE", &format!("/v1/sessions/{s1}"), b, None).assert_error(404, "not_found");
    srv.call("GET", "/v1/sessions/00000000000000000000000000000000", a, None).assert_error(404, "not_found");
    srv.call("POST", "/v1/sessions", a, Some(json!({ "ttlSeconds": 61 }))).assert_error(400, "invalid_request");
    srv.call("POST", "/v1/sessions", a, Some(json!({ "ttl": 1 }))).assert_error(400, "invalid_request");
    assert_eq!(srv.post("/v1/sessions", Some("application/json"), "{}").status, 401);

    // DELETE unmounts and removes the workspace.
    let ws1 = sb.state.path().join("sessions").join(&s1);
    assert!(mounted(&ws1));
    assert_eq!(srv.call("DELETE", &format!("/v1/sessions/{s1}"), a, None).status, 204);
    assert!(!mounted(&ws1) && !ws1.exists(), "the workspace outlived DELETE");
    srv.call("GET", &format!("/v1/sessions/{s1}"), a, None).assert_error(404, "not_found");
    srv.call("POST", &format!("/v1/sessions/{s1}/execute"), a, Some(json!({ "runtime": "bun", "code": "" })))
        .assert_error(404, "not_found");

    // Expiry: the sweeper removes it (polled: a condition, not a clock).
    let short = create(b, Some(json!({ "ttlSeconds": 1 })));
    let ws = sb.state.path().join("sessions").join(&short);
    let mut gone = false;
    for _ in 0..1000 {
        if !ws.exists() {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(gone && !mounted(&ws), "an expired session's workspace was not removed");
    srv.call("GET", &format!("/v1/sessions/{short}"), b, None).assert_error(404, "not_found");

    // Shutdown removes the sessions still open (s2).
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    assert!(session_dirs(&sb).is_empty(), "sessions left behind: {:?}", session_dirs(&sb));
    assert!(inline_dirs(&sb).is_empty());
    sb.assert_no_leaks();
}

/// Each run has a uid of its own (see ignite::sandbox::identity); a session's runs share one, which owns
/// its workspace, for the session's life, and no other run has it meanwhile.
#[test]
fn a_sessions_runs_keep_one_uid_that_owns_the_workspace_and_no_other_run_has() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &[], &[]);
    let who = r#"import { statSync, writeFileSync } from "node:fs";
const uid = process.getuid!();
let ws = "none";
try { writeFileSync(`/tmp/workspace/by-${uid}`, "x"); ws = String(statSync("/tmp/workspace").uid); } catch (e) { ws = (e as NodeJS.ErrnoException).code!; }
console.log(uid, ws);"#;
    let uid_of = |path: &str| -> (u32, String) {
        let r = srv.call("POST", path, "", Some(json!({ "runtime": "bun", "code": who })));
        assert_eq!(r.status, 200, "{}", r.body);
        let out = r.json()["stdout"].as_str().unwrap().trim().to_string();
        let (uid, ws) = out.split_once(' ').unwrap_or_else(|| panic!("{out}"));
        let uid: u32 = uid.parse().unwrap();
        assert!(ignite::sandbox::identity::is_run_uid(uid), "uid {uid} is not a run uid");
        (uid, ws.to_string())
    };
    let create = || {
        let r = srv.call("POST", "/v1/sessions", "", None);
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_string()
    };
    let (s1, s2) = (create(), create());
    let run1 = |s: &str| uid_of(&format!("/v1/sessions/{s}/execute"));
    let (first, ws) = run1(&s1);
    assert_eq!(ws, first.to_string(), "the workspace belongs to the session's uid");
    assert_eq!(run1(&s1), (first, first.to_string()), "a later run of the session has the same uid");
    let (other, other_ws) = run1(&s2);
    assert_ne!(other, first, "two live sessions share a uid");
    assert_eq!(other_ws, other.to_string());
    let (lone, lone_ws) = uid_of("/v1/execute");
    assert_eq!(lone_ws, "ENOENT", "a run outside a session has no workspace");
    assert!(lone != first && lone != other, "a run got a live session's uid");
    let files = std::fs::read_dir(sb.state.path().join("sessions").join(&s1)).unwrap();
    let names: Vec<_> = files.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, [format!("by-{first}")], "both runs wrote as the same uid");

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn shutdown_cancels_a_session_run_in_flight_and_removes_its_run_dir_and_workspace() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--shutdown-timeout", "1"], &[]);
    let created = srv.post("/v1/sessions", None, "");
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/sessions/{id}/execute", srv.base);
    let inflight = std::thread::spawn(move || {
        let body = json!({ "runtime": "bun", "code": "setInterval(() => {}, 1000);" }).to_string();
        response(agent().post(url).header("Content-Type", "application/json").send(&body))
    });
    srv.wait_sandbox(&sb);
    assert_eq!(inline_dirs(&sb).len(), 1, "the running program's directory exists while it runs");
    let (status, log) = srv.stop();
    assert!(status.success(), "{status}\n{log}");
    let r = inflight.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap_or_default().contains("interrupted"), "{}", r.body);
    assert!(inline_dirs(&sb).is_empty(), "run directory left: {:?}", inline_dirs(&sb));
    assert!(session_dirs(&sb).is_empty(), "workspace left: {:?}", session_dirs(&sb));
    sb.assert_no_leaks();
}

#[test]
fn a_sessions_runs_take_turns() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--max-concurrent", "2"], &[]);
    let id = srv.post("/v1/sessions", None, "").json()["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/sessions/{id}/execute", srv.base);
    let exec = move |code: &str, timeout: u64| {
        let body = json!({ "runtime": "bun", "code": code, "limits": { "timeoutMs": timeout } }).to_string();
        response(agent().post(&url).header("Content-Type", "application/json").send(&body))
    };
    // The first run waits for a file that only the second one writes: were they concurrent,
    // it would see it; taking turns, the second starts only after the first's time limit.
    let waiter = r#"import { existsSync } from "node:fs";
while (!existsSync("/tmp/workspace/release")) await new Promise((r) => setTimeout(r, 20));
console.log("released");"#;
    let first = {
        let exec = exec.clone();
        let waiter = waiter.to_string();
        std::thread::spawn(move || exec(&waiter, 1500))
    };
    srv.wait_sandbox(&sb);
    let second = exec(
        "import { writeFileSync } from 'node:fs'; writeFileSync('/tmp/workspace/release', ''); console.log('wrote');",
        10_000,
    );
    assert_eq!(second.json()["stdout"], "wrote\n", "{}", second.body);
    let first = first.join().unwrap();
    assert_eq!(first.json()["status"], "timeout", "the runs overlapped: {}", first.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

impl Server {
    /// A file route of session `id`: `method` on `/v1/sessions/{id}/files{rest}` with a key and
    /// an optional raw body (sent as `application/octet-stream`).
    fn files(&self, method: &str, id: &str, rest: &str, key: &str, body: Option<&[u8]>) -> Resp {
        let url = format!("{}/v1/sessions/{id}/files{rest}", self.base);
        let auth = format!("Bearer {key}");
        let a = agent();
        response(match (method, body) {
            ("GET", _) => a.get(url).header("Authorization", auth).call(),
            ("DELETE", _) => a.delete(url).header("Authorization", auth).call(),
            ("PUT", Some(b)) => {
                a.put(url).header("Authorization", auth).header("Content-Type", "application/octet-stream").send(b)
            }
            _ => panic!("no such file call: {method}"),
        })
    }

    /// A run of `code` (bun) in session `id`, with `input`; its stdout.
    fn session_run(&self, id: &str, key: &str, code: &str) -> String {
        let body = json!({ "runtime": "bun", "code": code });
        let r = self.call("POST", &format!("/v1/sessions/{id}/execute"), key, Some(body));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["status"], "ok", "{}", r.body);
        r.json()["stdout"].as_str().unwrap().to_string()
    }
}

/// Asserts an error response with its exact message.
fn assert_refused(r: &Resp, status: u16, code: &str, message: &str) {
    r.assert_error(status, code);
    assert_eq!(r.json()["error"]["message"], message, "{}", r.body);
}

/// The session's runs and its file routes share one workspace: what a client uploads a run
/// reads at /tmp/workspace and may change, what a run writes the client downloads. Paths that
/// leave the workspace and links the program planted are refused, each with its status and
/// message, and nothing behind a link is read or written.
#[test]
fn session_files_are_uploaded_downloaded_listed_and_deleted_and_links_are_refused() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let (a, b) = ("files-key-a-0123456789", "files-key-b-0123456789");
    let srv = Server::start(&sb, &dir, &["--session-quota-mb", "20"], &[("IGNITE_API_KEYS", &format!("{a},{b}"))]);
    let created = srv.call("POST", "/v1/sessions", a, None);
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();

    // Upload; a second upload replaces the file.
    let r = srv.files("PUT", &id, "/data/in.txt", a, Some(b"first"));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json(), json!({ "path": "data/in.txt", "size": 5, "kind": "file" }));
    let r = srv.files("PUT", &id, "/data/./in.txt", a, Some(b"from the client\n"));
    assert_eq!(r.status, 200, "replaced: {}", r.body);
    assert_eq!(r.json()["size"], 16);

    // A run reads it, appends to it (it is the session uid's), writes a file of its own and
    // plants links to the host's files.
    let code = r#"import { readFileSync, appendFileSync, mkdirSync, writeFileSync, symlinkSync } from "node:fs";
const ws = "/tmp/workspace";
process.stdout.write(readFileSync(`${ws}/data/in.txt`, "utf8"));
appendFileSync(`${ws}/data/in.txt`, "and from the run\n");
mkdirSync(`${ws}/out/deep`, { recursive: true });
writeFileSync(`${ws}/out/result.json`, JSON.stringify({ answer: 42 }));
writeFileSync(`${ws}/out/deep/x`, "x");
symlinkSync("/etc/shadow", `${ws}/x`);
symlinkSync("/", `${ws}/d`);
console.log("done");"#;
    assert_eq!(srv.session_run(&id, a, code), "from the client\ndone\n");

    // Download what the run wrote and changed.
    let r = srv.files("GET", &id, "/out/result.json", a, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, r#"{"answer":42}"#);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(srv.files("GET", &id, "/data/in.txt", a, None).body, "from the client\nand from the run\n");

    // The listing shows the links as links.
    let r = srv.files("GET", &id, "", a, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({ "truncated": false, "files": [
            { "path": "d", "size": 0, "kind": "symlink" },
            { "path": "data", "size": 0, "kind": "dir" },
            { "path": "data/in.txt", "size": 33, "kind": "file" },
            { "path": "out", "size": 0, "kind": "dir" },
            { "path": "out/deep", "size": 0, "kind": "dir" },
            { "path": "out/deep/x", "size": 1, "kind": "file" },
            { "path": "out/result.json", "size": 13, "kind": "file" },
            { "path": "x", "size": 0, "kind": "symlink" },
        ]})
    );

    // Links the program planted are refused, never followed.
    let link = |at: &str, path: &str| {
        let on_the_way = if at == path { String::new() } else { format!(" on the way to {path:?}") };
        format!(
            "{at:?} is a symbolic link{on_the_way}: ignite never follows a link in a workspace (the session's programs can; or delete the link)"
        )
    };
    assert_refused(&srv.files("GET", &id, "/x", a, None), 409, "symlink_refused", &link("x", "x"));
    let r = srv.files("GET", &id, "/d/etc/passwd", a, None);
    assert_refused(&r, 409, "symlink_refused", &link("d", "d/etc/passwd"));
    let r = srv.files("PUT", &id, "/d/tmp/ignite-files-test-pwned", a, Some(b"pwned"));
    assert_refused(&r, 409, "symlink_refused", &link("d", "d/tmp/ignite-files-test-pwned"));
    assert!(!Path::new("/tmp/ignite-files-test-pwned").exists(), "written through a link");
    assert_refused(&srv.files("PUT", &id, "/x", a, Some(b"pwned")), 409, "symlink_refused", &link("x", "x"));
    let r = srv.files("DELETE", &id, "/d/etc/hostname", a, None);
    assert_refused(&r, 409, "symlink_refused", &link("d", "d/etc/hostname"));
    assert!(Path::new("/etc/hostname").exists());

    // Paths that leave the workspace are refused before anything is looked up.
    let dotdot = "path \"../etc/passwd\" contains `..`; paths must stay inside the workspace";
    for method in ["GET", "DELETE"] {
        assert_refused(&srv.files(method, &id, "/%2e%2e/etc/passwd", a, None), 400, "invalid_path", dotdot);
    }
    let r = srv.files("PUT", &id, "/%2e%2e/etc/passwd", a, Some(b"x"));
    assert_refused(&r, 400, "invalid_path", dotdot);
    let absolute = "path \"/etc/passwd\" is absolute; give it relative to the workspace (e.g. \"data/in.csv\")";
    assert_refused(&srv.files("GET", &id, "/%2Fetc%2Fpasswd", a, None), 400, "invalid_path", absolute);
    let r = srv.files("GET", &id, "/a%00b", a, None);
    assert_refused(&r, 400, "invalid_path", "path \"a\\0b\" contains a NUL or control character");

    // A form is not a file's bytes (curl -d sends one by default).
    for form in ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let url = format!("{}/v1/sessions/{id}/files/form.txt", srv.base);
        let r = response(
            agent().put(&url).header("Authorization", format!("Bearer {a}")).header("Content-Type", form).send("a=b"),
        );
        r.assert_error(415, "unsupported_media_type");
    }
    assert_eq!(srv.files("GET", &id, "/form.txt", a, None).status, 404, "nothing was stored");

    // What is there does not fit the operation.
    let r = srv.files("GET", &id, "/out", a, None);
    assert_refused(&r, 409, "not_a_file", "\"out\" is a directory, not a regular file");
    let r = srv.files("GET", &id, "/nothing.txt", a, None);
    assert_refused(&r, 404, "not_found", "\"nothing.txt\" does not exist in the workspace");
    let r = srv.files("PUT", &id, "/out/result.json/inner", a, Some(b"x"));
    assert_refused(
        &r,
        409,
        "not_a_directory",
        "\"out/result.json/inner\" cannot be in the workspace: \"out/result.json\" is a regular file, not a directory",
    );

    // Caps: a download and an upload of at most 16 MiB; the quota answers 507.
    let cap = 16 * 1024 * 1024;
    let fill = format!(
        r#"import {{ writeFileSync }} from "node:fs"; writeFileSync("/tmp/workspace/big", Buffer.alloc({}, 1)); console.log("ok");"#,
        cap + 1
    );
    assert_eq!(srv.session_run(&id, a, &fill), "ok\n");
    let r = srv.files("GET", &id, "/big", a, None);
    assert_refused(
        &r,
        413,
        "file_too_large",
        &format!("\"big\" is {} bytes; at most {cap} bytes are accepted", cap + 1),
    );
    let r = srv.files("PUT", &id, "/too-big", a, Some(&vec![0u8; cap + 1]));
    assert_refused(&r, 413, "body_too_large", &format!("an upload may have at most {cap} bytes"));
    // 16 MiB + 1 are in use of 20: another 16 MiB do not fit, and nothing is left of them.
    let r = srv.files("PUT", &id, "/full", a, Some(&vec![0u8; cap]));
    assert_refused(
        &r,
        507,
        "workspace_full",
        "the workspace is full (20 MiB and 16384 files at most): \"full\" was not written; remove files first",
    );
    assert_eq!(srv.files("GET", &id, "/full", a, None).status, 404);
    assert_eq!(srv.files("DELETE", &id, "/big", a, None).status, 204);
    assert_eq!(srv.files("PUT", &id, "/full", a, Some(&vec![0u8; cap])).status, 201, "fits once big is gone");

    // Another key's session is as absent as a missing one.
    let none = format!("no session {id:?} (it expired, was deleted, or belongs to another key)");
    assert_refused(&srv.files("GET", &id, "", b, None), 404, "not_found", &none);
    assert_refused(&srv.files("GET", &id, "/data/in.txt", b, None), 404, "not_found", &none);
    assert_refused(&srv.files("PUT", &id, "/data/in.txt", b, Some(b"theirs")), 404, "not_found", &none);
    assert_refused(&srv.files("DELETE", &id, "/data/in.txt", b, None), 404, "not_found", &none);
    assert_eq!(srv.files("GET", &id, "/data/in.txt", a, None).body, "from the client\nand from the run\n");

    // Deletion: links themselves, files, and directories (recursively only when asked).
    assert_eq!(srv.files("DELETE", &id, "/x", a, None).status, 204);
    assert_eq!(srv.files("DELETE", &id, "/d", a, None).status, 204);
    assert!(Path::new("/etc/hostname").exists());
    let r = srv.files("DELETE", &id, "/out", a, None);
    assert_refused(
        &r,
        409,
        "not_empty",
        "\"out\" is a directory that is not empty; remove it recursively, or its entries first",
    );
    assert_eq!(srv.files("DELETE", &id, "/out?recursive=true", a, None).status, 204);
    assert_eq!(srv.files("DELETE", &id, "/full", a, None).status, 204);
    let listing = srv.files("GET", &id, "", a, None).json();
    assert_eq!(listing["files"].as_array().map(Vec::len), Some(2), "{listing}");
    let seen = "import { readdirSync } from 'node:fs'; console.log(readdirSync('/tmp/workspace').join(','));";
    assert_eq!(srv.session_run(&id, a, seen), "data\n", "the run sees what the client left");

    // A deleted session has no files.
    assert_eq!(srv.call("DELETE", &format!("/v1/sessions/{id}"), a, None).status, 204);
    assert_refused(&srv.files("GET", &id, "", a, None), 404, "not_found", &none);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// A file operation takes the session's turn like a run: an upload sent while a run waits for
/// that very file is done only after the run is over (here: timed out).
#[test]
fn session_file_operations_wait_for_the_running_program() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &[], &[]);
    let id = srv.post("/v1/sessions", None, "").json()["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/sessions/{id}/execute", srv.base);
    let waiter = r#"import { existsSync } from "node:fs";
while (!existsSync("/tmp/workspace/release")) await new Promise((r) => setTimeout(r, 20));
console.log("released");"#;
    let body = json!({ "runtime": "bun", "code": waiter, "limits": { "timeoutMs": 1500 } }).to_string();
    let run =
        std::thread::spawn(move || response(agent().post(&url).header("Content-Type", "application/json").send(&body)));
    srv.wait_sandbox(&sb);
    let r = srv.files("PUT", &id, "/release", "", Some(b""));
    assert_eq!(r.status, 201, "{}", r.body);
    let run = run.join().unwrap();
    assert_eq!(run.json()["status"], "timeout", "the upload happened while the program ran: {}", run.body);
    let listing = srv.files("GET", &id, "", "", None).json();
    assert_eq!(listing["files"], json!([{ "path": "release", "size": 0, "kind": "file" }]));
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// File requests wait for the session's turn within --session-max-waiting like runs: with no
/// room to wait, they are refused at once while a run goes on, and served once it is over.
#[test]
fn session_file_operations_beyond_max_waiting_are_refused_while_a_run_goes_on() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--session-max-waiting", "0"], &[]);
    let id = srv.post("/v1/sessions", None, "").json()["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/sessions/{id}/execute", srv.base);
    // Runs until the test releases it (WAIT_FOR_RELEASE: /app/release, in its run directory).
    let body = json!({ "runtime": "bun", "code": WAIT_FOR_RELEASE }).to_string();
    let run =
        std::thread::spawn(move || response(agent().post(&url).header("Content-Type", "application/json").send(&body)));
    srv.wait_sandbox(&sb);
    let busy = format!(
        "session {id:?} is running and 0 more request(s) already wait for their turn (--session-max-waiting); retry when its runs are done"
    );
    assert_refused(&srv.files("GET", &id, "", "", None), 429, "session_busy", &busy);
    assert_refused(&srv.files("PUT", &id, "/a.txt", "", Some(b"a")), 429, "session_busy", &busy);
    assert_refused(&srv.files("GET", &id, "/a.txt", "", None), 429, "session_busy", &busy);
    assert_refused(&srv.files("DELETE", &id, "/a.txt", "", None), 429, "session_busy", &busy);
    release_inline_run(&sb);
    let run = run.join().unwrap();
    assert_eq!(run.json()["stdout"], "released\n", "{}", run.body);
    assert_eq!(srv.files("PUT", &id, "/a.txt", "", Some(b"a")).status, 201, "its turn once the run is over");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// Prints to both streams, then waits for `/app/release` before printing again: the first
/// chunks can only have arrived while the run was still going.
const TWO_PARTS: &str = r#"import { existsSync } from "node:fs";
console.log("first");
console.error("warning");
while (!existsSync("/app/release")) await new Promise((r) => setTimeout(r, 20));
console.log("second");
"#;

/// Writes more than the 1 MiB output cap to stdout.
const FLOOD: &str = r#"process.stdout.write("x".repeat(3 * 1024 * 1024));
await new Promise((r) => setTimeout(r, 10000));
"#;

/// Bytes that are not UTF-8, around a valid two-byte character.
const BINARY: &str = r#"process.stdout.write(new Uint8Array([0xff, 0x41, 0xc3, 0xa9, 0xfe]));
"#;

fn stream_services(sb: &Sandbox) -> PathBuf {
    let dir = services(sb);
    sb.service(
        "svc/binary",
        &[("service.yaml", "service:\n  name: binary\n  entry: index.ts\n"), ("index.ts", BINARY)],
    );
    sb.service(
        "svc/parts",
        &[("service.yaml", "service:\n  name: parts\n  entry: index.ts\n"), ("index.ts", TWO_PARTS)],
    );
    sb.service("svc/flood", &[("service.yaml", "service:\n  name: flood\n  entry: index.ts\n"), ("index.ts", FLOOD)]);
    dir
}

/// A streamed execution read event by event, as `(event name, data)`.
struct Events {
    format: &'static str,
    lines: std::io::Lines<BufReader<ureq::BodyReader<'static>>>,
}

impl Events {
    fn open(srv: &Server, name: &str, accept: &'static str) -> Events {
        Events::post(srv, &format!("/services/{name}/execute"), json!({}), accept)
    }

    fn post(srv: &Server, path: &str, body: Value, accept: &'static str) -> Events {
        let r = agent()
            .post(format!("{}{path}", srv.base))
            .header("Content-Type", "application/json")
            .header("Accept", accept)
            .send(body.to_string())
            .expect("HTTP request");
        assert_eq!(r.status().as_u16(), 200);
        let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert_eq!(ct, accept);
        Events { format: accept, lines: BufReader::new(r.into_body().into_reader()).lines() }
    }

    fn next_event(&mut self) -> Option<(String, Value)> {
        let mut line = || self.lines.next().map(|l| l.expect("read stream"));
        if self.format == "application/x-ndjson" {
            let mut v: Value = serde_json::from_str(&line()?).expect("one JSON object per line");
            let name = v.as_object_mut().unwrap().remove("event").expect("event field");
            return Some((name.as_str().unwrap().to_string(), v));
        }
        let event = line()?;
        let data = line().expect("data line");
        assert_eq!(line().as_deref(), Some(""), "an event ends with an empty line");
        let name = event.strip_prefix("event: ").expect("event line").to_string();
        Some((name, serde_json::from_str(data.strip_prefix("data: ").expect("data line")).expect("JSON data")))
    }

    /// Reads chunks until one with `text` on `stream`, collecting them all.
    fn until_chunk(&mut self, stream: &str, text: &str, seen: &mut Vec<Value>) {
        while let Some((name, v)) = self.next_event() {
            assert_eq!(name, "chunk", "{v}");
            seen.push(v.clone());
            if v["stream"] == stream && v["text"].as_str().is_some_and(|t| t.contains(text)) {
                return;
            }
        }
        panic!("stream ended before {stream} said {text:?}: {seen:?}");
    }
}

fn joined(chunks: &[Value], stream: &str) -> String {
    chunks.iter().filter(|c| c["stream"] == stream).map(|c| c["text"].as_str().expect("UTF-8 text")).collect()
}

#[test]
fn sse_and_ndjson_stream_chunks_while_running_then_the_report() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = stream_services(&sb);
    let srv = Server::start(&sb, &dir, &[], &[]);
    for accept in ["text/event-stream", "application/x-ndjson"] {
        let _ = std::fs::remove_file(dir.join("parts/release"));
        let mut events = Events::open(&srv, "parts", accept);
        let mut chunks = Vec::new();
        // The program cannot finish before the release exists: these arrived mid-run.
        events.until_chunk("stdout", "first", &mut chunks);
        assert_eq!(srv.get("/ready", None).json()["running"], 1, "{accept}: the run is still going");
        std::fs::write(dir.join("parts/release"), "").unwrap();
        let report = loop {
            match events.next_event() {
                Some((name, v)) if name == "chunk" => chunks.push(v),
                Some((name, v)) if name == "report" => break v,
                other => panic!("{accept}: expected a chunk or the report, got {other:?}"),
            }
        };
        assert!(events.next_event().is_none(), "{accept}: the report is the last event");
        assert_eq!(joined(&chunks, "stdout"), "first\nsecond\n", "{accept}");
        assert_eq!(joined(&chunks, "stderr"), "warning\n", "{accept}");
        assert_eq!(report["success"], true, "{report}");
        assert_eq!(report["stdout"], "first\nsecond\n", "the same report as the JSON response");
        assert_eq!(report["stderr"], "warning\n");
        sb.assert_cgroup_gone(report["containerId"].as_str().unwrap());
    }
    // Bytes that are not UTF-8 arrive unchanged, as base64.
    let mut events = Events::open(&srv, "binary", "application/x-ndjson");
    let mut bytes = Vec::new();
    while let Some((name, v)) = events.next_event() {
        if name == "report" {
            break;
        }
        assert_eq!(v["stream"], "stdout", "{v}");
        match (v["text"].as_str(), v["base64"].as_str()) {
            (Some(t), None) => bytes.extend_from_slice(t.as_bytes()),
            (None, Some(b)) => {
                bytes.extend(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).unwrap())
            }
            _ => panic!("a chunk has text or base64: {v}"),
        }
    }
    assert_eq!(bytes, [0xff, 0x41, 0xc3, 0xa9, 0xfe]);
    // Without a streaming Accept the answer is the plain report.
    let plain = srv.execute("echo", json!({}));
    assert_eq!(plain.header("content-type"), Some("application/json"));
    assert_eq!(plain.json()["stdout"], "got {}\n");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn streamed_output_stops_at_the_output_cap() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = stream_services(&sb);
    let srv = Server::start(&sb, &dir, &[], &[]);
    let mut events = Events::open(&srv, "flood", "application/x-ndjson");
    let mut streamed = 0;
    let report = loop {
        match events.next_event() {
            Some((name, v)) if name == "chunk" => {
                assert_eq!(v["stream"], "stdout");
                let text = v["text"].as_str().expect("text");
                assert!(text.bytes().all(|b| b == b'x'));
                streamed += text.len();
            }
            Some((name, v)) if name == "report" => break v,
            other => panic!("expected a chunk or the report, got {other:?}"),
        }
    };
    assert_eq!(report["status"], "output_limit", "{}", report["message"]);
    assert_eq!(report["stdoutTruncated"], true);
    let kept = report["stdout"].as_str().unwrap().len();
    assert_eq!(kept, 1024 * 1024);
    assert_eq!(streamed, kept, "the stream carries exactly what the report keeps");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

fn container_ids(sb: &Sandbox) -> Vec<String> {
    // A failing `list` is an error, never "no containers": leak checks rely on this.
    let out = oci_cmd(sb).args(["list", "-q"]).output().expect("list");
    assert!(out.status.success(), "list: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

#[test]
fn a_client_that_hangs_up_mid_stream_cancels_the_run_and_frees_the_slot() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = stream_services(&sb);
    let srv = Server::start(&sb, &dir, &["--max-concurrent", "1", "--queue", "0"], &[]);
    let mut events = Events::open(&srv, "parts", "text/event-stream");
    events.until_chunk("stdout", "first", &mut Vec::new());
    let ids = container_ids(&sb);
    assert_eq!(ids.len(), 1, "{ids:?}");
    // The program waits for a release that never comes: only the hang-up can end it.
    drop(events);
    srv.wait_running(0);
    sb.assert_cgroup_gone(&ids[0]);
    assert!(container_ids(&sb).is_empty());
    let next = srv.execute("echo", json!({}));
    assert_eq!(next.status, 200, "the slot is free again: {}", next.body);
    assert_eq!(next.json()["success"], true);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_client_that_hangs_up_before_a_plain_report_cancels_the_run() {
    if !require_sandbox() {
        return;
    }
    use std::io::Write as _;
    let sb = Sandbox::new();
    let dir = stream_services(&sb);
    let srv = Server::start(&sb, &dir, &["--max-concurrent", "1", "--queue", "0"], &[]);
    let addr = srv.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    let body = "{}";
    write!(
        conn,
        "POST /services/parts/execute HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send request");
    srv.wait_sandbox(&sb);
    let ids = container_ids(&sb);
    assert_eq!(ids.len(), 1, "{ids:?}");
    // The program waits for a release that never comes: only the hang-up can end it.
    drop(conn);
    srv.wait_running(0);
    sb.assert_cgroup_gone(&ids[0]);
    assert!(container_ids(&sb).is_empty());
    let next = srv.execute("echo", json!({}));
    assert_eq!(next.status, 200, "the slot is free again: {}", next.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// Creates `release` in the one per-run directory of a running inline execution.
fn release_inline_run(sb: &Sandbox) {
    let dirs = inline_dirs(sb);
    assert_eq!(dirs.len(), 1, "one inline run in flight: {dirs:?}");
    std::fs::write(sb.state.path().join("inline").join(&dirs[0]).join("release"), "").unwrap();
}

#[test]
fn inline_and_session_code_stream_chunks_while_running_then_the_report() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &[], &[]);
    let session = srv.post("/v1/sessions", None, "");
    assert_eq!(session.status, 201, "{}", session.body);
    let id = session.json()["id"].as_str().unwrap().to_string();
    let routes = ["/v1/execute".to_string(), format!("/v1/sessions/{id}/execute")];
    for path in &routes {
        for accept in ["text/event-stream", "application/x-ndjson"] {
            let body = json!({ "runtime": "bun", "code": TWO_PARTS });
            let mut events = Events::post(&srv, path, body, accept);
            let mut chunks = Vec::new();
            // The program cannot finish before the release exists: these arrived mid-run.
            events.until_chunk("stdout", "first", &mut chunks);
            release_inline_run(&sb);
            let report = loop {
                match events.next_event() {
                    Some((name, v)) if name == "chunk" => chunks.push(v),
                    Some((name, v)) if name == "report" => break v,
                    other => panic!("{path} {accept}: expected a chunk or the report, got {other:?}"),
                }
            };
            assert!(events.next_event().is_none(), "{path} {accept}: the report is the last event");
            assert_eq!(joined(&chunks, "stdout"), "first\nsecond\n", "{path} {accept}");
            assert_eq!(joined(&chunks, "stderr"), "warning\n", "{path} {accept}");
            assert_eq!(report["success"], true, "{report}");
            assert_eq!(report["service"], "inline", "{report}");
            assert_eq!(report["stdout"], "first\nsecond\n", "the same report as the JSON response");
            sb.assert_cgroup_gone(report["containerId"].as_str().unwrap());
        }
    }
    // The run directory goes with the run: none is left once the report has arrived.
    assert!(inline_dirs(&sb).is_empty(), "{:?}", inline_dirs(&sb));
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_client_that_hangs_up_mid_inline_stream_cancels_the_run_and_removes_its_directory() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--max-concurrent", "1", "--queue", "0"], &[]);
    let body = json!({ "runtime": "bun", "code": TWO_PARTS });
    let mut events = Events::post(&srv, "/v1/execute", body, "application/x-ndjson");
    events.until_chunk("stdout", "first", &mut Vec::new());
    let ids = container_ids(&sb);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(inline_dirs(&sb).len(), 1, "the run directory exists while the run goes on");
    // The program waits for a release that never comes: only the hang-up can end it.
    drop(events);
    srv.wait_running(0);
    sb.assert_cgroup_gone(&ids[0]);
    assert!(container_ids(&sb).is_empty());
    assert!(inline_dirs(&sb).is_empty(), "{:?}", inline_dirs(&sb));
    let next = srv.inline(json!({ "runtime": "bun", "code": "console.log('next')" }));
    assert_eq!(next.status, 200, "the slot is free again: {}", next.body);
    assert_eq!(next.json()["stdout"], "next\n", "{}", next.body);
    assert!(inline_dirs(&sb).is_empty(), "{:?}", inline_dirs(&sb));
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// Parses the Prometheus text format strictly enough to catch malformed output: every sample
/// belongs to a family announced by HELP and TYPE lines, labels are quoted and escaped, values
/// are numbers. Returns `name{labels}` → value.
fn parse_metrics(text: &str) -> std::collections::HashMap<String, f64> {
    let mut families: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut samples = std::collections::HashMap::new();
    let mut help = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(help.as_deref(), Some(name), "TYPE without HELP: {line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families.insert(name.to_string(), kind.to_string());
        } else {
            let (series, value) = line.rsplit_once(' ').expect("sample: series value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| families.get(*f).is_some_and(|k| k == "histogram")))
                .unwrap_or(name);
            assert!(families.contains_key(family), "sample before its HELP/TYPE: {line}");
            let labels = &series[name.len()..];
            if !labels.is_empty() {
                parse_labels(labels).unwrap_or_else(|e| panic!("{e}: {line}"));
            }
            samples.insert(series.to_string(), value);
        }
    }
    samples
}

/// `{name="value",...}` with `\\`, `\"` and `\n` the only escapes in values.
fn parse_labels(labels: &str) -> Result<Vec<(String, String)>, String> {
    let mut chars = labels.strip_prefix('{').ok_or("labels must open with {")?.chars();
    let mut out = Vec::new();
    loop {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {name:?}"));
        }
        if chars.next() != Some('"') {
            return Err("label value must be quoted".into());
        }
        let mut value = String::new();
        loop {
            match chars.next().ok_or("unterminated label value")? {
                '"' => break,
                '\\' => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                c => value.push(c),
            }
        }
        out.push((name, value));
        match chars.next() {
            Some(',') => {}
            Some('}') if chars.next().is_none() => return Ok(out),
            _ => return Err("labels must be separated by , and close with }".into()),
        }
    }
}

#[test]
fn metrics_count_executions_rejections_and_show_gauges() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--max-concurrent", "1", "--queue", "0"], &[]);
    let scrape = || {
        let r = srv.get("/metrics", None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
        parse_metrics(&r.body)
    };
    let m = scrape();
    assert_eq!(m[&format!("ignite_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))], 1.0);
    assert_eq!(m["ignite_execution_duration_seconds_count"], 0.0);
    assert_eq!(m["ignite_sandboxes_running"], 0.0);

    assert_eq!(srv.execute("echo", json!({})).json()["status"], "ok");
    assert_eq!(srv.execute("echo", json!({ "input": { "fail": true } })).json()["status"], "error");
    srv.execute("nope", json!({})).assert_error(404, "not_found");
    let waiting = srv.execute_in_background("waiter");
    srv.wait_running(1);
    srv.execute("echo", json!({})).assert_error(503, "busy");
    let m = scrape();
    assert_eq!(m["ignite_sandboxes_running"], 1.0);
    assert_eq!(m["ignite_queue_depth"], 0.0);
    assert_eq!(m["ignite_executions_total{status=\"ok\"}"], 1.0);
    assert_eq!(m["ignite_executions_total{status=\"error\"}"], 1.0);
    assert_eq!(m["ignite_rejections_total{status=\"404\",reason=\"not_found\"}"], 1.0);
    assert_eq!(m["ignite_rejections_total{status=\"503\",reason=\"busy\"}"], 1.0);
    assert_eq!(m["ignite_execution_duration_seconds_count"], 2.0);
    assert_eq!(m["ignite_execution_duration_seconds_bucket{le=\"+Inf\"}"], 2.0);
    assert!(m["ignite_execution_duration_seconds_sum"] > 0.0);

    std::fs::write(dir.join("waiter/release"), "").unwrap();
    assert_eq!(waiting.join().unwrap().json()["status"], "ok");
    let m = scrape();
    assert_eq!(m["ignite_executions_total{status=\"ok\"}"], 2.0);
    assert_eq!(m["ignite_sandboxes_running"], 0.0);
    // Inline code is counted like a service's execution.
    let r = srv.post("/v1/execute", Some("application/json"), r#"{"runtime":"bun","code":"console.log(1)"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let m = scrape();
    assert_eq!(m["ignite_executions_total{status=\"ok\"}"], 3.0);
    assert_eq!(m["ignite_execution_duration_seconds_count"], 4.0);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// Every entry below a directory, as sorted relative paths.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            out.push(entry.path().strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn preflight_endpoint_is_the_cli_document_and_has_no_side_effects() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    sb.service(
        "svc/tight",
        &[("service.yaml", "service:\n  name: tight\n  memoryMb: 16\n  entry: index.ts\n"), ("index.ts", ECHO)],
    );
    sb.service(
        "svc/deps",
        &[
            ("service.yaml", "service:\n  name: deps\n  entry: index.ts\n"),
            ("index.ts", ECHO),
            ("package.json", &format!(r#"{{"name":"d-{}","dependencies":{{"left-pad":"1.3.0"}}}}"#, common::nonce())),
        ],
    );
    // An empty cache of its own: preflight must neither download, build, install nor record.
    let cache = tempfile::tempdir().unwrap();
    let cache_env = [("IGNITE_CACHE_DIR", cache.path().to_str().unwrap())];
    let srv = Server::start(&sb, &dir, &[], &cache_env);
    let before = tree(cache.path());

    let r = srv.get("/services/echo/preflight", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = r.json();
    assert_eq!((doc["service"].clone(), doc["runtime"].clone()), (json!("echo"), json!("bun@1.4.5")), "{doc}");
    assert_eq!(doc["status"], "warn", "the bundle is not in this cache: {doc}");
    let checks = doc["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["memory", "timeout", "bundleSize", "dependencies", "runtime"]);
    assert_eq!(checks[4]["bundle"], "absent", "{doc}");
    assert_eq!(checks[2]["status"], "skip", "{doc}");

    // The very document `ignite preflight --json` prints.
    let out = sb.cmd().arg("preflight").arg(dir.join("echo")).arg("--json").envs(cache_env).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    let cli: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(cli, doc);

    let tight = srv.get("/services/tight/preflight", None);
    assert_eq!(tight.status, 200, "a failing preflight is a document, not an error: {}", tight.body);
    assert_eq!(tight.json()["status"], "fail");
    assert_eq!(tight.json()["checks"][0]["status"], "fail");
    let deps = srv.get("/services/deps/preflight", None).json();
    assert_eq!(
        (deps["checks"][3]["count"].clone(), deps["checks"][3]["source"].clone()),
        (json!(1), json!("package.json"))
    );

    srv.get("/services/nope/preflight", None).assert_error(404, "not_found");
    srv.get("/services/broken/preflight", None).assert_error(422, "service_invalid");
    for path in ["/services/..%2fsvc%2fecho/preflight", "/services/%2e%2e/preflight"] {
        let r = srv.get(path, None);
        assert!(r.status == 404 || r.status == 400, "{path}: {} {}", r.status, r.body);
    }
    assert_eq!(tree(cache.path()), before, "preflight changed the cache");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    assert_eq!(tree(cache.path()), before, "preflight changed the cache");
    sb.assert_no_leaks();
}

/// A service whose preflight fails (bun's base is 24 MiB: 16 is below it).
const TIGHT: &str = "service:\n  name: tight\n  memoryMb: 16\n  entry: index.ts\n";

#[test]
fn http_executions_are_preflighted_unless_the_server_skips_preflight() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    sb.service("svc/tight", &[("service.yaml", TIGHT), ("index.ts", ECHO)]);
    let srv = Server::start(&sb, &dir, &[], &[]);

    // The seed's "always preflight in production": refused with the checks, nothing started.
    let refused = srv.execute("tight", json!({}));
    refused.assert_error(422, "preflight_failed");
    let body = refused.json();
    let memory = &body["preflight"]["checks"][0];
    assert_eq!((memory["name"].clone(), memory["status"].clone()), (json!("memory"), json!("fail")), "{body}");
    // The same document as the preflight route, except what the last cold start of bun decides:
    // other tests' runs record cold starts in the shared cache between the two requests.
    let without_cold_start = |mut doc: Value| {
        for check in doc["checks"].as_array_mut().unwrap() {
            if check["name"] == "timeout" {
                for field in ["coldStart", "warnBelowMs", "message"] {
                    check[field] = Value::Null;
                }
            }
        }
        doc
    };
    assert_eq!(
        without_cold_start(body["preflight"].clone()),
        without_cold_start(srv.get("/services/tight/preflight", None).json()),
        "the preflight document"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("preflight failed for tight"), "{message}");
    assert!(container_ids(&sb).is_empty(), "a refused execution starts no sandbox");
    // A request's own limit is checked as the service's would be.
    srv.execute("echo", json!({ "memoryMb": 16 })).assert_error(422, "preflight_failed");
    // Streamed, the refusal has its status too: the stream begins only once a run does.
    let streamed = response(
        agent()
            .post(format!("{}/services/tight/execute", srv.base))
            .header("Content-Type", "application/json")
            .header("Accept", "text/event-stream")
            .send("{}"),
    );
    streamed.assert_error(422, "preflight_failed");
    assert_eq!(streamed.json()["preflight"]["status"], "fail");
    // Inline code and sessions go through the same gate.
    let inline = json!({ "runtime": "bun", "code": "console.log(1)", "limits": { "memoryMb": 16 } });
    srv.inline(inline.clone()).assert_error(422, "preflight_failed");
    assert!(inline_dirs(&sb).is_empty(), "{:?}", inline_dirs(&sb));
    let session = srv.post("/v1/sessions", None, "").json()["id"].as_str().unwrap().to_string();
    let in_session =
        srv.post(&format!("/v1/sessions/{session}/execute"), Some("application/json"), &inline.to_string());
    in_session.assert_error(422, "preflight_failed");
    // What passes runs as before.
    let ok = srv.execute("echo", json!({ "input": { "n": 2 } }));
    assert_eq!((ok.status, ok.json()["stdout"].clone()), (200, json!("got {\"n\":2}\n")), "{}", ok.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");

    // The operator turned the checks off: the same service runs (whatever the limit does to it).
    let srv = Server::start(&sb, &dir, &["--skip-preflight"], &[]);
    let ran = srv.execute("tight", json!({}));
    assert_eq!(ran.status, 200, "{}", ran.body);
    assert!(ran.json()["containerId"].is_string(), "{}", ran.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_service_that_drifted_from_its_lock_is_refused_only_when_serving_locked() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let locked = sb.service(
        "svc/locked",
        &[("service.yaml", "service:\n  name: locked\n  entry: index.ts\n"), ("index.ts", ECHO)],
    );
    let out = sb.cmd().arg("lock").arg(&locked).arg("--quiet").output().expect("spawn ignite lock");
    assert!(out.status.success(), "ignite lock: {}", common::stderr_of(&out));
    let srv = Server::start(&sb, &dir, &["--locked"], &[]);

    // Up to date, and a service without a lock file: both run.
    assert_eq!(srv.execute("locked", json!({})).status, 200);
    assert_eq!(srv.execute("echo", json!({})).status, 200);
    std::fs::write(locked.join("index.ts"), format!("{ECHO}// changed after locking\n")).unwrap();
    let refused = srv.execute("locked", json!({}));
    refused.assert_error(409, "lock_drift");
    let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("index.ts") && message.contains("ignite lock locked"), "{message}");
    assert!(!message.contains(&*sb.work.path().to_string_lossy()), "paths relative to DIR: {message}");
    assert!(container_ids(&sb).is_empty(), "a refused execution starts no sandbox");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");

    // Without --locked the lock file is not looked at.
    let srv = Server::start(&sb, &dir, &[], &[]);
    let ran = srv.execute("locked", json!({}));
    assert_eq!((ran.status, ran.json()["success"].clone()), (200, json!(true)), "{}", ran.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn openapi_document_is_public_and_covers_every_route_and_the_report() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &[], &[("IGNITE_API_KEYS", "openapi-test-key-1")]);
    let r = srv.get("/openapi.json", None);
    assert_eq!(r.status, 200, "public, like /health: {}", r.body);
    let doc = r.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    srv.get("/metrics", None).assert_error(401, "unauthorized");

    // Every route the router has, with its methods.
    let routes = [
        ("/health", "get"),
        ("/ready", "get"),
        ("/services", "get"),
        ("/services/{name}", "get"),
        ("/services/{name}/preflight", "get"),
        ("/services/{name}/execute", "post"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/v1/execute", "post"),
        ("/v1/sessions", "post"),
        ("/v1/sessions/{id}", "get"),
        ("/v1/sessions/{id}", "delete"),
        ("/v1/sessions/{id}/execute", "post"),
        ("/v1/sessions/{id}/files", "get"),
        ("/v1/sessions/{id}/files/{path}", "get"),
        ("/v1/sessions/{id}/files/{path}", "put"),
        ("/v1/sessions/{id}/files/{path}", "delete"),
    ];
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().unwrap().keys() {
            documented.push((path.clone(), method.clone()));
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = routes.iter().map(|(p, m)| (p.to_string(), m.to_string())).collect();
    expected.sort();
    assert_eq!(documented, expected);
    // And the router answers each documented operation with its documented success (no "no such
    // route", no 405). A session serves the {id} routes; deleting it comes last.
    let key = "Bearer openapi-test-key-1";
    let session = response(agent().post(format!("{}/v1/sessions", srv.base)).header("Authorization", key).send(""));
    assert_eq!(session.status, 201, "{}", session.body);
    let id = session.json()["id"].as_str().unwrap().to_string();
    // A file is uploaded before it is downloaded and deleted, and the session goes last.
    let mut ops = documented.clone();
    ops.sort_by_key(|(p, m)| (p == "/v1/sessions/{id}" && m == "delete", m == "delete", m != "put"));
    for (path, method) in &ops {
        let path = path.replace("{name}", "echo").replace("{id}", &id).replace("{path}", "dir/file.txt");
        let url = format!("{}{}", srv.base, path);
        let body = if path.starts_with("/v1/") && path.ends_with("execute") {
            r#"{"runtime":"bun","code":"console.log(1)"}"#
        } else {
            "{}"
        };
        let resp = match method.as_str() {
            "get" => response(agent().get(&url).header("Authorization", key).call()),
            "delete" => response(agent().delete(&url).header("Authorization", key).call()),
            "put" => response(
                agent()
                    .put(&url)
                    .header("Authorization", key)
                    .header("Content-Type", "application/octet-stream")
                    .send("bytes"),
            ),
            _ => response(
                agent().post(&url).header("Authorization", key).header("Content-Type", "application/json").send(body),
            ),
        };
        let success = match (path.as_str(), method.as_str()) {
            ("/v1/sessions", "post") => 201,
            (_, "put") => 201,
            (_, "delete") => 204,
            _ => 200,
        };
        assert_eq!(resp.status, success, "{method} {path}: {}", resp.body);
    }

    // The report schema has exactly the fields a real report has (optional ones included).
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| -> Vec<String> {
        let mut p: Vec<String> = schemas[name]["properties"].as_object().expect(name).keys().cloned().collect();
        p.sort();
        p
    };
    let ok = agent()
        .post(format!("{}/services/echo/execute", srv.base))
        .header("Authorization", "Bearer openapi-test-key-1")
        .header("Content-Type", "application/json")
        .send("{}");
    let report = response(ok).json();
    let mut fields: Vec<String> = report.as_object().unwrap().keys().cloned().collect();
    // Optional: `files` and `filesLimit` come only with an output directory (`"outputs": true`).
    fields.extend(["message", "install", "files", "filesLimit"].map(String::from));
    fields.sort();
    assert_eq!(props("Report"), fields, "{report}");
    let mut metric_fields: Vec<String> = report["metrics"].as_object().unwrap().keys().cloned().collect();
    // Present only in warm runs (this server's pool is off).
    metric_fields.push("warm".to_string());
    metric_fields.sort();
    assert_eq!(props("Metrics"), metric_fields);
    let statuses: Vec<&str> =
        schemas["Status"]["enum"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(statuses, ["ok", "error", "timeout", "oom", "output_limit"]);
    let execute = &doc["paths"]["/services/{name}/execute"]["post"];
    assert_eq!(
        execute["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ExecuteRequest"
    );
    let ok_content = &execute["responses"]["200"]["content"];
    assert_eq!(ok_content["application/json"]["schema"]["$ref"], "#/components/schemas/Report");
    assert!(ok_content.get("text/event-stream").is_some() && ok_content.get("application/x-ndjson").is_some());
    for path in ["/v1/execute", "/v1/sessions/{id}/execute"] {
        let content = &doc["paths"][path]["post"]["responses"]["200"]["content"];
        assert_eq!(content["application/json"]["schema"]["$ref"], "#/components/schemas/Report", "{path}");
        for streamed in ["text/event-stream", "application/x-ndjson"] {
            assert!(content.get(streamed).is_some(), "{path} lists {streamed}: {content}");
        }
    }
    assert_eq!(props("Chunk"), ["base64", "stream", "text"]);
    // Audit mode is the API's default: the report carries its section, fully described.
    assert!(report["securityAudit"].is_object(), "{report}");
    let mut audit_fields: Vec<String> = report["securityAudit"].as_object().unwrap().keys().cloned().collect();
    audit_fields.sort();
    assert_eq!(props("SecurityAudit"), audit_fields);
    assert_eq!(props("SecurityEvent"), ["args", "count", "kind", "pid", "syscall", "timeMs", "verdict"]);
    assert!(props("ExecuteRequest").contains(&"audit".to_string()));
    assert!(props("InlineRequest").contains(&"audit".to_string()));
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// A request with a key and an explicit content type (or none) and raw body.
fn raw_post(srv: &Server, path: &str, key: &str, content_type: Option<&str>, body: &[u8]) -> Resp {
    let mut req = agent().post(format!("{}{path}", srv.base)).header("Authorization", format!("Bearer {key}"));
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    response(req.send(body))
}

#[test]
fn every_body_route_answers_415_413_and_malformed_json_with_the_json_error_body() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let key = "body-rules-key-0123456789";
    // Five sessions are created below with one key: above the default per-key cap (4), which
    // has a test of its own.
    let srv = Server::start(
        &sb,
        &dir,
        &["--max-body", "4096", "--max-input", "1024", "--max-sessions-per-key", "8"],
        &[("IGNITE_API_KEYS", key)],
    );
    let json = Some("application/json");
    let big = format!(r#"{{"input": "{}"}}"#, "x".repeat(8192));
    let session = srv.call("POST", "/v1/sessions", key, None);
    assert_eq!(session.status, 201, "{}", session.body);
    let id = session.json()["id"].as_str().unwrap().to_string();
    let session_execute = format!("/v1/sessions/{id}/execute");
    for path in ["/v1/sessions", "/services/echo/execute", "/v1/execute", session_execute.as_str()] {
        let r = raw_post(&srv, path, key, Some("text/plain"), b"{}");
        r.assert_error(415, "unsupported_media_type");
        let r = raw_post(&srv, path, key, json, b"{\"ttl");
        r.assert_error(400, "malformed_json");
        let r = raw_post(&srv, path, key, json, big.as_bytes());
        r.assert_error(413, "body_too_large");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        // serde would fill a struct from an array by position; the document says object.
        let r = raw_post(&srv, path, key, json, b"[]");
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "invalid_request", "{path}: {}", r.body);
    }
    // The session body is optional: none and `null` are the defaults. Anything else is JSON or
    // refused: whitespace alone, or a form feed (not JSON whitespace; found by the fuzzer).
    for body in [&b""[..], b"null", b" null\n"] {
        let r = raw_post(&srv, "/v1/sessions", key, json, body);
        assert_eq!(r.status, 201, "{:?}: {}", String::from_utf8_lossy(body), r.body);
    }
    for body in [&b"  \n"[..], b"\x0c", b"\x0c{}"] {
        raw_post(&srv, "/v1/sessions", key, json, body).assert_error(400, "malformed_json");
    }
    let r = raw_post(&srv, "/v1/sessions", key, None, b"");
    assert_eq!(r.status, 201, "no body, no content type: {}", r.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn integral_floats_are_integers_and_ranges_match_the_served_document() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let key = "integers-key-0123456789";
    let srv =
        Server::start(&sb, &dir, &["--session-ttl", "60", "--session-max-ttl", "90"], &[("IGNITE_API_KEYS", key)]);
    let doc = srv.get("/openapi.json", None).json();
    let ttl = &doc["components"]["schemas"]["CreateRequest"]["properties"]["ttlSeconds"];
    assert_eq!((ttl["minimum"].as_u64(), ttl["maximum"].as_u64()), (Some(1), Some(90)), "{ttl}");
    // JSON Schema's `integer` includes 60.0: so does the server.
    let r = srv.call("POST", "/v1/sessions", key, Some(json!({ "ttlSeconds": 60.0 })));
    assert_eq!(r.status, 201, "{}", r.body);
    srv.call("POST", "/v1/sessions", key, Some(json!({ "ttlSeconds": 91 }))).assert_error(400, "invalid_request");
    srv.call("POST", "/v1/sessions", key, Some(json!({ "ttlSeconds": 1.5 }))).assert_error(400, "invalid_request");
    // Integral floats reach the range check (not a type error); the ranges are the documented ones.
    let timeout = &doc["components"]["schemas"]["ExecuteRequest"]["properties"]["timeoutMs"];
    let min = timeout["minimum"].as_u64().expect("timeoutMs minimum");
    let execute = |body: Value| srv.call("POST", "/services/echo/execute", key, Some(body));
    let below = execute(json!({ "timeoutMs": (min - 1) as f64 }));
    below.assert_error(400, "invalid_request");
    assert!(below.json()["error"]["message"].as_str().unwrap().contains("must be between"), "{}", below.body);
    let ok = execute(json!({ "timeoutMs": 5000.0, "memoryMb": 128.0 }));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["status"], "ok", "{}", ok.body);
    let r = srv.post("/v1/execute", Some("application/json"), "{}");
    r.assert_error(401, "unauthorized");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn sessions_beyond_max_sessions_are_refused_until_one_is_deleted() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let key = "max-sessions-key-0123456789";
    let srv = Server::start(&sb, &dir, &["--max-sessions", "1"], &[("IGNITE_API_KEYS", key)]);
    let first = srv.call("POST", "/v1/sessions", key, None);
    assert_eq!(first.status, 201, "{}", first.body);
    let id = first.json()["id"].as_str().unwrap().to_string();
    let full = srv.call("POST", "/v1/sessions", key, None);
    full.assert_error(503, "sessions_full");
    assert!(full.header("retry-after").is_some(), "{}", full.body);
    assert_eq!(srv.call("DELETE", &format!("/v1/sessions/{id}"), key, None).status, 204);
    assert_eq!(srv.call("POST", "/v1/sessions", key, None).status, 201, "a slot is free again");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// Several servers behind one address (on Kubernetes, a pod each): with `--node-name` every
/// response names the server, its session ids start with the name, and a session request that
/// names another node is answered 421 `wrong_node` (never looked up), so a router or a client
/// can send a session's requests to the server that holds its workspace.
#[test]
fn a_named_node_names_itself_in_every_response_and_in_its_session_ids() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let key = "node-name-key-0123456789";
    let srv = Server::start(
        &sb,
        &dir,
        &["--max-concurrent", "3"],
        &[("IGNITE_NODE_NAME", "ignite-1"), ("IGNITE_API_KEYS", key)],
    );
    // Public, authenticated, refused and unknown routes alike.
    for r in
        [srv.get("/health", None), srv.get("/ready", Some(key)), srv.get("/metrics", None), srv.get("/nope", Some(key))]
    {
        assert_eq!(r.header("x-ignite-node"), Some("ignite-1"), "{} {}", r.status, r.body);
    }

    let r = srv.call("POST", "/v1/sessions", key, None);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("x-ignite-node"), Some("ignite-1"));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let hex = id.strip_prefix("ignite-1.").unwrap_or_else(|| panic!("no node prefix: {id}")).to_string();
    assert!(hex.len() == 32 && hex.bytes().all(|c| c.is_ascii_hexdigit()), "an unguessable id: {id}");
    // The workspace on the host is named by the random part alone.
    assert_eq!(session_dirs(&sb), vec![std::ffi::OsString::from(&hex)]);
    let run = |code: &str, input: Value| {
        let r = srv.call(
            "POST",
            &format!("/v1/sessions/{id}/execute"),
            key,
            Some(json!({ "runtime": "bun", "code": code, "input": input })),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["stdout"].as_str().unwrap().to_string()
    };
    assert_eq!(run(WRITE_NOTE, json!({ "note": "kept" })), "written\n");
    assert_eq!(run(READ_NOTE, json!({})), "kept note.txt\n");
    let info = srv.call("GET", &format!("/v1/sessions/{id}"), key, None);
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["id"], id.as_str());

    // What an autoscaler and a drain read: slots, and the sessions this node would lose.
    let m = parse_metrics(&srv.get("/metrics", Some(key)).body);
    assert_eq!(m["ignite_execution_slots"], 3.0);
    assert_eq!(m["ignite_sessions_open"], 1.0);

    // Another node's id: 421 on every session route, whether or not such a session exists.
    let other = format!("ignite-2.{hex}");
    let misdirected = [
        srv.call("GET", &format!("/v1/sessions/{other}"), key, None),
        srv.call("DELETE", &format!("/v1/sessions/{other}"), key, None),
        srv.call("POST", &format!("/v1/sessions/{other}/execute"), key, Some(json!({ "runtime": "bun", "code": "" }))),
    ];
    for r in misdirected {
        r.assert_error(421, "wrong_node");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("\"ignite-2\""), "{}", r.body);
        assert_eq!(r.header("x-ignite-node"), Some("ignite-1"));
    }
    // Authentication still comes first.
    assert_eq!(srv.get(&format!("/v1/sessions/{other}"), None).status, 401);
    // The bare workspace id is not a session id of this server.
    srv.call("GET", &format!("/v1/sessions/{hex}"), key, None).assert_error(404, "not_found");

    assert_eq!(srv.call("DELETE", &format!("/v1/sessions/{id}"), key, None).status, 204);
    srv.call("GET", &format!("/v1/sessions/{id}"), key, None).assert_error(404, "not_found");
    assert_eq!(parse_metrics(&srv.get("/metrics", Some(key)).body)["ignite_sessions_open"], 0.0);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    assert!(session_dirs(&sb).is_empty());
    sb.assert_no_leaks();
}

#[test]
fn a_node_name_that_kubernetes_would_not_give_is_refused_and_an_empty_one_means_none() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    for bad in ["Ignite_1", "-a", "a/b"] {
        let out = sb
            .cmd()
            .args(["serve", "--port", "0", &format!("--node-name={bad}"), "--services"])
            .arg(&dir)
            .env_remove("IGNITE_API_KEYS")
            .output()
            .expect("spawn");
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        let err = common::stderr_of(&out);
        assert!(err.contains("--node-name") && err.contains("is not a node name"), "{err}");
        assert!(out.stdout.is_empty(), "it must not have listened: {}", common::stdout_of(&out));
    }
    // A template that left the variable blank: a server without a name, as without the variable.
    let srv = Server::start(&sb, &dir, &[], &[("IGNITE_NODE_NAME", "")]);
    let r = srv.get("/health", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ignite-node"), None);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
}

/// A Bun program that tries `mount` through FFI and prints the errno it got.
const MOUNT_PROBE: &str = r#"import { dlopen, FFIType, read } from "bun:ffi";
const libc = dlopen("libc.so.6", {
  syscall: { args: [FFIType.i64, FFIType.i64], returns: FFIType.i64 },
  __errno_location: { args: [], returns: FFIType.ptr },
});
const ret = Number(libc.symbols.syscall(165n, 0n));
console.log(JSON.stringify({ ret, errno: read.i32(libc.symbols.__errno_location(), 0) }));
"#;

/// Threads named `ignite-audit` and seccomp listener descriptors held by process `pid`.
fn audit_leftovers(pid: u32) -> (usize, usize) {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "ignite-audit"))
        .count();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|f| std::fs::read_link(f.path()).is_ok_and(|l| l.to_string_lossy().contains("seccomp")))
        .count();
    (threads, fds)
}

#[test]
fn execute_audits_by_default_and_leaves_no_listener_behind() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    sb.service(
        "svc/probe",
        &[("service.yaml", "service:\n  name: probe\n  entry: index.ts\n"), ("index.ts", MOUNT_PROBE)],
    );
    let srv = Server::start(&sb, &dir, &[], &[]);

    // Default: audit mode, and the kernel's notification is in the report.
    let r = srv.execute("probe", json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["stdout"], format!("{{\"ret\":-1,\"errno\":{}}}\n", libc::EPERM), "{v}");
    let audit = &v["securityAudit"];
    assert_eq!(audit["overallStatus"], "violations", "{v}");
    assert_eq!(audit["counts"], json!({"mount": 1}), "{v}");
    assert_eq!(audit["events"][0]["syscall"], "mount");

    let clean = srv.execute("echo", json!({"input": {"a": 1}}));
    assert_eq!(clean.json()["securityAudit"]["overallStatus"], "clean", "{}", clean.body);
    // Opting out: no audit section, the call still fails.
    let plain = srv.execute("probe", json!({"audit": false})).json();
    assert_eq!(plain["status"], "ok", "{plain}");
    assert!(plain.get("securityAudit").is_none(), "{plain}");
    assert_eq!(plain["stdout"], format!("{{\"ret\":-1,\"errno\":{}}}\n", libc::EPERM));
    srv.execute("echo", json!({"audit": "yes"})).assert_error(400, "invalid_request");

    // Inline code: audited by default too, and the field is accepted.
    let body = json!({"runtime": "bun", "code": MOUNT_PROBE});
    let inline = srv.post("/v1/execute", Some("application/json"), &body.to_string()).json();
    assert_eq!(inline["securityAudit"]["counts"], json!({"mount": 1}), "{inline}");
    let body = json!({"runtime": "bun", "code": MOUNT_PROBE, "audit": false});
    let inline = srv.post("/v1/execute", Some("application/json"), &body.to_string()).json();
    assert!(inline.get("securityAudit").is_none(), "{inline}");

    // Each run's listener thread, descriptors and socket are gone with the run.
    assert_eq!(audit_leftovers(srv.child.id()), (0, 0));
    let runs: Vec<_> = std::fs::read_dir(sb.state.path().join("runs")).unwrap().flatten().collect();
    assert!(runs.is_empty(), "{runs:?}");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

// ---- The warm pool ----

/// Reports what it finds of the runs before it: a marker in /tmp, its uid, its input.
const MARKER: &str = r#"import { existsSync, writeFileSync } from "node:fs";
const input = JSON.parse(process.env.IGNITE_INPUT ?? "{}");
const saw = existsSync("/tmp/marker");
writeFileSync("/tmp/marker", "left by an earlier run");
console.log(JSON.stringify({ input, saw, uid: process.getuid() }));
"#;

fn pool_sample(srv: &Server, series: &str) -> f64 {
    parse_metrics(&srv.get("/metrics", None).body).get(series).copied().unwrap_or(0.0)
}

fn parked(srv: &Server, service: &str) -> f64 {
    pool_sample(srv, &format!("ignite_pool_sandboxes{{service=\"{service}\",state=\"parked\"}}"))
}

fn pool_requests(srv: &Server, service: &str, result: &str) -> f64 {
    pool_sample(srv, &format!("ignite_pool_requests_total{{service=\"{service}\",result=\"{result}\"}}"))
}

fn pool_services(sb: &Sandbox) -> PathBuf {
    sb.service(
        "pool/marker",
        &[("service.yaml", "service:\n  name: marker\n  entry: index.ts\n"), ("index.ts", MARKER)],
    );
    sb.service(
        "pool/probe",
        &[("service.yaml", "service:\n  name: probe\n  entry: index.ts\n"), ("index.ts", MOUNT_PROBE)],
    );
    sb.work.path().join("pool")
}

#[test]
fn warm_sandboxes_serve_one_job_each_with_its_input_and_nothing_of_the_run_before() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = pool_services(&sb);
    let srv = Server::start(&sb, &dir, &["--pool-min", "1", "--pool-max", "2"], &[]);
    srv.wait_parked("marker", 1.0);
    let mut ids = Vec::new();
    let mut uids = Vec::new();
    for i in 0..3 {
        // Each request finds a parked sandbox: the replacement of the one before is ready.
        srv.wait_parked("marker", 1.0);
        let r = srv.execute("marker", json!({"input": {"n": i}}));
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        assert_eq!(v["metrics"]["warm"], true, "{v}");
        assert_eq!(v["status"], "ok", "{v}");
        assert_eq!(v["securityAudit"]["overallStatus"], "clean", "{v}");
        assert!(v["metrics"]["initTimeMs"].as_f64().is_some(), "{v}");
        let out: Value = serde_json::from_str(v["stdout"].as_str().unwrap()).expect("program output");
        assert_eq!(out["input"], json!({"n": i}), "{v}");
        assert_eq!(out["saw"], false, "a sandbox served a second run: {v}");
        ids.push(v["containerId"].as_str().unwrap().to_string());
        uids.push(out["uid"].as_u64().unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
    // A replacement starts while the run it replaces still holds its uid.
    assert!(uids[0] != uids[1] && uids[1] != uids[2], "{uids:?}");
    assert_eq!(pool_requests(&srv, "marker", "hit"), 3.0);
    assert_eq!(pool_requests(&srv, "marker", "miss"), 0.0);

    // Streaming through a warm sandbox: the output as chunks, then the report.
    srv.wait_parked("marker", 1.0);
    let mut events = Events::post(&srv, "/services/marker/execute", json!({"input": "s"}), "application/x-ndjson");
    let mut seen = Vec::new();
    events.until_chunk("stdout", "\"saw\":false", &mut seen);
    let (name, report) = events.next_event().expect("report event");
    assert_eq!(name, "report", "{report}");
    assert_eq!(report["metrics"]["warm"], true, "{report}");
    assert_eq!(joined(&seen, "stdout"), report["stdout"].as_str().unwrap());

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_warm_run_is_audited_and_limited_like_a_cold_one() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = pool_services(&sb);
    let sleeper = sb.service(
        "pool/sleeper",
        &[
            ("service.yaml", "service:\n  name: sleeper\n  entry: index.ts\n  timeoutMs: 1000\n"),
            ("index.ts", "console.log(\"sleeping\");\nawait new Promise((r) => setTimeout(r, 60000));\n"),
        ],
    );
    sb.service(
        "pool/hog",
        &[
            ("service.yaml", "service:\n  name: hog\n  entry: index.ts\n  memoryMb: 96\n  timeoutMs: 20000\n"),
            ("index.ts", "const keep = [];\nfor (let i = 0; ; i++) keep.push((\"x\" + i).repeat(1 << 20));\n"),
        ],
    );
    let srv = Server::start(&sb, &dir, &["--pool-min", "1", "--pool-max", "1"], &[]);
    for name in ["probe", "sleeper", "hog"] {
        srv.wait_parked(name, 1.0);
    }

    // Audit mode: the kernel's notification of the denied mount is in a warm run's report.
    let v = srv.execute("probe", json!({})).json();
    assert_eq!(v["metrics"]["warm"], true, "{v}");
    assert_eq!(v["stdout"], format!("{{\"ret\":-1,\"errno\":{}}}\n", libc::EPERM), "{v}");
    assert_eq!(v["securityAudit"]["counts"], json!({"mount": 1}), "{v}");
    assert_eq!(v["securityAudit"]["events"][0]["syscall"], "mount", "{v}");

    // The time limit counts from the handover, and ends the run as it ends a cold one.
    let warm = srv.execute("sleeper", json!({})).json();
    assert_eq!(warm["metrics"]["warm"], true, "{warm}");
    let (_, cold) = sb.run_json(&sleeper, &["--audit"]);
    assert!(cold["metrics"].get("warm").is_none(), "{cold}");
    for field in ["status", "success", "exitCode", "signal", "message", "stdout"] {
        assert_eq!(warm[field], cold[field], "{field}: warm {warm}\ncold {cold}");
    }
    assert_eq!(warm["status"], "timeout");
    assert_eq!(warm["securityAudit"]["counts"]["timeout"], 1, "{warm}");

    // The memory limit holds in a warm sandbox.
    let hog = srv.execute("hog", json!({})).json();
    assert_eq!(hog["metrics"]["warm"], true, "{hog}");
    assert_eq!(hog["success"], false, "{hog}");
    let status = hog["status"].as_str().unwrap();
    assert!(status == "oom" || status == "error", "{hog}");
    assert!(hog["metrics"]["memoryPeakMb"].as_f64().unwrap() <= 96.5, "{hog}");

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn without_a_parked_sandbox_a_request_runs_cold() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = pool_services(&sb);
    // marker: none kept, started on demand; probe: no pool at all.
    let srv = Server::start(&sb, &dir, &["--pool-min", "0", "--pool-max", "1", "--pool", "probe=0:0"], &[]);
    let first = srv.execute("marker", json!({"input": 1})).json();
    assert_eq!(first["status"], "ok", "{first}");
    assert!(first["metrics"].get("warm").is_none(), "{first}");
    assert_eq!(pool_requests(&srv, "marker", "miss"), 1.0);
    // The miss started one for the next request.
    srv.wait_parked("marker", 1.0);
    let second = srv.execute("marker", json!({"input": 2})).json();
    assert_eq!(second["metrics"]["warm"], true, "{second}");
    assert_eq!(pool_requests(&srv, "marker", "hit"), 1.0);
    // A request with its own memory limit is another kind of sandbox: none is parked for it.
    let other = srv.execute("marker", json!({"memoryMb": 80})).json();
    assert!(other["metrics"].get("warm").is_none(), "{other}");
    assert_eq!(other["metrics"]["memoryLimitMb"], 80, "{other}");

    for _ in 0..2 {
        let v = srv.execute("probe", json!({})).json();
        assert!(v["metrics"].get("warm").is_none(), "{v}");
        assert_eq!(v["securityAudit"]["counts"], json!({"mount": 1}), "{v}");
    }
    assert_eq!(parked(&srv, "probe"), 0.0);
    assert_eq!(pool_requests(&srv, "probe", "miss"), 2.0);

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// Lists the files under /app, and what it finds of the runs before it: a marker in /tmp,
/// a note in the session's workspace (when there is one); then leaves both for a next run.
const APP_PROBE: &str = r#"import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
const walk = (d: string): string[] =>
  readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(`${d}/${e.name}`) : [`${d}/${e.name}`]));
const saw = existsSync("/tmp/marker");
writeFileSync("/tmp/marker", "left by an earlier run");
const input = JSON.parse(process.env.IGNITE_INPUT ?? "{}");
let note = null;
if (existsSync("/tmp/workspace")) {
  note = existsSync("/tmp/workspace/note.txt") ? readFileSync("/tmp/workspace/note.txt", "utf8") : null;
  writeFileSync("/tmp/workspace/note.txt", String(input.n));
}
console.log(JSON.stringify({ files: walk("/app").sort(), saw, note, input, uid: process.getuid() }));
"#;

/// An inline request running [`APP_PROBE`] with a file of its own, `lib/own-N.txt`.
fn probe_body(n: usize) -> Value {
    json!({
        "runtime": "bun",
        "files": { "index.ts": APP_PROBE, format!("lib/own-{n}.txt"): n.to_string() },
        "input": { "n": n },
    })
}

fn probe_output(report: &Value) -> Value {
    assert_eq!(report["status"], "ok", "{report}");
    serde_json::from_str(report["stdout"].as_str().unwrap()).unwrap_or_else(|e| panic!("{e}: {report}"))
}

/// A services directory with no service: only inline code and sessions use the pool.
fn no_services(sb: &Sandbox) -> PathBuf {
    let dir = sb.work.path().join("no-services");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `--pool inline=0:0` keeps inline code cold while the pool serves services: a miss starts no
/// sandbox for it (a launch would begin under the pool's lock, before the cold run answers).
#[test]
fn an_inline_pool_of_zero_runs_inline_code_cold_and_starts_nothing_for_it() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = pool_services(&sb);
    let srv = Server::start(&sb, &dir, &["--pool-min", "1", "--pool-max", "2", "--pool", "inline=0:0"], &[]);
    // The pool is on: the service's sandbox parks.
    srv.wait_parked("marker", 1.0);
    for n in 0..2 {
        let v = srv.inline(probe_body(n)).json();
        assert_eq!(probe_output(&v)["files"], json!(["/app/index.ts", format!("/app/lib/own-{n}.txt")]), "{v}");
        assert!(v["metrics"].get("warm").is_none(), "inline code ran warm: {v}");
        let starting = pool_sample(&srv, "ignite_pool_sandboxes{service=\"inline\",state=\"starting\"}");
        assert_eq!((parked(&srv, "inline"), starting), (0.0, 0.0), "a sandbox was started for inline code");
    }
    assert_eq!(pool_requests(&srv, "inline", "miss"), 2.0);
    assert_eq!(pool_requests(&srv, "inline", "hit"), 0.0);
    // The service is still served warm beside it.
    let warm = srv.execute("marker", json!({"input": {"n": 1}})).json();
    assert_eq!(warm["metrics"]["warm"], true, "{warm}");
    let (status, stderr) = srv.stop();
    assert!(status.success(), "{stderr}");
    sb.assert_no_leaks();
}

#[test]
fn warm_inline_runs_see_only_their_own_files_and_a_sandbox_serves_one_job() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let srv = Server::start(&sb, &no_services(&sb), &["--pool-min", "1", "--pool-max", "2"], &[]);
    // Nothing is parked for inline code before its first request: that one runs cold and
    // starts a sandbox of its kind (bun, index.ts, the default limits, audit on).
    let first = srv.inline(probe_body(0)).json();
    assert!(first["metrics"].get("warm").is_none(), "{first}");
    assert_eq!(probe_output(&first)["files"], json!(["/app/index.ts", "/app/lib/own-0.txt"]), "{first}");
    assert_eq!(pool_requests(&srv, "inline", "miss"), 1.0);
    let mut ids = vec![first["containerId"].as_str().unwrap().to_string()];
    for n in 1..4 {
        srv.wait_parked("inline", 1.0);
        let v = srv.inline(probe_body(n)).json();
        assert_eq!(v["metrics"]["warm"], true, "{v}");
        assert_eq!(v["service"], "inline", "{v}");
        assert_eq!(v["securityAudit"]["overallStatus"], "clean", "{v}");
        let out = probe_output(&v);
        // Its own files, none of an earlier request's, and a sandbox nobody ran in before.
        assert_eq!(out["files"], json!(["/app/index.ts", format!("/app/lib/own-{n}.txt")]), "{v}");
        assert_eq!(out["saw"], false, "a sandbox served a second job: {v}");
        assert_eq!(out["input"], json!({ "n": n }), "{v}");
        ids.push(v["containerId"].as_str().unwrap().to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(pool_requests(&srv, "inline", "hit"), 3.0);

    // Other limits are another kind: none is parked for it, so it runs cold, with its limits.
    let mut body = probe_body(9);
    body["limits"] = json!({ "memoryMb": 80 });
    let other = srv.inline(body).json();
    assert!(other["metrics"].get("warm").is_none(), "{other}");
    assert_eq!(other["metrics"]["memoryLimitMb"], 80, "{other}");
    assert_eq!(probe_output(&other)["files"], json!(["/app/index.ts", "/app/lib/own-9.txt"]));

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    assert!(inline_dirs(&sb).is_empty(), "inline directories left: {:?}", inline_dirs(&sb));
    sb.assert_no_leaks();
}

/// A run's OCI spec with what differs by design between two runs of one kind made the same:
/// its id, its uid, its code directory; and, for a warm sandbox, the entrypoint's
/// `--wait-job` and the input (which comes with the job, not in the spec).
fn spec_of_the_kind(config: &Path, mut spec: Value) -> String {
    let id = config.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
    let uid = spec["process"]["user"]["uid"].as_u64().unwrap();
    let app = spec["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/app").unwrap()["source"]
        .as_str()
        .unwrap()
        .to_string();
    spec["process"]["user"] = json!("UID");
    spec["process"]["args"].as_array_mut().unwrap().retain(|a| a != "--wait-job");
    spec["process"]["env"].as_array_mut().unwrap().retain(|e| !e.as_str().unwrap().starts_with("IGNITE_INPUT="));
    spec.to_string()
        .replace(&id, "ID")
        .replace(&app, "APP")
        .replace(&format!("={uid}\""), "=UID\"")
        .replace(&format!("/{uid}."), "/UID.")
}

#[test]
fn a_warm_inline_sandbox_has_the_spec_of_a_cold_run_of_its_kind() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let srv = Server::start(&sb, &no_services(&sb), &["--pool-min", "1", "--pool-max", "1"], &[]);
    // The first request runs cold (it outlives this comparison) and starts a sandbox of its
    // kind: both specs are on disk at once.
    let url = format!("{}/v1/execute", srv.base);
    // Long enough for both to be seen, also where programs start several times slower.
    let wait_ms = 4000 * common::slowdown();
    let body = json!({ "runtime": "bun", "code": format!("await new Promise((r) => setTimeout(r, {wait_ms}));"),
        "limits": { "timeoutMs": wait_ms + 10_000 } })
    .to_string();
    let cold_run =
        std::thread::spawn(move || response(agent().post(url).header("Content-Type", "application/json").send(body)));
    let (mut cold, mut warm) = (None, None);
    for _ in 0..3000 {
        for entry in std::fs::read_dir(sb.state.path().join("runs")).into_iter().flatten().flatten() {
            let config = entry.path().join("config.json");
            // Not there yet, or still being written.
            let Ok(text) = std::fs::read_to_string(&config) else { continue };
            let Ok(spec) = serde_json::from_str::<Value>(&text) else { continue };
            let slot = if text.contains("\"--wait-job\"") { &mut warm } else { &mut cold };
            slot.get_or_insert_with(|| spec_of_the_kind(&config, spec));
        }
        if cold.is_some() && warm.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (cold, warm) = (cold.expect("the cold run's spec"), warm.expect("the parked sandbox's spec"));
    assert_eq!(warm, cold, "a warm inline sandbox's spec differs from a cold run's");
    assert!(warm.contains("\"/app\"") && warm.contains("APP"), "{warm}");
    let r = cold_run.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_session_keeps_one_sandbox_parked_with_its_workspace_until_it_ends() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    // --pool-min 0: the session's sandbox is kept because the session lives, not for a min.
    let srv = Server::start(&sb, &no_services(&sb), &["--pool-min", "0", "--pool-max", "2"], &[]);
    let create = || {
        let r = srv.post("/v1/sessions", Some("application/json"), "{}");
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_string()
    };
    let run = |id: &str, n: usize| {
        let r = srv.post(&format!("/v1/sessions/{id}/execute"), Some("application/json"), &probe_body(n).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let s1 = create();
    let first = run(&s1, 1);
    assert!(first["metrics"].get("warm").is_none(), "{first}");
    let uid = probe_output(&first)["uid"].clone();
    for n in 2..4 {
        srv.wait_parked("inline", 1.0);
        let v = run(&s1, n);
        assert_eq!(v["metrics"]["warm"], true, "{v}");
        let out = probe_output(&v);
        // The workspace as the run before left it, the session's uid, only its own files,
        // and a sandbox nobody ran in before.
        assert_eq!(out["note"], (n - 1).to_string(), "{v}");
        assert_eq!(out["uid"], uid, "{v}");
        assert_eq!(out["files"], json!(["/app/index.ts", format!("/app/lib/own-{n}.txt")]), "{v}");
        assert_eq!(out["saw"], false, "{v}");
    }
    // Another kind (other limits) runs cold, and the sandbox parked for the kind before is
    // dropped: a session keeps one, made for what it asked for last.
    srv.wait_parked("inline", 1.0);
    let mut body = probe_body(4);
    body["limits"] = json!({ "memoryMb": 80 });
    let r = srv.post(&format!("/v1/sessions/{s1}/execute"), Some("application/json"), &body.to_string());
    let other_kind = r.json();
    assert!(other_kind["metrics"].get("warm").is_none(), "{other_kind}");
    assert_eq!(probe_output(&other_kind)["note"], "3", "{other_kind}");
    let discarded = "ignite_pool_discards_total{service=\"inline\",reason=\"discarded\"}";
    for _ in 0..3000 {
        if pool_sample(&srv, discarded) == 1.0 && parked(&srv, "inline") == 1.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pool_sample(&srv, discarded), 1.0);
    srv.wait_parked("inline", 1.0);
    let mut body = probe_body(5);
    body["limits"] = json!({ "memoryMb": 80 });
    let r = srv.post(&format!("/v1/sessions/{s1}/execute"), Some("application/json"), &body.to_string());
    assert_eq!(r.json()["metrics"]["warm"], true, "{}", r.body);
    assert_eq!(probe_output(&r.json())["note"], "4", "{}", r.body);

    // Another session gets nothing of s1's: not its parked sandbox, not its workspace.
    srv.wait_parked("inline", 1.0);
    let s2 = create();
    let other = run(&s2, 7);
    assert!(other["metrics"].get("warm").is_none(), "{other}");
    assert_eq!(probe_output(&other)["note"], Value::Null, "{other}");
    assert_ne!(probe_output(&other)["uid"], uid, "{other}");

    // Ending the sessions removes the sandboxes parked for them.
    for id in [&s1, &s2] {
        assert_eq!(srv.call("DELETE", &format!("/v1/sessions/{id}"), "", None).status, 204);
    }
    srv.wait_parked("inline", 0.0);
    for _ in 0..3000 {
        if container_ids(&sb).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(container_ids(&sb), Vec::<String>::new(), "a sandbox outlived its session");

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_parked_sandbox_killed_from_outside_is_replaced() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = pool_services(&sb);
    let srv = Server::start(&sb, &dir, &["--pool-min", "1", "--pool-max", "1", "--pool", "probe=0:0"], &[]);
    srv.wait_parked("marker", 1.0);
    let before = container_ids(&sb);
    assert_eq!(before.len(), 1, "{before:?}");
    let state = oci_cmd(&sb).arg("state").arg(&before[0]).output().unwrap();
    let pid = serde_json::from_slice::<Value>(&state.stdout).unwrap()["pid"].as_i64().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();

    let discarded = "ignite_pool_discards_total{service=\"marker\",reason=\"discarded\"}";
    for _ in 0..3000 {
        if pool_sample(&srv, discarded) == 1.0 && parked(&srv, "marker") == 1.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pool_sample(&srv, discarded), 1.0);
    srv.wait_parked("marker", 1.0);
    sb.assert_cgroup_gone(&before[0]);
    let after = container_ids(&sb);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before);
    let v = srv.execute("marker", json!({"input": "after"})).json();
    assert_eq!(v["metrics"]["warm"], true, "{v}");
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["containerId"], after[0].as_str(), "{v}");

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// Prints the program's own open-file limits (soft hard), as the kernel has them.
const NOFILE_PROBE: &str = r#"import { readFileSync } from "node:fs";
const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"))!;
console.log(line.split(/\s+/).slice(3, 5).join(" "));
"#;

/// Under a hard open-file limit below the 4096 a sandbox asks for (which the OCI runtime may
/// not be allowed to exceed), runs get what the host allows; below the minimum they are refused
/// with the limit and the remedy, and /ready says why. `ignite run` and `ignite serve` alike.
#[test]
fn a_low_open_file_limit_is_fitted_or_refused_and_ready_says_so() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let svc = sb.service(
        "svc/nofile",
        &[("service.yaml", "service:\n  name: nofile\n  entry: index.ts\n"), ("index.ts", NOFILE_PROBE)],
    );
    let run = |cmd: &mut std::process::Command| cmd.arg("run").arg(&svc).arg("--json").output().expect("run ignite");

    let out = run(&mut sb.cmd());
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let own_hard: u64 = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(|v| v.parse().unwrap_or(u64::MAX)))
        .unwrap();
    if own_hard >= 4096 {
        assert_eq!(report["stdout"], "4096 4096\n", "{report:#}");
    }

    let out = run(&mut sb.cmd_with_nofile(1024));
    assert!(out.status.success(), "under a hard limit of 1024: {}", common::stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stdout"], "1024 1024\n", "{report:#}");

    let out = run(&mut sb.cmd_with_nofile(128));
    let err = common::stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    for needle in ["RLIMIT_NOFILE", "is 128", "below the 256", "ulimit -Hn 4096"] {
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }

    let srv = Server::start_from(sb.cmd_with_nofile(1024), &dir, &[], &[]);
    let ready = srv.get("/ready", None);
    assert_eq!(ready.status, 200, "{}", ready.body);
    let r = srv.execute("nofile", json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["stdout"], "1024 1024\n", "{}", r.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");

    let srv = Server::start_from(sb.cmd_with_nofile(128), &dir, &[], &[]);
    let ready = srv.get("/ready", None);
    assert_eq!(ready.status, 503, "{}", ready.body);
    let body = ready.json();
    assert_eq!(body["ready"], false);
    assert!(body["missing"].to_string().contains("open-file limit (RLIMIT_NOFILE) of ignite is 128"), "{body:#}");
    let r = srv.execute("nofile", json!({}));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("RLIMIT_NOFILE") && r.body.contains("ulimit -Hn 4096"), "{}", r.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("no sandbox can start"), "the server said nothing at start: {log}");
    sb.assert_no_leaks();
}

/// `ignite cleanup` after a `kill -9` of the server removes everything it left — its session's
/// tmpfs workspace, the directory of an inline run in flight, the run's container and state —
/// and leaves the session of a live server on the same state dir alone (as does the killed
/// server's own start).
#[test]
fn cleanup_after_a_killed_server_removes_what_it_left_but_not_a_live_servers_sessions() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let live = Server::start(&sb, &dir, &[], &[]);
    let r = live.post("/v1/sessions", None, "");
    assert_eq!(r.status, 201, "{}", r.body);
    let kept = r.json()["id"].as_str().unwrap().to_string();
    let kept_dir = sb.state.path().join("sessions").join(&kept);
    let run_in_kept = |code: &str| {
        let body = json!({ "runtime": "bun", "code": code, "input": { "note": "kept" } });
        let r = live.post(&format!("/v1/sessions/{kept}/execute"), Some("application/json"), &body.to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["stdout"].as_str().unwrap().to_string()
    };
    assert_eq!(run_in_kept(WRITE_NOTE), "written\n");

    // A second server on the same state dir: starting, it must not take the live one's session.
    let mut crashed = Server::start(&sb, &dir, &[], &[]);
    assert!(mounted(&kept_dir), "a starting server unmounted a live server's session");
    let r = crashed.post("/v1/sessions", None, "");
    assert_eq!(r.status, 201, "{}", r.body);
    let dead = r.json()["id"].as_str().unwrap().to_string();
    let dead_dir = sb.state.path().join("sessions").join(&dead);
    let url = format!("{}/v1/sessions/{dead}/execute", crashed.base);
    // The program says it started in the session's workspace (on the host under dead_dir):
    // its sandbox is then complete, not a creation that the kill would cut short and runc undo.
    const STARTED_THEN_WAIT: &str = r#"import { existsSync, writeFileSync } from "node:fs";
writeFileSync("/tmp/workspace/started", "1");
while (!existsSync("/app/release")) await new Promise((r) => setTimeout(r, 20));
"#;
    let inflight = std::thread::spawn(move || {
        let body = json!({ "runtime": "bun", "code": STARTED_THEN_WAIT }).to_string();
        agent().post(url).header("Content-Type", "application/json").send(body).is_err()
    });
    crashed.wait_sandbox(&sb);
    for _ in 0..3000 {
        if dead_dir.join("started").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(dead_dir.join("started").exists(), "the in-flight program never started");
    crashed.child.kill().expect("SIGKILL");
    crashed.child.wait().expect("wait");
    assert!(inflight.join().unwrap(), "the killed server answered");
    assert!(mounted(&dead_dir), "the killed server left its session's workspace (else this proves nothing)");
    assert_eq!(inline_dirs(&sb).len(), 1, "the killed server left its inline run's directory");
    assert_eq!(container_ids(&sb).len(), 1, "the killed server left its sandbox");

    let out = sb.cmd().arg("cleanup").output().expect("run ignite cleanup");
    let err = common::stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("removed 1 leftover run(s)"), "{err}");
    assert!(err.contains("removed 1 session workspace(s)") && err.contains("1 inline code directory"), "{err}");
    assert!(!mounted(&dead_dir) && !dead_dir.exists(), "the dead server's workspace remains");
    assert!(inline_dirs(&sb).is_empty(), "{:?}", inline_dirs(&sb));
    assert!(container_ids(&sb).is_empty(), "{:?}", container_ids(&sb));
    let runs: Vec<_> = std::fs::read_dir(sb.state.path().join("runs")).unwrap().flatten().collect();
    assert!(runs.is_empty(), "{runs:?}");

    // The live server's session is untouched: still mounted, its file still there.
    assert!(mounted(&kept_dir), "cleanup unmounted a live server's session");
    assert_eq!(run_in_kept(READ_NOTE), "kept note.txt\n");
    let out = sb.cmd().arg("cleanup").output().expect("run ignite cleanup");
    assert!(common::stderr_of(&out).contains("removed 0 session workspace(s)"), "{}", common::stderr_of(&out));
    assert!(mounted(&kept_dir));

    let (status, log) = live.stop();
    assert!(status.success(), "{log}");
    assert!(session_dirs(&sb).is_empty(), "{:?}", session_dirs(&sb));
    let owners: Vec<_> =
        std::fs::read_dir(sb.state.path().join("session-owners")).into_iter().flatten().flatten().collect();
    assert!(owners.is_empty(), "{owners:?}");
    sb.assert_no_leaks();
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Raises this test process's open-file soft limit to its hard limit (it opens thousands of
/// sockets).
fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

/// Opens a TCP connection from `from` (another loopback address, so the server sees another
/// peer) to `to` without waiting for the server to accept it, and sends nothing.
fn bare_connection(from: std::net::Ipv4Addr, to: std::net::SocketAddr) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
        .expect("socket");
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(std::net::SocketAddrV4::new(from, 0))).expect("bind");
    let std::net::SocketAddr::V4(to) = to else { panic!("not IPv4: {to}") };
    match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to)) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => fd,
        Err(e) => panic!("connect from {from}: {e}"),
    }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    /// Like `get`, but gives up after `secs` instead of waiting for ever.
    fn get_within(&self, path: &str, secs: u64) -> Result<Resp, ureq::Error> {
        let a: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(std::time::Duration::from_secs(secs)))
            .build()
            .into();
        a.get(format!("{}{path}", self.base)).call().map(|r| response(Ok(r)))
    }
}

/// Reads from a raw connection until the server closes it; `Err` if it is still open after
/// `secs`. Whatever the server sent before closing is returned.
fn read_until_closed(conn: &mut std::net::TcpStream, secs: u64) -> Result<String, String> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(secs))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(String::from_utf8_lossy(&got).into_owned());
            }
            Err(e) => return Err(format!("still open after {secs} s ({e}); got {:?}", String::from_utf8_lossy(&got))),
        }
    }
}

#[test]
fn thousands_of_bare_connections_from_one_peer_leave_health_and_execute_answering() {
    if !require_sandbox() {
        return;
    }
    assert!(raise_nofile() >= 10_000, "this test needs a hard open-file limit of at least 10000");
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--rate-limit", "0"], &[]);
    // The open-file limit the issue was found with: without caps, 4,096 connections are all
    // the server can hold, and nobody else gets in.
    let out = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", srv.pid()))
        .arg("--nofile=4096:4096")
        .output()
        .expect("prlimit");
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    let rss_before = rss_kib(srv.pid());
    let attacker = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let mut conns = Vec::new();
    for i in 0..4200 {
        conns.push(bare_connection(attacker, srv.addr()));
        // Paced, so the connections reach the server rather than overflow its accept queue
        // (an overflowed handshake looks established to the client only).
        if i % 50 == 49 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    // Answers from 127.0.0.1 while the 4,200 connections are still open on the client side.
    let health = srv.get_within("/health", 20).expect("GET /health while 4,200 bare connections are open");
    assert_eq!(health.status, 200, "{}", health.body);
    let report = srv.execute("echo", json!({ "input": { "n": 1 } }));
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.json()["stdout"], "got {\"n\":1}\n", "{}", report.body);
    let rss_during = rss_kib(srv.pid());
    eprintln!("server RSS with 4,200 bare connections: {rss_before} KiB before, {rss_during} KiB during");
    drop(conns);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    let warnings = log.lines().filter(|l| l.contains("refusing connections")).count();
    assert!(warnings >= 1, "no log line says connections were refused:\n{log}");
    assert!(warnings <= 5, "{warnings} warning lines: one per connection instead of rate-limited");
    assert!(log.contains("max-connections-per-peer"), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn idle_keep_alive_half_sent_heads_and_bare_connections_are_closed_but_a_long_run_is_not() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--idle-timeout", "1", "--header-timeout", "2", "--rate-limit", "0"], &[]);
    use std::io::Write as _;
    // Kept alive after a complete exchange, then idle: closed after --idle-timeout.
    let mut idle = std::net::TcpStream::connect(srv.addr()).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: ignite\r\n\r\n").unwrap();
    let got = read_until_closed(&mut idle, 20).expect("an idle keep-alive connection is closed");
    assert!(got.starts_with("HTTP/1.1 200"), "the request itself was answered: {got:?}");
    // Half a head, then nothing: closed after --header-timeout.
    let mut half = std::net::TcpStream::connect(srv.addr()).unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: ig").unwrap();
    read_until_closed(&mut half, 20).expect("a half-sent head is closed");
    // Nothing at all: closed after --header-timeout too.
    let mut bare = std::net::TcpStream::connect(srv.addr()).unwrap();
    assert_eq!(read_until_closed(&mut bare, 20).expect("a bare connection is closed"), "");
    // A request in flight is not idle, however long its execution takes.
    let waiting = srv.execute_in_background("waiter");
    srv.wait_sandbox(&sb);
    std::thread::sleep(std::time::Duration::from_secs(4));
    std::fs::write(dir.join("waiter/release"), "").unwrap();
    let r = waiting.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["stdout"], "released\n", "{}", r.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_flood_of_requests_to_one_session_waits_in_the_queue_up_to_its_cap_and_memory_stays_bounded() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(
        &sb,
        &dir,
        &["--session-max-waiting", "2", "--rate-limit", "0", "--max-concurrent", "2", "--max-body", "2000000"],
        &[],
    );
    let id = srv.post("/v1/sessions", None, "").json()["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/sessions/{id}/execute", srv.base);
    // Holds the session's turn until the host writes the release file into its workspace.
    let waiter = r#"import { existsSync } from "node:fs";
while (!existsSync("/tmp/workspace/release")) await new Promise((r) => setTimeout(r, 20));
console.log("released");"#;
    let first = {
        let url = url.clone();
        let body = json!({ "runtime": "bun", "code": waiter, "limits": { "timeoutMs": 120_000 } }).to_string();
        std::thread::spawn(move || response(agent().post(&url).header("Content-Type", "application/json").send(&body)))
    };
    srv.wait_sandbox(&sb);
    let rss_before = rss_kib(srv.pid());
    // 300 requests of ≈ 900 KB each, 16 at a time.
    let code = format!("console.log('late');\n//{}", "x".repeat(900 * 1024));
    let body = std::sync::Arc::new(json!({ "runtime": "bun", "code": code }).to_string());
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (url, body, next, refused) = (url.clone(), body.clone(), next.clone(), refused.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 300 {
                    let r = response(agent().post(&url).header("Content-Type", "application/json").send(body.as_str()));
                    if r.status == 429 {
                        r.assert_error(429, "session_busy");
                        assert!(r.header("retry-after").is_some());
                        refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    statuses.push(r.status);
                }
                statuses
            })
        })
        .collect();
    // Beyond the cap, refused while the first run still holds the turn (it waits for a file
    // nobody has written yet): not queued behind it.
    for _ in 0..6000 {
        if refused.load(std::sync::atomic::Ordering::SeqCst) >= 298 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        refused.load(std::sync::atomic::Ordering::SeqCst),
        298,
        "requests beyond --session-max-waiting were not refused at once"
    );
    let metrics = parse_metrics(&srv.get("/metrics", None).body);
    assert_eq!(metrics.get("ignite_queue_depth").copied(), Some(2.0), "the waiters are counted by the queue");
    let rss_during = rss_kib(srv.pid());
    eprintln!("server RSS: {rss_before} KiB with one run, {rss_during} KiB after 300 × 900 KB requests to its session");
    assert!(
        rss_during < rss_before + 128 * 1024,
        "RSS grew from {rss_before} KiB to {rss_during} KiB: bodies of refused requests are kept"
    );
    // Release the first run: the two waiters run in turn.
    let workspace = sb.state.path().join("sessions").join(&id);
    std::fs::write(workspace.join("release"), "").unwrap();
    assert_eq!(first.join().unwrap().json()["stdout"], "released\n");
    let statuses: Vec<u16> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert_eq!(statuses.len(), 300);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "{statuses:?}");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

/// Two API keys (printable, ≥ 16 characters) whose 8-hex-digit ids (the first 4 bytes of
/// their SHA-256) are the same: a birthday search over ≈ 65k candidates.
fn colliding_keys() -> (String, String) {
    use sha2::Digest as _;
    let mut seen = std::collections::HashMap::new();
    for i in 0u64..10_000_000 {
        let key = format!("collision-key-{i:010}");
        let d = sha2::Sha256::digest(key.as_bytes());
        let short = [d[0], d[1], d[2], d[3]];
        if let Some(other) = seen.insert(short, key.clone()) {
            return (other, key);
        }
    }
    panic!("no collision found");
}

#[test]
fn keys_whose_short_ids_collide_are_separate_tenants() {
    if !require_sandbox() {
        return;
    }
    let (a, b) = colliding_keys();
    let sb = Sandbox::new();
    let dir = services(&sb);
    let keys = format!("{a},{b}");
    let srv = Server::start(&sb, &dir, &["--rate-limit", "5"], &[("IGNITE_API_KEYS", keys.as_str())]);
    let created = srv.call("POST", "/v1/sessions", &a, None);
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let path = format!("/v1/sessions/{id}");
    srv.call("GET", &path, &b, None).assert_error(404, "not_found");
    let code = json!({ "runtime": "bun", "code": "console.log('in')" });
    srv.call("POST", &format!("{path}/execute"), &b, Some(code)).assert_error(404, "not_found");
    srv.call("DELETE", &path, &b, None).assert_error(404, "not_found");
    assert_eq!(srv.call("GET", &path, &a, None).status, 200, "the owner still has its session");
    // Separate rate-limit buckets: `a` spends its 5 requests, `b` (3 spent) still has some.
    for _ in 0..3 {
        assert_eq!(srv.call("GET", "/services", &a, None).status, 200);
    }
    srv.call("GET", "/services", &a, None).assert_error(429, "rate_limited");
    assert_eq!(srv.call("GET", "/services", &b, None).status, 200, "the other key has its own bucket");
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains(&a) && !log.contains(&b), "a key in the log");
    sb.assert_no_leaks();
}

#[test]
fn a_key_at_its_session_cap_is_refused_while_another_key_still_creates_sessions() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let (a, b) = ("per-key-cap-key-a-0123456789", "per-key-cap-key-b-0123456789");
    let keys = format!("{a},{b}");
    let srv = Server::start(&sb, &dir, &["--max-sessions-per-key", "2"], &[("IGNITE_API_KEYS", keys.as_str())]);
    for _ in 0..2 {
        assert_eq!(srv.call("POST", "/v1/sessions", a, None).status, 201);
    }
    let refused = srv.call("POST", "/v1/sessions", a, None);
    refused.assert_error(429, "key_sessions_full");
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains("--max-sessions-per-key"));
    let other = srv.call("POST", "/v1/sessions", b, None);
    assert_eq!(other.status, 201, "another key is not locked out: {}", other.body);
    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_busy_server_never_takes_its_own_runs_for_leftovers() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let srv = Server::start(&sb, &dir, &["--rate-limit", "0", "--max-concurrent", "4"], &[]);
    let url = format!("{}/v1/execute", srv.base);
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                (0..12)
                    .map(|i| {
                        let body = json!({ "runtime": "bun", "code": format!("console.log('{w}-{i}')") }).to_string();
                        response(agent().post(&url).header("Content-Type", "application/json").send(&body))
                    })
                    .filter(|r| r.status != 200)
                    .map(|r| format!("{} {}", r.status, r.body))
                    .collect::<Vec<String>>()
            })
        })
        .collect();
    let failed: Vec<String> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let (status, log) = srv.stop();
    assert!(failed.is_empty(), "requests that did not succeed:\n{}\nserver log:\n{log}", failed.join("\n"));
    assert!(status.success(), "{log}");
    let leftovers: Vec<&str> = log.lines().filter(|l| l.contains("leftovers")).collect();
    assert!(leftovers.is_empty(), "the server took its own runs for leftovers:\n{}", leftovers.join("\n"));
    sb.assert_no_leaks();
}

/// A server whose stderr was closed (its supervisor went away) still drains and exits on
/// SIGTERM: a failed log write must not take the signal handling down with it.
#[test]
fn a_server_with_a_closed_stderr_still_stops_on_sigterm() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = services(&sb);
    let mut child = sb
        .cmd()
        .arg("serve")
        .arg("--services")
        .arg(&dir)
        .args(["--port", "0", "--pool-min", "0", "--pool-max", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ignite serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    assert!(line.contains("listening"), "{line}");
    drop(child.stderr.take());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server ignored SIGTERM once its stderr was closed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    sb.assert_no_leaks();
}
