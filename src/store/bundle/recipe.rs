//! Runs a rootfs recipe: writes the embedded script, its `lib.sh` and its auxiliary files into a
//! work directory, runs it with `bash` in a cleared environment (on the host, or chrooted into
//! the pinned build environment with only the work directory writable), and digests the
//! tarball it produced.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::data::runtime::Recipe;
use crate::fsutil::{At, IoError};

/// How much of a failed recipe's stderr goes into the error (its end says what went wrong).
const STDERR_TAIL: usize = 4096;

/// The PATH a recipe runs with when ignite itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Errors from running a recipe.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error(
        "failed to run recipe {recipe}: could not start bash ({source}); install bash (recipes of custom runtimes run on the host), or run ignite as root (the built-in recipes run chrooted into the build environment)"
    )]
    Spawn {
        recipe: String,
        #[source]
        source: io::Error,
    },
    #[error("recipe {recipe} failed ({status}):\n{stderr}")]
    Failed { recipe: String, status: ExitStatus, stderr: String },
    #[error(
        "cannot run recipe {recipe} in the build environment: ignite's own root directory is not a mount point (ignite runs in a plain chroot), so the build's mounts could propagate to the host's mount namespace; run ignite where / is a mount point (a container, or `unshare --mount` with the chroot bind-mounted onto itself before entering it), or carry built bundles in with `ignite runtime import`"
    )]
    RootNotAMountPoint { recipe: String },
    #[error("invalid recipe: {problem}")]
    BadFiles { problem: String },
    #[error("recipe {recipe} exited successfully but did not write {path}")]
    NoOutput { recipe: String, path: PathBuf },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// The build environment a recipe runs in, prepared by [`super::builder::ensure`].
pub struct BuildRoot<'a> {
    /// The unpacked environment (mounted read-only for the run).
    pub root: &'a Path,
    /// Variables its definition sets for recipes.
    pub environment: &'a std::collections::BTreeMap<String, String>,
}

/// Where the work directory appears inside a build root.
const INSIDE_WORK: &str = "/ignite";

/// The PATH inside a build root.
const BUILD_ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The tarball a recipe built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub path: PathBuf,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// Runs `recipe` on `package`, using `work` (an existing empty directory the caller removes
/// afterwards) for the scripts, the scratch space and the output tarball; inside `build_root`
/// when one is given, on the host otherwise.
pub fn run(recipe: &Recipe, package: &Path, work: &Path, build_root: Option<&BuildRoot>) -> Result<Built, RecipeError> {
    // Checked before anything is written: a path must not leave the recipe's directory.
    recipe.check_files().map_err(|problem| RecipeError::BadFiles { problem })?;
    let scripts = work.join("scripts");
    let scratch = work.join("scratch");
    let out = work.join("rootfs.tar.gz");
    for dir in [&scripts, &scratch] {
        fs::create_dir(dir).at("create", dir)?;
    }
    // The recipe sources lib.sh from its own directory and finds its files in <name>/ beside
    // itself, exactly as in the source tree (rootfs-scripts/<name>.sh, rootfs-scripts/<name>/).
    let lib = scripts.join("lib.sh");
    let script = scripts.join(format!("{}.sh", recipe.name));
    let files = scripts.join(&recipe.name);
    fs::write(&lib, recipe.lib.as_bytes()).at("write", &lib)?;
    fs::write(&script, recipe.script.as_bytes()).at("write", &script)?;
    fs::create_dir(&files).at("create", &files)?;
    for file in &recipe.files {
        let path = files.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).at("create", parent)?;
        }
        fs::write(&path, &file.contents).at("write", &path)?;
    }

    let mut cmd = match build_root {
        None => {
            let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
            let mut cmd = Command::new("bash");
            cmd.arg(&script)
                .env_clear()
                .env("PATH", path)
                .env("IGNITE_PACKAGE", package)
                .env("IGNITE_OUT", &out)
                .env("IGNITE_WORK", &scratch)
                .env("IGNITE_RECIPE_FILES", &files)
                .current_dir(work);
            cmd
        }
        Some(build_root) => in_build_root(recipe, package, work, build_root)?,
    };
    // A cleared, fixed environment: locale and time zone change sort order and timestamps, and
    // the tarball must be the same bytes on every build.
    let output = cmd
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("SOURCE_DATE_EPOCH", "0")
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
    let digest = super::sha256_file(&out).at("hash", &out)?;
    Ok(Built { path: out, digest })
}

