//! From the global flags to what the commands need: the engine's settings and the engine, the
//! custom runtimes directories, the entrypoint, the root check and an async runtime.

use std::path::PathBuf;

use anyhow::{Context, anyhow};

use ignite::engine::{Engine, HostChoice, Settings};

use super::GlobalArgs;

pub(super) fn tokio_rt() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("failed to start the async runtime")
}

pub(super) fn settings(g: &GlobalArgs) -> anyhow::Result<Settings> {
    Ok(Settings::detect(&host_choice(g))?)
}

fn host_choice(g: &GlobalArgs) -> HostChoice {
    HostChoice {
        state_dir: g.state_dir.clone(),
        cache_dir: g.cache_dir.clone(),
        oci_runtime: g.oci_runtime.clone(),
        cgroup_driver: g.cgroup_driver,
        runtimes_dirs: g.runtimes_dirs.clone(),
        install_ca_file: g.install_ca_file.clone(),
        ignite_binary: None,
    }
}

/// The custom runtimes directories the engine would use (see [`ignite::engine::runtimes_dirs`]).
pub(super) fn runtimes_dirs(g: &GlobalArgs) -> Vec<PathBuf> {
    ignite::engine::runtimes_dirs(&g.runtimes_dirs)
}

pub(super) fn engine(g: &GlobalArgs) -> anyhow::Result<Engine> {
    Ok(Engine::new(settings(g)?)?)
}

/// The entrypoint ships beside the `ignite` binary; `IGNITE_INIT` overrides.
pub(super) fn find_init() -> anyhow::Result<PathBuf> {
    ignite::engine::find_init().map_err(|e| anyhow!(e))
}
