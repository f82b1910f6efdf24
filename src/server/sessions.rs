//! Sessions: a writable workspace shared by the runs of one session and nothing else. The
//! workspace (a tmpfs with its quota, and its uid) is the engine's [`Workspace`]; this module
//! keeps the bookkeeping: ids, owners, TTLs, turns and limits. A session belongs to the key that
//! created it, and is removed on DELETE, when its TTL runs out (a sweeper), and at shutdown. Its
//! runs are serialised.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::inline::{self, InlineRequest};
use super::routes::{JsonObject, Owner, bytes_rejection, parse_object, shutting_down};
use super::stream::Format;
use crate::data::report::{Report, rfc3339};
use crate::engine::{ErrorKind, WORKSPACE_DIR, Workspace, WorkspaceError};

const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Resolved session settings of `ignite serve`.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    /// Size of each workspace in MiB.
    pub quota_mb: u64,
    /// Sessions alive at once; more are refused with 503.
    pub max_sessions: usize,
    /// Sessions one key may hold at once; more are refused with 429, so one key cannot take
    /// every session of the server. (Without keys there are no tenants: only the global cap.)
    pub max_per_key: usize,
    /// Requests that may wait for a session's turn while one of its runs goes on; more are
    /// refused at once with 429.
    pub max_waiting: usize,
}

struct Session {
    /// The full digest of the key that created it (`None` when the server has no keys).
    owner: Option<String>,
    created: SystemTime,
    expires: SystemTime,
    /// Held by the session's running execution: runs are serialised.
    runs: Arc<tokio::sync::Mutex<()>>,
    /// Requests waiting for their turn (bounded by `max_waiting`).
    waiting: Arc<AtomicUsize>,
    /// The mounted workspace and its uid: unmounted by `destroy`, its uid released when the
    /// last run holding it is over.
    workspace: Arc<Workspace>,
}

pub struct Sessions {
    /// The state dir, where workspaces are mounted and uids allocated.
    state: PathBuf,
    pub config: SessionConfig,
    /// `--node-name`: the prefix of this server's session ids (`<node>.<workspace id>`).
    node: Option<String>,
    /// By session id (the workspace's id, prefixed with the node name when there is one).
    map: Mutex<HashMap<String, Session>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0} sessions are open, the server's limit; delete one or wait for one to expire")]
    Full(usize),
    #[error(
        "this key holds {0} sessions, the limit per key (--max-sessions-per-key); delete one or wait for one to expire"
    )]
    KeyFull(usize),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
}

impl Sessions {
    pub fn new(state_dir: &Path, config: SessionConfig, node: Option<String>) -> Sessions {
        Sessions { state: state_dir.to_path_buf(), config, node, map: Mutex::new(HashMap::new()) }
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// The node another server's session id names, when this server has a node name and `id`
    /// has the shape of a session id of a differently named node (`<node>.<32 hex digits>`).
    /// Only the id's shape is looked at, never the map: the answer says nothing about which
    /// sessions exist.
    fn other_node<'a>(&self, id: &'a str) -> Option<&'a str> {
        let ours = self.node.as_deref()?;
        let (node, rest) = id.rsplit_once('.')?;
        let shaped = rest.len() == 32 && rest.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        (shaped && node != ours && super::valid_node_name(node)).then_some(node)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the map cannot leave it half-updated: every update is one call.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a session with its mounted workspace; returns its id, creation and expiry times.
    pub fn create(
        &self,
        owner: Option<String>,
        ttl: Duration,
    ) -> Result<(String, SystemTime, SystemTime), SessionError> {
        self.check_room(&self.lock(), &owner)?;
        let workspace = Arc::new(Workspace::create(&self.state, self.config.quota_mb)?);
        let now = SystemTime::now();
        let expires = now + ttl;
        let mut map = self.lock();
        // Checked again: others may have been created while the workspace was mounted.
        if let Err(e) = self.check_room(&map, &owner) {
            drop(map);
            // Unmounted, then its uid and mark released.
            drop(workspace);
            return Err(e);
        }
        let runs = Arc::new(tokio::sync::Mutex::new(()));
        let waiting = Arc::new(AtomicUsize::new(0));
        let id = match &self.node {
            Some(node) => format!("{node}.{}", workspace.id()),
            None => workspace.id().to_string(),
        };
        map.insert(id.clone(), Session { owner, created: now, expires, runs, waiting, workspace });
        Ok((id, now, expires))
    }

