//! `ignite.lock`: what a service was locked to — the exact runtime version, the digest of its
//! bundle, and the digests of the package manifests, lockfiles and every source file — and the
//! comparison of that record with the directory as it is now (`ignite lock --check`,
//! `ignite run --locked`).
//!
//! The format (documented in docs/lock-format.md) is YAML with sorted keys and one line per
//! file, so a lock file diffs well in review; it holds no timestamps, so locking an unchanged
//! service twice writes the same bytes.
//!
//! - this file: the model, parsing with precise errors, rendering, the diff and the commands'
//!   building blocks;
//! - [`walk`]: the bounded, symlink-safe fingerprint of the service directory.

pub mod walk;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::data::runtime::{ResolvedRuntime, Version};
use crate::data::service::{self, DEFAULT_RUNTIME, SERVICE_FILE, ServiceError};
use crate::fsutil::svcdir::{self, Rule};
use crate::fsutil::walk::{LimitError, WalkError};
use crate::fsutil::{At, IoError};
use crate::fsutil::{Cleanup, temp_name};
use crate::store::bundle::{BundleError, BundleStore, Progress};
pub use walk::{LIMITS, Tree};

/// File name of the lock file, at the top of the service directory.
pub const LOCK_FILE: &str = "ignite.lock";
/// The format version this ignite writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Prefix of the temp file a lock is written to before it is renamed into place.
pub const TEMP_PREFIX: &str = ".ignite.lock.tmp";
/// Package manifests, by name at the top of the service directory: what the dependency install
/// reads (package.json) and what Deno reads as its configuration.
pub const MANIFESTS: &[&str] = &["package.json", "deno.json", "deno.jsonc"];
/// Lockfiles of package managers, at the top of the service directory: every one the
/// dependency install understands, and Deno's.
pub const LOCKFILES: &[&str] =
    &["bun.lock", "bun.lockb", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "deno.lock"];
/// A lock file larger than this is not one ignite wrote (10,000 entries take about 1 MiB).
const MAX_LOCK_BYTES: u64 = 16 * 1024 * 1024;

