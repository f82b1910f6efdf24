//! `ignite env [DIR]`: where each setting came from (flag, environment, default); the probing
//! and the report are `ignite::host::envinfo`.

use std::path::PathBuf;

use anyhow::Context;
use clap::ArgMatches;
use clap::parser::ValueSource;

use ignite::engine::{RUNTIMES_DIR_ENV, SYSTEM_CA_FILE};
use ignite::host::envinfo::{self, Inputs, Source};

use super::{GlobalArgs, find_init, print_stdout, runtimes_dirs};

pub fn env(g: &GlobalArgs, matches: &ArgMatches, dir: Option<PathBuf>, json: bool) -> anyhow::Result<i32> {
    let source = |id: &str| match matches.value_source(id) {
        Some(ValueSource::CommandLine) => Source::Flag,
        Some(ValueSource::EnvVariable) => Source::Env,
        _ => Source::Default,
    };
    let dirs = runtimes_dirs(g);
    let dirs_source = if !g.runtimes_dirs.is_empty() {
        Source::Flag
    } else if std::env::var_os(RUNTIMES_DIR_ENV).is_some() {
        Source::Env
    } else if dirs.is_empty() {
        Source::Unset
    } else {
        Source::Config
    };
    // As `settings` resolves it, but a named file that is unusable is shown, not an error.
    let ca_file = match &g.install_ca_file {
        Some(p) if !p.as_os_str().is_empty() => (Some(p.clone()), source("install_ca_file")),
        _ => match PathBuf::from(SYSTEM_CA_FILE) {
            p if p.is_file() => (Some(p), Source::System),
            _ => (None, Source::Unset),
        },
    };
    let inputs = Inputs {
        state_dir: (g.state_dir.clone(), source("state_dir")),
        cache_dir: (g.cache_dir.clone(), source("cache_dir")),
        oci_runtime: (g.oci_runtime.clone(), source("oci_runtime")),
        // Resolved without writing the version cache: `env` only looks.
        oci_binary: ignite::host::doctor::select::resolve(&g.oci_runtime, std::env::var_os("PATH").as_deref(), None)
            .map(|s| s.path)
            .map_err(|e| e.to_string()),
        init_binary: find_init().map_err(|e| e.to_string()),
        runtimes_dirs: (dirs, dirs_source),
        ca_file,
        service: dir,
    };
    let info = envinfo::gather(&inputs);
    let text = if json {
        serde_json::to_string_pretty(&info).context("failed to serialise the environment")? + "\n"
    } else {
        info.render()
    };
    print_stdout(&text)?;
    Ok(0)
}
