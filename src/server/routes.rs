//! Routes, request/response types, and the gate every request passes (auth, rate limit, log).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedSemaphorePermit;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{key_digest, key_id};
use super::catalog::{Lookup, ServiceInfo};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::stream::{self, Event, Format, StreamSink};
use crate::data::preflight::PreflightReport;
use crate::data::report::Report;
use crate::data::service::{self, MEMORY_MB_RANGE, Overrides, TIMEOUT_MS_RANGE};
use crate::engine::{Input, OutputSink, PolicyChoice, Program, Request as RunRequest};

/// Seconds a client is told to wait when all slots and the queue are taken.
const BUSY_RETRY_SECS: u64 = 1;

type St = State<Arc<AppState>>;

pub(super) fn router(state: Arc<AppState>, max_body: usize) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/services", get(list_services))
        .route("/services/{name}", get(get_service))
        .route("/services/{name}/preflight", get(preflight))
        .route("/services/{name}/execute", post(execute))
        .merge(super::inline::routes())
        .merge(super::sessions::routes())
        .route("/metrics", get(super::metrics::scrape))
        .route("/openapi.json", get(super::openapi::document))
        // The MCP tools over streamable HTTP (see `crate::mcp`), behind the same gate.
        .route("/mcp", any(move |State(st): St, req: Request| super::mcp::http(st, req, max_body)))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

/// The full key digest of the request (`None` without keys), for handlers that keep per-key
/// state.
#[derive(Debug, Clone)]
pub(super) struct Owner(pub Option<String>);

/// Who is asking, for rate limits and logs.
struct Client {
    /// Rate-limit bucket: `key:<full digest>` or `addr:<ip>`.
    bucket: String,
    /// The full digest of the key: what owns sessions.
    owner: Option<String>,
    /// The short id, for log lines only.
    key_id: Option<String>,
}

/// Authenticates (except `/health` and `/openapi.json`), rate-limits, and logs every request with its outcome.
async fn gate(State(st): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let public = path == "/health" || path == "/openapi.json";
    let (client, denied) = match identify(&st, req.headers(), peer) {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(c) = &client {
        req.extensions_mut().insert(Owner(c.owner.clone()));
    }
    // Failed authentications count against the peer's address, so guessing keys is limited too.
    let bucket = match &client {
        Some(c) => c.bucket.clone(),
        None => format!("addr:{}", peer.ip()),
    };
    let limited = match &st.limiter {
        Some(limiter) if !public => limiter.check(&bucket, Instant::now()).err(),
        _ => None,
    };
    let mut response = match (denied, limited) {
        (_, Some(secs)) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {secs} s"),
        )
        .retry_after(secs)
        .into_response(),
        (Some(e), _) if !public => e.into_response(),
        _ => next.run(req).await,
    };
    // Every answer, errors and public routes included, says which server gave it: behind one
    // address, a client learns where its session lives and an operator where a request went.
    if let Some(node) = &st.node_header {
        response.headers_mut().insert(super::NODE_HEADER, node.clone());
    }
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        st.metrics.rejection(response.status().as_u16(), code);
    }
    let key = client.as_ref().and_then(|c| c.key_id.as_deref()).unwrap_or("-");
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        key,
        peer = %peer.ip(),
        "request"
    );
    response
}

fn identify(st: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<Client, ApiError> {
    if !st.keys.is_empty() {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing API key: send `Authorization: Bearer <key>`"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| unauthorized("malformed Authorization header: expected `Bearer <key>`"))?;
        if !st.keys.accepts(token) {
            return Err(unauthorized("invalid API key"));
        }
        let digest = key_digest(token);
        return Ok(Client { bucket: format!("key:{digest}"), owner: Some(digest), key_id: Some(key_id(token)) });
    }
    // The last entry is the one our proxy appended; earlier ones are whatever the client sent.
    let forwarded = st
        .trust_proxy
        .then(|| headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok());
    Ok(Client { bucket: format!("addr:{}", forwarded.unwrap_or(peer.ip())), owner: None, key_id: None })
}

#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The ignite version serving.
    version: &'static str,
}

/// Liveness; the only route without authentication or rate limit.
#[utoipa::path(get, path = "/health", security(()), responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

