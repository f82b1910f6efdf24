//! The Model Context Protocol edge: `ignite mcp` (stdio) and `/mcp` under `ignite serve`
//! (streamable HTTP). Owns the tools (names, argument schemas and parsing in [`args`]), how a
//! report or a refusal becomes a tool result, and the two transports, all through rmcp, the
//! official Rust SDK. What a tool does is its [`Backend`]'s: the server's state (services,
//! sessions, admission) is the one real backend, so a tool call passes the same checks and
//! limits as the HTTP route that does the same thing.

pub mod args;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, Content, ErrorCode, ErrorData, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerInfo, ToolsCapability,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::data::report::Report;
use args::{
    Encoding, NoArgs, RunCode, RunService, SessionClose, SessionCreate, SessionExecute, SessionListFiles,
    SessionReadFile, SessionWriteFile, parse,
};

/// What the server tells a client about itself at `initialize`.
const INSTRUCTIONS: &str = "Ignite runs JavaScript/TypeScript in isolated sandboxes (no network, memory/CPU/time \
limits). Use run_code for one-off programs (give `code`, print results to stdout; input arrives as JSON in the \
IGNITE_INPUT environment variable), list_services/run_service for the operator's deployed services, and \
session_create/session_execute/session_close when several runs must share files (under /tmp/workspace; \
session_write_file, session_read_file and session_list_files move files in and out between runs).";

/// A call ignite refused or could not carry out: the tool result has `isError: true`, a text
/// saying what happened and what to do, and `{"error": {"code", "message"}}` as structured
/// content (the codes are the HTTP API's: `invalid_request`, `busy`, `not_found`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before retrying (capacity and rate refusals).
    pub retry_after: Option<u64>,
    /// Anything more the error carries as JSON (a failed preflight's checks).
    pub details: Option<(&'static str, Value)>,
}

impl ToolError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ToolError {
        ToolError { code, message: message.into(), retry_after: None, details: None }
    }

    /// The tool result for this error.
    pub fn into_result(self) -> CallToolResult {
        let mut text = format!("error ({}): {}", self.code, self.message);
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(secs) = self.retry_after {
            text.push_str(&format!(" (retry in {secs} s)"));
            error["retryAfterSeconds"] = secs.into();
        }
        let mut body = json!({ "error": error });
        if let Some((key, value)) = self.details {
            body[key] = value;
        }
        let mut result = CallToolResult::error(vec![Content::text(text)]);
        result.structured_content = Some(body);
        result
    }
}

/// Who is calling, as the backend judges it: the key's digest over HTTP with keys (sessions
/// belong to it), nobody in particular over stdio.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller(pub Option<String>);

/// What the tools do. Each method answers one tool call; errors are the caller's to see.
pub trait Backend: Send + Sync + 'static {
    /// The caller of a request: `http` is the HTTP request it came in (streamable HTTP), or
    /// `None` (stdio).
    fn caller(&self, http: Option<&Parts>) -> Caller;

    /// The services, as `{"services": [...]}`.
    fn list_services(&self) -> impl Future<Output = Result<Value, ToolError>> + Send;

    /// Runs code, in a session's workspace when `session` names one of the caller's.
    fn run_code(
        &self,
        caller: &Caller,
        session: Option<String>,
        args: RunCode,
    ) -> impl Future<Output = Result<Report, ToolError>> + Send;

    fn run_service(&self, caller: &Caller, args: RunService) -> impl Future<Output = Result<Report, ToolError>> + Send;

    /// Creates a session; answers what the client needs to know of it (its `id` first).
    fn create_session(
        &self,
        caller: &Caller,
        args: SessionCreate,
    ) -> impl Future<Output = Result<Value, ToolError>> + Send;

    /// Closes one of the caller's sessions.
    fn close_session(&self, caller: &Caller, id: String) -> impl Future<Output = Result<(), ToolError>> + Send;

    /// The entries of a session's workspace, as `{"files": [{path, size, kind}], "truncated"}`.
    fn list_files(&self, caller: &Caller, id: String) -> impl Future<Output = Result<Value, ToolError>> + Send;

    /// The bytes of a regular file of a session's workspace.
    fn read_file(
        &self,
        caller: &Caller,
        id: String,
        path: String,
    ) -> impl Future<Output = Result<Vec<u8>, ToolError>> + Send;

    /// Writes a file into a session's workspace; answers `{path, size, kind, created}`.
    fn write_file(
        &self,
        caller: &Caller,
        id: String,
        path: String,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<Value, ToolError>> + Send;
}

