//! Staged app directories for runtimes that run JavaScript only (`typescript: strip`): a copy of
//! the service directory with every `.ts`/`.mts`/`.cts` file stripped of its types and renamed
//! to `.js`/`.mjs`/`.cjs`, mounted at `/app` instead of the service directory.
//!
//! - [`strip`]: stripping one file and rewriting its relative `.ts` specifiers (pure);
//! - `tree`: the bounded, symlink-safe snapshot of the service directory;
//! - `worker`: where stripping runs (a confined child process of the ignite binary).
//!
//! Staged directories are cached by content under `<cache>/apps/`:
//!
//! ```text
//! apps/sha256-<key>/         a staged directory, never modified once renamed into place
//! apps/sha256-<key>.lock     flock: shared while a run uses (or builds) it, exclusive to delete
//!                            it; its mtime is the entry's last use
//! apps/.tmp-*, .trash-*      being built / being deleted (a crash leaves them; pruned later)
//! ```
//!
//! The key hashes every staged path, mode, content and symlink target plus the stripper's
//! version, so a second run over unchanged sources only reads and hashes them. Entries beyond
//! the [`KEEP_ENTRIES`] most recently used, or unused for [`MAX_AGE`], are pruned after each
//! build; `ignite cleanup` removes every entry no run is using.

pub mod strip;
mod tree;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use crate::fsutil::walk::{LimitError, WalkError};
use crate::fsutil::{At, IoError};
use crate::fsutil::{Cleanup, remove_any, temp_name};
use strip::{Kind, kind_of};
pub use tree::{Entry, LIMITS, Node, Snapshot};
use worker::{Failure, Source};
pub use worker::{Stripper, WORKER_COMMAND, serve as serve_worker};

/// Subdirectory of the cache directory that holds staged apps.
pub const APPS_DIR: &str = "apps";
/// How many staged directories are kept (most recently used first).
pub const KEEP_ENTRIES: usize = 64;
/// Staged directories unused for longer are removed.
pub const MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);
/// Temp and trash directories older than this belong to a process that died.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// At most this many diagnostics of one file are shown.
const MAX_DIAGNOSTICS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// The directory changed while it was read, or holds a special file.
    #[error(transparent)]
    Walk(WalkError),
    /// The service directory is too large to stage.
    #[error(transparent)]
    Limit(LimitError),
    #[error("{path} is not UTF-8 text: TypeScript sources must be UTF-8")]
    NotUtf8 { path: PathBuf },
    #[error(
        "{first} and {second} would both be staged as {staged}: TypeScript files become .js/.mjs/.cjs files for this runtime; rename one of them"
    )]
    Collision { first: PathBuf, second: PathBuf, staged: String },
    #[error("entry {entry:?} is a declaration file, which holds types only; name the file with the code")]
    DeclarationEntry { entry: String },
    #[error("{report}")]
    Rejected { report: String },
    #[error("failed to strip TypeScript types{file}: the stripper {detail}")]
    Crashed { file: String, detail: String },
    #[error("failed to lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

/// Whether a `strip` runtime needs the service staged for this entry: a TypeScript file (or a
/// declaration file, which [`Stager::stage`] refuses with a reason). A JavaScript entry runs
/// from the service directory as it is.
pub fn needs_staging(entry: &str) -> bool {
    kind_of(entry.as_bytes()) != Kind::Other
}

/// A staged directory in use: it cannot be pruned while this value lives.
pub struct StagedApp {
    /// Mount this at `/app`.
    pub dir: PathBuf,
    /// The entry inside `dir` (`index.ts` → `index.js`).
    pub entry: String,
    /// The service's own `node_modules`, to mount read-only at `/app/node_modules` (the staged
    /// directory has an empty directory there).
    pub node_modules: Option<PathBuf>,
    /// Whether the staged directory was already cached (nothing was stripped).
    pub cached: bool,
    _lock: Flock<File>,
}

impl std::fmt::Debug for StagedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedApp")
            .field("dir", &self.dir)
            .field("entry", &self.entry)
            .field("node_modules", &self.node_modules)
            .field("cached", &self.cached)
            .finish()
    }
}

/// Builds, caches and prunes staged app directories under `<cache>/apps`.
#[derive(Debug, Clone)]
pub struct Stager {
    root: PathBuf,
    limits: crate::fsutil::walk::Limits,
    stripper: Stripper,
}