#[derive(Serialize, ToSchema)]
pub(super) struct Readiness {
    /// Whether a sandbox can be run now.
    ready: bool,
    /// What keeps it from being ready, one sentence each.
    missing: Vec<String>,
    /// A shutdown signal arrived: no new executions are started.
    draining: bool,
    running: usize,
    queued: usize,
}

/// Whether the host can run a sandbox now (503 when not).
#[utoipa::path(get, path = "/ready", responses(
    (status = 200, body = Readiness), (status = 500, body = ErrorBody), (status = 503, body = Readiness)
))]
async fn ready(State(st): St) -> Result<Response, ApiError> {
    let engine = st.engine.clone();
    let missing = tokio::task::spawn_blocking(move || engine.readiness()).await.map_err(internal)?;
    let draining = st.draining.load(Ordering::SeqCst);
    let ready = missing.is_empty() && !draining;
    let body = Readiness { ready, missing, draining, running: st.admission.running(), queued: st.admission.queued() };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok((status, Json(body)).into_response())
}

#[derive(Serialize, ToSchema)]
pub(super) struct ServiceList {
    services: Vec<ServiceInfo>,
}

/// Every service directory, those that do not load included (with their error).
#[utoipa::path(get, path = "/services", responses((status = 200, body = ServiceList), (status = 500, body = ErrorBody)))]
async fn list_services(State(st): St) -> Result<Json<ServiceList>, ApiError> {
    let st2 = st.clone();
    let list = tokio::task::spawn_blocking(move || st2.catalog.list()).await.map_err(internal)?.map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "services_dir", format!("cannot list services: {e}"))
    })?;
    Ok(Json(ServiceList { services: list }))
}

fn service_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = path.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    Ok(name)
}

/// One service and its settings.
#[utoipa::path(get, path = "/services/{name}", params(("name" = String, Path)), responses(
    (status = 200, body = ServiceInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 500, body = ErrorBody),
))]
async fn get_service(State(st): St, path: Result<Path<String>, PathRejection>) -> Result<Json<ServiceInfo>, ApiError> {
    let name = service_name(path)?;
    let st2 = st.clone();
    let n = name.clone();
    tokio::task::spawn_blocking(move || st2.catalog.info(&n))
        .await
        .map_err(internal)?
        .map(Json)
        .ok_or_else(|| unknown_service(&name))
}

/// The service's preflight: the same document as `ignite preflight --json`. Reads only —
/// nothing is downloaded, built or started.
#[utoipa::path(get, path = "/services/{name}/preflight", params(("name" = String, Path)), responses(
    (status = 200, body = PreflightReport), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody), (status = 500, body = ErrorBody),
))]
async fn preflight(
    State(st): St,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PreflightReport>, ApiError> {
    let name = service_name(path)?;
    let st2 = st.clone();
    let n = name.clone();
    let result = tokio::task::spawn_blocking(move || match st2.catalog.lookup(&n, &Overrides::default()) {
        Lookup::Found(svc) => Ok(st2.engine.preflight(&svc).map_err(|e| st2.catalog.relative(&e.to_string()))),
        Lookup::Invalid(e) => Err(Some(e)),
        Lookup::NotFound => Err(None),
    })
    .await
    .map_err(internal)?;
    match result {
        Ok(Ok(report)) => Ok(Json(report)),
        // What preflight reads is the service's own files (package.json): a service problem.
        Ok(Err(e)) | Err(Some(e)) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "service_invalid", e)),
        Err(None) => Err(unknown_service(&name)),
    }
}

fn unknown_service(name: &str) -> ApiError {
    ApiError::not_found(format!("no service {name:?}; GET /services lists them"))
}

pub(super) fn internal(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("internal error: {e}"))
}

/// `POST /services/{name}/execute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ExecuteRequest {
    /// Any JSON value; the program reads it from `IGNITE_INPUT`. Default `{}`.
    pub(super) input: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "super::fields::integer")]
    #[schema(schema_with = super::fields::timeout_ms)]
    pub(super) timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "super::fields::integer")]
    #[schema(schema_with = super::fields::memory_mb)]
    pub(super) memory_mb: Option<u32>,
    /// Audit mode (default true): the strictest policy unless the service's policy file relaxes
    /// it, and the report's `securityAudit` lists what the kernel reported.
    pub(super) audit: Option<bool>,
    /// Arguments for the program, after the entry in its argv.
    #[schema(schema_with = super::fields::args)]
    pub(super) args: Option<Vec<String>>,
    /// The program's stdin.
    #[schema(schema_with = super::fields::stdin)]
    pub(super) stdin: Option<String>,
    /// Environment variables the operator allows.
    #[schema(schema_with = super::fields::env)]
    pub(super) env: Option<std::collections::BTreeMap<String, String>>,
    /// Give the program an output directory (`$IGNITE_OUT_DIR`, /tmp/out; at most 8 MiB and 64
    /// files) and return its regular files in the report's `files` (size, sha256, base64
    /// content). Such a run is never served warm.
    pub(super) outputs: Option<bool>,
}

