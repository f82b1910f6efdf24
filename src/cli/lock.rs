//! `ignite lock DIR [--check]`; the logic is in `ignite::store::lock` (the `--locked` gate of
//! `run`/`exec` is the engine's).

use std::path::Path;

use anyhow::{Context, bail};

use ignite::data::runtime::Registry;
use ignite::store::bundle::{BundleStore, Progress};
use ignite::store::lock::{self, BundleCheck};

use super::{GlobalArgs, print_stdout, runtimes_dirs};

/// Writes `DIR/ignite.lock`, or with `check` compares DIR with it: exit 0 when up to date,
/// 1 when something drifted (each change printed).
pub fn lock(
    g: &GlobalArgs,
    dir: &Path,
    runtime: Option<&str>,
    check: bool,
    json: bool,
    progress: &dyn Progress,
) -> anyhow::Result<i32> {
    let dir = dir.canonicalize().with_context(|| format!("failed to open service directory {}", dir.display()))?;
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let registry = Registry::load(&runtimes_dirs(g))?;
    let store = BundleStore::new(g.cache_dir.clone());
    let spec = lock::runtime_spec(&dir, runtime)?;
    let rt = registry.resolve(&spec).with_context(|| format!("{}: runtime {spec:?}", dir.display()))?;
    if check {
        let result = lock::check(&dir, &rt, &store, BundleCheck::Ensure(progress))?;
        let text = if json {
            serde_json::to_string_pretty(&result).context("failed to serialise the check")? + "\n"
        } else {
            result.render(&dir)
        };
        print_stdout(&text)?;
        return Ok(if result.up_to_date { 0 } else { 1 });
    }
    let locked = lock::snapshot(&dir, &rt, &store, progress)?;
    let written = lock::write(&dir, &locked)?;
    if json {
        let v = serde_json::json!({ "lockFile": written.path, "written": written.changed, "lock": locked });
        print_stdout(&(serde_json::to_string_pretty(&v).context("failed to serialise the lock")? + "\n"))?;
    } else {
        let what = if written.changed { "wrote" } else { "unchanged:" };
        eprintln!("ignite: {what} {} ({})", written.path.display(), locked.summary());
    }
    Ok(0)
}
