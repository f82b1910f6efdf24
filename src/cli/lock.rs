//! `ignite lock DIR [--check]`; the logic is the engine's `write_lock` and `verify_lock` (the
//! `--locked` gate of `run`/`exec` is the engine's too).

use std::path::Path;

use anyhow::Context;

use ignite::engine::Progress;

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
    let dirs = runtimes_dirs(g);
    if check {
        let verified = ignite::engine::verify_lock(dir, runtime, &dirs, &g.cache_dir, progress)?;
        let result = verified.status;
        let text = if json {
            serde_json::to_string_pretty(&result).context("failed to serialise the check")? + "\n"
        } else {
            result.render(&verified.dir)
        };
        print_stdout(&text)?;
        return Ok(if result.up_to_date { 0 } else { 1 });
    }
    let locked = ignite::engine::write_lock(dir, runtime, &dirs, &g.cache_dir, progress)?;
    if json {
        let v = serde_json::json!({ "lockFile": locked.path, "written": locked.changed, "lock": locked.lock });
        print_stdout(&(serde_json::to_string_pretty(&v).context("failed to serialise the lock")? + "\n"))?;
    } else {
        let what = if locked.changed { "wrote" } else { "unchanged:" };
        eprintln!("ignite: {what} {} ({})", locked.path.display(), locked.lock.summary());
    }
    Ok(0)
}