const HEADER: &str = "\
# ignite.lock: the runtime, bundle and files this service was locked to. Written by
# `ignite lock`; `ignite lock --check` lists what drifted and `ignite run --locked` refuses to
# run a drifted service. Lock again after an intended change rather than editing this file.
# Format: docs/lock-format.md in the ignite repository.
";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("no lock file {path}; create it with `ignite lock {dir}`")]
    Missing { path: PathBuf, dir: String },
    #[error("{path}: {message}; fix it or write a new one with `ignite lock {dir}`")]
    Malformed { path: PathBuf, message: String, dir: String },
    #[error(
        "{path}: lock file format version {found} is not one this ignite reads (it reads version {FORMAT_VERSION}); use the ignite that wrote it, or lock again with `ignite lock {dir}`"
    )]
    UnsupportedVersion { path: PathBuf, found: String, dir: String },
    #[error(transparent)]
    Io(#[from] IoError),
    /// The directory changed while it was read, or holds a special file.
    #[error(transparent)]
    Walk(WalkError),
    #[error("{path}: its {what} is not UTF-8, which a lock file cannot record; rename it")]
    NotUtf8 { path: PathBuf, what: &'static str },
    /// The service directory is too large to lock.
    #[error(transparent)]
    Limit(LimitError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A file of the service directory that may not be read (a link, a pipe, too large).
    #[error(transparent)]
    File(svcdir::ReadError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("the bundle cache records {digest:?} as the digest of {runtime}, which is not a sha256 digest")]
    BundleDigest { runtime: String, digest: String },
    #[error("{}", drifted_message(lock_file, dir, drift))]
    Drifted { lock_file: PathBuf, dir: String, drift: Vec<Drift> },
}

fn drifted_message(lock_file: &Path, dir: &str, drift: &[Drift]) -> String {
    let mut text = format!(
        "{}: the service drifted from its lock file, and --locked runs only what was locked:",
        lock_file.display()
    );
    for d in drift {
        text.push_str(&format!("\n  {d}"));
    }
    text.push_str(&format!("\nif the changes are intended, lock them with `ignite lock {dir}`; otherwise undo them"));
    text
}

/// `sha256:<64 lower-case hex digits>`, as bundle digests are written everywhere in ignite.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    pub fn from_sha256(bytes: [u8; 32]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let well_formed = s
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        if !well_formed {
            return Err(format!("{s:?} is not a digest: expected sha256: and 64 lower-case hex digits"));
        }
        Ok(Digest(s.to_string()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The runtime a service was locked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRuntime {
    pub name: String,
    /// The exact version the service's runtime spec resolved to.
    pub version: Version,
    /// `sha256:` of the bundle tarball, as `ignite runtime list` shows it.
    pub bundle: Digest,
}

/// The whole lock file. Every field is required, also when empty, so that a truncated or
/// hand-trimmed file is an error rather than a lock on less than it seems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    pub runtime: LockedRuntime,
    /// [`MANIFESTS`] present at the top of the directory, by name.
    pub manifests: BTreeMap<String, Digest>,
    /// [`LOCKFILES`] present at the top of the directory, by name.
    pub lockfiles: BTreeMap<String, Digest>,
    /// Every other regular file, by `/`-separated path.
    pub files: BTreeMap<String, Digest>,
    /// Every symlink, by path: its target as written (never followed).
    pub symlinks: BTreeMap<String, String>,
}

/// The service directory as it is now, sorted into the lock file's sections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub manifests: BTreeMap<String, Digest>,
    pub lockfiles: BTreeMap<String, Digest>,
    pub files: BTreeMap<String, Digest>,
    pub symlinks: BTreeMap<String, String>,
}

impl Sources {
    /// Sorts a walk's result: regular files named like a manifest or lockfile at the top of
    /// the directory go to their sections (a symlink with such a name stays a symlink).
    pub fn from_tree(tree: Tree) -> Sources {
        let mut s = Sources { symlinks: tree.symlinks, ..Sources::default() };
        for (path, digest) in tree.files {
            let section = if MANIFESTS.contains(&path.as_str()) {
                &mut s.manifests
            } else if LOCKFILES.contains(&path.as_str()) {
                &mut s.lockfiles
            } else {
                &mut s.files
            };
            section.insert(path, digest);
        }
        s
    }

    /// Reads the service directory.
    pub fn read(dir: &Path, limits: &crate::fsutil::walk::Limits) -> Result<Sources, LockError> {
        Ok(Sources::from_tree(walk::walk(dir, limits)?))
    }
}

impl LockFile {
    pub fn new(runtime: &ResolvedRuntime, bundle: Digest, sources: Sources) -> LockFile {
        LockFile {
            version: FORMAT_VERSION,
            runtime: LockedRuntime { name: runtime.name.clone(), version: runtime.version, bundle },
            manifests: sources.manifests,
            lockfiles: sources.lockfiles,
            files: sources.files,
            symlinks: sources.symlinks,
        }
    }

    /// `name@version`.
    pub fn runtime_key(&self) -> String {
        format!("{}@{}", self.runtime.name, self.runtime.version)
    }

    /// The text written to `ignite.lock`: a comment header, then the YAML.
    pub fn render(&self) -> String {
        // Serialising plain strings, maps and integers cannot fail.
        let yaml = serde_yaml_ng::to_string(self).unwrap_or_default();
        format!("{HEADER}{yaml}")
    }

    /// One line for people: what it locks.
    pub fn summary(&self) -> String {
        let mut extra: Vec<&str> = self.manifests.keys().chain(self.lockfiles.keys()).map(String::as_str).collect();
        extra.sort();
        let n = self.files.len();
        let links = self.symlinks.len();
        format!(
            "{}, bundle {}, {n} file{}{}{}",
            self.runtime_key(),
            short_digest(&self.runtime.bundle),
            if n == 1 { "" } else { "s" },
            if links == 0 { String::new() } else { format!(", {links} symlink{}", if links == 1 { "" } else { "s" }) },
            if extra.is_empty() { String::new() } else { format!(", {}", extra.join(", ")) },
        )
    }
}

/// `sha256:` and the first 12 hex digits: enough to tell the few bundles of a cache apart.
fn short_digest(d: &Digest) -> &str {
    d.as_str().get(..19).unwrap_or(d.as_str())
}

/// Parses a lock file's text; `path` and `dir` name it in errors.
pub fn parse(text: &str, path: &Path, dir: &str) -> Result<LockFile, LockError> {
    let malformed = |message: String| LockError::Malformed { path: path.to_path_buf(), message, dir: dir.to_string() };
    // The format version first: a newer ignite's file must be refused for its version, not for
    // the fields this one does not know.
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| malformed(e.to_string()))?;
    let version = match value.get("version") {
        Some(v) => v,
        None if value.is_mapping() => return Err(malformed("field `version` is missing".into())),
        None => return Err(malformed("expected a YAML mapping with `version: 1` at the top".into())),
    };
    if version.as_u64() != Some(u64::from(FORMAT_VERSION)) {
        let found = serde_yaml_ng::to_string(version).unwrap_or_default().trim().to_string();
        return Err(LockError::UnsupportedVersion { path: path.to_path_buf(), found, dir: dir.to_string() });
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let lock: LockFile =
        serde_path_to_error::deserialize(de).map_err(|e| malformed(crate::data::runtime::parse_message(e)))?;
    validate(&lock).map_err(|(field, problem)| malformed(format!("field `{field}`: {problem}")))?;
    Ok(lock)
}

/// What the types cannot check: every path is one the walk could have recorded, and no path
/// is in two sections.
fn validate(lock: &LockFile) -> Result<(), (String, String)> {
    if lock.runtime.name.is_empty() {
        return Err(("runtime.name".into(), "is empty".into()));
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let sections: [(&str, Vec<&String>); 4] = [
        ("manifests", lock.manifests.keys().collect()),
        ("lockfiles", lock.lockfiles.keys().collect()),
        ("files", lock.files.keys().collect()),
        ("symlinks", lock.symlinks.keys().collect()),
    ];
    for (section, paths) in &sections {
        for path in paths {
            let field = format!("{section}.{path:?}");
            check_path(path).map_err(|problem| (field.clone(), problem))?;
            let top_level_only = match *section {
                "manifests" => Some(MANIFESTS),
                "lockfiles" => Some(LOCKFILES),
                _ => None,
            };
            if let Some(names) = top_level_only
                && !names.contains(&path.as_str())
            {
                return Err((field, format!("is not one of {}", names.join(", "))));
            }
            if let Some(first) = seen.insert(path.as_str(), section) {
                return Err((field, format!("is also listed under `{first}`; a path is in one section only")));
            }
        }
    }
    for (path, target) in &lock.symlinks {
        if target.is_empty() || target.contains('\0') {
            return Err((format!("symlinks.{path:?}"), "the target must be a non-empty path".into()));
        }
    }
    Ok(())
}

/// A path as the walk records it: relative, `/`-separated, no empty, `.` or `..` component,
/// nothing inside a skipped directory, not the lock file itself.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.starts_with('/') {
        return Err("must be relative to the service directory".into());
    }
    if path.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    for component in path.split('/') {
        match component {
            "" | "." | ".." => return Err("must be a plain relative path (no empty, '.' or '..' components)".into()),
            "node_modules" | ".git" => return Err(format!("{component} is never part of a lock")),
            _ => {}
        }
    }
    if path == LOCK_FILE {
        return Err("the lock file does not record itself".into());
    }
    Ok(())
}

/// `<dir>/ignite.lock`.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join(LOCK_FILE)
}

