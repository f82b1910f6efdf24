//! Sessions: a writable workspace shared by the runs of one session and nothing else. The
//! workspace (a tmpfs with its quota, and its uid) is the engine's [`Workspace`]; this module
//! keeps the bookkeeping: ids, owners, TTLs, turns and limits. A session belongs to the key that
//! created it, and is removed on DELETE, when its TTL runs out (a sweeper), and at shutdown. Its
//! runs are serialised, and so are the file operations on its workspace (`/files`): each takes
//! the session's turn, so none ever interleaves with a running program.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Extension, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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
use crate::engine::{
    ErrorKind, FileEntry, FileError, FileErrorKind, FileKind, Listing, MAX_FILE_BYTES, WORKSPACE_DIR, Workspace,
    WorkspaceError,
};

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

/// Why a file operation on a session's workspace ([`Sessions::with_files`]) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FileOpError {
    /// No live session of that id and owner (another owner's is as absent as a missing one).
    #[error("no session {0:?} (it expired, was deleted, or belongs to another key)")]
    NoSession(String),
    /// A run of the session goes on and `max` requests already wait for its turn.
    #[error(
        "session {id:?} is running and {max} more request(s) already wait for their turn; retry when its runs are done"
    )]
    Busy { id: String, max: usize },
    /// The operation itself was refused or failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The blocking thread that ran it panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
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

    /// Runs `op` on the workspace of session `id` of `owner` in the session's turn, like a run
    /// (waiting for a run of it to end, at most `max_waiting` requests at once), on a blocking
    /// thread that holds the turn until `op` is over, also when the caller stops waiting: no
    /// program of the session runs meanwhile. It takes no execution slot: it starts no sandbox.
    pub async fn with_files<T: Send + 'static>(
        &self,
        id: &str,
        owner: &Option<String>,
        op: impl FnOnce(&Workspace) -> Result<T, FileError> + Send + 'static,
    ) -> Result<T, FileOpError> {
        let no_session = || FileOpError::NoSession(id.to_string());
        let (workspace, runs, waiting) = self
            .find(id, owner, |s| (s.workspace.clone(), s.runs.clone(), s.waiting.clone()))
            .ok_or_else(no_session)?;
        let turn = match runs.clone().try_lock_owned() {
            Ok(turn) => turn,
            Err(_) => {
                let max = self.config.max_waiting;
                let _waiter =
                    Waiter::enter(&waiting, max).ok_or_else(|| FileOpError::Busy { id: id.to_string(), max })?;
                runs.lock_owned().await
            }
        };
        // Deleted or expired while this request waited for its turn.
        if self.find(id, owner, |_| ()).is_none() {
            return Err(no_session());
        }
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            op(&workspace)
        })
        .await
        .map_err(|e| FileOpError::Internal(e.to_string()))?
        .map_err(FileOpError::File)
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
        .route("/v1/sessions/{id}/files", get(list_files))
        .route(
            "/v1/sessions/{id}/files/{*path}",
            get(download)
                .put(upload)
                .delete(delete_file)
                // Uploads have their own cap, not --max-body (which bounds JSON bodies).
                .layer(DefaultBodyLimit::max(super::limits::MAX_UPLOAD_BYTES)),
        )
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
        (status = 501, body = ErrorBody, description = "This server runs rootless, where sessions are not available (`not_available_rootless`)"),
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
            // A rootless server cannot mount workspaces: a standing property of this server.
            SessionError::Workspace(WorkspaceError::Rootless(_)) => {
                ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_available_rootless", e.to_string())
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
    this_node(st, id)
}