/// One snapshot entry and the path it gets in the staged directory.
struct Planned<'a> {
    staged: Vec<u8>,
    entry: &'a Entry,
}

impl Stager {
    /// A stager keeping its directories under `<cache_dir>/apps`.
    pub fn new(cache_dir: &Path, stripper: Stripper) -> Stager {
        Stager { root: cache_dir.join(APPS_DIR), limits: LIMITS, stripper }
    }

    /// Replaces the size limits.
    pub fn with_limits(mut self, limits: crate::fsutil::walk::Limits) -> Stager {
        self.limits = limits;
        self
    }

    /// The staged directory of `service_dir` (a canonical path) for running `entry` on
    /// `runtime` (named in messages), building it unless an identical one is cached.
    pub fn stage(&self, service_dir: &Path, entry: &str, runtime: &str) -> Result<StagedApp, StageError> {
        if kind_of(entry.as_bytes()) == Kind::Declaration {
            return Err(StageError::DeclarationEntry { entry: entry.to_string() });
        }
        let snapshot = tree::snapshot(service_dir, &self.limits)?;
        let plan = plan(&snapshot, service_dir)?;
        let key = key(&snapshot);
        fs::create_dir_all(&self.root).at("create", &self.root)?;
        let lock = self.lock_shared(&key)?;
        let dir = self.entry_dir(&key);
        let cached = fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
        if !cached {
            let built = self.build(&snapshot, &plan, service_dir, &dir, runtime);
            self.prune(KEEP_ENTRIES, MAX_AGE);
            built?;
        }
        // The lock file's mtime records the last use, for pruning.
        if let Err(e) = lock.set_modified(SystemTime::now()) {
            tracing::debug!(error = %e, "failed to record the staged app's last use");
        }
        let entry = String::from_utf8_lossy(&strip::js_name(entry.as_bytes())).into_owned();
        let node_modules = snapshot.node_modules.then(|| service_dir.join("node_modules"));
        Ok(StagedApp { dir, entry, node_modules, cached, _lock: lock })
    }

    fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join(format!("sha256-{key}"))
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join(format!("sha256-{key}.lock"))
    }

    /// Takes the entry's lock shared. A pruner deletes the lock file while it holds it
    /// exclusively, so a lock taken on a file that is no longer at its path protects nothing:
    /// then try again with the new file.
    fn lock_shared(&self, key: &str) -> Result<Flock<File>, StageError> {
        let path = self.lock_path(key);
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&path)
                .at("open lock file", &path)?;
            let mut pending = file;
            let locked = loop {
                match Flock::lock(pending, FlockArg::LockShared) {
                    Ok(lock) => break lock,
                    Err((f, Errno::EINTR)) => pending = f,
                    Err((_, source)) => return Err(StageError::Lock { path, source }),
                }
            };
            if same_file(&locked, &path) {
                return Ok(locked);
            }
        }
    }

    /// Strips the TypeScript files, writes the staged tree to a temp directory and renames it
    /// into place.
    fn build(
        &self,
        snapshot: &Snapshot,
        plan: &[Planned<'_>],
        service_dir: &Path,
        dir: &Path,
        runtime: &str,
    ) -> Result<(), StageError> {
        let mut sources = Vec::new();
        let mut source_of = HashMap::new();
        for (i, p) in plan.iter().enumerate() {
            if let Node::File { bytes, .. } = &p.entry.node
                && kind_of(&p.entry.path) == Kind::TypeScript
            {
                let host = service_dir.join(OsStr::from_bytes(&p.entry.path));
                let text = std::str::from_utf8(bytes).map_err(|_| StageError::NotUtf8 { path: host })?;
                source_of.insert(i, sources.len());
                sources.push(Source { name: p.entry.display(), text: text.to_string() });
            }
        }
        let started = std::time::Instant::now();
        let stripped = self.stripper.strip_all(&sources).map_err(|failure| match failure {
            Failure::Rejected { index, diagnostics } => {
                StageError::Rejected { report: report(service_dir, &sources[index], &diagnostics, runtime) }
            }
            Failure::Crashed { index, detail } => StageError::Crashed {
                file: index
                    .map(|i| format!(" from {}", service_dir.join(&sources[i].name).display()))
                    .unwrap_or_default(),
                detail,
            },
        })?;
        tracing::debug!(files = sources.len(), elapsed = ?started.elapsed(), "stripped TypeScript types");

        let temp = Cleanup::new(self.root.join(temp_name(".tmp")));
        fs::create_dir(temp.path()).at("create", temp.path())?;
        for (i, p) in plan.iter().enumerate() {
            let path = temp.path().join(OsStr::from_bytes(&p.staged));
            match &p.entry.node {
                Node::Dir { mode } => {
                    fs::create_dir(&path).at("create", &path)?;
                    set_mode(&path, *mode)?;
                }
                Node::File { mode, bytes } => {
                    let content = match source_of.get(&i) {
                        Some(&s) => stripped[s].as_bytes(),
                        None => bytes.as_slice(),
                    };
                    write_file(&path, content, *mode)?;
                }
                Node::Symlink { target } => {
                    symlink(OsStr::from_bytes(&link_target(target)), &path).at("create symlink", &path)?;
                }
            }
        }
        if snapshot.node_modules {
            let mount_point = temp.path().join("node_modules");
            fs::create_dir(&mount_point).at("create", &mount_point)?;
            set_mode(&mount_point, 0o755)?;
        }
        set_mode(temp.path(), snapshot.root_mode)?;
        match fs::rename(temp.path(), dir) {
            Ok(()) => {
                temp.keep();
                Ok(())
            }
            // Another ignite built the same content meanwhile: same key, same bytes.
            Err(_) if dir.is_dir() => Ok(()),
            Err(source) => Err(StageError::from(IoError::new("rename into place", dir, source))),
        }
    }

    /// Removes staged directories beyond the `keep` most recently used or unused for longer
    /// than `max_age`, skipping any a run is using, and leftovers of crashed processes. Returns
    /// how many staged directories were removed. Best effort: failures are logged.
    pub fn prune(&self, keep: usize, max_age: Duration) -> usize {
        let Ok(listing) = fs::read_dir(&self.root) else {
            return 0;
        };
        let now = SystemTime::now();
        let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
        // key → (last use, has a directory)
        let mut keys: BTreeMap<String, (Option<SystemTime>, bool)> = BTreeMap::new();
        for item in listing.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            let mtime = item.metadata().and_then(|m| m.modified()).ok();
            if name.starts_with(".tmp-") || name.starts_with(".trash-") {
                if mtime.is_some_and(|t| age(t) > STALE_TEMP) {
                    remove_any(&item.path());
                }
                continue;
            }
            let Some(rest) = name.strip_prefix("sha256-") else { continue };
            if let Some(key) = rest.strip_suffix(".lock").filter(|k| is_key(k)) {
                keys.entry(key.to_string()).or_default().0 = mtime;
            } else if is_key(rest) {
                let slot = keys.entry(rest.to_string()).or_default();
                slot.1 = true;
                slot.0 = slot.0.or(mtime);
            }
        }
        let mut entries: Vec<(String, SystemTime, bool)> =
            keys.into_iter().map(|(k, (used, dir))| (k, used.unwrap_or(now), dir)).collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.1));
        let mut kept = 0;
        let mut removed = 0;
        for (key, used, has_dir) in entries {
            if has_dir && kept < keep && age(used) <= max_age {
                kept += 1;
                continue;
            }
            match self.try_remove(&key) {
                Some(true) => removed += 1,
                Some(false) => {}
                None if has_dir => kept += 1,
                None => {}
            }
        }
        removed
    }

    /// Removes every staged directory no run is using (`ignite cleanup`).
    pub fn clear(&self) -> usize {
        self.prune(0, Duration::ZERO)
    }

    /// Deletes one entry unless it is locked. `Some(removed a directory)`, `None` if in use.
    fn try_remove(&self, key: &str) -> Option<bool> {
        let lock_path = self.lock_path(key);
        let file = OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&lock_path).ok()?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
        if !same_file(&lock, &lock_path) {
            return None;
        }
        let dir = self.entry_dir(key);
        let mut removed = false;
        if fs::symlink_metadata(&dir).is_ok() {
            // Renamed first, so that nobody ever sees a half-deleted entry under its name.
            let trash = self.root.join(temp_name(".trash"));
            if let Err(e) = fs::rename(&dir, &trash) {
                tracing::warn!(path = %dir.display(), error = %e, "failed to remove a staged app");
                return None;
            }
            remove_any(&trash);
            removed = true;
        }
        if let Err(e) = fs::remove_file(&lock_path) {
            tracing::debug!(path = %lock_path.display(), error = %e, "failed to remove a lock file");
        }
        drop(lock);
        Some(removed)
    }
}