/// Reads and parses `<dir>/ignite.lock` the safe way ([`svcdir`]): never through a link, a
/// regular file of at most 16 MiB (more than any lock file ignite writes).
pub fn read(dir: &Path) -> Result<LockFile, LockError> {
    let path = lock_path(dir);
    let shown = dir.display().to_string();
    let rule = Rule { what: "lock file", max_bytes: MAX_LOCK_BYTES };
    match svcdir::read_text(dir, LOCK_FILE, rule) {
        Ok(Some(text)) => parse(&text, &path, &shown),
        Ok(None) => Err(LockError::Missing { path, dir: shown }),
        Err(e) => Err(LockError::File(e)),
    }
}

/// What [`write()`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    /// False when the file already held exactly this lock (it is left untouched).
    pub changed: bool,
}

/// Writes `<dir>/ignite.lock` atomically: a temp file in the same directory, synced, renamed
/// over the old one, and the directory synced; a reader sees the old lock or the new one.
pub fn write(dir: &Path, lock: &LockFile) -> Result<Written, LockError> {
    let path = lock_path(dir);
    let text = lock.render();
    // Compared without following a symlink: a linked lock file is replaced by a regular one.
    let same = fs::symlink_metadata(&path).is_ok_and(|m| m.is_file())
        && fs::read(&path).is_ok_and(|old| old == text.as_bytes());
    if same {
        return Ok(Written { path, changed: false });
    }
    let temp = Cleanup::new(dir.join(temp_name(TEMP_PREFIX)));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(temp.path())
        .at("create", temp.path())?;
    file.write_all(text.as_bytes()).at("write", temp.path())?;
    file.sync_all().at("sync", temp.path())?;
    drop(file);
    fs::rename(temp.path(), &path).at("rename into place", &path)?;
    temp.keep();
    File::open(dir).and_then(|d| d.sync_all()).at("sync", dir)?;
    Ok(Written { path, changed: true })
}

