//! `ignite mcp` and `/mcp` driven by the real binary with plain JSON-RPC: the protocol's
//! handshake, the tool list, precise errors, runs and a session over stdio, leaving nothing
//! behind; over HTTP, the same gate as every route (key, rate limit). The official Python SDK
//! drives the same tools in tests/mcp-client.sh.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use common::{Sandbox, require_sandbox, stderr_of};
use serde_json::{Value, json};

/// Long enough for a cold run on a slow CI host; a hung server fails instead of hanging.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// `ignite mcp` on pipes: requests go in as lines, replies come out as lines.
struct McpProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl Drop for McpProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl McpProcess {
    fn start(sb: &Sandbox, args: &[&str]) -> McpProcess {
        let mut child = sb
            .cmd()
            .arg("mcp")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ignite mcp");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut s = McpProcess { child, stdin, lines, next_id: 1 };
        let init = s.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "tests/mcp.rs", "version": "0"}}),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "ignite", "{init}");
        assert!(init["result"]["capabilities"]["tools"].is_object(), "{init}");
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").expect("write to ignite mcp");
        stdin.flush().expect("flush");
    }

    /// Sends a request and returns its reply (messages without its id are skipped).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        // Bounded: at most this many other messages (none are expected) before the reply.
        for _ in 0..100 {
            let line = self.lines.recv_timeout(REPLY_TIMEOUT).unwrap_or_else(|e| panic!("no reply to {method}: {e}"));
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if v["id"] == id {
                return v;
            }
        }
        panic!("no reply to {method} among 100 messages");
    }

    fn call(&mut self, tool: &str, args: Value) -> Value {
        let reply = self.request("tools/call", json!({"name": tool, "arguments": args}));
        reply.get("result").cloned().unwrap_or_else(|| panic!("{tool}: not a result: {reply}"))
    }

    /// Closes stdin (the client is done) and waits, bounded, for ignite mcp to exit.
    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("ignite mcp did not exit within 60 s of its stdin closing");
    }
}

fn error_code(result: &Value) -> &str {
    assert_eq!(result["isError"], true, "{result}");
    result["structuredContent"]["error"]["code"].as_str().unwrap_or_default()
}

#[test]
fn mcp_stdio_lists_its_tools_and_refuses_bad_calls_precisely() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let mut mcp = McpProcess::start(&sb, &["--pool-max", "0"]);
    let tools = mcp.request("tools/list", json!({}));
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "run_code",
            "list_services",
            "run_service",
            "session_create",
            "session_execute",
            "session_list_files",
            "session_read_file",
            "session_write_file",
            "session_close"
        ]
    );

    let unknown = mcp.request("tools/call", json!({"name": "rm_rf", "arguments": {}}));
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    let r = mcp.call("run_code", json!({"code": "1", "limits": {"memoryMb": "lots"}}));
    assert_eq!(error_code(&r), "invalid_arguments");
    assert!(r["content"][0]["text"].as_str().unwrap().contains("limits.memoryMb"), "{r}");
    let r = mcp.call("run_code", json!({}));
    assert_eq!(error_code(&r), "invalid_request");
    let r = mcp.call("run_code", json!({"code": "1", "files": {"../x.ts": "1"}}));
    assert_eq!(error_code(&r), "invalid_request", "code and files together are refused first");
    let r = mcp.call("run_code", json!({"files": {"../x.ts": "1"}}));
    assert_eq!(error_code(&r), "invalid_files");
    let r = mcp.call("run_service", json!({"name": "hello"}));
    assert_eq!(error_code(&r), "not_found", "without --services there is no service");
    let r = mcp.call("session_close", json!({"sessionId": "0123"}));
    assert_eq!(error_code(&r), "not_found");
    // The server kept serving through every refusal.
    let listed = mcp.call("list_services", json!({}));
    assert_eq!(listed["structuredContent"], json!({"services": []}));
    assert!(mcp.finish().success());
    sb.assert_no_leaks();
}

#[test]
fn mcp_stdio_runs_code_a_service_and_a_session_and_leaves_nothing() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let services = sb.service("services/hello", &[]).parent().unwrap().to_path_buf();
    let hello = common::repo().join("examples/hello");
    for f in ["service.yaml", "hello.ts"] {
        std::fs::copy(hello.join(f), services.join("hello").join(f)).unwrap();
    }
    // With the warm pool on (a parked hello, inline and session kinds started on demand): its
    // sandboxes too are gone once the client closes stdin.
    let args =
        ["--services", services.to_str().unwrap(), "--pool-max", "4", "--pool-min", "1", "--allow-env", "GREETING"];
    let mut mcp = McpProcess::start(&sb, &args);

    // Arguments, stdin, an allowed variable and an output file, as the HTTP API takes them.
    let io = r#"import { readFileSync, writeFileSync } from "node:fs";