/// The run a service execute asks for, checked: the limits within service.yaml's ranges (named
/// as the request spells them), its I/O, the input within `--max-input`, the service found in
/// the catalog (`unknown` words the refusal of a name it lacks). The service's policy file
/// applies, audit mode is the default, the lock and preflight gates are the server's, and no
/// last report is kept (a server would write a file per request). Shared by
/// `POST /services/{name}/execute` and the MCP tools.
pub(super) fn service_request(
    st: &AppState,
    name: &str,
    req: ExecuteRequest,
    unknown: fn(&str) -> ApiError,
) -> Result<RunRequest, ApiError> {
    if let Some(v) = req.memory_mb {
        service::check_range(v, MEMORY_MB_RANGE, "MiB")
            .map_err(|r| ApiError::bad_request("invalid_request", format!("memoryMb {r}")))?;
    }
    if let Some(v) = req.timeout_ms {
        service::check_range(v, TIMEOUT_MS_RANGE, "ms")
            .map_err(|r| ApiError::bad_request("invalid_request", format!("timeoutMs {r}")))?;
    }
    let input = super::fields::input_text(req.input.as_ref(), st.max_input)?;
    let io = super::fields::program_io(req.args, req.stdin, req.env, req.outputs)?;
    let overrides = Overrides { memory_mb: req.memory_mb, timeout_ms: req.timeout_ms, ..Overrides::default() };
    // A few `stat`s and, when service.yaml changed, one capped read of it (see Catalog): done
    // here on the worker, like the rest of a warm run, rather than on another thread.
    let service = match st.catalog.lookup(name, &overrides) {
        Lookup::Found(s) => *s,
        Lookup::Invalid(e) => return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "service_invalid", e)),
        Lookup::NotFound => return Err(unknown(name)),
    };
    let mut run = RunRequest::new(Program::Service(Box::new(service)));
    run.input = Input::Json(input);
    run.policy = PolicyChoice::Service { file: None };
    run.audit = req.audit.unwrap_or(true);
    run.lock = st.lock;
    run.preflight = st.preflight;
    run.warm = true;
    run.io = io;
    run.keep_report = false;
    Ok(run)
}