/// The runtime spec a service asks for: `--runtime`, else service.yaml's `runtime:`, else the
/// default. Read without expanding `${VAR}` in `env:`, so locking needs none of the secrets a
/// run needs.
pub fn runtime_spec(dir: &Path, runtime: Option<&str>) -> Result<String, LockError> {
    if let Some(spec) = runtime {
        return Ok(spec.to_string());
    }
    let file = dir.join(SERVICE_FILE);
    match service::read_file(dir)? {
        Some(text) => Ok(service::parse(&text, &file)?.runtime.unwrap_or_else(|| DEFAULT_RUNTIME.to_string())),
        None => Ok(DEFAULT_RUNTIME.to_string()),
    }
}

/// The lock of `dir` as it is now: its sources and `runtime`'s bundle, pulled if the cache
/// does not hold it yet (the digest is what a run would use, so it is what gets locked).
pub fn snapshot(
    dir: &Path,
    runtime: &ResolvedRuntime,
    store: &BundleStore,
    progress: &dyn Progress,
) -> Result<LockFile, LockError> {
    let sources = Sources::read(dir, &LIMITS)?;
    let bundle = bundle_digest(runtime, store.ensure(runtime, progress)?.digest)?;
    Ok(LockFile::new(runtime, bundle, sources))
}

fn bundle_digest(runtime: &ResolvedRuntime, digest: String) -> Result<Digest, LockError> {
    digest.parse().map_err(|_| LockError::BundleDigest { runtime: runtime.key(), digest })
}

/// How a check treats the runtime's bundle.
pub enum BundleCheck<'a> {
    /// Pull it if it is missing and compare its digest: what `lock --check` and `run --locked`
    /// do, since a run would use that bundle.
    Ensure(&'a dyn Progress),
    /// Compare only if it is present; fetch nothing (`ignite env`).
    IfPresent,
}

/// Whether a service still matches its lock file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub lock_file: PathBuf,
    /// What the lock file names, `name@version`.
    pub locked_runtime: String,
    /// What the service resolves to now.
    pub runtime: String,
    /// Whether the bundle digest was compared (false: another runtime or version now, or the
    /// bundle is not pulled and the check was not to pull it).
    pub bundle_checked: bool,
    pub up_to_date: bool,
    /// What changed since the lock was written; empty when up to date.
    pub drift: Vec<Drift>,
}

/// Compares `dir` (resolving to `runtime`) with its lock file.
pub fn check(
    dir: &Path,
    runtime: &ResolvedRuntime,
    store: &BundleStore,
    bundle: BundleCheck<'_>,
) -> Result<Check, LockError> {
    let locked = read(dir)?;
    let sources = Sources::read(dir, &LIMITS)?;
    let same_runtime = locked.runtime.name == runtime.name && locked.runtime.version == runtime.version;
    // A bundle is only worth fetching when the runtime still matches: another version's
    // bundle differs anyway, and that drift is already said.
    let current_bundle = match (same_runtime, bundle) {
        (false, _) => None,
        (true, BundleCheck::Ensure(progress)) => Some(store.ensure(runtime, progress)?.digest),
        (true, BundleCheck::IfPresent) => store.present(runtime).map(|r| r.digest),
    };
    let current_bundle = current_bundle.map(|d| bundle_digest(runtime, d)).transpose()?;
    let drift = diff(&locked, runtime, current_bundle.as_ref(), &sources);
    Ok(Check {
        lock_file: lock_path(dir),
        locked_runtime: locked.runtime_key(),
        runtime: runtime.key(),
        bundle_checked: current_bundle.is_some(),
        up_to_date: drift.is_empty(),
        drift,
    })
}

/// `run --locked`: an error listing the drift unless `dir` matches its lock file exactly.
pub fn enforce(
    dir: &Path,
    runtime: &ResolvedRuntime,
    store: &BundleStore,
    progress: &dyn Progress,
) -> Result<(), LockError> {
    let result = check(dir, runtime, store, BundleCheck::Ensure(progress))?;
    if result.up_to_date {
        return Ok(());
    }
    Err(LockError::Drifted { lock_file: result.lock_file, dir: dir.display().to_string(), drift: result.drift })
}

