//! `ignite mcp`: the flags → the MCP server's settings, then the tools on stdin/stdout until
//! the client closes them.

use anyhow::Context;

use super::GlobalArgs;
use super::args::McpArgs;
use super::serve::run_flags;
use super::settings::engine;

pub(super) fn mcp(g: &GlobalArgs, a: McpArgs) -> anyhow::Result<i32> {
    // One client: the per-key cap of sessions is the global one.
    let max_per_key = a.run.max_sessions;
    let config = ignite::server::McpConfig {
        services_dir: a.services,
        pass_env: g.passed_env()?,
        run: run_flags(a.run, max_per_key)?,
    };
    let engine = engine(g)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    rt.block_on(ignite::server::serve_mcp_stdio(config, engine))?;
    Ok(0)
}