const stdin = readFileSync(0, "utf8");
writeFileSync(`${process.env.IGNITE_OUT_DIR}/result.txt`, `${process.env.GREETING} ${stdin}`);
console.log(JSON.stringify(process.argv.slice(2)));"#;
    let r = mcp.call(
        "run_code",
        json!({"code": io, "args": ["a", "b c"], "stdin": "from stdin", "env": {"GREETING": "hi"}, "outputs": true}),
    );
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"]["stdout"], "[\"a\",\"b c\"]\n", "{r}");
    let file = &r["structuredContent"]["files"]["result.txt"];
    assert_eq!(file["content"], "aGkgZnJvbSBzdGRpbg==", "base64 of \"hi from stdin\": {r}");
    assert_eq!(file["size"], 13, "{r}");
    // A variable the operator did not allow is refused, naming it.
    let r = mcp.call("run_code", json!({"code": "1", "env": {"PATH": "/x"}}));
    assert_eq!(error_code(&r), "env_not_allowed", "{r}");
    assert!(r["content"][0]["text"].as_str().unwrap().contains("PATH"), "{r}");

    let r = mcp.call(
        "run_code",
        json!({"code": "console.log(JSON.parse(process.env.IGNITE_INPUT).n * 2)", "input": {"n": 21}}),
    );
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"]["stdout"], "42\n", "{r}");
    assert_eq!(r["structuredContent"]["status"], "ok");
    assert!(r["content"][0]["text"].as_str().unwrap().starts_with("status: ok, exit code 0"), "{r}");

    let r = mcp.call("run_service", json!({"name": "hello", "input": {"name": "mcp"}}));
    assert_eq!(r["structuredContent"]["stdout"], "hello, mcp\n", "{r}");

    let s = mcp.call("session_create", json!({}));
    if common::rootless() {
        // Sessions rest on a host mount: refused rootless, as over HTTP.
        assert_eq!(error_code(&s), "not_available_rootless", "{s}");
        assert!(mcp.finish().success());
        sb.assert_no_leaks();
        return;
    }
    let id = s["structuredContent"]["id"].as_str().expect("session id").to_string();
    let write = r#"import { writeFileSync } from "node:fs"; writeFileSync("/tmp/workspace/n", "7"); console.log("ok")"#;
    let r = mcp.call("session_execute", json!({"sessionId": id, "code": write}));
    assert_eq!(r["structuredContent"]["stdout"], "ok\n", "{r}");
    let read = r#"import { readFileSync } from "node:fs"; console.log(readFileSync("/tmp/workspace/n", "utf8"))"#;
    let r = mcp.call("session_execute", json!({"sessionId": id, "code": read}));
    assert_eq!(r["structuredContent"]["stdout"], "7\n", "{r}");
    // Files in and out between runs, path-checked.
    let r = mcp.call("session_write_file", json!({"sessionId": id, "path": "in/data.txt", "content": "21"}));
    assert_eq!(r["structuredContent"]["created"], true, "{r}");
    let double = r#"import { readFileSync, writeFileSync } from "node:fs";
writeFileSync("/tmp/workspace/out.json", JSON.stringify({ n: 2 * Number(readFileSync("/tmp/workspace/in/data.txt", "utf8")) }));"#;
    let r = mcp.call("session_execute", json!({"sessionId": id, "code": double}));
    assert_eq!(r["structuredContent"]["status"], "ok", "{r}");
    let r = mcp.call("session_read_file", json!({"sessionId": id, "path": "out.json"}));
    assert_eq!(r["structuredContent"]["content"], "{\"n\":42}", "{r}");
    let r = mcp.call("session_list_files", json!({"sessionId": id}));
    let paths: Vec<&str> =
        r["structuredContent"]["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["in", "in/data.txt", "n", "out.json"], "{r}");
    let r = mcp.call("session_read_file", json!({"sessionId": id, "path": "../etc/passwd"}));
    assert_eq!(error_code(&r), "invalid_path");
    let r = mcp.call("session_write_file", json!({"sessionId": id, "path": "/abs", "content": "x"}));
    assert_eq!(error_code(&r), "invalid_path");

    let r = mcp.call("session_close", json!({"sessionId": id}));
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(error_code(&mcp.call("session_execute", json!({"sessionId": id, "code": read}))), "not_found");

    assert!(mcp.finish().success());
    sb.assert_no_leaks();
}

