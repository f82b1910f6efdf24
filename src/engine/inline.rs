//! Inline programs: code sent as files (or one `code` string) instead of a service directory.
//! Owns their validation (paths, counts, sizes, entry, limits, no npm install) and the fresh
//! per-run directory under `STATE/inline` they run from, removed when the run is over,
//! whatever its outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::data::runtime::{Registry, TypeScript};
use crate::data::service::{self, CPU_LIMIT_RANGE, MEMORY_MB_RANGE, Overrides, RawService, Service, TIMEOUT_MS_RANGE};
use crate::engine::relpath;
use crate::engine::workdirs::INLINE_DIR;
use crate::fsutil::{Cleanup, temp_name};
use crate::store::deps::{self, Modules};

/// The service name of every inline run (container hostname, report's `service`).
pub const INLINE_NAME: &str = "inline";
pub const MAX_FILES: usize = 256;
pub const MAX_TOTAL_BYTES: usize = 4 * 1024 * 1024;

/// Where an inline program's code comes from.
#[derive(Debug, Clone)]
pub enum InlineSource {
    /// Relative path → content, in the order given; duplicates are kept so that they can be
    /// refused (a map would keep the last one silently).
    Files(Vec<(String, String)>),
    /// One entry file's content, named by `entry` or `index.ts` / `index.js` by runtime.
    Code(String),
}

/// A program that is not on disk: what `POST /v1/execute` (and an embedding program) sends.
#[derive(Debug, Clone)]
pub struct InlineProgram {
    /// A runtime spec: `bun`, `node@22`, `deno`, `quickjs`, or a custom runtime.
    pub runtime: String,
    pub source: InlineSource,
    /// The file to run; by default the first of [`service::DEFAULT_ENTRIES`] present.
    pub entry: Option<String>,
    pub memory_mb: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub cpu: Option<f64>,
}

/// Why a set of files is refused; each names the file and what to do.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FilesError {
    #[error("files: {count} files; at most {MAX_FILES} are accepted")]
    TooMany { count: usize },
    #[error("files: {total} bytes of content; at most {MAX_TOTAL_BYTES} are accepted")]
    TooLarge { total: usize },
    #[error("files: path {path:?} {reason}")]
    BadPath { path: String, reason: String },
    #[error("files: {a:?} and {b:?} are the same path")]
    Duplicate { a: String, b: String },
    #[error("files: {file:?} is a file, but {under:?} needs it to be a directory")]
    FileIsDir { file: String, under: String },
}

impl FilesError {
    /// Too many files or too much content (a size limit), rather than a wrong path.
    pub fn is_too_large(&self) -> bool {
        matches!(self, FilesError::TooMany { .. } | FilesError::TooLarge { .. })
    }
}

/// Why an inline program cannot run; the message is for the caller who sent it.
#[derive(Debug, thiserror::Error)]
pub enum InlineError {
    /// The runtime, an entry, a limit or the program's package.json is wrong.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Files(#[from] FilesError),
    /// The host could not write the run directory: not the caller's fault.
    #[error("cannot write the run directory: {0}")]
    RunDir(std::io::Error),
}

/// The per-run directory an inline program runs from; removed when dropped.
#[derive(Debug)]
pub(crate) struct InlineDir(Cleanup);