    /// Whether one more session fits, in all and for `owner`'s key.
    fn check_room(&self, map: &HashMap<String, Session>, owner: &Option<String>) -> Result<(), SessionError> {
        if map.len() >= self.config.max_sessions {
            return Err(SessionError::Full(self.config.max_sessions));
        }
        if owner.is_some() && map.values().filter(|s| s.owner == *owner).count() >= self.config.max_per_key {
            return Err(SessionError::KeyFull(self.config.max_per_key));
        }
        Ok(())
    }

    /// The live session `id` of `owner`; another owner's session is as absent as a missing one.
    fn find<T>(&self, id: &str, owner: &Option<String>, f: impl FnOnce(&Session) -> T) -> Option<T> {
        let map = self.lock();
        map.get(id).filter(|s| s.owner == *owner && s.expires > SystemTime::now()).map(f)
    }

    /// Takes the session out (no new run finds it) and removes its workspace once a running
    /// execution of it is over.
    pub(super) async fn remove(&self, id: &str, owner: &Option<String>) -> bool {
        let session = {
            let mut map = self.lock();
            match map.get(id) {
                Some(s) if s.owner == *owner => map.remove(id),
                _ => None,
            }
        };
        match session {
            Some(s) => {
                destroy(s).await;
                true
            }
            None => false,
        }
    }

    fn take_expired(&self, now: SystemTime) -> Vec<Session> {
        let mut map = self.lock();
        let ids: Vec<String> = map.iter().filter(|(_, s)| s.expires <= now).map(|(id, _)| id.clone()).collect();
        ids.into_iter().filter_map(|id| map.remove(&id)).collect()
    }

    /// Removes every session (at shutdown, after the runs are over).
    pub async fn remove_all(&self) {
        let all: Vec<Session> = self.lock().drain().map(|(_, s)| s).collect();
        for s in all {
            destroy(s).await;
        }
    }

    /// Removes expired sessions every second, each without waiting for the others.
    pub async fn sweep(self: Arc<Self>) {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            for s in self.take_expired(SystemTime::now()) {
                tracing::info!(dir = %s.workspace.dir().display(), "session expired");
                tokio::spawn(destroy(s));
            }
        }
    }
}

async fn destroy(s: Session) {
    let _running = s.runs.lock().await;
    s.workspace.close();
}

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/sessions", post(create))
        .route("/v1/sessions/{id}", get(show).delete(delete))
        .route("/v1/sessions/{id}/execute", post(execute))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CreateRequest {
    #[serde(default, deserialize_with = "super::fields::integer")]
    #[schema(schema_with = super::fields::ttl_seconds)]
    ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SessionInfo {
    id: String,
    created_at: String,
    expires_at: String,
    quota_mb: u64,
    /// Where the runs see the workspace.
    workspace: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    used_bytes: Option<u64>,
}

type St = State<Arc<AppState>>;

/// The body is optional: none (or `null`) means defaults; one that is there is JSON,
/// held to the same rules as every other route's (415, 413, `malformed_json`).
#[utoipa::path(post, path = "/v1/sessions", request_body(content = Option<CreateRequest>, description = "Optional: no body means defaults"),
    responses(
        (status = 201, body = SessionInfo), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 503, body = ErrorBody),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")),
            description = "Past the rate limit (`rate_limited`), or this key holds --max-sessions-per-key sessions (`key_sessions_full`)"),
    ))]
