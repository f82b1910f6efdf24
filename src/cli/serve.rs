//! `ignite serve`: the flags → the server's configuration and the engine's warm pool, then the
//! HTTP server until SIGTERM/SIGINT.

use anyhow::Context;

use ignite::engine::{PoolConfig, Sizing, default_budget_mb, parse_override};

use super::GlobalArgs;
use super::args::{RunFlagArgs, ServeArgs};
use super::settings::engine;

pub(super) fn serve(g: &GlobalArgs, a: ServeArgs) -> anyhow::Result<i32> {
    let env_keys = ignite::server::Keys::take_env()?;
    // Also before any thread starts: the activation variables leave the environment here.
    let inherited = ignite::engine::take_activated_listener()?;
    let listen = match inherited {
        Some(socket) => {
            if a.host.is_some() || a.port.is_some() {
                anyhow::bail!(
                    "--host and --port cannot be used with socket activation: the socket unit's ListenStream= says where ignite serve listens"
                );
            }
            ignite::server::Listen::Inherited(std::sync::Arc::new(socket))
        }
        None => ignite::server::Listen::Bind(std::net::SocketAddr::new(
            a.host.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            a.port.unwrap_or(3000),
        )),
    };
    let keys = ignite::server::Keys::load(a.api_key_file.as_deref(), env_keys.as_deref())?;
    let pass_env = g.passed_env()?;
    let config = ignite::server::Config {
        services_dir: a.services,
        listen,
        keys,
        pass_env,
        insecure_no_auth: a.insecure_no_auth,
        trust_proxy: a.trust_proxy,
        rate_limit: a.rate_limit,
        run: run_flags(a.run, a.max_sessions_per_key)?,
        max_body: a.max_body,
        shutdown_timeout: std::time::Duration::from_secs(a.shutdown_timeout),
        connections: ignite::server::ConnLimits {
            max_connections: a.max_connections,
            max_per_peer: a.max_connections_per_peer,
            header_timeout: std::time::Duration::from_secs(a.header_timeout),
            idle_timeout: std::time::Duration::from_secs(a.idle_timeout),
        },
        // An empty IGNITE_NODE_NAME (a template that left it blank) means none.
        node_name: a.node_name.filter(|n| !n.is_empty()),
    };
    let engine = engine(g)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    rt.block_on(ignite::server::serve(config, engine))?;
    Ok(0)
}

/// What the runs are given, from the flags `serve` and `mcp` share; `max_per_key` is the cap
/// of sessions per API key.
pub(super) fn run_flags(a: RunFlagArgs, max_per_key: usize) -> anyhow::Result<ignite::server::RunFlags> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool =
        pool_config(Sizing { min: a.pool_min, max: a.pool_max }, &a.pool_overrides, a.pool_idle_ttl, a.pool_memory_mb)?;
    Ok(ignite::server::RunFlags {
        max_concurrent: a.max_concurrent.unwrap_or(cpus),
        queue: a.queue,
        max_input: a.max_input,
        allow_env: a.allow_env,
        sessions: ignite::server::SessionConfig {
            default_ttl: std::time::Duration::from_secs(a.session_ttl),
            max_ttl: std::time::Duration::from_secs(a.session_max_ttl),
            quota_mb: a.session_quota_mb,
            max_sessions: a.max_sessions,
            max_per_key,
            max_waiting: a.session_max_waiting,
        },
        pool,
        skip_preflight: a.skip_preflight,
        locked: a.locked,
    })
}

/// The warm pool's settings from the pool flags.
fn pool_config(
    default: Sizing,
    per_service: &[String],
    idle_ttl: u64,
    memory_mb: Option<u64>,
) -> anyhow::Result<PoolConfig> {
    if idle_ttl == 0 {
        anyhow::bail!("--pool-idle-ttl must be at least 1 second");
    }
    let mut overrides = std::collections::BTreeMap::new();
    for text in per_service {
        let (name, sizing) = parse_override(text)?;
        overrides.insert(name, sizing);
    }
    let memory_budget_mb = match memory_mb {
        Some(mb) => mb,
        None => {
            let meminfo = std::fs::read_to_string("/proc/meminfo").context("failed to read /proc/meminfo")?;
            default_budget_mb(&meminfo)
        }
    };
    Ok(PoolConfig { default, overrides, idle_ttl: std::time::Duration::from_secs(idle_ttl), memory_budget_mb })
}