impl InlineDir {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A relative path with `.` and empty components dropped; refuses anything that could leave
/// the run directory or mean different things to different readers (see [`relpath`]).
pub fn normalise(path: &str) -> Result<String, String> {
    Ok(relpath::components(path, "the run directory", "src/a.ts")?.join("/"))
}

/// Checks count, size and every path; returns the files by normalised path.
pub fn validate_files(files: &[(String, String)]) -> Result<BTreeMap<String, &str>, FilesError> {
    let pairs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    validate_pairs(&pairs)
}

/// [`validate_files`] over borrowed pairs: the paths need only live for the check, the
/// contents as long as the result.
fn validate_pairs<'c>(files: &[(&str, &'c str)]) -> Result<BTreeMap<String, &'c str>, FilesError> {
    if files.len() > MAX_FILES {
        return Err(FilesError::TooMany { count: files.len() });
    }
    let total: usize = files.iter().map(|(p, c)| p.len() + c.len()).sum();
    if total > MAX_TOTAL_BYTES {
        return Err(FilesError::TooLarge { total });
    }
    let mut out: BTreeMap<String, &'c str> = BTreeMap::new();
    let mut original: BTreeMap<String, &str> = BTreeMap::new();
    for &(path, content) in files {
        let norm = normalise(path).map_err(|reason| FilesError::BadPath { path: path.to_string(), reason })?;
        if let Some(a) = original.get(&norm) {
            return Err(FilesError::Duplicate { a: (*a).to_string(), b: path.to_string() });
        }
        original.insert(norm.clone(), path);
        out.insert(norm, content);
    }
    // Sorted, a file's descendants ("a/…") follow it, possibly after siblings like "a.ts".
    let dirs: BTreeSet<&str> = out.keys().flat_map(|p| p.match_indices('/').map(move |(i, _)| &p[..i])).collect();
    for dir in dirs {
        if out.contains_key(dir) {
            let under = out.keys().find(|p| p.starts_with(&format!("{dir}/"))).cloned().unwrap_or_default();
            return Err(FilesError::FileIsDir { file: original[dir].to_string(), under: original[&under].to_string() });
        }
    }
    Ok(out)
}

/// A program that passed [`InlineProgram::check`]: its files by normalised path and its entry.
struct Checked<'a> {
    files: BTreeMap<String, &'a str>,
    entry: String,
}

fn invalid(message: impl Into<String>) -> InlineError {
    InlineError::Invalid(message.into())
}

impl InlineProgram {
    /// Everything about the program that can be checked without writing it: the runtime, the
    /// limits, the files and the entry, in that order. [`Engine::run`](crate::engine::Engine::run)
    /// checks it again before it writes it.
    pub fn check(&self, registry: &Registry) -> Result<(), InlineError> {
        self.checked(registry).map(|_| ())
    }

    fn checked(&self, registry: &Registry) -> Result<Checked<'_>, InlineError> {
        let runtime = registry.resolve(&self.runtime).map_err(|e| invalid(format!("runtime: {e}")))?;
        if let Some(v) = self.memory_mb {
            service::check_range(v, MEMORY_MB_RANGE, "MiB").map_err(|r| invalid(format!("limits.memoryMb {r}")))?;
        }
        if let Some(v) = self.timeout_ms {
            service::check_range(v, TIMEOUT_MS_RANGE, "ms").map_err(|r| invalid(format!("limits.timeoutMs {r}")))?;
        }
        if let Some(v) = self.cpu
            && (!v.is_finite() || v < CPU_LIMIT_RANGE.0 || v > CPU_LIMIT_RANGE.1)
        {
            return Err(invalid(format!(
                "limits.cpu must be a number of CPUs between {} and {} (got {v})",
                CPU_LIMIT_RANGE.0, CPU_LIMIT_RANGE.1
            )));
        }
        let files = match &self.source {
            InlineSource::Files(list) => validate_files(list)?,
            InlineSource::Code(code) => {
                let name = match &self.entry {
                    Some(e) => e.clone(),
                    None if runtime.typescript == TypeScript::Native => "index.ts".to_string(),
                    None => "index.js".to_string(),
                };
                validate_pairs(&[(name.as_str(), code.as_str())])?
            }
        };
        let entry = match &self.entry {
            Some(e) => {
                let n = normalise(e).map_err(|r| invalid(format!("entry {e:?} {r}")))?;
                if !files.contains_key(&n) {
                    return Err(invalid(format!("entry {e:?} is not one of the files")));
                }
                n
            }
            None => {
                service::DEFAULT_ENTRIES.iter().find(|c| files.contains_key(**c)).map(|c| (*c).to_string()).ok_or_else(
                    || {
                        invalid(format!(
                            "no entry file among the files (tried {}); name one with `entry`",
                            service::DEFAULT_ENTRIES.join(", ")
                        ))
                    },
                )?
            }
        };
        Ok(Checked { files, entry })
    }
}

