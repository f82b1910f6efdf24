//! Runs a rootfs recipe: writes the embedded script and its `lib.sh` into a work directory,
//! runs it with `bash` in a cleared environment, and digests the tarball it produced.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::runtime::Recipe;

/// How much of a failed recipe's stderr goes into the error (its end says what went wrong).
const STDERR_TAIL: usize = 4096;

/// The PATH a recipe runs with when ignite itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Errors from running a recipe.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("failed to run recipe {recipe}: could not start bash ({source}); install bash")]
    Spawn {
        recipe: String,
        #[source]
        source: io::Error,
    },
    #[error("recipe {recipe} failed ({status}):\n{stderr}")]
    Failed { recipe: String, status: ExitStatus, stderr: String },
    #[error("recipe {recipe} exited successfully but did not write {path}")]
    NoOutput { recipe: String, path: PathBuf },
    #[error("failed to {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The tarball a recipe built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub path: PathBuf,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// Runs `recipe` on `package`, using `work` (an existing empty directory the caller removes
/// afterwards) for the scripts, the scratch space and the output tarball.
pub fn run(recipe: &Recipe, package: &Path, work: &Path) -> Result<Built, RecipeError> {
    let io_err = |op, path: &Path, source| RecipeError::Io { op, path: path.to_path_buf(), source };
    let scripts = work.join("scripts");
    let scratch = work.join("scratch");
    let out = work.join("rootfs.tar.gz");
    for dir in [&scripts, &scratch] {
        fs::create_dir(dir).map_err(|e| io_err("create", dir, e))?;
    }
    // The recipe sources lib.sh from its own directory, exactly as it does in the source tree.
    let lib = scripts.join("lib.sh");
    let script = scripts.join(format!("{}.sh", recipe.name));
    fs::write(&lib, recipe.lib.as_bytes()).map_err(|e| io_err("write", &lib, e))?;
    fs::write(&script, recipe.script.as_bytes()).map_err(|e| io_err("write", &script, e))?;

    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    // A cleared, fixed environment: locale and time zone change sort order and timestamps, and
    // the tarball must be the same bytes on every build.
    let output = Command::new("bash")
        .arg(&script)
        .env_clear()
        .env("PATH", path)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("SOURCE_DATE_EPOCH", "0")
        .env("IGNITE_PACKAGE", package)
        .env("IGNITE_OUT", &out)
        .env("IGNITE_WORK", &scratch)
        .current_dir(work)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| RecipeError::Spawn { recipe: recipe.name.clone(), source })?;
    if !output.status.success() {
        return Err(RecipeError::Failed {
            recipe: recipe.name.clone(),
            status: output.status,
            stderr: tail(&output.stderr),
        });
    }
    tracing::debug!(recipe = %recipe.name, log = %String::from_utf8_lossy(&output.stderr), "recipe finished");
    match fs::symlink_metadata(&out) {
        Ok(meta) if meta.is_file() => {}
        _ => {
            return Err(RecipeError::NoOutput { recipe: recipe.name.clone(), path: out });
        }
    }
    let digest = super::sha256_file(&out).map_err(|e| io_err("hash", &out, e))?;
    Ok(Built { path: out, digest })
}

/// The last few KiB of a stream, as text, starting at a line boundary when possible.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.len() <= STDERR_TAIL {
        return text.to_string();
    }
    let mut start = text.len() - STDERR_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    let cut = cut.split_once('\n').map_or(cut, |(_, rest)| rest);
    format!("…\n{cut}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn recipe(script: &str) -> Recipe {
        Recipe {
            name: "test".into(),
            script: Cow::Owned(script.to_string()),
            lib: Cow::Borrowed(crate::runtime::RECIPE_LIB),
        }
    }

    #[test]
    fn failure_carries_stderr() {
        let work = tempfile::tempdir().expect("tempdir");
        let err = run(
            &recipe("echo building >&2\necho 'something broke' >&2\nexit 3\n"),
            Path::new("/nonexistent.tgz"),
            work.path(),
        )
        .expect_err("fails");
        let msg = err.to_string();
        assert!(msg.contains("recipe test failed"), "{msg}");
        assert!(msg.contains("something broke"), "{msg}");
    }

    #[test]
    fn missing_inputs_and_tools_fail_clearly() {
        let work = tempfile::tempdir().expect("tempdir");
        let script = "source \"$(dirname \"${BASH_SOURCE[0]}\")/lib.sh\"\n\
                      ignite_require_env IGNITE_PACKAGE NOT_SET_BY_IGNITE\n";
        let msg = run(&recipe(script), Path::new("/p.tgz"), work.path()).expect_err("fails").to_string();
        assert!(msg.contains("NOT_SET_BY_IGNITE is not set"), "{msg}");

        let work = tempfile::tempdir().expect("tempdir");
        let script = "source \"$(dirname \"${BASH_SOURCE[0]}\")/lib.sh\"\n\
                      ignite_require_tools tar no-such-tool-xyz\n";
        let msg = run(&recipe(script), Path::new("/p.tgz"), work.path()).expect_err("fails").to_string();
        assert!(msg.contains("missing host tools: no-such-tool-xyz"), "{msg}");
    }

    #[test]
    fn success_without_output_is_an_error() {
        let work = tempfile::tempdir().expect("tempdir");
        let err = run(&recipe("true\n"), Path::new("/p.tgz"), work.path()).expect_err("fails");
        assert!(matches!(err, RecipeError::NoOutput { .. }), "{err}");
    }

    #[test]
    fn tail_keeps_the_end() {
        let long: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let t = tail(long.as_bytes());
        assert!(t.starts_with("…\nline "), "{}", &t[..20]);
        assert!(t.ends_with("line 1999"));
        assert!(t.len() <= STDERR_TAIL + 4);
    }
}