/// `id` if it is not another node's session id (421 `wrong_node` otherwise).
fn this_node(st: &AppState, id: String) -> Result<String, ApiError> {
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

/// A file route's session id and workspace path (`/v1/sessions/{id}/files/{*path}`).
fn file_params(
    st: &AppState,
    path: Result<UrlPath<(String, String)>, PathRejection>,
) -> Result<(String, String), ApiError> {
    let UrlPath((id, file)) = path.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    Ok((this_node(st, id)?, file))
}

/// Runs a file operation on a session's workspace (HTTP, and any other edge that serves
/// sessions), in the session's turn.
pub(super) async fn with_workspace<T: Send + 'static>(
    st: &AppState,
    id: &str,
    owner: &Option<String>,
    op: impl FnOnce(&Workspace) -> Result<T, FileError> + Send + 'static,
) -> Result<T, ApiError> {
    // Checked after the lookup, as for a run: an unknown session is 404 also while draining.
    if st.sessions.find(id, owner, |_| ()).is_some() && st.draining.load(Ordering::SeqCst) {
        return Err(shutting_down());
    }
    st.sessions.with_files(id, owner, op).await.map_err(|e| match e {
        FileOpError::NoSession(_) => no_session(id),
        FileOpError::Busy { max, .. } => session_busy(id, max),
        FileOpError::File(e) => file_error(e),
        FileOpError::Internal(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    })
}

/// A refused file operation: its status by [`FileErrorKind`], its code by the error.
fn file_error(e: FileError) -> ApiError {
    let status = match e.kind() {
        FileErrorKind::InvalidPath => StatusCode::BAD_REQUEST,
        FileErrorKind::NotFound => StatusCode::NOT_FOUND,
        FileErrorKind::Conflict => StatusCode::CONFLICT,
        FileErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        FileErrorKind::NoSpace => StatusCode::INSUFFICIENT_STORAGE,
        FileErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// What an entry of a workspace is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A named pipe or a socket.
    Other,
}

/// One entry of a workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct FileInfo {
    /// Relative to the workspace, `/`-separated: the `{path}` of the file routes.
    path: String,
    /// Bytes, for a file; 0 for anything else.
    size: u64,
    kind: EntryKind,
}

impl From<FileEntry> for FileInfo {
    fn from(e: FileEntry) -> FileInfo {
        let kind = match e.kind {
            FileKind::File => EntryKind::File,
            FileKind::Dir => EntryKind::Dir,
            FileKind::Symlink => EntryKind::Symlink,
            FileKind::Other => EntryKind::Other,
        };
        FileInfo { path: e.path, size: e.size, kind }
    }
}

/// The entries of a workspace: depth first, names sorted bytewise, each directory before its
/// contents; links are listed as links, never followed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct FileList {
    files: Vec<FileInfo>,
    /// Entries were left out: more than 4096, nested more than 16 deep, or with names no path
    /// of this API can give (not UTF-8, control characters).
    truncated: bool,
}

impl From<Listing> for FileList {
    fn from(l: Listing) -> FileList {
        FileList { files: l.entries.into_iter().map(FileInfo::from).collect(), truncated: l.truncated }
    }
}

const FILE_PATH_DOC: &str = "Relative to the workspace (`data/in.csv`): no `..`, not absolute, no control characters, \
    at most 512 bytes and 16 levels; never through a symbolic link";

/// Lists the session's workspace (at most 4096 entries), in the session's turn.
#[utoipa::path(get, path = "/v1/sessions/{id}/files", params(("id" = String, Path)), responses(
    (status = 200, body = FileList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 421, body = ErrorBody, description = "The server runs with --node-name and the id names another node (`wrong_node`)"),
    (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")),
        description = "Past the rate limit (`rate_limited`), or --session-max-waiting requests already wait for this session's turn (`session_busy`)"),
    (status = 500, body = ErrorBody), (status = 503, body = ErrorBody, description = "The server is shutting down (`shutting_down`)"),
))]
pub(super) async fn list_files(
    State(st): St,
    Extension(owner): Extension<Owner>,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<FileList>, ApiError> {
    let id = session_id(&st, path)?;
    let listing = with_workspace(&st, &id, &owner.0, |w| w.list()).await?;
    Ok(Json(listing.into()))
}

/// Downloads a regular file of the workspace (at most 16 MiB) as raw bytes.
#[utoipa::path(get, path = "/v1/sessions/{id}/files/{path}",
    params(("id" = String, Path), ("path" = String, Path, description = FILE_PATH_DOC)),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorBody, description = "The path is not a workspace path (`invalid_path`)"),
        (status = 404, body = ErrorBody, description = "No such session (`not_found`), or no such file (`not_found`)"),
        (status = 409, body = ErrorBody, description = "A symbolic link is on the way or is the file (`symlink_refused`), \
            the path names a directory or a pipe (`not_a_file`) or runs through a file (`not_a_directory`), or it changed meanwhile (`changed`)"),
        (status = 413, body = ErrorBody, description = "The file is larger than 16 MiB (`file_too_large`)"),
        (status = 421, body = ErrorBody, description = "The server runs with --node-name and the id names another node (`wrong_node`)"),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")),
            description = "Past the rate limit (`rate_limited`), or --session-max-waiting requests already wait for this session's turn (`session_busy`)"),
        (status = 500, body = ErrorBody), (status = 503, body = ErrorBody, description = "The server is shutting down (`shutting_down`)"),
    ))]
pub(super) async fn download(
    State(st): St,
    Extension(owner): Extension<Owner>,
    path: Result<UrlPath<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (id, file) = file_params(&st, path)?;
    let bytes = with_workspace(&st, &id, &owner.0, move |w| w.read_file(&file, MAX_FILE_BYTES)).await?;
    let mut resp = bytes.into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    // The bytes are the program's: a browser must neither sniff nor render them as a page of
    // this origin.
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    Ok(resp)
}