/// Checks `program`, writes it into a fresh directory under `STATE/inline`, and resolves the
/// service it runs as (named [`INLINE_NAME`], no policy file, no host variables). The directory
/// is removed when the returned [`InlineDir`] drops: hold it until the run is over.
pub(crate) fn materialise(
    program: &InlineProgram,
    registry: &Registry,
    state_root: &Path,
) -> Result<(Service, InlineDir), InlineError> {
    let checked = program.checked(registry)?;
    let dir = write_run_dir(&state_root.join(INLINE_DIR), &checked.files).map_err(InlineError::RunDir)?;
    let raw = RawService {
        name: Some(INLINE_NAME.to_string()),
        runtime: Some(program.runtime.clone()),
        entry: Some(checked.entry),
        memory_mb: program.memory_mb,
        timeout_ms: program.timeout_ms,
        cpu_limit: program.cpu,
        ..RawService::default()
    };
    let service = service::resolve(
        raw,
        dir.path(),
        Path::new("request"),
        false,
        &Overrides::default(),
        &service::PassEnv::none(),
    )
    .map_err(|e| invalid(e.to_string()))?;
    // Installing npm packages is slow, reaches the network and fills the shared cache: an
    // anonymous request should not trigger it. Services on disk can declare dependencies.
    match deps::plan(&service, registry) {
        Ok(Modules::Install(_)) => Err(invalid(
            "files: package.json declares dependencies; /v1/execute does not install npm packages (run a service from --services for that, or send the modules' files under node_modules/)",
        )),
        Ok(_) => Ok((service, dir)),
        // Named relative to the run directory: the caller knows its files, not the host's layout.
        Err(e) => Err(invalid(e.to_string().replace(&format!("{}/", dir.path().display()), ""))),
    }
}

/// A fresh empty run directory under `STATE/inline`, for a warm sandbox that will run inline
/// code: mounted (read-only) when the sandbox is created, filled by [`link_into`] right before
/// its handover. Removed when the guard drops; a dead server's are reaped like every run
/// directory (see [`crate::engine::workdirs`]).
pub(crate) fn empty_run_dir(state_root: &Path) -> std::io::Result<InlineDir> {
    write_run_dir(&state_root.join(INLINE_DIR), &BTreeMap::new())
}

/// Hard-links the tree of run directory `from` (as [`materialise`] wrote it: directories and
/// regular files only) into the empty directory `to`, which a parked sandbox has mounted: the
/// program sees exactly these files, and `from` stays whole for a cold run if the handover
/// fails. Anything that is neither a directory nor a regular file is refused, not followed.
pub(crate) fn link_into(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = fs::symlink_metadata(&src)?.file_type();
        if kind.is_dir() {
            fs::create_dir(&dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o755))?;
            link_into(&src, &dst)?;
        } else if kind.is_file() {
            fs::hard_link(&src, &dst)?;
        } else {
            return Err(std::io::Error::other(format!("{} is neither a file nor a directory", src.display())));
        }
    }
    Ok(())
}

