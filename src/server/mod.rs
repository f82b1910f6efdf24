//! `ignite serve`: the HTTP API over [`Engine`]. Routes, DTOs, auth, limits and the mapping of
//! errors to statuses live here; everything about sandboxes (warm or cold, inline directories,
//! session workspaces, the lock and preflight gates) stays behind [`Engine::run`].

mod auth;
mod catalog;
mod conn;
mod error;
mod fields;
mod inline;
mod limits;
mod mcp;
mod metrics;
mod openapi;
mod routes;
mod sessions;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use auth::{KeyError, Keys};
pub use conn::ConnLimits;
pub use mcp::{StdioConfig as McpConfig, serve_stdio as serve_mcp_stdio};
pub use sessions::SessionConfig;

use crate::engine::{Engine, LockCheck, MAX_INPUT_BYTES, PoolConfig, PreflightGate};
use catalog::Catalog;
use limits::{Admission, RateLimiter};

/// Resolved settings of `ignite serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub services_dir: PathBuf,
    pub listen: Listen,
    pub keys: Keys,
    /// The host variables a service's `${NAME}` may read (never ignite's own).
    pub pass_env: crate::data::service::PassEnv,
    /// Allows serving a non-loopback address without keys.
    pub insecure_no_auth: bool,
    /// Take the client address from the last `X-Forwarded-For` entry (the one the proxy added).
    pub trust_proxy: bool,
    /// Requests per minute per client (key, or address without keys); 0 turns the limit off.
    pub rate_limit: u32,
    /// What the runs started through this server are given (shared with `ignite mcp`).
    pub run: RunFlags,
    /// Largest request body in bytes.
    pub max_body: usize,
    /// How long running executions may take to finish after SIGTERM/SIGINT before they are
    /// cancelled.
    pub shutdown_timeout: Duration,
    /// Caps on connections and the deadlines of their requests' heads and idle waits.
    pub connections: ConnLimits,
    /// `--node-name`: this server's name among several behind one address (e.g. its pod's).
    /// Every response names it in `X-Ignite-Node`, and session ids carry it as a prefix, so a
    /// router (or the client) can send a session's requests to the server that holds its
    /// workspace; a session request that names another node is answered 421 `wrong_node`.
    pub node_name: Option<String>,
}

/// The response header that names the server (`--node-name`).
pub const NODE_HEADER: &str = "x-ignite-node";

/// Whether `name` can be a node name: what Kubernetes allows for a pod's or a node's name (a
/// DNS subdomain: lower-case letters, digits, `-` and `.`, starting and ending with a letter or
/// digit, at most 253 bytes), so it is also a valid header value and a valid URL path segment.
pub fn valid_node_name(name: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter().all(|&c| alnum(c) || c == b'-' || c == b'.')
        && b.first().is_some_and(|&c| alnum(c))
        && b.last().is_some_and(|&c| alnum(c))
}