/// The MCP server: the tools over a backend. Cheap to clone.
pub struct Tools<B> {
    backend: Arc<B>,
}

impl<B> Clone for Tools<B> {
    fn clone(&self) -> Self {
        Tools { backend: self.backend.clone() }
    }
}

impl<B: Backend> Tools<B> {
    pub fn new(backend: Arc<B>) -> Tools<B> {
        Tools { backend }
    }

    /// Answers one tool call. A tool ignite does not have is a protocol error (the client
    /// asked for something `tools/list` never offered); everything else, bad arguments
    /// included, is a tool result, an error one when ignite refused.
    pub async fn call(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Option<rmcp::model::JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = match name {
            "run_code" => match parse::<RunCode>(arguments) {
                Ok(a) => self.backend.run_code(caller, None, a).await.map(|r| report_result(&r)),
                Err(e) => Err(e),
            },
            "list_services" => match parse::<NoArgs>(arguments) {
                Ok(_) => self.backend.list_services().await.map(services_result),
                Err(e) => Err(e),
            },
            "run_service" => match parse::<RunService>(arguments) {
                Ok(a) => self.backend.run_service(caller, a).await.map(|r| report_result(&r)),
                Err(e) => Err(e),
            },
            "session_create" => match parse::<SessionCreate>(arguments) {
                Ok(a) => self.backend.create_session(caller, a).await.map(session_result),
                Err(e) => Err(e),
            },
            "session_execute" => match parse::<SessionExecute>(arguments) {
                Ok(a) => {
                    let (id, run) = a.split();
                    self.backend.run_code(caller, Some(id), run).await.map(|r| report_result(&r))
                }
                Err(e) => Err(e),
            },
            "session_list_files" => match parse::<SessionListFiles>(arguments) {
                Ok(a) => self.backend.list_files(caller, a.session_id).await.map(files_result),
                Err(e) => Err(e),
            },
            "session_read_file" => match parse::<SessionReadFile>(arguments) {
                Ok(a) => match self.backend.read_file(caller, a.session_id, a.path.clone()).await {
                    Ok(bytes) => read_result(&a.path, bytes, a.encoding),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            "session_write_file" => match parse::<SessionWriteFile>(arguments).and_then(|a| {
                let bytes = decode(&a.content, a.encoding.unwrap_or(Encoding::Utf8))?;
                Ok((a, bytes))
            }) {
                Ok((a, bytes)) => {
                    self.backend.write_file(caller, a.session_id, a.path, bytes).await.map(written_result)
                }
                Err(e) => Err(e),
            },
            "session_close" => match parse::<SessionClose>(arguments) {
                Ok(a) => {
                    let id = a.session_id;
                    self.backend.close_session(caller, id.clone()).await.map(|()| closed_result(&id))
                }
                Err(e) => Err(e),
            },
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no tool {other:?}; tools/list names them: {}", args::TOOL_NAMES.join(", ")),
                    None,
                ));
            }
        };
        Ok(result.unwrap_or_else(ToolError::into_result))
    }
}