/// Uploads the raw request body (at most 16 MiB) as a file of the workspace, creating parent
/// directories; it belongs to the session's uid, so its runs can change it.
#[utoipa::path(put, path = "/v1/sessions/{id}/files/{path}",
    params(("id" = String, Path), ("path" = String, Path, description = FILE_PATH_DOC)),
    request_body(content = Option<Vec<u8>>, content_type = "application/octet-stream",
        description = "The file's bytes, as they are (any Content-Type but a form encoding); no body is an empty file"),
    responses(
        (status = 201, body = FileInfo, description = "Created"),
        (status = 200, body = FileInfo, description = "Replaced an existing file"),
        (status = 400, body = ErrorBody, description = "The path is not a workspace path (`invalid_path`)"),
        (status = 404, body = ErrorBody, description = "No such session (`not_found`)"),
        (status = 409, body = ErrorBody, description = "A symbolic link is on the way or is the file (`symlink_refused`), \
            a directory is there (`not_a_file`), or the path runs through a file (`not_a_directory`)"),
        (status = 413, body = ErrorBody, description = "The body is larger than 16 MiB (`body_too_large`)"),
        (status = 415, body = ErrorBody, description = "A form encoding (`unsupported_media_type`): the body is stored as it is"),
        (status = 421, body = ErrorBody, description = "The server runs with --node-name and the id names another node (`wrong_node`)"),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")),
            description = "Past the rate limit (`rate_limited`), or --session-max-waiting requests already wait for this session's turn (`session_busy`)"),
        (status = 500, body = ErrorBody), (status = 503, body = ErrorBody, description = "The server is shutting down (`shutting_down`)"),
        (status = 507, body = ErrorBody, description = "The workspace's quota (--session-quota-mb, or its file count) has no room for it (`workspace_full`); the old file, if any, is unchanged"),
    ))]
pub(super) async fn upload(
    State(st): St,
    Extension(owner): Extension<Owner>,
    path: Result<UrlPath<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (id, file) = file_params(&st, path)?;
    if let Some(form) = form_encoding(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body is stored as the file's raw bytes, but `Content-Type: {form}` says it is a form; send it as `application/octet-stream` (curl: --data-binary @FILE -H 'Content-Type: application/octet-stream', or -T FILE)"
            ),
        ));
    }
    // Read before the turn: a slow upload holds no turn and delays no run.
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("an upload may have at most {MAX_FILE_BYTES} bytes"),
        ),
        _ => bytes_rejection(e),
    })?;
    let written = with_workspace(&st, &id, &owner.0, move |w| w.write_file(&file, &body)).await?;
    let status = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(FileInfo::from(written.entry))).into_response())
}

/// The form encoding a request's `Content-Type` names, if it names one.
fn form_encoding(headers: &HeaderMap) -> Option<&str> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = ct.split(';').next().unwrap_or_default().trim();
    (essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        || essence.eq_ignore_ascii_case("multipart/form-data"))
    .then_some(essence)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DeleteQuery {
    /// Remove a directory with everything in it (links inside are removed, never followed).
    #[serde(default)]
    recursive: bool,
}

/// Removes a file, a link (never its target) or a directory (empty, or with `?recursive=true`).
#[utoipa::path(delete, path = "/v1/sessions/{id}/files/{path}",
    params(("id" = String, Path), ("path" = String, Path, description = FILE_PATH_DOC), DeleteQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = ErrorBody, description = "The path is not a workspace path (`invalid_path`), or a bad query (`invalid_request`)"),
        (status = 404, body = ErrorBody, description = "No such session (`not_found`), or nothing at the path (`not_found`)"),
        (status = 409, body = ErrorBody, description = "A symbolic link is on the way (`symlink_refused`), the path runs through a file \
            (`not_a_directory`), the directory is not empty and `recursive` is not set (`not_empty`), or it changed meanwhile (`changed`)"),
        (status = 421, body = ErrorBody, description = "The server runs with --node-name and the id names another node (`wrong_node`)"),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")),
            description = "Past the rate limit (`rate_limited`), or --session-max-waiting requests already wait for this session's turn (`session_busy`)"),
        (status = 500, body = ErrorBody), (status = 503, body = ErrorBody, description = "The server is shutting down (`shutting_down`)"),
    ))]
pub(super) async fn delete_file(
    State(st): St,
    Extension(owner): Extension<Owner>,
    path: Result<UrlPath<(String, String)>, PathRejection>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let (id, file) = file_params(&st, path)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    with_workspace(&st, &id, &owner.0, move |w| w.remove(&file, q.recursive)).await?;
    Ok(StatusCode::NO_CONTENT)
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
