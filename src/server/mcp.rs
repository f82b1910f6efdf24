//! The server's state as the MCP tools' backend: `/mcp` under `ignite serve` (streamable
//! HTTP, behind the same keys, rate limit and admission as every route) and `ignite mcp`
//! (stdio, one client). A tool call passes the same checks as the HTTP route that does the
//! same thing, and its refusals carry that route's error code.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::catalog::Catalog;
use super::error::ApiError;
use super::routes::{self, Owner, internal, shutting_down};
use super::sessions::{self, FileInfo, FileList, Sessions};
use super::{AppState, RunFlags, ServeError, inline};
use crate::data::report::Report;
use crate::data::service::PassEnv;
use crate::engine::{Engine, MAX_FILE_BYTES, Request as RunRequest};
use crate::mcp::args::{RunCode, RunService, SessionCreate};
use crate::mcp::{Backend, Caller, ToolError};

/// How long runs still going when the stdio client hangs up get to finish.
const STDIO_DRAIN: Duration = Duration::from_secs(30);

/// The tools' backend: the server's state. `services` is false for `ignite mcp` without
/// `--services`: no catalog to list or run from.
pub(super) struct ServerTools {
    st: Arc<AppState>,
    services: bool,
}

impl From<ApiError> for ToolError {
    fn from(e: ApiError) -> ToolError {
        ToolError {
            code: e.code,
            message: e.message,
            retry_after: e.retry_after,
            details: e.preflight.and_then(|p| serde_json::to_value(p).ok()).map(|v| ("preflight", v)),
        }
    }
}

impl ServerTools {
    /// Runs `req` to its report with its slot (and a session's turn) held until the run ends;
    /// a caller that goes away cancels it, as an HTTP client hanging up does.
    async fn report<H: Send + 'static>(
        &self,
        req: RunRequest,
        permit: OwnedSemaphorePermit,
        held: H,
    ) -> Result<Report, ApiError> {
        let st = self.st.clone();
        let cancel = st.cancel_runs.child_token();
        let (engine, cancel2) = (st.engine.clone(), cancel.clone());
        let st2 = st.clone();
        let run = st.runs.spawn(async move {
            let _permit = permit;
            let _held = held;
            let started = Instant::now();
            let result = engine.run(req, cancel2).await.map(|outcome| outcome.report);
            st2.metrics.execution(result.as_ref().map_or("failed", |r| r.status.as_str()), started.elapsed());
            result.map_err(|e| ApiError::from_run(e, &|m| st2.catalog.relative(m)))
        });
        let abandon = cancel.drop_guard();
        let report = run.await.map_err(internal)?;
        abandon.disarm();
        report
    }

    async fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if self.st.draining.load(Ordering::SeqCst) {
            return Err(shutting_down());
        }
        let permit = self.st.admission.admit().await.map_err(|_| inline::busy())?;
        if self.st.draining.load(Ordering::SeqCst) {
            return Err(shutting_down());
        }
        Ok(permit)
    }

    /// `POST /v1/execute` (and `/v1/sessions/{id}/execute`) as a tool: the same request, checked
    /// the same way ([`inline::request`]).
    async fn code(&self, caller: &Caller, session: Option<String>, args: RunCode) -> Result<Report, ApiError> {
        let req = inline::InlineRequest {
            runtime: args.runtime.unwrap_or_else(|| "bun".to_string()),
            files: args.files.map(|f| inline::Files(f.into_iter().collect())),
            code: args.code,
            entry: args.entry,
            input: args.input,
            limits: args.limits.map(|l| inline::InlineLimits {
                timeout_ms: l.timeout_ms,
                memory_mb: l.memory_mb,
                cpu: l.cpu,
            }),
            audit: args.audit,
            args: args.args,
            stdin: args.stdin,
            env: args.env,
            outputs: args.outputs,
        };
        let mut run = inline::request(&self.st, req)?;
        let (workspace, turn, permit) = match session {
            Some(id) => {
                let t = sessions::turn(&self.st, &id, &Owner(caller.0.clone())).await?;
                let permit = match t.permit {
                    Some(p) => p,
                    None => self.admit().await?,
                };
                (Some(t.workspace), Some(t.turn), permit)
            }
            None => (None, None, self.admit().await?),
        };
        run.workspace = workspace.clone();
        self.report(run, permit, (turn, workspace)).await
    }

    /// `POST /services/{name}/execute` as a tool: the same request, checked the same way
    /// ([`routes::service_request`]).
    async fn service(&self, args: RunService) -> Result<Report, ApiError> {
        if !self.services {
            return Err(ApiError::not_found(
                "this server has no services: start `ignite mcp` with --services DIR to offer some",
            ));
        }
        let limits = args.limits.unwrap_or_default();
        let req = routes::ExecuteRequest {
            input: args.input,
            timeout_ms: limits.timeout_ms,
            memory_mb: limits.memory_mb,
            audit: args.audit,
            args: args.args,
            stdin: args.stdin,
            env: args.env,
            outputs: args.outputs,
        };
        let unknown = |name: &str| ApiError::not_found(format!("no service {name:?}; list_services names them"));
        let run = routes::service_request(&self.st, &args.name, req, unknown)?;
        let permit = self.admit().await?;
        self.report(run, permit, ()).await
    }
}