/// The staged path of every entry; two entries may not land on the same path (`a.ts` and
/// `a.js` side by side).
fn plan<'a>(snapshot: &'a Snapshot, service_dir: &Path) -> Result<Vec<Planned<'a>>, StageError> {
    let mut seen: HashMap<Vec<u8>, &Entry> = HashMap::new();
    let mut out = Vec::with_capacity(snapshot.entries.len());
    for entry in &snapshot.entries {
        let staged = match entry.node {
            Node::Dir { .. } => entry.path.clone(),
            Node::File { .. } | Node::Symlink { .. } => strip::js_name(&entry.path),
        };
        if let Some(first) = seen.get(&staged).copied() {
            let host = |e: &Entry| service_dir.join(OsStr::from_bytes(&e.path));
            return Err(StageError::Collision {
                first: host(first),
                second: host(entry),
                staged: String::from_utf8_lossy(&staged).into_owned(),
            });
        }
        seen.insert(staged.clone(), entry);
        out.push(Planned { staged, entry });
    }
    Ok(out)
}

/// A relative symlink to a TypeScript file points at its staged JavaScript name; anything else
/// is kept exactly (it resolves inside the container's view, never on the host).
fn link_target(target: &[u8]) -> Vec<u8> {
    if target.starts_with(b"/") { target.to_vec() } else { strip::js_name(target) }
}

/// sha256 over everything that decides the staged directory's content, length-prefixed so
/// that no two different snapshots hash the same input stream.
fn key(snapshot: &Snapshot) -> String {
    let mut h = Sha256::new();
    let mut put = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    put(b"ignite staged app");
    put(strip::STRIPPER.as_bytes());
    put(&strip::RULES_VERSION.to_le_bytes());
    put(&snapshot.root_mode.to_le_bytes());
    put(&[u8::from(snapshot.node_modules)]);
    for e in &snapshot.entries {
        put(&e.path);
        match &e.node {
            Node::Dir { mode } => {
                put(b"d");
                put(&mode.to_le_bytes());
            }
            Node::File { mode, bytes } => {
                put(b"f");
                put(&mode.to_le_bytes());
                put(bytes);
            }
            Node::Symlink { target } => {
                put(b"l");
                put(target);
            }
        }
    }
    hex::encode(h.finalize())
}

fn is_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `path:line:column: message`, the line and a caret under the column, for each diagnostic.
fn report(service_dir: &Path, source: &Source, diagnostics: &[strip::Diagnostic], runtime: &str) -> String {
    let path = service_dir.join(&source.name);
    let mut out = format!(
        "cannot run {} on {runtime}: it runs JavaScript only, and ignite could not strip the TypeScript types",
        path.display()
    );
    for d in diagnostics.iter().take(MAX_DIAGNOSTICS) {
        let (line, column, text) = strip::line_col(&source.text, d.offset);
        let pad: String = text.chars().take(column - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        // swc reports a decorator as a bare "Expression expected" at the '@'.
        let note = if source.text.as_bytes().get(d.offset) == Some(&b'@') {
            " (decorators are not supported on this runtime: it does not run them; use bun or deno)"
        } else {
            ""
        };
        let _ = write!(
            out,
            "\n{}:{line}:{column}: {}{note}\n{line:>6} | {text}\n{:>6} | {pad}^",
            path.display(),
            d.message,
            ""
        );
    }
    if diagnostics.len() > MAX_DIAGNOSTICS {
        let _ = write!(out, "\n… and {} more", diagnostics.len() - MAX_DIAGNOSTICS);
    }
    if diagnostics.iter().any(|d| d.message.contains("strip-only mode") || d.message.contains("type strip mode")) {
        let _ = write!(
            out,
            "\nhint: {runtime} gets TypeScript's erasable syntax only (what tsc's --erasableSyntaxOnly allows): use a union type or a const object instead of an enum, a module instead of a namespace, assignments in the constructor body instead of parameter properties, `x as T` instead of `<T>x`; or run the service on bun or deno"
        );
    }
    out
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StageError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).at("set mode of", path)?;
    Ok(())
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), StageError> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).at("create", path)?;
    file.write_all(content).at("write", path)?;
    // Set after writing: the umask must not decide what the sandbox user can read.
    file.set_permissions(fs::Permissions::from_mode(mode)).at("set mode of", path)?;
    Ok(())
}

#[cfg(test)]
mod tests;
