//! `POST /v1/execute`: code sent in the request (files or one `code` string) runs in the same
//! sandbox as a service, from a fresh per-run directory under the state dir that is removed
//! when the run is over, whatever its outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
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
use crate::data::policy;
use crate::data::report::Report;
use crate::data::runtime::TypeScript;
use crate::data::service::{self, CPU_LIMIT_RANGE, MEMORY_MB_RANGE, Overrides, RawService, TIMEOUT_MS_RANGE};
use crate::engine::{DEFAULT_GRACE, Job};
use crate::fsutil::{Cleanup, temp_name};
use crate::sandbox::identity::UidLease;
use crate::store::deps::{self, Modules};

/// The service name of every inline run (container hostname, report's `service`).
pub const INLINE_NAME: &str = "inline";
pub use crate::engine::workdirs::INLINE_DIR;
pub const MAX_FILES: usize = 256;
pub const MAX_TOTAL_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_PATH_BYTES: usize = 512;
pub const MAX_DEPTH: usize = 16;
const MAX_COMPONENT_BYTES: usize = 255;

/// `POST /v1/execute`: code that is not on disk. Exactly one of `files` and `code`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct InlineRequest {
    /// A runtime spec: `bun`, `node@22`, `deno`, `quickjs`, or a custom runtime.
    #[schema(min_length = 1, example = "bun")]
    runtime: String,
    #[schema(schema_with = super::fields::files)]
    files: Option<Files>,
    /// One entry file's content (shorthand for `files`).
    #[schema(example = "console.log(JSON.stringify({ ok: true }))")]
    code: Option<String>,
    /// The file to run; defaults as documented.
    entry: Option<String>,
    /// Any JSON value, given to the program as `IGNITE_INPUT`. Default `{}`.
    input: Option<serde_json::Value>,
    limits: Option<InlineLimits>,
    /// Audit mode (default true): the report's `securityAudit` lists what the kernel reported.
    audit: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InlineLimits {
    #[serde(default, deserialize_with = "super::fields::integer")]
    #[schema(schema_with = super::fields::timeout_ms)]
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "super::fields::integer")]
    #[schema(schema_with = super::fields::memory_mb)]
    memory_mb: Option<u32>,
    #[schema(schema_with = super::fields::cpu)]
    cpu: Option<f64>,
}

/// `files` in request order, duplicates kept so that they can be refused (a map would keep the
/// last one silently).
#[derive(Debug)]
struct Files(Vec<(String, String)>);

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

/// Why a set of files is refused; each names the file and what to do.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FilesError {
    #[error("files: {count} files; at most {MAX_FILES} are accepted")]
    TooMany { count: usize },
    #[error("files: {total} bytes of content; at most {MAX_TOTAL_BYTES} are accepted")]
    TooLarge { total: usize },
    #[error("files: path {path:?} {reason}")]
    BadPath { path: String, reason: String },
    #[error("files: {a:?} and {b:?} are the same path")]
    Duplicate { a: String, b: String },
    #[error("files: {file:?} is a file, but {under:?} needs it to be a directory")]
    FileIsDir { file: String, under: String },
}