impl<B: Backend> ServerHandler for Tools<B> {
    fn get_info(&self) -> ServerInfo {
        ServerInfo {
            capabilities: ServerCapabilities {
                tools: Some(ToolsCapability { list_changed: Some(false) }),
                ..ServerCapabilities::default()
            },
            server_info: Implementation {
                name: "ignite".into(),
                title: Some("Ignite".into()),
                version: env!("CARGO_PKG_VERSION").into(),
                description: Some("Run untrusted JavaScript/TypeScript in hardened OCI containers".into()),
                icons: None,
                website_url: None,
            },
            instructions: Some(INSTRUCTIONS.into()),
            ..ServerInfo::default()
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(args::tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = self.backend.caller(context.extensions.get::<Parts>());
        // The client cancelled the call (`notifications/cancelled`) or went away (stdin closed,
        // the HTTP request dropped): the call is dropped, and with it its run, whose sandbox is
        // then removed, as when an HTTP client hangs up.
        tokio::select! {
            result = self.call(&caller, &request.name, request.arguments) => result,
            () = context.ct.cancelled() => Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "the call was cancelled", None)),
        }
    }
}

/// A run's result: the report as structured content, and a text an agent can read at once.
/// A program that failed still ran: its result is not an error (its `status` says how it ended).
pub fn report_result(report: &Report) -> CallToolResult {
    let structured = serde_json::to_value(report).unwrap_or_else(|e| json!({ "error": e.to_string() }));
    let mut result = CallToolResult::success(vec![Content::text(summary(report))]);
    result.structured_content = Some(structured);
    result
}