/// The command that runs the recipe chrooted into `build_root`, where the work directory is
/// [`INSIDE_WORK`] (the only writable place besides a private /tmp) and the package is bound
/// read-only at `INSIDE_WORK/package`.
fn in_build_root(recipe: &Recipe, package: &Path, work: &Path, build_root: &BuildRoot) -> Result<Command, RecipeError> {
    use crate::sys::BuildMount;
    // The child makes every mount of its new namespace private through `/`, which fails in a
    // chroot whose root is not a mount point; say why instead of a bare EINVAL.
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").at("read", Path::new("/proc/self/mountinfo"))?;
    if !mountinfo.lines().any(|line| line.split(' ').nth(4) == Some("/")) {
        return Err(RecipeError::RootNotAMountPoint { recipe: recipe.name.clone() });
    }
    let package_target = work.join("package");
    fs::write(&package_target, b"").at("create", &package_target)?;
    let inside = Path::new(INSIDE_WORK);
    let devices: Vec<(PathBuf, PathBuf)> =
        super::builder::DEVICES.iter().map(|d| (Path::new("/dev").join(d), Path::new("/dev").join(d))).collect();
    let package_inside = inside.join("package");
    let mut mounts: Vec<(&Path, &Path, BuildMount)> =
        vec![(work, inside, BuildMount::Writable), (package, &package_inside, BuildMount::ReadOnly)];
    for (source, target) in &devices {
        mounts.push((source, target, BuildMount::Device));
    }
    let mut cmd = Command::new("/bin/bash");
    cmd.arg(inside.join("scripts").join(format!("{}.sh", recipe.name)))
        .env_clear()
        .envs(build_root.environment)
        .env("PATH", BUILD_ROOT_PATH)
        .env("IGNITE_PACKAGE", &package_inside)
        .env("IGNITE_OUT", inside.join("rootfs.tar.gz"))
        .env("IGNITE_WORK", inside.join("scratch"))
        .env("IGNITE_RECIPE_FILES", inside.join("scripts").join(&recipe.name));
    crate::sys::chroot_on_spawn(&mut cmd, build_root.root, &mounts)
        .map_err(|source| RecipeError::Spawn { recipe: recipe.name.clone(), source })?;
    Ok(cmd)
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
    use crate::data::runtime::RecipeFile;
    use std::borrow::Cow;

    fn recipe(script: &str) -> Recipe {
        Recipe {
            name: "test".into(),
            script: Cow::Owned(script.to_string()),
            lib: Cow::Borrowed(crate::data::runtime::RECIPE_LIB),
            files: Vec::new(),
            environment: crate::data::runtime::BuildEnvironment::Host,
        }
    }

    fn file(path: &str, contents: &str) -> RecipeFile {
        RecipeFile { path: path.into(), contents: Cow::Owned(contents.as_bytes().to_vec()) }
    }

    #[test]
    fn auxiliary_files_are_written_beside_the_script() {
        let work = tempfile::tempdir().expect("tempdir");
        // The script checks where the files are and packs two of them as its "tarball".
        let script = r#"
set -eu
[ "$IGNITE_RECIPE_FILES" = "$(dirname "${BASH_SOURCE[0]}")/test" ]
cat "$IGNITE_RECIPE_FILES/main.c" "$IGNITE_RECIPE_FILES/sub/dir/boot.js" > "$IGNITE_OUT"
"#;
        let mut r = recipe(script);
        r.files = vec![
            file(
                "sub/dir/boot.js",
                "console.log(1)
",
            ),
            file(
                "main.c",
                "int main;
",
            ),
        ];
        let built = run(&r, Path::new("/p.tgz"), work.path(), None).expect("recipe runs");
        let expected = "int main;
console.log(1)
";
        assert_eq!(fs::read_to_string(&built.path).expect("out"), expected);
        assert_eq!(built.digest, format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(expected))));
    }

    #[test]
    fn unsafe_file_paths_are_refused_before_anything_is_written() {
        for bad in ["../escape.c", "/etc/passwd", "a//b", "./a", "a/../../b", "", "a b", "dir/"] {
            let work = tempfile::tempdir().expect("tempdir");
            let mut r = recipe("echo ran > \"$IGNITE_OUT\"\n");
            r.files = vec![file(bad, "x")];
            let err = run(&r, Path::new("/p.tgz"), work.path(), None).expect_err(bad);
            assert!(matches!(err, RecipeError::BadFiles { .. }), "{bad:?}: {err}");
            assert!(fs::read_dir(work.path()).expect("read").next().is_none(), "{bad:?}: something was written");
        }
        let work = tempfile::tempdir().expect("tempdir");
        let mut r = recipe("true\n");
        r.files = vec![file("a", "x"), file("a/b", "y")];
        let msg = run(&r, Path::new("/p.tgz"), work.path(), None).expect_err("conflict").to_string();
        assert!(msg.contains("both a file and a directory"), "{msg}");
    }

    #[test]
    fn failure_carries_stderr() {
        let work = tempfile::tempdir().expect("tempdir");
        let err = run(
            &recipe("echo building >&2\necho 'something broke' >&2\nexit 3\n"),
            Path::new("/nonexistent.tgz"),
            work.path(),
            None,
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
        let msg = run(&recipe(script), Path::new("/p.tgz"), work.path(), None).expect_err("fails").to_string();
        assert!(msg.contains("NOT_SET_BY_IGNITE is not set"), "{msg}");

        let work = tempfile::tempdir().expect("tempdir");
        let script = "source \"$(dirname \"${BASH_SOURCE[0]}\")/lib.sh\"\n\
                      ignite_require_tools tar no-such-tool-xyz\n";
        let msg = run(&recipe(script), Path::new("/p.tgz"), work.path(), None).expect_err("fails").to_string();
        assert!(msg.contains("missing tools: no-such-tool-xyz"), "{msg}");
    }

    #[test]
    fn success_without_output_is_an_error() {
        let work = tempfile::tempdir().expect("tempdir");
        let err = run(&recipe("true\n"), Path::new("/p.tgz"), work.path(), None).expect_err("fails");
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