pub(super) async fn create(
    State(st): St,
    Extension(owner): Extension<Owner>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(bytes_rejection)?;
    // Only an empty body is no body: anything else, whitespace or a stray form feed included, is
    // held to JSON (the document says: no body, or a CreateRequest, or null).
    let req: CreateRequest = if body.is_empty() {
        CreateRequest::default()
    } else {
        // `null` is a body too (the document's schema allows it): defaults, like no body.
        parse_object::<Option<CreateRequest>>(&headers, &body)?.unwrap_or_default()
    };
    let info = open(&st, owner, req.ttl_seconds).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// Opens a session for `owner` (`POST /v1/sessions`, the MCP tool `session_create`): the TTL
/// checked against the server's range, the session's workspace mounted.
pub(super) async fn open(st: &Arc<AppState>, owner: Owner, ttl_seconds: Option<u64>) -> Result<SessionInfo, ApiError> {
    let cfg = &st.sessions.config;
    let ttl = match ttl_seconds {
        None => cfg.default_ttl,
        Some(s) if s == 0 || s > cfg.max_ttl.as_secs() => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("ttlSeconds must be between 1 and {} (got {s})", cfg.max_ttl.as_secs()),
            ));
        }
        Some(s) => Duration::from_secs(s),
    };
    let st2 = st.clone();
    let created = tokio::task::spawn_blocking(move || st2.sessions.create(owner.0, ttl))
        .await
        .map_err(super::routes::internal)?
        .map_err(|e| match &e {
            SessionError::Full(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "sessions_full", e.to_string()).retry_after(1)
            }
            // The key's own quota, like its rate limit: 429, not the server's capacity.
            SessionError::KeyFull(_) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "key_sessions_full", e.to_string()).retry_after(1)
            }
            // Every run uid is taken by a live run: capacity, like a full admission queue.
            SessionError::Workspace(w) if w.kind() == ErrorKind::Capacity => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()).retry_after(1)
            }
            SessionError::Workspace(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        })?;
    let (id, created, expires) = created;
    Ok(SessionInfo {
        id,
        created_at: rfc3339(created),
        expires_at: rfc3339(expires),
        quota_mb: cfg.quota_mb,
        workspace: WORKSPACE_DIR,
        used_bytes: None,
    })
}

/// The id in the path; 421 `wrong_node` when it is another node's (see [`Sessions::other_node`]).
fn session_id(st: &AppState, path: Result<UrlPath<String>, PathRejection>) -> Result<String, ApiError> {
    let UrlPath(id) = path.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    if let Some(node) = st.sessions.other_node(&id) {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "wrong_node",
            format!(
                "session ids that start with {node:?} are served by node {node:?}, and this is node {:?}: send the session's requests to the node its id names",
                st.sessions.node.as_deref().unwrap_or_default()
            ),
        ));
    }
    Ok(id)
}

fn no_session(id: &str) -> ApiError {
    ApiError::not_found(format!("no session {id:?} (it expired, was deleted, or belongs to another key)"))
}

#[utoipa::path(get, path = "/v1/sessions/{id}", params(("id" = String, Path)), responses(
    (status = 200, body = SessionInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 421, body = ErrorBody, description = "The server runs with --node-name and the id names another node (`wrong_node`)"),
))]
pub(super) async fn show(
    State(st): St,
    Extension(owner): Extension<Owner>,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<SessionInfo>, ApiError> {
    let id = session_id(&st, path)?;
    let found = st.sessions.find(&id, &owner.0, |s| (s.workspace.clone(), s.created, s.expires));
    let (workspace, created, expires) = found.ok_or_else(|| no_session(&id))?;
    let used = workspace.used_bytes();
    Ok(Json(SessionInfo {
        id,
        created_at: rfc3339(created),
        expires_at: rfc3339(expires),
        quota_mb: st.sessions.config.quota_mb,
        workspace: WORKSPACE_DIR,
        used_bytes: used,
    }))
}

/// Waits for a running execution of the session to end, then removes the workspace.
#[utoipa::path(delete, path = "/v1/sessions/{id}", params(("id" = String, Path)), responses(
    (status = 204, description = "removed"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 421, body = ErrorBody, description = "The server runs with --node-name and the id names another node (`wrong_node`)"),
))]
pub(super) async fn delete(
    State(st): St,
    Extension(owner): Extension<Owner>,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = session_id(&st, path)?;
    if st.sessions.remove(&id, &owner.0).await { Ok(StatusCode::NO_CONTENT) } else { Err(no_session(&id)) }
}

/// Like `POST /v1/execute` (streaming included), with the session's workspace mounted; the
/// session's runs take turns.
#[utoipa::path(post, path = "/v1/sessions/{id}/execute", params(("id" = String, Path)),
    request_body = InlineRequest, responses(
        (status = 200, description = "The report; with `Accept: text/event-stream` or `application/x-ndjson`, \
            `chunk` events (Chunk) as the program writes, then one `report` (Report) or `error` (ErrorBody) event",
            content((Report = "application/json"), (String = "text/event-stream"), (String = "application/x-ndjson"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 421, body = ErrorBody, description = "The server runs with --node-name and the id names another node (`wrong_node`)"),
        (status = 422, body = ErrorBody, description = "The runtime cannot run the entry (`service_error`), or a \
            preflight check failed (`preflight_failed`, with the checks in `preflight`; not with --skip-preflight)"),
        (status = 500, body = ErrorBody), (status = 503, body = ErrorBody),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")),
            description = "Past the rate limit (`rate_limited`), or --session-max-waiting requests already wait for this session's turn (`session_busy`)"),
    ))]
