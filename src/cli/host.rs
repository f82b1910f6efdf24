//! `ignite doctor` and `ignite cleanup`: whether this host can run sandboxes, and removing what
//! crashed ignite processes left on it.

use anyhow::Context;

use ignite::engine::{Engine, Settings};

use super::settings::tokio_rt;
use super::{GlobalArgs, error_text, find_init, print_stdout, settings};

/// `ignite doctor`: the OCI runtime and entrypoint are resolved exactly as a run resolves them.
pub(super) fn doctor(g: &GlobalArgs, json: bool) -> anyhow::Result<i32> {
    // Resolved but not judged: the doctor's own checks say what this host does to it.
    let path_env = std::env::var_os("PATH");
    let oci = ignite::host::doctor::select::resolve(&g.oci_runtime, path_env.as_deref(), None)
        .map(|s| (s.kind, s.path))
        .map_err(|e| e.to_string());
    let entrypoint = find_init().map_err(|e| error_text(&e));
    let opts = ignite::host::doctor::DoctorOptions::host(
        g.cache_dir.clone(),
        g.state_dir.clone(),
        g.oci_runtime.clone(),
        oci,
        entrypoint,
        g.cgroup_driver,
    );
    let report = ignite::host::doctor::run(&opts);
    let text = if json {
        serde_json::to_string_pretty(&report).context("failed to serialise the doctor's report")? + "\n"
    } else {
        report.table()
    };
    print_stdout(&text)?;
    Ok(report.exit_code())
}

/// `ignite cleanup`: what crashed ignite processes left behind, and staged copies no run uses.
pub(super) fn cleanup(g: &GlobalArgs) -> anyhow::Result<i32> {
    // Cleaning up needs no runtime: a broken custom definition must not block it.
    let engine = Engine::new(Settings { runtimes_dirs: Vec::new(), ..settings(g)? })?;
    let reaped = tokio_rt()?.block_on(engine.reap_stale());
    eprintln!("ignite: removed {} leftover run(s){}", reaped.len(), list_suffix(&reaped));
    let left = engine.reap_server_dirs();
    eprintln!(
        "ignite: removed {} session workspace(s){} and {} inline code director{}{}",
        left.sessions.len(),
        list_suffix(&left.sessions),
        left.inline.len(),
        if left.inline.len() == 1 { "y" } else { "ies" },
        list_suffix(&left.inline)
    );
    let staged = engine.clear_staged();
    eprintln!("ignite: removed {staged} staged TypeScript cop{}", if staged == 1 { "y" } else { "ies" });
    Ok(0)
}

fn list_suffix(ids: &[String]) -> String {
    if ids.is_empty() { String::new() } else { format!(": {}", ids.join(", ")) }
}
