//! `ignite mcp`: the flags → the MCP server's settings, then the tools on stdin/stdout until
//! the client closes them.

use anyhow::Context;

use ignite::engine::Sizing;

use super::GlobalArgs;
use super::args::McpArgs;
use super::serve::pool_config;
use super::settings::engine;

pub(super) fn mcp(g: &GlobalArgs, a: McpArgs) -> anyhow::Result<i32> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool =
        pool_config(Sizing { min: a.pool_min, max: a.pool_max }, &a.pool_overrides, a.pool_idle_ttl, a.pool_memory_mb)?;
    let config = ignite::server::McpConfig {
        services_dir: a.services,
        pass_env: g.passed_env()?,
        run: ignite::server::RunFlags {
            max_concurrent: a.max_concurrent.unwrap_or(cpus),
            queue: a.queue,
            max_input: a.max_input,
            allow_env: a.allow_env,
            sessions: ignite::server::SessionConfig {
                default_ttl: std::time::Duration::from_secs(a.session_ttl),
                max_ttl: std::time::Duration::from_secs(a.session_max_ttl),
                quota_mb: a.session_quota_mb,
                max_sessions: a.max_sessions,
                // One client: the per-key cap is the global one.
                max_per_key: a.max_sessions,
                max_waiting: a.session_max_waiting,
            },
            pool,
            skip_preflight: a.skip_preflight,
            locked: a.locked,
        },
    };
    let engine = engine(g)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    rt.block_on(ignite::server::serve_mcp_stdio(config, engine))?;
    Ok(0)
}