/// Answers with the report, or with `Accept: text/event-stream` / `application/x-ndjson`
/// streams the output as it comes and then the report (see [`stream`]).
#[utoipa::path(post, path = "/services/{name}/execute", params(("name" = String, Path)), request_body = ExecuteRequest,
    responses(
        (status = 200, description = "The report; with `Accept: text/event-stream` or `application/x-ndjson`, \
            `chunk` events (Chunk) as the program writes, then one `report` (Report) or `error` (ErrorBody) event",
            content((Report = "application/json"), (String = "text/event-stream"), (String = "application/x-ndjson"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The server runs with --locked and the service no longer \
            matches its ignite.lock (`lock_drift`); the message lists what changed"),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "The service cannot run as it is (`service_invalid`, \
            `policy_invalid`, `service_error`), or a preflight check failed (`preflight_failed`, with the checks \
            in `preflight`; not with --skip-preflight)"),
        (status = 500, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
async fn execute(
    State(st): St,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<JsonObject<ExecuteRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let name = service_name(path)?;
    let JsonObject(req) = body?;
    let run = service_request(&st, &name, req, unknown_service)?;
    let busy = || {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "all execution slots and the queue are taken")
            .retry_after(BUSY_RETRY_SECS)
    };
    if st.draining.load(Ordering::SeqCst) {
        return Err(shutting_down());
    }
    let permit = st.admission.admit().await.map_err(|_| busy())?;
    // Waiting in the queue may have outlasted the server's life.
    if st.draining.load(Ordering::SeqCst) {
        return Err(shutting_down());
    }
    run_job(&st, run, permit, (), Format::from_accept(&headers)).await
}

/// Runs `req` through the engine and answers with its report, or with `format` streams its
/// output and then the report (see [`stream`]). The engine decides where it runs (a warm
/// sandbox or a cold one). The slot (`permit`) and `held` (a session's turn and workspace) stay
/// with the run until it ends, not with the response, so a client that hangs up neither frees
/// a slot whose sandbox is still running nor removes what the sandbox uses.
pub(super) async fn run_job<H: Send + 'static>(
    st: &Arc<AppState>,
    mut req: RunRequest,
    permit: OwnedSemaphorePermit,
    held: H,
    format: Option<Format>,
) -> Result<Response, ApiError> {
    let engine = st.engine.clone();
    let cancel = st.cancel_runs.child_token();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = format.map(|_| Arc::new(StreamSink::new(tx)));
    let (st2, sink2, cancel2) = (st.clone(), sink.clone(), cancel.clone());
    req.sink = sink2.map(|s| s as Arc<dyn OutputSink>);
    let (started, start) = tokio::sync::oneshot::channel();
    req.on_start = Some(Box::new(move || {
        let _ = started.send(());
    }));
    // A task on the runtime's workers: the engine moves the synchronous parts of a run
    // (preparing a cold sandbox, hashing for the lock check) off them itself, so a warm run
    // goes from request to report without a hop to another thread.
    let run = st.runs.spawn(async move {
        let _permit = permit;
        let _held = held;
        let started = Instant::now();
        let result = engine.run(req, cancel2).await.map(|outcome| outcome.report);
        let status = result.as_ref().map_or("failed", |r| r.status.as_str());
        st2.metrics.execution(status, started.elapsed());
        result.map_err(|e| ApiError::from_run(e, &|m| st2.catalog.relative(m)))
    });
    let Some((format, sink)) = format.zip(sink) else {
        // The server drops this future when the client goes away before the report is ready:
        // the run is then cancelled (and cleaned up) instead of finishing for nobody.
        let abandon = cancel.drop_guard();
        let report = run.await.map_err(internal)??;
        abandon.disarm();
        return Ok(Json(report).into_response());
    };
    // A refusal before the run starts (the policy, the lock, preflight) is answered with its
    // own status, as without streaming; the stream begins once the run does.
    let abandon = cancel.clone().drop_guard();
    if start.await.is_err() {
        let result = run.await.map_err(internal)?;
        abandon.disarm();
        let report = result?;
        sink.finish(Event::Report(Box::new(report)));
        return Ok(stream::response(rx, format, cancel));
    }
    abandon.disarm();
    st.runs.spawn(async move {
        let last = match run.await.map_err(internal).and_then(|r| r) {
            Ok(report) => Event::Report(Box::new(report)),
            Err(e) => Event::Error(e),
        };
        sink.finish(last);
    });
    Ok(stream::response(rx, format, cancel))
}

pub(super) fn shutting_down() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
        .retry_after(BUSY_RETRY_SECS)
}

/// A request body that is a JSON object, read with `Json`'s own checks and error codes (415,
/// 413, `malformed_json`, `invalid_request`) on every route. An array is refused although serde
/// would fill a struct from one by position: the document says `object`.
pub(super) struct JsonObject<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state).await.map_err(bytes_rejection)?;
        parse_object(&headers, &bytes).map(JsonObject)
    }
}

/// The body as [`JsonObject`] reads it, for a handler that has looked at the bytes first
/// (already within `--max-body`).
pub(super) fn parse_object<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    if !json_content_type(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json`",
        ));
    }
    let Json(value) = Json::<T>::from_bytes(bytes).map_err(json_rejection)?;
    // JSON's whitespace: the parser above accepted the text, so its first token follows it.
    if bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'[') {
        return Err(ApiError::bad_request("invalid_request", "the body must be a JSON object, not an array"));
    }
    Ok(value)
}

/// `application/json` or `application/<something>+json`, parameters ignored: what the `Json`
/// extractor accepts.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub(super) fn bytes_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", e.body_text())
    } else {
        ApiError::bad_request("invalid_body", e.body_text())
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    let message = e.body_text();
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message);
    }
    match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("malformed_json", message),
        JsonRejection::JsonDataError(_) => ApiError::bad_request("invalid_request", message),
        _ => ApiError::bad_request("invalid_body", message),
    }
}
