//! Which OCI runtime ignite drives: `--oci-runtime` resolved to a binary, its kind told by
//! what the binary prints for `--version` (never by its file name), and a refusal before any
//! run when this host is known to break that runtime — the same judgement `ignite doctor`
//! prints, said where it matters.
//!
//! Asking a runtime for its version costs a process start (≈5 ms for runc, more for youki,
//! which copies itself into a sealed memfd first) on every command, so the answer is kept in
//! the state directory, keyed by the binary's inode, size and times: replacing or touching the
//! binary asks again.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DoctorError;
use super::checks::{Incompatibility, Status, oci_incompatibilities};
use super::facts::OciBinary;
use super::parse::{Semver, parse_oci_seccomp, parse_oci_version};
use super::probe::{cgroup_facts, find_in_path, run_version};
use crate::sandbox::oci::OciKind;

/// The file in the state directory that remembers each binary's `--version`.
const CACHE_FILE: &str = "oci-versions.json";

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("OCI runtime `{name}` not found in PATH; {hint}, or pass --oci-runtime /path/to/the/binary")]
    NotInPath { name: String, hint: &'static str },
    #[error("OCI runtime {path} does not exist", path = .path.display())]
    Missing { path: PathBuf },
    #[error("failed to ask the OCI runtime {path} for its version: {source}", path = .path.display())]
    Version { path: PathBuf, source: DoctorError },
    #[error(
        "unsupported OCI runtime {path}: `--version` printed {line:?}; ignite drives runc, crun and youki (told by their `--version`)",
        path = .path.display()
    )]
    Unknown { path: PathBuf, line: String },
    #[error("{kind} {version} at {path} cannot run sandboxes on this host: {problem}; {remedy}", path = .path.display())]
    Incompatible { kind: OciKind, version: String, path: PathBuf, problem: String, remedy: String },
}

/// The OCI runtime a command will drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedOci {
    pub kind: OciKind,
    pub path: PathBuf,
    /// The first line of its `--version`, for people.
    pub version_line: String,
    pub version: Option<Semver>,
    /// Built with seccomp support, if its `--version` says.
    pub seccomp: Option<bool>,
}

/// How to install each runtime, for the not-found error.
fn install_hint(name: &str) -> &'static str {
    match name {
        "crun" => "install it (Debian/Ubuntu: apt-get install crun)",
        "youki" => "install it (cargo install youki --locked --features v1,v2,seccomp)",
        _ => "install it (Debian/Ubuntu: apt-get install runc)",
    }
}

/// The binary `requested` names: a path (it contains a `/`) or a name looked up in PATH.
pub fn locate(requested: &str, path_env: Option<&OsStr>) -> Result<PathBuf, SelectError> {
    let path = if requested.contains('/') {
        PathBuf::from(requested)
    } else {
        find_in_path(path_env, requested)
            .ok_or_else(|| SelectError::NotInPath { name: requested.to_owned(), hint: install_hint(requested) })?
    };
    if !path.is_file() {
        return Err(SelectError::Missing { path });
    }
    Ok(path)
}

/// Resolves `requested` to a runtime ignite can drive and judges it against the cgroups under
/// `root` (`/`, or a fixture host in tests). `state_dir` keeps the version answers.
pub fn select(
    requested: &str,
    path_env: Option<&OsStr>,
    state_dir: &Path,
    root: &Path,
) -> Result<SelectedOci, SelectError> {
    let selected = resolve(requested, path_env, Some(state_dir))?;
    if let Some(blocker) = blockers(&selected, root).into_iter().next() {
        return Err(SelectError::Incompatible {
            kind: selected.kind,
            version: selected.version.map_or_else(|| "(version unknown)".to_owned(), |v| v.to_string()),
            path: selected.path,
            problem: blocker.problem,
            remedy: blocker.remedy,
        });
    }
    Ok(selected)
}

/// Resolves `requested` to a runtime ignite can drive, without judging the host (what
/// `ignite doctor` and `ignite env` show, beside their judgement). With a `state_dir` the
/// version answer is read from and kept there; without one nothing is written (those two
/// commands only look).
pub fn resolve(
    requested: &str,
    path_env: Option<&OsStr>,
    state_dir: Option<&Path>,
) -> Result<SelectedOci, SelectError> {
    let path = locate(requested, path_env)?;
    let output = match state_dir {
        Some(dir) => cached_version(&path, dir)?,
        None => run_version(&path, &["--version"])
            .map_err(|source| SelectError::Version { path: path.to_path_buf(), source })?,
    };
    identify(&path, &output)
}

