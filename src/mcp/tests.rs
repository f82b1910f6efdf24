use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::data::report::{Metrics, Status};

/// A backend that records what it was asked and answers from a script.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    refuse: Option<ToolError>,
}

fn report(status: Status, exit: i32) -> Report {
    Report {
        service: "inline".into(),
        runtime: "bun@1.3.14".into(),
        oci_runtime: "runc".into(),
        container_id: "id".into(),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        status,
        success: status == Status::Ok,
        exit_code: Some(exit),
        signal: None,
        stdout: "hello\n".into(),
        stderr: "warn".into(),
        stdout_truncated: false,
        stderr_truncated: false,
        metrics: Metrics { execution_time_ms: Some(4.25), wall_time_ms: 50.0, ..Metrics::default() },
        message: None,
        install: None,
        security_audit: None,
        files: None,
        files_limit: None,
    }
}

impl Fake {
    fn answer<T>(&self, what: String, ok: T) -> Result<T, ToolError> {
        self.calls.lock().unwrap().push(what);
        match &self.refuse {
            Some(e) => Err(e.clone()),
            None => Ok(ok),
        }
    }
}

impl Backend for Fake {
    fn caller(&self, http: Option<&Parts>) -> Caller {
        Caller(http.map(|_| "http".to_string()))
    }
    async fn list_services(&self) -> Result<Value, ToolError> {
        self.answer("list".into(), json!({"services": [{"name": "hello", "valid": true, "runtime": "bun"}]}))
    }
    async fn run_code(&self, caller: &Caller, session: Option<String>, args: RunCode) -> Result<Report, ToolError> {
        self.answer(format!("run {caller:?} {session:?} {:?}", args.code), report(Status::Error, 3))
    }
    async fn run_service(&self, _caller: &Caller, args: RunService) -> Result<Report, ToolError> {
        self.answer(format!("service {}", args.name), report(Status::Ok, 0))
    }
    async fn create_session(&self, _caller: &Caller, args: SessionCreate) -> Result<Value, ToolError> {
        self.answer(
            format!("create {:?}", args.ttl_seconds),
            json!({"id": "s1", "workspace": "/tmp/workspace", "expiresAt": "later"}),
        )
    }
    async fn close_session(&self, _caller: &Caller, id: String) -> Result<(), ToolError> {
        self.answer(format!("close {id}"), ())
    }
    async fn list_files(&self, _caller: &Caller, id: String) -> Result<Value, ToolError> {
        self.answer(
            format!("list {id}"),
            json!({"files": [{"path": "d", "size": 0, "kind": "dir"}, {"path": "d/a.txt", "size": 2, "kind": "file"}], "truncated": false}),
        )
    }
    async fn read_file(&self, _caller: &Caller, id: String, path: String) -> Result<Vec<u8>, ToolError> {
        let bytes = if path.ends_with(".bin") { vec![0xff, 0x00] } else { b"hi".to_vec() };
        self.answer(format!("read {id} {path}"), bytes)
    }
    async fn write_file(&self, _caller: &Caller, id: String, path: String, bytes: Vec<u8>) -> Result<Value, ToolError> {
        self.answer(
            format!("write {id} {path} {bytes:?}"),
            json!({"path": path, "size": bytes.len(), "kind": "file", "created": true}),
        )
    }
}

fn object(v: Value) -> Option<rmcp::model::JsonObject> {
    v.as_object().cloned()
}

fn text(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("")
}

fn tools(fake: Fake) -> (Tools<Fake>, Arc<Fake>) {
    let fake = Arc::new(fake);
    (Tools::new(fake.clone()), fake)
}

