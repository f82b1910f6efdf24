//! `POST /v1/execute`: code sent in the request (files or one `code` string) runs in the same
//! sandbox as a service. This module reads the request; the engine checks the program, writes
//! it to a fresh per-run directory (removed when the run is over, whatever its outcome) and
//! runs it (see [`InlineProgram`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use tokio::sync::OwnedMutexGuard;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::routes::{JsonObject, run_job, shutting_down};
use super::stream::Format;
use crate::data::report::Report;
use crate::engine::{InlineProgram, InlineSource, Input, PolicyChoice, Program, Request as RunRequest, Workspace};
pub use crate::engine::{MAX_FILES, MAX_TOTAL_BYTES};

/// `POST /v1/execute`: code that is not on disk. Exactly one of `files` and `code`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct InlineRequest {
    /// A runtime spec: `bun`, `node@22`, `deno`, `quickjs`, or a custom runtime.
    #[schema(min_length = 1, example = "bun")]
    pub(super) runtime: String,
    #[schema(schema_with = super::fields::files)]
    pub(super) files: Option<Files>,
    /// One entry file's content (shorthand for `files`).
    #[schema(example = "console.log(JSON.stringify({ ok: true }))")]
    pub(super) code: Option<String>,
    /// The file to run; defaults as documented.
    pub(super) entry: Option<String>,
    /// Any JSON value, given to the program as `IGNITE_INPUT`. Default `{}`.
    pub(super) input: Option<serde_json::Value>,
    pub(super) limits: Option<InlineLimits>,
    /// Audit mode (default true): the report's `securityAudit` lists what the kernel reported.
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

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct InlineLimits {
    #[serde(default, deserialize_with = "super::fields::integer")]
    #[schema(schema_with = super::fields::timeout_ms)]
    pub(super) timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "super::fields::integer")]
    #[schema(schema_with = super::fields::memory_mb)]
    pub(super) memory_mb: Option<u32>,
    #[schema(schema_with = super::fields::cpu)]
    pub(super) cpu: Option<f64>,
}

/// `files` in request order, duplicates kept so that they can be refused (a map would keep the
/// last one silently).
#[derive(Debug)]
pub(super) struct Files(pub(super) Vec<(String, String)>);

impl<'de> Deserialize<'de> for Files {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Files, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Files;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of file path to file content (a string)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Files, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    out.push(entry);
                }
                Ok(Files(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A session run's share of [`run`]: its workspace (with its uid), its turn, and its execution
/// slot when it already waited for one (a run that had to wait for its turn was admitted first).
pub(super) struct SessionTurn {
    pub workspace: Arc<Workspace>,
    pub turn: OwnedMutexGuard<()>,
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

pub(super) fn busy() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "all execution slots and the queue are taken").retry_after(1)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/execute", post(execute))
}

/// Answers with the report, or with `Accept: text/event-stream` / `application/x-ndjson`
/// streams the output as it comes and then the report, like `POST /services/{name}/execute`.
#[utoipa::path(post, path = "/v1/execute", request_body = InlineRequest, responses(
    (status = 200, description = "The report; with `Accept: text/event-stream` or `application/x-ndjson`, \
        `chunk` events (Chunk) as the program writes, then one `report` (Report) or `error` (ErrorBody) event",
        content((Report = "application/json"), (String = "text/event-stream"), (String = "application/x-ndjson"))),
    (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "The runtime cannot run the entry (`service_error`), or a \
        preflight check failed (`preflight_failed`, with the checks in `preflight`; not with --skip-preflight)"),
    (status = 500, body = ErrorBody), (status = 503, body = ErrorBody),
))]
pub(super) async fn execute(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<JsonObject<InlineRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonObject(req) = body?;
    run(&st, req, None, Format::from_accept(&headers)).await
}

/// The run an inline request asks for, checked in the order its faults were always reported
/// (the program, its I/O, the input within `--max-input`): inline code with the built-in policy
/// only (never a policy file from the request's own files), served warm when it can be. Shared by
/// `POST /v1/execute`, a session's execute and the MCP tools; the caller adds the workspace.
pub(super) fn request(st: &AppState, req: InlineRequest) -> Result<RunRequest, ApiError> {
    let source = match (req.files, req.code) {
        (Some(_), Some(_)) => return Err(invalid("give either `files` or `code`, not both")),
        (None, None) => return Err(invalid("give the program as `files` ({path: content}) or `code` (one file)")),
        (Some(Files(files)), None) => InlineSource::Files(files),
        (None, Some(code)) => InlineSource::Code(code),
    };
    let limits = req.limits.unwrap_or_default();
    let program = InlineProgram {
        runtime: req.runtime,
        source,
        entry: req.entry,
        memory_mb: limits.memory_mb,
        timeout_ms: limits.timeout_ms,
        cpu: limits.cpu,
    };
    // Checked before the input (and written by the engine after it).
    program.check(st.engine.registry())?;
    let io = super::fields::program_io(req.args, req.stdin, req.env, req.outputs)?;
    let input = super::fields::input_text(req.input.as_ref(), st.max_input)?;
    let mut run = RunRequest::new(Program::Inline(Box::new(program)));
    run.input = Input::Json(input);
    run.policy = PolicyChoice::Builtin;
    run.audit = req.audit.unwrap_or(true);
    run.preflight = st.preflight;
    run.warm = true;
    run.io = io;
    run.allow_env = st.allow_env.clone();
    Ok(run)
}

/// Runs an inline request, answering with the report or streaming it in `format`. In a
/// session, its workspace is mounted; the session's turn and the run directory are held until
/// the run is over (not until the response is).
pub(super) async fn run(
    st: &Arc<AppState>,
    req: InlineRequest,
    session: Option<SessionTurn>,
    format: Option<Format>,
) -> Result<Response, ApiError> {
    let mut run = request(st, req)?;
    if st.draining.load(Ordering::SeqCst) {
        return Err(shutting_down());
    }
    let (workspace, turn, admitted) = match session {
        Some(s) => (Some(s.workspace), Some(s.turn), s.permit),
        None => (None, None, None),
    };
    let permit = match admitted {
        Some(permit) => permit,
        None => st.admission.admit().await.map_err(|_| busy())?,
    };
    if st.draining.load(Ordering::SeqCst) {
        return Err(shutting_down());
    }
    run.workspace = workspace.clone();
    run_job(st, run, permit, (turn, workspace), format).await
}