/// `ignite serve` with one key and a rate limit of `rate` per minute; its base URL.
fn serve(sb: &Sandbox, services: &Path, key: &str, rate: u32) -> (Child, String) {
    let mut child = sb
        .cmd()
        .arg("serve")
        .arg("--services")
        .arg(services)
        .args(["--port", "0", "--pool-min", "0", "--pool-max", "0", "--rate-limit", &rate.to_string()])
        .env("IGNITE_API_KEYS", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ignite serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("no listening line ({e}): {line:?}"));
    (child, format!("http://{}/mcp", v["listening"].as_str().unwrap()))
}

fn post(url: &str, key: Option<&str>, body: &Value) -> (u16, String) {
    post_from(url, key, None, body)
}

/// [`post`] as a browser would send it from a page of `origin`.
fn post_from(url: &str, key: Option<&str>, origin: Option<&str>, body: &Value) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
    let mut req = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream");
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let mut r = req.send(body.to_string()).expect("HTTP request");
    let mut text = String::new();
    let _ = r.body_mut().as_reader().read_to_string(&mut text);
    (r.status().as_u16(), text)
}

#[test]
fn mcp_over_http_passes_the_same_gate_as_every_route() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let services = sb.service("services/none", &[]).parent().unwrap().to_path_buf();
    let key = "mcp-test-key-0123456789";
    let (mut server, url) = serve(&sb, &services, key, 5);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});

    let (status, body) = post(&url, None, &init);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"unauthorized\""), "{body}");
    // The failed attempt counted against the peer's address, not the key's bucket.
    let (status, body) = post(&url, Some(key), &init);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"serverInfo\"") && body.contains("\"ignite\""), "{body}");
    // A page of another origin (a DNS-rebound name too) is refused even with the key; this
    // machine's pages are not.
    let (status, body) = post_from(&url, Some(key), Some("http://evil.example"), &init);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"forbidden_origin\""), "{body}");
    let (status, body) = post_from(&url, Some(key), Some("http://localhost:8080"), &init);
    assert_eq!(status, 200, "{body}");
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_services", "arguments": {}}});
    let (status, body) = post(&url, Some(key), &call);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"structuredContent\""), "{body}");
    // Five a minute: the key's sixth request is refused by the gate before MCP sees it.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post(&url, Some(key), &call).0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    server.kill().unwrap();
    server.wait().unwrap();
    let cleanup = sb.cmd().arg("cleanup").output().expect("ignite cleanup");
    assert!(cleanup.status.success(), "{}", stderr_of(&cleanup));
}

#[test]
fn a_call_the_client_cancels_stops_its_run_and_frees_its_slot() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    // One slot and no queue: another run is refused (`busy`) while one holds the slot.
    let mut mcp = McpProcess::start(&sb, &["--pool-max", "0", "--max-concurrent", "1", "--queue", "0"]);
    let s = mcp.call("session_create", json!({}));
    let sid = s["structuredContent"]["id"].as_str().expect("session id").to_string();
    let id = mcp.next_id;
    mcp.next_id += 1;
    // The run says it started in its workspace, which the test sees on the host.
    let forever =
        r#"import { writeFileSync } from "node:fs"; writeFileSync("/tmp/workspace/started", "1"); while (true) {}"#;
    let args = json!({"sessionId": sid, "code": forever, "limits": {"timeoutMs": 120000}});
    mcp.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "session_execute", "arguments": args}}));
    let started = sb.state.path().join("sessions").join(&sid).join("started");
    // Bounded: 60 s for the run to start.
    for _ in 0..600 {
        if started.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(started.exists(), "the endless run did not start");
    assert_eq!(error_code(&mcp.call("run_code", json!({"code": "1"}))), "busy", "the endless run holds the slot");

    mcp.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "test"}}),
    );
    // Bounded: the slot comes back once the cancelled run's sandbox is gone.
    let mut freed = None;
    for _ in 0..300 {
        let r = mcp.call("run_code", json!({"code": "console.log(\"after\")"}));
        if r["isError"] == false {
            freed = Some(r);
            break;
        }
        assert_eq!(error_code(&r), "busy", "{r}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = freed.expect("the cancelled run kept its slot for 30 s");
    assert_eq!(r["structuredContent"]["stdout"], "after\n", "{r}");
    assert_eq!(mcp.call("session_close", json!({"sessionId": sid}))["isError"], false);
    assert!(mcp.finish().success());
    sb.assert_no_leaks();
}