/// The kind and version a binary's `--version` output names.
pub fn identify(path: &Path, output: &str) -> Result<SelectedOci, SelectError> {
    let version_line = super::parse::first_line(output).unwrap_or_default();
    let kind = OciKind::from_version_output(output)
        .ok_or_else(|| SelectError::Unknown { path: path.to_path_buf(), line: version_line.clone() })?;
    Ok(SelectedOci {
        kind,
        path: path.to_path_buf(),
        version_line,
        version: parse_oci_version(output),
        seccomp: parse_oci_seccomp(kind.as_str(), output),
    })
}

/// The incompatibilities that stop every run of `selected` on the host under `root`.
pub fn blockers(selected: &SelectedOci, root: &Path) -> Vec<Incompatibility> {
    let bin = OciBinary {
        kind: selected.kind.as_str(),
        path: selected.path.clone(),
        version: match selected.version {
            Some(v) => super::facts::Probed::Found(v),
            None => super::facts::Probed::failed("no version"),
        },
        seccomp: selected.seccomp,
    };
    let cgroup = cgroup_facts(root);
    oci_incompatibilities(&bin, &cgroup).into_iter().filter(|i| i.status == Status::Fail).collect()
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    entries: Vec<CacheEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CacheEntry {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    output: String,
}

impl CacheEntry {
    fn key_of(path: &Path) -> Option<CacheEntry> {
        let canonical = std::fs::canonicalize(path).ok()?;
        let m = std::fs::metadata(&canonical).ok()?;
        Some(CacheEntry {
            path: canonical,
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            output: String::new(),
        })
    }

    fn same_file(&self, other: &CacheEntry) -> bool {
        (&self.path, self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)
            == (&other.path, other.dev, other.ino, other.size, other.mtime_ns, other.ctime_ns)
    }
}

/// `<path> --version`, from the cache when the file is unchanged since it was asked.
fn cached_version(path: &Path, state_dir: &Path) -> Result<String, SelectError> {
    let cache_path = state_dir.join(CACHE_FILE);
    let key = CacheEntry::key_of(path);
    let mut cache: Cache =
        std::fs::read(&cache_path).ok().and_then(|t| serde_json::from_slice(&t).ok()).unwrap_or_default();
    if let Some(key) = &key
        && let Some(hit) = cache.entries.iter().find(|e| e.same_file(key))
    {
        return Ok(hit.output.clone());
    }
    let output = run_version(path, &["--version"])
        .map_err(|source| SelectError::Version { path: path.to_path_buf(), source })?;
    if let Some(mut entry) = key {
        entry.output = output.clone();
        cache.entries.retain(|e| e.path != entry.path);
        cache.entries.push(entry);
        // Best effort: without the cache the next command asks again.
        let _ = write_atomically(&cache_path, &cache);
    }
    Ok(output)
}

fn write_atomically(path: &Path, cache: &Cache) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(cache).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn fixture_host(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/host/doctor/fixtures").join(name)
    }

    #[test]
    fn kind_comes_from_version_output_not_file_name() {
        let d = tempfile::tempdir().unwrap();
        // A youki binary renamed to `runc` is youki; a runc in disguise is runc.
        let youki = script(d.path(), "runc", "echo 'youki version: 0.7.0'; echo 'libseccomp: 2.5.4'");
        let runc = script(d.path(), "my-youki", "echo 'runc version 1.1.5+ds1'; echo 'libseccomp: 2.5.4'");
        let state = d.path().join("state");
        let host = fixture_host("v2-ubuntu2404");
        let y = select(youki.to_str().unwrap(), None, &state, &host).unwrap();
        assert_eq!((y.kind, y.version), (OciKind::Youki, Some(Semver::new(0, 7, 0))));
        let r = select(runc.to_str().unwrap(), None, &state, &host).unwrap();
        assert_eq!(r.kind, OciKind::Runc);
        // A name is looked up in PATH.
        let path_env = d.path().as_os_str();
        assert_eq!(select("runc", Some(path_env), &state, &host).unwrap().kind, OciKind::Youki);
    }

    #[test]
    fn unknown_runtime_is_refused_with_what_it_printed() {
        let d = tempfile::tempdir().unwrap();
        let runsc = script(d.path(), "runc", "echo 'runsc version release-20240101.0'");
        let err = select(runsc.to_str().unwrap(), None, d.path(), &fixture_host("v2-ubuntu2404")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SelectError::Unknown { .. }), "{text}");
        assert!(text.contains("runsc version release-20240101.0") && text.contains("runc, crun and youki"), "{text}");
        let failing = script(d.path(), "broken", "echo oops >&2; exit 3");
        let err = select(failing.to_str().unwrap(), None, d.path(), &fixture_host("v2-ubuntu2404")).unwrap_err();
        assert!(matches!(err, SelectError::Version { .. }), "{err}");
    }

    #[test]
    fn missing_runtime_names_how_to_install_it() {
        let d = tempfile::tempdir().unwrap();
        let err = select("youki", Some(d.path().as_os_str()), d.path(), d.path()).unwrap_err().to_string();
        assert!(err.contains("cargo install youki --locked --features v1,v2,seccomp"), "{err}");
        let err = select("crun", Some(d.path().as_os_str()), d.path(), d.path()).unwrap_err().to_string();
        assert!(err.contains("apt-get install crun"), "{err}");
        let err = select("/nonexistent/runc", None, d.path(), d.path()).unwrap_err();
        assert!(matches!(err, SelectError::Missing { .. }), "{err}");
    }

    #[test]
    fn crun_is_refused_on_a_hybrid_host_before_any_run() {
        let d = tempfile::tempdir().unwrap();
        let crun = script(d.path(), "crun", "echo 'crun version 1.8.1'; echo 'spec: 1.0.0'");
        let err = select(crun.to_str().unwrap(), None, d.path(), &fixture_host("hybrid-debian12")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SelectError::Incompatible { kind: OciKind::Crun, .. }), "{text}");
        assert!(text.contains("crun 1.8.1") && text.contains("hybrid"), "{text}");
        assert!(
            text.contains("use runc on this host") && text.contains("systemd.unified_cgroup_hierarchy=1"),
            "{text}"
        );
        // The same binary is fine on a cgroup v2 host, and runc and youki on the hybrid one.
        assert_eq!(
            select(crun.to_str().unwrap(), None, d.path(), &fixture_host("v2-ubuntu2404")).unwrap().kind,
            OciKind::Crun
        );
        let youki = script(d.path(), "youki", "echo 'youki version: 0.7.0'; echo 'libseccomp: 2.5.4'");
        assert!(select(youki.to_str().unwrap(), None, d.path(), &fixture_host("hybrid-debian12")).is_ok());
    }

    #[test]
    fn a_runtime_without_seccomp_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let youki = script(d.path(), "youki", "echo 'youki version: 0.7.0'; echo 'spec: 1.1.0'; echo 'rustc: 1.95.0'");
        let err = select(youki.to_str().unwrap(), None, d.path(), &fixture_host("v2-ubuntu2404")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SelectError::Incompatible { kind: OciKind::Youki, .. }), "{text}");
        assert!(text.contains("without seccomp") && text.contains("--features v1,v2,seccomp"), "{text}");
        let with = script(d.path(), "youki2", "echo 'youki version: 0.7.0'; echo 'libseccomp: 2.5.4'");
        assert_eq!(
            select(with.to_str().unwrap(), None, d.path(), &fixture_host("v2-ubuntu2404")).unwrap().seccomp,
            Some(true)
        );
    }

    #[test]
    fn version_is_asked_once_per_binary_file() {
        let d = tempfile::tempdir().unwrap();
        let counter = d.path().join("count");
        let body = format!("echo x >> {}; echo 'runc version 1.1.5'; echo 'libseccomp: 2.5.4'", counter.display());
        let runc = script(d.path(), "runc", &body);
        let state = d.path().join("state");
        let host = fixture_host("v2-ubuntu2404");
        let asked = || std::fs::read_to_string(&counter).unwrap_or_default().lines().count();
        select(runc.to_str().unwrap(), None, &state, &host).unwrap();
        select(runc.to_str().unwrap(), None, &state, &host).unwrap();
        assert_eq!(asked(), 1);
        // Replaced by another runtime: asked again, and the new answer wins.
        let _ = std::fs::remove_file(&runc);
        script(
            d.path(),
            "runc",
            &format!("echo x >> {}; echo 'youki version: 0.7.0'; echo 'libseccomp: 2.5.4'", counter.display()),
        );
        assert_eq!(select(runc.to_str().unwrap(), None, &state, &host).unwrap().kind, OciKind::Youki);
        assert_eq!(asked(), 2);
    }
}