impl Backend for ServerTools {
    fn caller(&self, http: Option<&Parts>) -> Caller {
        // The gate put the key's digest on the HTTP request; over stdio there is one client.
        Caller(http.and_then(|p| p.extensions.get::<Owner>()).and_then(|o| o.0.clone()))
    }

    async fn list_services(&self) -> Result<Value, ToolError> {
        if !self.services {
            return Ok(serde_json::json!({ "services": [] }));
        }
        let st = self.st.clone();
        let list = tokio::task::spawn_blocking(move || st.catalog.list()).await.map_err(internal)?.map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "services_dir", format!("cannot list services: {e}"))
        })?;
        Ok(serde_json::json!({ "services": list }))
    }

    async fn run_code(&self, caller: &Caller, session: Option<String>, args: RunCode) -> Result<Report, ToolError> {
        Ok(self.code(caller, session, args).await?)
    }

    async fn run_service(&self, _caller: &Caller, args: RunService) -> Result<Report, ToolError> {
        Ok(self.service(args).await?)
    }

    async fn create_session(&self, caller: &Caller, args: SessionCreate) -> Result<Value, ToolError> {
        let info = sessions::open(&self.st, Owner(caller.0.clone()), args.ttl_seconds).await?;
        serde_json::to_value(info).map_err(|e| ToolError::new("internal", e.to_string()))
    }

    async fn close_session(&self, caller: &Caller, id: String) -> Result<(), ToolError> {
        if self.st.sessions.remove(&id, &caller.0).await {
            Ok(())
        } else {
            Err(ToolError::new(
                "not_found",
                format!("no session {id:?} (it expired, was closed, or belongs to another key)"),
            ))
        }
    }

    // The file tools are `/v1/sessions/{id}/files` as tools: each takes the session's turn, so
    // none interleaves with a run of it.
    async fn list_files(&self, caller: &Caller, id: String) -> Result<Value, ToolError> {
        let listing = sessions::with_workspace(&self.st, &id, &caller.0, |w| w.list()).await?;
        to_value(FileList::from(listing))
    }

    async fn read_file(&self, caller: &Caller, id: String, path: String) -> Result<Vec<u8>, ToolError> {
        Ok(sessions::with_workspace(&self.st, &id, &caller.0, move |w| w.read_file(&path, MAX_FILE_BYTES)).await?)
    }

    async fn write_file(&self, caller: &Caller, id: String, path: String, bytes: Vec<u8>) -> Result<Value, ToolError> {
        let written = sessions::with_workspace(&self.st, &id, &caller.0, move |w| w.write_file(&path, &bytes)).await?;
        let mut value = to_value(FileInfo::from(written.entry))?;
        value["created"] = written.created.into();
        Ok(value)
    }
}

fn to_value(v: impl serde::Serialize) -> Result<Value, ToolError> {
    serde_json::to_value(v).map_err(|e| ToolError::new("internal", e.to_string()))
}

/// `/mcp`: the body read within `--max-body`, then answered by the streamable HTTP transport.
/// The gate in front of every route has already authenticated and rate-limited the request.
pub(super) async fn http(st: Arc<AppState>, req: Request, max_body: usize) -> Response {
    // The MCP specification asks servers of streamable HTTP to check `Origin`: a page a browser
    // loaded from elsewhere (a DNS-rebound name included) must not drive the tools. Clients
    // that are not browsers send none.
    if let Some(origin) = req.headers().get(axum::http::header::ORIGIN)
        && !loopback_origin(origin.to_str().unwrap_or_default())
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "/mcp refuses requests a browser sends from a page of another origin (Origin header); MCP clients send none",
        )
        .into_response();
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, max_body).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("failed to read the request body within --max-body ({max_body} bytes): {e}"),
            )
            .into_response();
        }
    };
    let cancel = st.cancel_runs.child_token();
    let tools = Arc::new(ServerTools { st, services: true });
    let service = crate::mcp::http_service(tools, cancel);
    service.handle(Request::from_parts(parts, Body::from(bytes))).await.map(Body::new).into_response()
}