/// `status: ok, exit code 0, 12.3 ms (bun@1.3.14)` and the output.
pub fn summary(report: &Report) -> String {
    let mut text = format!("status: {}", report.status.as_str());
    match (report.exit_code, &report.signal) {
        (_, Some(sig)) => text.push_str(&format!(", killed by {sig}")),
        (Some(code), None) => text.push_str(&format!(", exit code {code}")),
        (None, None) => {}
    }
    let ms = report.metrics.execution_time_ms.unwrap_or(report.metrics.wall_time_ms);
    text.push_str(&format!(", {ms:.1} ms ({})\n", report.runtime));
    if let Some(message) = &report.message {
        text.push_str(&format!("{message}\n"));
    }
    for (name, out, cut) in
        [("stdout", &report.stdout, report.stdout_truncated), ("stderr", &report.stderr, report.stderr_truncated)]
    {
        if out.is_empty() {
            continue;
        }
        text.push_str(&format!("--- {name}{} ---\n{out}", if cut { " (truncated)" } else { "" }));
        if !out.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

fn services_result(services: Value) -> CallToolResult {
    let names: Vec<String> = services["services"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|s| {
                    let name = s["name"].as_str().unwrap_or("?");
                    match s["error"].as_str() {
                        Some(e) => format!("{name} (invalid: {e})"),
                        None => format!("{name} ({})", s["runtime"].as_str().unwrap_or("?")),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let text = if names.is_empty() { "no services".to_string() } else { names.join("\n") };
    let mut result = CallToolResult::success(vec![Content::text(text)]);
    result.structured_content = Some(services);
    result
}

fn session_result(session: Value) -> CallToolResult {
    let id = session["id"].as_str().unwrap_or_default();
    let text = format!(
        "session {id} created; its runs see their shared workspace at {}; it expires at {}",
        session["workspace"].as_str().unwrap_or(crate::engine::WORKSPACE_DIR),
        session["expiresAt"].as_str().unwrap_or("?")
    );
    let mut result = CallToolResult::success(vec![Content::text(text)]);
    result.structured_content = Some(session);
    result
}

fn closed_result(id: &str) -> CallToolResult {
    let mut result = CallToolResult::success(vec![Content::text(format!("session {id} closed"))]);
    result.structured_content = Some(json!({ "id": id, "closed": true }));
    result
}

/// A file's content as the call sent it.
fn decode(content: &str, encoding: Encoding) -> Result<Vec<u8>, ToolError> {
    use base64::Engine as _;
    match encoding {
        Encoding::Utf8 => Ok(content.as_bytes().to_vec()),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .map_err(|e| ToolError::new("invalid_arguments", format!("content: not base64 ({e})"))),
    }
}

/// A file's content for the caller: as text when asked for utf8 or, by default, when it is
/// UTF-8; base64 otherwise. Never interpreted.
fn read_result(path: &str, bytes: Vec<u8>, asked: Option<Encoding>) -> Result<CallToolResult, ToolError> {
    use base64::Engine as _;
    let size = bytes.len();
    let text = String::from_utf8(bytes).map_err(|e| e.into_bytes());
    let (encoding, content, shown) = match (asked, text) {
        (Some(Encoding::Utf8) | None, Ok(text)) => ("utf8", text.clone(), text),
        (Some(Encoding::Utf8), Err(_)) => {
            return Err(ToolError::new(
                "not_utf8",
                format!("{path} is not UTF-8 text ({size} bytes); read it with \"encoding\": \"base64\""),
            ));
        }
        (Some(Encoding::Base64), text) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(text.map_or_else(|b| b, String::into_bytes));
            ("base64", b64.clone(), b64)
        }
        (None, Err(bytes)) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            ("base64", b64.clone(), format!("{path}: {size} bytes, not UTF-8 text; base64:\n{b64}"))
        }
    };
    let mut result = CallToolResult::success(vec![Content::text(shown)]);
    result.structured_content = Some(json!({ "path": path, "size": size, "encoding": encoding, "content": content }));
    Ok(result)
}

fn files_result(listing: Value) -> CallToolResult {
    let mut lines: Vec<String> = listing["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| {
                    let path = f["path"].as_str().unwrap_or("?");
                    match f["kind"].as_str() {
                        Some("file") => format!("{path} ({} bytes)", f["size"]),
                        Some("dir") => format!("{path}/"),
                        Some(kind) => format!("{path} ({kind})"),
                        None => path.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        lines.push("the workspace is empty".into());
    }
    if listing["truncated"] == true {
        lines.push("(more entries were left out)".into());
    }
    let mut result = CallToolResult::success(vec![Content::text(lines.join("\n"))]);
    result.structured_content = Some(listing);
    result
}

fn written_result(written: Value) -> CallToolResult {
    let text = format!(
        "{} {} ({} bytes)",
        if written["created"] == true { "created" } else { "replaced" },
        written["path"].as_str().unwrap_or("?"),
        written["size"]
    );
    let mut result = CallToolResult::success(vec![Content::text(text)]);
    result.structured_content = Some(written);
    result
}

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("the MCP client did not initialize: {0}")]
    Initialize(String),
    #[error("the MCP server stopped: {0}")]
    Stopped(String),
}

/// Serves the tools on stdin/stdout until the client closes stdin or `cancel` fires. Nothing
/// else may write to stdout meanwhile: it is the protocol's channel.
pub async fn serve_stdio<B: Backend>(backend: Arc<B>, cancel: CancellationToken) -> Result<(), McpError> {
    let running = Tools::new(backend)
        .serve_with_ct(rmcp::transport::stdio(), cancel)
        .await
        .map_err(|e| McpError::Initialize(e.to_string()))?;
    running.waiting().await.map_err(|e| McpError::Stopped(e.to_string()))?;
    Ok(())
}

/// The tools over streamable HTTP, as a tower service for one route. Stateless: every POST is
/// answered on its own (no MCP session is kept), so a client holds nothing on the server
/// between requests, and every request passes the route's authentication and rate limit.
pub fn http_service<B: Backend>(
    backend: Arc<B>,
    cancel: CancellationToken,
) -> StreamableHttpService<Tools<B>, LocalSessionManager> {
    let config = StreamableHttpServerConfig {
        sse_keep_alive: Some(Duration::from_secs(15)),
        sse_retry: None,
        stateful_mode: false,
        cancellation_token: cancel,
    };
    let tools = Tools::new(backend);
    StreamableHttpService::new(move || Ok(tools.clone()), Arc::default(), config)
}

#[cfg(test)]
mod tests;