/// Writes the files into a fresh directory under `parent`: root-owned, world-readable (the
/// sandbox user reads it), nothing in it a link. Removed when the returned guard drops.
fn write_run_dir(parent: &Path, files: &BTreeMap<String, &str>) -> std::io::Result<InlineDir> {
    fs::create_dir_all(parent)?;
    fs::set_permissions(parent, fs::Permissions::from_mode(0o755))?;
    let guard = InlineDir(Cleanup::new(parent.join(temp_name("run"))));
    let dir = guard.path();
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for (path, content) in files {
        let full = dir.join(path);
        let mut d = dir.to_path_buf();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            d.push(part);
            if fs::symlink_metadata(&d).is_err() {
                fs::create_dir(&d)?;
                fs::set_permissions(&d, fs::Permissions::from_mode(0o755))?;
            }
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&full)?;
        f.write_all(content.as_bytes())?;
        fs::set_permissions(&full, fs::Permissions::from_mode(0o644))?;
    }
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect()
    }

    #[test]
    fn paths_are_normalised_or_refused() {
        // The rules are relpath's (tested there); the messages name the run directory.
        assert_eq!(normalise("./src//a.ts").unwrap(), "src/a.ts");
        assert_eq!(normalise("../x").unwrap_err(), "contains `..`; paths must stay inside the run directory");
        assert!(normalise("/etc/passwd").unwrap_err().contains("relative to the run directory"));
    }

    #[test]
    fn duplicates_file_dir_conflicts_and_limits_are_refused() {
        let list = files(&[("index.ts", "x"), ("lib/a.ts", "y"), ("lib.ts", "z")]);
        let ok = validate_files(&list).unwrap();
        assert_eq!(ok.keys().collect::<Vec<_>>(), ["index.ts", "lib.ts", "lib/a.ts"]);
        assert_eq!(
            validate_files(&files(&[("a.ts", ""), ("./a.ts", "")])).unwrap_err(),
            FilesError::Duplicate { a: "a.ts".into(), b: "./a.ts".into() }
        );
        assert_eq!(
            validate_files(&files(&[("lib", ""), ("lib/a.ts", "")])).unwrap_err(),
            FilesError::FileIsDir { file: "lib".into(), under: "lib/a.ts".into() }
        );
        let many: Vec<_> = (0..=MAX_FILES).map(|i| (format!("f{i}.js"), String::new())).collect();
        assert!(validate_files(&many).unwrap_err().is_too_large());
        let big = files(&[("a.js", &"x".repeat(MAX_TOTAL_BYTES))]);
        assert!(matches!(validate_files(&big).unwrap_err(), FilesError::TooLarge { .. }));
        assert!(!validate_files(&files(&[("../a.js", "")])).unwrap_err().is_too_large());
    }

    #[test]
    fn a_run_directory_is_linked_whole_into_an_empty_one_and_nothing_else_is() {
        let d = tempfile::tempdir().unwrap();
        let list = files(&[("index.ts", "1"), ("src/deep/b.ts", "2"), ("src/c.ts", "3")]);
        let code = write_run_dir(&d.path().join("inline"), &validate_files(&list).unwrap()).unwrap();
        let sandbox = empty_run_dir(d.path()).unwrap();
        assert_eq!(fs::read_dir(sandbox.path()).unwrap().count(), 0);
        link_into(code.path(), sandbox.path()).unwrap();
        fn files_in(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let rel = format!("{prefix}{}", e.file_name().to_string_lossy());
                if e.file_type().unwrap().is_dir() {
                    files_in(&e.path(), &format!("{rel}/"), out);
                } else {
                    out.push(rel);
                }
            }
        }
        let mut seen = Vec::new();
        files_in(sandbox.path(), "", &mut seen);
        seen.sort();
        assert_eq!(seen, ["index.ts", "src/c.ts", "src/deep/b.ts"]);
        assert_eq!(fs::read_to_string(sandbox.path().join("src/deep/b.ts")).unwrap(), "2");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sandbox.path().join("src/deep")), 0o755);
        assert_eq!(mode(&sandbox.path().join("src/c.ts")), 0o644);
        // The run directory stays whole (a cold run could still use it) and each goes with its
        // own guard.
        assert_eq!(fs::read_to_string(code.path().join("index.ts")).unwrap(), "1");
        drop(sandbox);
        assert_eq!(fs::read_to_string(code.path().join("index.ts")).unwrap(), "1");

        // A link in the source is refused, never followed.
        let bad = empty_run_dir(d.path()).unwrap();
        std::os::unix::fs::symlink("/etc", bad.path().join("etc")).unwrap();
        let target = empty_run_dir(d.path()).unwrap();
        let err = link_into(bad.path(), target.path()).unwrap_err();
        assert!(err.to_string().contains("neither a file nor a directory"), "{err}");
        assert!(fs::symlink_metadata(target.path().join("etc")).is_err());
    }

    #[test]
    fn run_dir_is_world_readable_and_removed_with_its_guard() {
        let d = tempfile::tempdir().unwrap();
        let parent = d.path().join("inline");
        let list = files(&[("index.ts", "1"), ("src/deep/b.ts", "2")]);
        let guard = write_run_dir(&parent, &validate_files(&list).unwrap()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(guard.path()), 0o755);
        assert_eq!(mode(&guard.path().join("src/deep")), 0o755);
        assert_eq!(mode(&guard.path().join("src/deep/b.ts")), 0o644);
        assert_eq!(fs::read_to_string(guard.path().join("src/deep/b.ts")).unwrap(), "2");
        drop(guard);
        assert_eq!(fs::read_dir(&parent).unwrap().count(), 0);
    }

    fn program(runtime: &str, source: InlineSource, entry: Option<&str>) -> InlineProgram {
        InlineProgram {
            runtime: runtime.into(),
            source,
            entry: entry.map(Into::into),
            memory_mb: None,
            timeout_ms: None,
            cpu: None,
        }
    }

    #[test]
    fn code_is_named_by_the_runtime_and_materialised_as_the_inline_service() {
        let registry = Registry::load(&[]).unwrap();
        let state = tempfile::tempdir().unwrap();
        let p = program("bun", InlineSource::Code("console.log(1)".into()), None);
        let (svc, dir) = materialise(&p, &registry, state.path()).unwrap();
        assert_eq!(svc.name, INLINE_NAME);
        assert_eq!(svc.entry, "index.ts");
        assert_eq!(svc.dir, dir.path());
        assert!(dir.path().starts_with(state.path().join(INLINE_DIR)));
        assert_eq!(fs::read_to_string(dir.path().join("index.ts")).unwrap(), "console.log(1)");
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());

        let p = program("node", InlineSource::Code("1".into()), None);
        assert_eq!(materialise(&p, &registry, state.path()).unwrap().0.entry, "index.js");
    }

    #[test]
    fn limits_entry_runtime_and_dependencies_are_refused_with_the_field() {
        let registry = Registry::load(&[]).unwrap();
        let state = tempfile::tempdir().unwrap();
        let msg = |p: &InlineProgram| match p.check(&registry) {
            Err(InlineError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        let one = || InlineSource::Files(files(&[("app.ts", "1")]));
        assert!(msg(&program("no-such-runtime", one(), None)).starts_with("runtime: "));
        assert!(msg(&program("bun", one(), None)).contains("no entry file among the files"));
        assert!(msg(&program("bun", one(), Some("x.ts"))).contains("is not one of the files"));
        assert!(msg(&program("bun", one(), Some("../x.ts"))).starts_with("entry \"../x.ts\""));
        let mut p = program("bun", one(), Some("app.ts"));
        p.check(&registry).unwrap();
        p.cpu = Some(f64::NAN);
        assert!(msg(&p).starts_with("limits.cpu must be a number"));
        p.cpu = None;
        p.memory_mb = Some(1);
        assert!(msg(&p).starts_with("limits.memoryMb "));
        p.memory_mb = None;
        p.timeout_ms = Some(1);
        assert!(msg(&p).starts_with("limits.timeoutMs "));

        let with_deps = InlineSource::Files(files(&[
            ("index.ts", "1"),
            ("package.json", r#"{"dependencies": {"left-pad": "1.3.0"}}"#),
        ]));
        let p = program("bun", with_deps, None);
        p.check(&registry).unwrap();
        match materialise(&p, &registry, state.path()) {
            Err(InlineError::Invalid(m)) => assert!(m.contains("does not install npm packages"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Nothing is left behind by a refused program.
        assert_eq!(fs::read_dir(state.path().join(INLINE_DIR)).unwrap().count(), 0);
    }
}