/// One difference between a lock file and the service now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Drift {
    /// The service resolves to another runtime altogether.
    Runtime {
        locked: String,
        current: String,
    },
    /// The same runtime, another version.
    RuntimeVersion {
        runtime: String,
        locked: String,
        current: String,
    },
    /// The same runtime version, a bundle with other contents (rebuilt by another recipe,
    /// imported, or built on a host that produced different bytes).
    BundleDigest {
        runtime: String,
        locked: Digest,
        current: Digest,
    },
    Manifest(Change),
    Lockfile(Change),
    File(Change),
    Symlink(Change),
}

/// A path added, removed or modified; `locked`/`current` are digests (symlinks: targets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub change: ChangeKind,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
        })
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Runtime { locked, current } => write!(f, "runtime changed: locked {locked}, now {current}"),
            Drift::RuntimeVersion { runtime, locked, current } => {
                write!(f, "runtime version changed: {runtime} locked at {locked}, now {current}")
            }
            Drift::BundleDigest { runtime, locked, current } => {
                write!(f, "bundle digest changed: {runtime} locked at {locked}, now {current}")
            }
            Drift::Manifest(c) => write!(f, "manifest {}: {}", c.change, c.path),
            Drift::Lockfile(c) => write!(f, "lockfile {}: {}", c.change, c.path),
            Drift::File(c) => write!(f, "file {}: {}", c.change, c.path),
            Drift::Symlink(c) => match (&c.locked, &c.current) {
                (Some(old), Some(new)) => write!(f, "symlink modified: {} -> {new} (locked -> {old})", c.path),
                (_, Some(new)) => write!(f, "symlink added: {} -> {new}", c.path),
                (Some(old), _) => write!(f, "symlink removed: {} (was -> {old})", c.path),
                (None, None) => write!(f, "symlink {}: {}", c.change, c.path),
            },
        }
    }
}

/// Everything that differs between `locked` and the service now: the runtime first, then the
/// manifests, lockfiles, files and symlinks, each in path order. `bundle` is the current
/// bundle's digest when it was looked at.
pub fn diff(locked: &LockFile, runtime: &ResolvedRuntime, bundle: Option<&Digest>, now: &Sources) -> Vec<Drift> {
    let mut drift = Vec::new();
    if locked.runtime.name != runtime.name {
        drift.push(Drift::Runtime { locked: locked.runtime_key(), current: runtime.key() });
    } else if locked.runtime.version != runtime.version {
        drift.push(Drift::RuntimeVersion {
            runtime: runtime.name.clone(),
            locked: locked.runtime.version.to_string(),
            current: runtime.version.to_string(),
        });
    } else if let Some(current) = bundle
        && *current != locked.runtime.bundle
    {
        drift.push(Drift::BundleDigest {
            runtime: runtime.key(),
            locked: locked.runtime.bundle.clone(),
            current: current.clone(),
        });
    }
    let digests = |m: &BTreeMap<String, Digest>| -> BTreeMap<String, String> {
        m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    };
    compare(&digests(&locked.manifests), &digests(&now.manifests), Drift::Manifest, &mut drift);
    compare(&digests(&locked.lockfiles), &digests(&now.lockfiles), Drift::Lockfile, &mut drift);
    compare(&digests(&locked.files), &digests(&now.files), Drift::File, &mut drift);
    compare(&locked.symlinks, &now.symlinks, Drift::Symlink, &mut drift);
    drift
}

fn compare(
    locked: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
    kind: fn(Change) -> Drift,
    out: &mut Vec<Drift>,
) {
    let mut paths: Vec<&String> = locked.keys().chain(now.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let (old, new) = (locked.get(path), now.get(path));
        let change = match (old, new) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => ChangeKind::Modified,
            (Some(_), None) => ChangeKind::Removed,
            (None, Some(_)) => ChangeKind::Added,
            (None, None) => continue,
        };
        out.push(kind(Change { change, path: path.clone(), locked: old.cloned(), current: new.cloned() }));
    }
}

impl Check {
    /// The `--check` text: one line per drift, or that all is as locked.
    pub fn render(&self, dir: &Path) -> String {
        if self.up_to_date {
            let bundle = if self.bundle_checked { "" } else { " (bundle not pulled: its digest was not compared)" };
            return format!("{}: up to date ({}){bundle}\n", self.lock_file.display(), self.runtime);
        }
        let n = self.drift.len();
        let mut text =
            format!("{}: {n} change{} since it was locked:\n", self.lock_file.display(), if n == 1 { "" } else { "s" });
        for d in &self.drift {
            text.push_str(&format!("  {d}\n"));
        }
        text.push_str(&format!("lock the current state with `ignite lock {}`, or undo the changes\n", dir.display()));
        text
    }
}

#[cfg(test)]
mod tests;