/// Where the server listens.
#[derive(Debug, Clone)]
pub enum Listen {
    /// Bind this address (`--host`, `--port`).
    Bind(SocketAddr),
    /// The listening socket a socket-activating supervisor passed in (systemd's
    /// `ignite.socket`), already taken over: it outlives this process, so connections made
    /// while the service restarts wait in its queue instead of being refused.
    Inherited(Arc<std::net::TcpListener>),
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to serve {addr} without API keys: anyone who can reach it could run code; give keys with --api-key-file or IGNITE_API_KEYS, bind 127.0.0.1, or pass --insecure-no-auth"
    )]
    Insecure { addr: SocketAddr },
    // The I/O error is part of the message and deliberately not a `source`: the CLI prints
    // the source chain too, and would say it twice.
    #[error("services directory {path}: {error}")]
    ServicesDir { path: PathBuf, error: std::io::Error },
    #[error("failed to listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: std::io::Error },
    #[error("failed to listen on the socket passed by socket activation: {0}")]
    Inherited(std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

/// What every handler shares.
pub(crate) struct AppState {
    engine: Arc<Engine>,
    catalog: Catalog,
    keys: Keys,
    limiter: Option<RateLimiter>,
    admission: Admission,
    trust_proxy: bool,
    max_input: usize,
    /// `--allow-env`: variables inline code may be given (services have their `allowEnv`).
    allow_env: Vec<String>,
    /// Set once a shutdown signal arrived: queued executions are refused, not started.
    draining: AtomicBool,
    /// Cancelled at the shutdown deadline; each run gets a child of it.
    cancel_runs: CancellationToken,
    /// The executions' blocking tasks, awaited before the process exits.
    runs: TaskTracker,
    sessions: Arc<sessions::Sessions>,
    metrics: metrics::Metrics,
    /// The gates every execution passes (`--skip-preflight`, `--locked`).
    preflight: PreflightGate,
    lock: LockCheck,
    /// `X-Ignite-Node` on every response (`--node-name`).
    node_header: Option<axum::http::HeaderValue>,
}

/// What both edges (`serve` and `ignite mcp`) take from their flags for the runs they start,
/// checked the same way by `RunFlags::check`.
#[derive(Debug, Clone)]
pub struct RunFlags {
    /// Executions running at once.
    pub max_concurrent: usize,
    /// Executions that may wait for a slot; more are refused (503, or `busy` over MCP).
    pub queue: usize,
    /// Largest `input`, serialised, in bytes.
    pub max_input: usize,
    /// `--allow-env`: the variables inline code and session runs may be given (`env`).
    pub allow_env: Vec<String>,
    pub sessions: SessionConfig,
    /// Warm sandboxes for services, inline code and sessions.
    pub pool: PoolConfig,
    /// `--skip-preflight`: executions start without the preflight checks; by default a failing
    /// check refuses the execution (`preflight_failed`, with the checks).
    pub skip_preflight: bool,
    /// `--locked`: a service with an `ignite.lock` runs only while it matches it
    /// (`lock_drift` otherwise); services without one run.
    pub locked: bool,
}

impl RunFlags {
    /// Refuses values no server can work with, naming the flag.
    pub(crate) fn check(&self) -> Result<(), ServeError> {
        if self.max_concurrent == 0 {
            return Err(ServeError::Invalid("--max-concurrent must be at least 1".into()));
        }
        if self.max_input == 0 || self.max_input > MAX_INPUT_BYTES {
            return Err(ServeError::Invalid(format!(
                "--max-input must be between 1 and {MAX_INPUT_BYTES} bytes (past 65536 the input reaches the program as a file)"
            )));
        }
        for name in &self.allow_env {
            crate::data::program_io::check_allowed_name(name)
                .map_err(|r| ServeError::Invalid(format!("--allow-env {r}")))?;
        }
        let sc = &self.sessions;
        if sc.default_ttl.is_zero() || sc.default_ttl > sc.max_ttl {
            return Err(ServeError::Invalid("--session-ttl must be at least 1 and at most --session-max-ttl".into()));
        }
        if sc.quota_mb == 0 || sc.max_sessions == 0 {
            return Err(ServeError::Invalid("--session-quota-mb and --max-sessions must be at least 1".into()));
        }
        self.pool.check().map_err(|e| ServeError::Invalid(e.to_string()))
    }
}

impl AppState {
    /// The state for `settings`, with the HTTP server's own parts (keys, rate limit, proxy,
    /// node name) off: `serve` sets those.
    pub(crate) fn new(
        engine: Arc<Engine>,
        catalog: Catalog,
        sessions: Arc<sessions::Sessions>,
        settings: &RunFlags,
    ) -> AppState {
        AppState {
            engine,
            catalog,
            keys: Keys::default(),
            limiter: None,
            admission: Admission::new(settings.max_concurrent, settings.queue),
            trust_proxy: false,
            max_input: settings.max_input,
            allow_env: settings.allow_env.clone(),
            draining: AtomicBool::new(false),
            cancel_runs: CancellationToken::new(),
            runs: TaskTracker::new(),
            sessions,
            metrics: metrics::Metrics::default(),
            preflight: if settings.skip_preflight { PreflightGate::Skip } else { PreflightGate::Enforce },
            lock: if settings.locked { LockCheck::IfPresent } else { LockCheck::Off },
            node_header: None,
        }
    }
}

/// Serves until SIGTERM/SIGINT, then drains: no new connections, running executions get
/// `shutdown_timeout` to finish, then they are cancelled (their sandboxes removed by the
/// supervisor) and awaited. Must run on a multi-threaded tokio runtime.
pub async fn serve(mut config: Config, engine: Engine) -> Result<(), ServeError> {
    // An inherited socket is judged by the address it is bound to, like a bound one.
    let addr = match &config.listen {
        Listen::Bind(addr) => *addr,
        Listen::Inherited(l) => l.local_addr().map_err(ServeError::Inherited)?,
    };
    if config.keys.is_empty() && !addr.ip().is_loopback() && !config.insecure_no_auth {
        return Err(ServeError::Insecure { addr });
    }
    config.run.check()?;
    if config.max_body < config.run.max_input {
        return Err(ServeError::Invalid("--max-body must be at least --max-input".into()));
    }
    if config.run.sessions.max_per_key == 0 {
        return Err(ServeError::Invalid("--max-sessions-per-key must be at least 1".into()));
    }
    let cl = &config.connections;
    if cl.max_connections == 0 || cl.max_per_peer == 0 {
        return Err(ServeError::Invalid("--max-connections and --max-connections-per-peer must be at least 1".into()));
    }
    if cl.header_timeout.is_zero() || cl.idle_timeout.is_zero() {
        return Err(ServeError::Invalid("--header-timeout and --idle-timeout must be at least 1 second".into()));
    }
    if let Some(name) = config.node_name.as_deref().filter(|n| !valid_node_name(n)) {
        return Err(ServeError::Invalid(format!(
            "--node-name {name:?} is not a node name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 bytes (a Kubernetes pod or node name)"
        )));
    }
    let dir = config
        .services_dir
        .canonicalize()
        .and_then(|d| std::fs::read_dir(&d).map(|_| d))
        .map_err(|error| ServeError::ServicesDir { path: config.services_dir.clone(), error })?;

    let engine = Arc::new(engine.with_pool(config.run.pool.clone()));
    let reaped = engine.reap_stale().await;
    if !reaped.is_empty() {
        tracing::info!(count = reaped.len(), ids = %reaped.join(","), "removed sandboxes left by an earlier process");
    }
    let left = engine.reap_server_dirs();
    if !left.sessions.is_empty() || !left.inline.is_empty() {
        tracing::info!(
            sessions = left.sessions.len(),
            inline = left.inline.len(),
            "removed workspaces and code directories left by an earlier process"
        );
    }

    let sessions =
        Arc::new(sessions::Sessions::new(engine.state_dir(), config.run.sessions.clone(), config.node_name.clone()));
    let catalog = Catalog::new(dir, config.pass_env.clone());
    let state = Arc::new(AppState {
        keys: config.keys.clone(),
        limiter: (config.rate_limit > 0).then(|| RateLimiter::new(config.rate_limit)),
        trust_proxy: config.trust_proxy,
        // Checked above: a valid node name is a valid header value.
        node_header: config.node_name.as_deref().and_then(|n| axum::http::HeaderValue::from_str(n).ok()),
        ..AppState::new(engine, catalog, sessions, &config.run)
    });
    let app = routes::router(state.clone(), config.max_body);

    // Installed before the listening line: a SIGTERM sent right after it must drain, not kill.
    let signals =
        Signals::install().map_err(|e| ServeError::Invalid(format!("cannot install signal handlers: {e}")))?;
    let activated = matches!(config.listen, Listen::Inherited(_));
    // Taken out of the config, so that the accept loop holds this process's only descriptor of
    // the socket and closes it when it stops accepting; the supervisor's own copy keeps the
    // socket open, and later connections wait in its queue for the next server.
    let listener = match std::mem::replace(&mut config.listen, Listen::Bind(addr)) {
        Listen::Bind(addr) => {
            tokio::net::TcpListener::bind(addr).await.map_err(|error| ServeError::Bind { addr, error })?
        }
        Listen::Inherited(shared) => Arc::try_unwrap(shared)
            .or_else(|shared| shared.try_clone())
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(ServeError::Inherited)?,
    };
    let bound = listener.local_addr().map_err(|error| ServeError::Bind { addr, error })?;
    prestart(&state);
    // One machine-readable line, so whoever started us (with --port 0) learns the port.
    println!("{}", serde_json::json!({ "listening": bound.to_string() }));
    tracing::info!(
        address = %bound,
        auth = !state.keys.is_empty(),
        node = config.node_name.as_deref().unwrap_or("-"),
        socket_activated = activated,
        "ignite serve listening"
    );

    let stop_accepting = CancellationToken::new();
    let sweeper = tokio::spawn(state.sessions.clone().sweep());
    let signals = tokio::spawn(watch_signals(signals, state.clone(), stop_accepting.clone(), config.shutdown_timeout));
    conn::serve(listener, app, config.connections.clone(), stop_accepting.clone()).await;
    // Runs whose client went away are still going: they too finish (or are cancelled) first.
    state.runs.close();
    state.runs.wait().await;
    sweeper.abort();
    state.engine.shutdown().await;
    state.sessions.remove_all().await;
    signals.abort();
    tracing::info!("ignite serve stopped");
    Ok(())
}

/// Starts each catalog service's `min` warm sandboxes, for the runs an HTTP execute without
/// options makes (audit on, the service's own limits and policy). Services that do not load,
/// or whose runs cannot be warm, are skipped: their requests say why when they come.
fn prestart(state: &AppState) {
    let services = match state.catalog.list() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the services to start warm sandboxes for");
            return;
        }
    };
    for info in services.into_iter().filter(|s| s.valid) {
        let catalog::Lookup::Found(service) = state.catalog.lookup(&info.name, &Default::default()) else { continue };
        if let Ok(Some(started)) = state.engine.warm_up(*service, true) {
            tracing::info!(service = %info.name, started, "starting warm sandboxes");
        }
    }
}

struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// First SIGTERM/SIGINT: stop accepting and start the deadline; at the deadline, or at a
/// second signal, cancel the runs still going.
async fn watch_signals(
    mut signals: Signals,
    state: Arc<AppState>,
    stop_accepting: CancellationToken,
    timeout: Duration,
) {
    signals.recv().await;
    state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    tracing::info!(
        running = state.admission.running(),
        timeout_ms = timeout.as_millis() as u64,
        "shutting down: no new requests; waiting for running executions"
    );
    stop_accepting.cancel();
    tokio::select! {
        _ = tokio::time::sleep(timeout) => {}
        _ = signals.recv() => {}
    }
    if state.admission.running() > 0 {
        tracing::warn!(running = state.admission.running(), "cancelling the executions still running");
    }
    state.cancel_runs.cancel();
}

#[cfg(test)]
mod tests {
    use super::valid_node_name;

    #[test]
    fn node_names_are_kubernetes_pod_or_node_names() {
        for ok in ["ignite-0", "a", "ip-10-0-1-2.ec2.internal", &"a".repeat(253)] {
            assert!(valid_node_name(ok), "{ok}");
        }
        for bad in ["", "Ignite-0", "-a", "a-", "a.", "a_b", "a b", "a/b", "é", &"a".repeat(254)] {
            assert!(!valid_node_name(bad), "{bad}");
        }
    }
}