#[tokio::test]
async fn a_run_is_its_report_as_structured_content_and_a_summary_even_when_the_program_failed() {
    let (t, fake) = tools(Fake::default());
    let r = t.call(&Caller::default(), "run_code", object(json!({"code": "x"}))).await.unwrap();
    assert_eq!(r.is_error, Some(false), "the program failing is not the tool failing");
    let s = r.structured_content.unwrap();
    assert_eq!(
        (s["status"].clone(), s["exitCode"].clone(), s["stdout"].clone()),
        (json!("error"), json!(3), json!("hello\n"))
    );
    assert!(s["metrics"]["executionTimeMs"].is_number());
    let t = text(&CallToolResult { structured_content: None, ..r });
    assert!(t.starts_with("status: error, exit code 3, 4.2 ms (bun@1.3.14)"), "{t}");
    assert!(t.contains("--- stdout ---\nhello\n--- stderr ---\nwarn\n"), "{t}");
    assert_eq!(fake.calls.lock().unwrap().as_slice(), ["run Caller(None) None Some(\"x\")"]);
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_that_name_the_field_and_reach_no_backend() {
    let (t, fake) = tools(Fake::default());
    let r = t.call(&Caller::default(), "run_service", object(json!({"input": 1}))).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let s = r.structured_content.clone().unwrap();
    assert_eq!(s["error"]["code"], "invalid_arguments");
    assert!(s["error"]["message"].as_str().unwrap().contains("missing field `name`"), "{s}");
    assert!(text(&r).starts_with("error (invalid_arguments): missing field `name`"), "{}", text(&r));
    assert!(fake.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn refusals_keep_their_code_retry_and_details() {
    let refusal = ToolError {
        retry_after: Some(1),
        details: Some(("preflight", json!({"status": "fail"}))),
        ..ToolError::new("busy", "all execution slots and the queue are taken")
    };
    let (t, _) = tools(Fake { refuse: Some(refusal), ..Fake::default() });
    let r =
        t.call(&Caller::default(), "session_execute", object(json!({"sessionId": "s1", "code": "1"}))).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let s = r.structured_content.clone().unwrap();
    assert_eq!(
        s["error"],
        json!({"code": "busy", "message": "all execution slots and the queue are taken", "retryAfterSeconds": 1})
    );
    assert_eq!(s["preflight"], json!({"status": "fail"}));
    assert_eq!(text(&r), "error (busy): all execution slots and the queue are taken (retry in 1 s)");
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error_naming_the_tools() {
    let (t, _) = tools(Fake::default());
    let e = t.call(&Caller::default(), "rm_rf", None).await.unwrap_err();
    assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert!(e.message.contains("\"rm_rf\"") && e.message.contains("run_code, list_services"), "{}", e.message);
}

#[tokio::test]
async fn every_tool_reaches_its_backend_method() {
    let (t, fake) = tools(Fake::default());
    let c = Caller(Some("key".into()));
    let ok = |r: Result<CallToolResult, ErrorData>| {
        let r = r.unwrap();
        assert_eq!(r.is_error, Some(false), "{r:?}");
        r
    };
    let listed = ok(t.call(&c, "list_services", None).await);
    assert_eq!(text(&listed), "hello (bun)");
    ok(t.call(&c, "run_service", object(json!({"name": "hello", "limits": {"timeoutMs": 100}}))).await);
    let created = ok(t.call(&c, "session_create", object(json!({"ttlSeconds": 60}))).await);
    assert_eq!(created.structured_content.unwrap()["id"], "s1");
    ok(t.call(&c, "session_execute", object(json!({"sessionId": "s1", "code": "y"}))).await);
    let closed = ok(t.call(&c, "session_close", object(json!({"sessionId": "s1"}))).await);
    assert_eq!(closed.structured_content.unwrap(), json!({"id": "s1", "closed": true}));
    assert_eq!(
        fake.calls.lock().unwrap().as_slice(),
        ["list", "service hello", "create Some(60)", "run Caller(Some(\"key\")) Some(\"s1\") Some(\"y\")", "close s1"]
    );
}

#[test]
fn the_summary_names_a_signal_and_a_truncation() {
    let mut r = report(Status::Oom, 137);
    r.signal = Some("SIGKILL".into());
    r.message = Some("killed: out of memory".into());
    r.stdout_truncated = true;
    r.stderr = String::new();
    let s = summary(&r);
    assert!(s.starts_with("status: oom, killed by SIGKILL, 4.2 ms"), "{s}");
    assert!(s.contains("\nkilled: out of memory\n--- stdout (truncated) ---\nhello\n"), "{s}");
    assert!(!s.contains("stderr"), "{s}");
}

#[tokio::test]
async fn file_tools_carry_text_as_is_and_bytes_as_base64() {
    let (t, fake) = tools(Fake::default());
    let c = Caller::default();
    let r = t.call(&c, "session_list_files", object(json!({"sessionId": "s1"}))).await.unwrap();
    assert_eq!(text(&r), "d/\nd/a.txt (2 bytes)");
    let r = t.call(&c, "session_read_file", object(json!({"sessionId": "s1", "path": "a.txt"}))).await.unwrap();
    assert_eq!(r.structured_content, Some(json!({"path": "a.txt", "size": 2, "encoding": "utf8", "content": "hi"})));
    assert_eq!(text(&r), "hi");
    let r = t.call(&c, "session_read_file", object(json!({"sessionId": "s1", "path": "x.bin"}))).await.unwrap();
    assert_eq!(r.structured_content.as_ref().unwrap()["encoding"], "base64");
    assert_eq!(r.structured_content.as_ref().unwrap()["content"], "/wA=");
    let r = t
        .call(&c, "session_read_file", object(json!({"sessionId": "s1", "path": "x.bin", "encoding": "utf8"})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("\"encoding\": \"base64\""), "{}", text(&r));
    let r = t
        .call(
            &c,
            "session_write_file",
            object(json!({"sessionId": "s1", "path": "b", "content": "/wA=", "encoding": "base64"})),
        )
        .await
        .unwrap();
    assert_eq!(text(&r), "created b (2 bytes)");
    let r = t
        .call(
            &c,
            "session_write_file",
            object(json!({"sessionId": "s1", "path": "b", "content": "%%", "encoding": "base64"})),
        )
        .await
        .unwrap();
    assert_eq!(r.structured_content.unwrap()["error"]["code"], "invalid_arguments");
    assert_eq!(
        fake.calls.lock().unwrap().as_slice(),
        ["list s1", "read s1 a.txt", "read s1 x.bin", "read s1 x.bin", "write s1 b [255, 0]"],
        "a write whose content does not decode reaches no backend"
    );
}