pub(super) async fn execute(
    State(st): St,
    Extension(owner): Extension<Owner>,
    path: Result<UrlPath<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<JsonObject<InlineRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let id = session_id(&st, path)?;
    let JsonObject(req) = body?;
    let session = turn(&st, &id, &owner).await?;
    inline::run(&st, req, Some(session), Format::from_accept(&headers)).await
}

/// Waits for the session's turn (and an execution slot) for one of its runs: over HTTP and
/// MCP alike, a session's runs take turns, and the requests waiting for one are bounded.
pub(super) async fn turn(st: &Arc<AppState>, id: &str, owner: &Owner) -> Result<inline::SessionTurn, ApiError> {
    let (workspace, runs, waiting) = st
        .sessions
        .find(id, &owner.0, |s| (s.workspace.clone(), s.runs.clone(), s.waiting.clone()))
        .ok_or_else(|| no_session(id))?;
    if st.draining.load(Ordering::SeqCst) {
        return Err(shutting_down());
    }
    let (turn, permit) = match runs.clone().try_lock_owned() {
        // Its turn now: admitted like any run, in `inline::run`.
        Ok(turn) => (turn, None),
        // Another run of the session goes on. Waiting for the turn holds this request (and
        // its parsed body), so it is bounded twice before it waits: by the session's own cap,
        // then by the server's queue, where it is counted until it has a slot.
        Err(_) => {
            let max = st.sessions.config.max_waiting;
            let _waiter = Waiter::enter(&waiting, max).ok_or_else(|| session_busy(id, max))?;
            let reservation = st.admission.reserve().map_err(|_| inline::busy())?;
            let turn = runs.lock_owned().await;
            drop(_waiter);
            let permit = reservation.admit().await.map_err(|_| inline::busy())?;
            (turn, Some(permit))
        }
    };
    // Deleted or expired while this request waited for its turn.
    if st.sessions.find(id, &owner.0, |_| ()).is_none() {
        return Err(no_session(id));
    }
    Ok(inline::SessionTurn { workspace, turn, permit })
}

/// A request counted among its session's waiters while it waits for the turn.
struct Waiter(Arc<AtomicUsize>);

impl Waiter {
    fn enter(waiting: &Arc<AtomicUsize>, max: usize) -> Option<Waiter> {
        waiting.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| (w < max).then_some(w + 1)).ok()?;
        Some(Waiter(waiting.clone()))
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn session_busy(id: &str, max: usize) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "session_busy",
        format!(
            "session {id:?} is running and {max} more request(s) already wait for their turn (--session-max-waiting); retry when its runs are done"
        ),
    )
    .retry_after(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(node: Option<&str>) -> Sessions {
        let config = SessionConfig {
            default_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(1),
            quota_mb: 1,
            max_sessions: 1,
            max_per_key: 1,
            max_waiting: 1,
        };
        Sessions::new(Path::new("/nonexistent"), config, node.map(str::to_string))
    }

    #[test]
    fn only_a_named_server_calls_an_id_another_nodes_and_only_by_its_shape() {
        let hex = "0123456789abcdef0123456789abcdef";
        let named = sessions(Some("ignite-1"));
        assert_eq!(named.other_node(&format!("ignite-2.{hex}")), Some("ignite-2"));
        assert_eq!(named.other_node(&format!("node.example.internal.{hex}")), Some("node.example.internal"));
        // Its own, and anything not shaped like a node's session id, is looked up as usual (404).
        for id in [
            format!("ignite-1.{hex}"),
            hex.to_string(),
            format!("ignite-2.{}", &hex[1..]),
            format!("ignite-2.{}", hex.to_uppercase()),
            format!("Ignite-2.{hex}"),
            format!(".{hex}"),
            format!("-x.{hex}"),
        ] {
            assert_eq!(named.other_node(&id), None, "{id}");
        }
        assert_eq!(sessions(None).other_node(&format!("ignite-2.{hex}")), None, "an unnamed server has no peers");
    }
}