impl FilesError {
    fn status(&self) -> StatusCode {
        match self {
            FilesError::TooMany { .. } | FilesError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A relative path with `.` and empty components dropped; refuses anything that could leave
/// the run directory or mean different things to different readers.
pub fn normalise(path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("is {} bytes long; at most {MAX_PATH_BYTES} are accepted", path.len()));
    }
    if path.bytes().any(|b| b == 0 || b.is_ascii_control()) {
        return Err("contains a NUL or control character".into());
    }
    if path.contains('\\') {
        return Err("contains a backslash; separate directories with '/'".into());
    }
    if path.starts_with('/') {
        return Err("is absolute; give it relative to the run directory (e.g. \"src/a.ts\")".into());
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("contains `..`; paths must stay inside the run directory".into()),
            p if p.len() > MAX_COMPONENT_BYTES => {
                return Err(format!("has a component longer than {MAX_COMPONENT_BYTES} bytes"));
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("names no file".into());
    }
    if parts.len() > MAX_DEPTH {
        return Err(format!("is {} levels deep; at most {MAX_DEPTH} are accepted", parts.len()));
    }
    Ok(parts.join("/"))
}

/// Checks count, size and every path; returns the files by normalised path.
pub fn validate_files(files: &[(String, String)]) -> Result<BTreeMap<String, &str>, FilesError> {
    if files.len() > MAX_FILES {
        return Err(FilesError::TooMany { count: files.len() });
    }
    let total: usize = files.iter().map(|(p, c)| p.len() + c.len()).sum();
    if total > MAX_TOTAL_BYTES {
        return Err(FilesError::TooLarge { total });
    }
    let mut out: BTreeMap<String, &str> = BTreeMap::new();
    let mut original: BTreeMap<String, &str> = BTreeMap::new();
    for (path, content) in files {
        let norm = normalise(path).map_err(|reason| FilesError::BadPath { path: path.clone(), reason })?;
        if let Some(a) = original.get(&norm) {
            return Err(FilesError::Duplicate { a: (*a).to_string(), b: path.clone() });
        }
        original.insert(norm.clone(), path);
        out.insert(norm, content);
    }
    // Sorted, a file's descendants ("a/…") follow it, possibly after siblings like "a.ts".
    let dirs: BTreeSet<&str> = out.keys().flat_map(|p| p.match_indices('/').map(move |(i, _)| &p[..i])).collect();
    for dir in dirs {
        if out.contains_key(dir) {
            let under = out.keys().find(|p| p.starts_with(&format!("{dir}/"))).cloned().unwrap_or_default();
            return Err(FilesError::FileIsDir { file: original[dir].to_string(), under: original[&under].to_string() });
        }
    }
    Ok(out)
}

/// Writes the files into a fresh directory under `parent`: root-owned, world-readable (the
/// sandbox user reads it), nothing in it a link. Removed when the returned guard drops.
fn write_run_dir(parent: &Path, files: &BTreeMap<String, &str>) -> std::io::Result<Cleanup> {
    fs::create_dir_all(parent)?;
    fs::set_permissions(parent, fs::Permissions::from_mode(0o755))?;
    let guard = Cleanup::new(parent.join(temp_name("run")));
    let dir = guard.path();
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for (path, content) in files {
        let full = dir.join(path);
        let mut d = dir.to_path_buf();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            d.push(part);
            if fs::symlink_metadata(&d).is_err() {
                fs::create_dir(&d)?;
                fs::set_permissions(&d, fs::Permissions::from_mode(0o755))?;
            }
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&full)?;
        f.write_all(content.as_bytes())?;
        fs::set_permissions(&full, fs::Permissions::from_mode(0o644))?;
    }
    Ok(guard)
}

/// A session run's share of [`run`]: its workspace and uid, its turn, and its execution slot
/// when it already waited for one (a run that had to wait for its turn was admitted first).
pub(super) struct SessionTurn {
    pub workspace: PathBuf,
    pub identity: Arc<UidLease>,
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
    (status = 422, body = ErrorBody), (status = 500, body = ErrorBody), (status = 503, body = ErrorBody),
))]
pub(super) async fn execute(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<JsonObject<InlineRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonObject(req) = body?;
    run(&st, req, None, Format::from_accept(&headers)).await
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
    let runtime = st.engine.registry().resolve(&req.runtime).map_err(|e| invalid(format!("runtime: {e}")))?;
    let limits = req.limits.unwrap_or_default();
    if let Some(v) = limits.memory_mb {
        service::check_range(v, MEMORY_MB_RANGE, "MiB").map_err(|r| invalid(format!("limits.memoryMb {r}")))?;
    }
    if let Some(v) = limits.timeout_ms {
        service::check_range(v, TIMEOUT_MS_RANGE, "ms").map_err(|r| invalid(format!("limits.timeoutMs {r}")))?;
    }
    if let Some(v) = limits.cpu
        && (!v.is_finite() || v < CPU_LIMIT_RANGE.0 || v > CPU_LIMIT_RANGE.1)
    {
        return Err(invalid(format!(
            "limits.cpu must be a number of CPUs between {} and {} (got {v})",
            CPU_LIMIT_RANGE.0, CPU_LIMIT_RANGE.1
        )));
    }
    let files = match (req.files, req.code) {
        (Some(_), Some(_)) => return Err(invalid("give either `files` or `code`, not both")),
        (None, None) => return Err(invalid("give the program as `files` ({path: content}) or `code` (one file)")),
        (Some(Files(files)), None) => files,
        (None, Some(code)) => {
            let name = match &req.entry {
                Some(e) => e.clone(),
                None if runtime.typescript == TypeScript::Native => "index.ts".to_string(),
                None => "index.js".to_string(),
            };
            vec![(name, code)]
        }
    };
    let files = validate_files(&files).map_err(|e| {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "files_too_large" } else { "invalid_files" };
        ApiError::new(e.status(), code, e.to_string())
    })?;
    let entry = match &req.entry {
        Some(e) => {
            let n = normalise(e).map_err(|r| invalid(format!("entry {e:?} {r}")))?;
            if !files.contains_key(&n) {
                return Err(invalid(format!("entry {e:?} is not one of the files")));
            }
            n
        }
        None => {
            service::DEFAULT_ENTRIES.iter().find(|c| files.contains_key(**c)).map(|c| (*c).to_string()).ok_or_else(
                || {
                    invalid(format!(
                        "no entry file among the files (tried {}); name one with `entry`",
                        service::DEFAULT_ENTRIES.join(", ")
                    ))
                },
            )?
        }
    };
    let input = req.input.as_ref().map_or_else(|| "{}".to_string(), |v| v.to_string());
    if input.len() > st.max_input {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "input_too_large",
            format!("input is {} bytes serialised; the limit is {}", input.len(), st.max_input),
        ));
    }

    let parent = st.engine.state_dir().join(INLINE_DIR);
    let guard = write_run_dir(&parent, &files).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("cannot write the run directory: {e}"))
    })?;
    let raw = RawService {
        name: Some(INLINE_NAME.to_string()),
        runtime: Some(req.runtime.clone()),
        entry: Some(entry),
        memory_mb: limits.memory_mb,
        timeout_ms: limits.timeout_ms,
        cpu_limit: limits.cpu,
        ..RawService::default()
    };
    let service = service::resolve(
        raw,
        guard.path(),
        Path::new("request"),
        false,
        &Overrides::default(),
        &service::PassEnv::none(),
    )
    .map_err(|e| invalid(e.to_string()))?;
    // Installing npm packages is slow, reaches the network and fills the shared cache: an
    // anonymous request should not trigger it. Services on disk can declare dependencies.
    match deps::plan(&service, st.engine.registry()) {
        Ok(Modules::Install(_)) => {
            return Err(invalid(
                "files: package.json declares dependencies; /v1/execute does not install npm packages (run a service from --services for that, or send the modules' files under node_modules/)",
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(invalid(e.to_string().replace(&format!("{}/", guard.path().display()), ""))),
    }

    if st.draining.load(Ordering::SeqCst) {
        return Err(shutting_down());
    }
    let (workspace, identity, turn, admitted) = match session {
        Some(s) => (Some(s.workspace), Some(s.identity), Some(s.turn), s.permit),
        None => (None, None, None, None),
    };
    let permit = match admitted {
        Some(permit) => permit,
        None => st.admission.admit().await.map_err(|_| busy())?,
    };
    if st.draining.load(Ordering::SeqCst) {
        return Err(shutting_down());
    }
    // Never a policy file from the request's own files: inline code gets the built-in policy.
    let audit = req.audit.unwrap_or(true);
    let policy = policy::builtin_only(audit)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .policy;
    let job = Job { service, input, policy, grace: DEFAULT_GRACE, workspace, audit, identity };
    run_job(st, job, permit, (guard, turn), format, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect()
    }

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(normalise("./src//a.ts").unwrap(), "src/a.ts");
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a\\..\\x", "a\0b", ".", "./", "a\nb"] {
            assert!(normalise(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalise(&"a/".repeat(MAX_DEPTH + 1)).unwrap_err().contains("levels deep"));
        assert!(normalise(&"a".repeat(MAX_PATH_BYTES + 1)).unwrap_err().contains("bytes long"));
        assert!(normalise(&"a".repeat(MAX_COMPONENT_BYTES + 1)).unwrap_err().contains("component"));
    }

    #[test]
    fn duplicates_file_dir_conflicts_and_limits_are_refused() {
        let list = files(&[("index.ts", "x"), ("lib/a.ts", "y"), ("lib.ts", "z")]);
        let ok = validate_files(&list).unwrap();
        assert_eq!(ok.keys().collect::<Vec<_>>(), ["index.ts", "lib.ts", "lib/a.ts"]);
        assert_eq!(
            validate_files(&files(&[("a.ts", ""), ("./a.ts", "")])).unwrap_err(),
            FilesError::Duplicate { a: "a.ts".into(), b: "./a.ts".into() }
        );
        assert_eq!(
            validate_files(&files(&[("lib", ""), ("lib/a.ts", "")])).unwrap_err(),
            FilesError::FileIsDir { file: "lib".into(), under: "lib/a.ts".into() }
        );
        let many: Vec<_> = (0..=MAX_FILES).map(|i| (format!("f{i}.js"), String::new())).collect();
        assert_eq!(validate_files(&many).unwrap_err().status(), StatusCode::PAYLOAD_TOO_LARGE);
        let big = files(&[("a.js", &"x".repeat(MAX_TOTAL_BYTES))]);
        assert!(matches!(validate_files(&big).unwrap_err(), FilesError::TooLarge { .. }));
    }

    #[test]
    fn run_dir_is_world_readable_and_removed_with_its_guard() {
        let d = tempfile::tempdir().unwrap();
        let parent = d.path().join("inline");
        let list = files(&[("index.ts", "1"), ("src/deep/b.ts", "2")]);
        let guard = write_run_dir(&parent, &validate_files(&list).unwrap()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(guard.path()), 0o755);
        assert_eq!(mode(&guard.path().join("src/deep")), 0o755);
        assert_eq!(mode(&guard.path().join("src/deep/b.ts")), 0o644);
        assert_eq!(fs::read_to_string(guard.path().join("src/deep/b.ts")).unwrap(), "2");
        drop(guard);
        assert_eq!(fs::read_dir(&parent).unwrap().count(), 0);
    }
}