/// Whether a browser's `Origin` is a page of this machine (`http://localhost:8080`,
/// `http://127.0.0.1`, `http://[::1]:3000`): those may call `/mcp`, like any local process.
fn loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => rest.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Settings of `ignite mcp` (stdio): those of `ignite serve` that apply to one local client.
#[derive(Debug, Clone)]
pub struct StdioConfig {
    /// `--services DIR`, if any.
    pub services_dir: Option<PathBuf>,
    pub pass_env: PassEnv,
    /// What the runs are given (shared with `serve`).
    pub run: RunFlags,
}

/// `ignite mcp`: the tools on stdin/stdout until the client closes stdin (or SIGTERM/SIGINT),
/// then runs still going get a while to finish, and the sessions and warm sandboxes are removed.
pub async fn serve_stdio(config: StdioConfig, engine: Engine) -> Result<(), ServeError> {
    config.run.check()?;
    let services_dir = match &config.services_dir {
        Some(d) => Some(
            d.canonicalize()
                .and_then(|c| std::fs::read_dir(&c).map(|_| c))
                .map_err(|error| ServeError::ServicesDir { path: d.clone(), error })?,
        ),
        None => None,
    };
    let engine = Arc::new(engine.with_pool(config.run.pool.clone()));
    engine.reap_stale().await;
    engine.reap_server_dirs();
    let sessions = Arc::new(Sessions::new(engine.state_dir(), config.run.sessions.clone(), None));
    let catalog = Catalog::new(services_dir.clone().unwrap_or_default(), config.pass_env.clone());
    let st = Arc::new(AppState::new(engine, catalog, sessions, &config.run));
    if services_dir.is_some() {
        super::prestart(&st);
    }
    let tools = Arc::new(ServerTools { st: st.clone(), services: services_dir.is_some() });
    let stop = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(stop.clone()));
    let sweeper = tokio::spawn(st.sessions.clone().sweep());
    tracing::info!(services = services_dir.is_some(), "ignite mcp serving on stdio");
    let served = crate::mcp::serve_stdio(tools, stop).await;
    // No new calls come; the runs still going finish (or are cancelled) before cleanup.
    st.draining.store(true, Ordering::SeqCst);
    st.runs.close();
    if tokio::time::timeout(STDIO_DRAIN, st.runs.wait()).await.is_err() {
        st.cancel_runs.cancel();
        st.runs.wait().await;
    }
    sweeper.abort();
    signals.abort();
    st.engine.shutdown().await;
    st.sessions.remove_all().await;
    served.map_err(|e| ServeError::Invalid(e.to_string()))
}

async fn stop_on_signal(stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    stop.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{InlineProgram, InlineSource};

    #[test]
    fn a_refusal_keeps_the_http_apis_code_message_and_retry() {
        let busy =
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "all execution slots are taken").retry_after(1);
        let e = ToolError::from(busy);
        assert_eq!((e.code, e.message.as_str(), e.retry_after), ("busy", "all execution slots are taken", Some(1)));
        assert!(e.details.is_none());
        let r = e.into_result();
        assert_eq!(r.is_error, Some(true));
        assert_eq!(r.structured_content.unwrap()["error"]["retryAfterSeconds"], 1);
    }

    #[test]
    fn bad_inline_programs_map_to_the_same_codes_as_over_http() {
        let refused = |files: Vec<(&str, &str)>| {
            let program = InlineProgram {
                runtime: "bun".into(),
                source: InlineSource::Files(files.into_iter().map(|(p, c)| (p.into(), c.into())).collect()),
                entry: None,
                memory_mb: None,
                timeout_ms: None,
                cpu: None,
            };
            let registry = crate::data::runtime::Registry::builtin().expect("built-in runtimes");
            ToolError::from(ApiError::from(program.check(&registry).expect_err("refused")))
        };
        assert_eq!(refused(vec![("../x.ts", "1")]).code, "invalid_files");
        let none = refused(vec![]);
        assert_eq!(none.code, "invalid_request", "no entry file: {}", none.message);
    }

    #[test]
    fn only_pages_of_this_machine_are_loopback_origins() {
        for ok in [
            "http://localhost",
            "http://localhost:8080",
            "https://127.0.0.1:3000",
            "http://[::1]:3000",
            "http://127.1.2.3",
        ] {
            assert!(loopback_origin(ok), "{ok}");
        }
        for no in [
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example:3000",
            "null",
            "file://",
            "http://[::2]",
            "",
        ] {
            assert!(!loopback_origin(no), "{no}");
        }
    }
}
