//! The dependency cache, one tree per key, shared by every run and every runtime:
//!
//! ```text
//! <cache>/deps/sha256-<key>/node_modules/   an installed tree (root-owned, read-only to runs)
//! <cache>/deps/sha256-<key>/install.json    how it was installed; its mtime is the last use
//! <cache>/deps/locks/sha256-<key>.lock      flock: exclusive to install or prune, shared to use
//! <cache>/deps/tmp/.tmp-<key>-<pid>-…       a tree being assembled (renamed into place whole)
//! ```
//!
//! A run holds a shared lock on its key for as long as the tree is mounted, so pruning (which
//! needs the exclusive lock, and never waits for it) can never pull a tree from under a run.
//! Lock files are never deleted: unlinking a lock file others may hold open would let two
//! processes "own" the same key.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::fsutil::remove_any;
use crate::fsutil::{At, IoError};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// Most trees kept; the least recently used beyond this are removed after each install.
pub const DEFAULT_MAX_ENTRIES: usize = 64;
/// Most bytes (of installed files) kept, with the same rule.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;
const RECORD: &str = "install.json";
const MODULES: &str = "node_modules";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("failed to lock {path}: {source}")]
    Lock { path: PathBuf, source: Errno },
}

/// `install.json`: what a tree is and how it came to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallRecord {
    pub key: String,
    /// e.g. `bun@1.4.5`.
    pub installer: String,
    /// The service whose install created the tree (others with the same inputs share it).
    pub service: String,
    pub lockfile: Option<String>,
    pub scripts: bool,
    pub packages: u64,
    pub files: u64,
    pub bytes: u64,
    pub duration_ms: f64,
    pub created_unix: u64,
}

/// A tree in use: the shared lock is held until this is dropped.
#[derive(Debug)]
pub struct Lease {
    _lock: Flock<File>,
    /// `<cache>/deps/sha256-<key>/node_modules`.
    pub modules: PathBuf,
    pub record: InstallRecord,
}

/// A tree being assembled under the key's exclusive lock; removed on drop unless committed.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    committed: bool,
}

impl Staging {
    /// Where the copy of the installed tree goes.
    pub fn modules(&self) -> PathBuf {
        self.dir.join(MODULES)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            remove_any(&self.dir);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

#[derive(Debug, Clone)]
pub struct DepsCache {
    root: PathBuf,
    pub max_entries: usize,
    pub max_bytes: u64,
}

impl DepsCache {
    /// The cache under `<cache_dir>/deps`.
    pub fn new(cache_dir: &Path) -> DepsCache {
        DepsCache { root: cache_dir.join("deps"), max_entries: DEFAULT_MAX_ENTRIES, max_bytes: DEFAULT_MAX_BYTES }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join(format!("sha256-{key}"))
    }

    /// Where the tree of `key` is (or will be) — what a run mounts at `/node_modules`.
    pub fn modules_dir(&self, key: &str) -> PathBuf {
        self.entry_dir(key).join(MODULES)
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("sha256-{key}.lock"))
    }

    fn create_layout(&self) -> Result<(), CacheError> {
        for dir in [self.root.clone(), self.root.join("locks"), self.root.join("tmp")] {
            fs::create_dir_all(&dir).at("create", &dir)?;
        }
        Ok(())
    }

    /// Tries to take the key's lock without waiting; `None` if another process holds it in a
    /// conflicting mode. (Callers wait between attempts, so that waiting stays interruptible.)
    pub fn try_lock(&self, key: &str, mode: LockMode) -> Result<Option<Flock<File>>, CacheError> {
        self.create_layout()?;
        let path = self.lock_path(key);
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).at("open lock file", &path)?;
        let arg = match mode {
            LockMode::Shared => FlockArg::LockSharedNonblock,
            LockMode::Exclusive => FlockArg::LockExclusiveNonblock,
        };
        match Flock::lock(file, arg) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, Errno::EWOULDBLOCK | Errno::EINTR)) => Ok(None),
            Err((_, source)) => Err(CacheError::Lock { path, source }),
        }
    }

    /// The finished tree of `key`, if there is one; needs the key's lock (either mode).
    pub fn record(&self, key: &str) -> Option<InstallRecord> {
        let dir = self.entry_dir(key);
        let record: InstallRecord = serde_json::from_slice(&fs::read(dir.join(RECORD)).ok()?).ok()?;
        let modules = fs::symlink_metadata(dir.join(MODULES)).ok()?;
        (modules.is_dir() && record.key == key).then_some(record)
    }

    /// Turns a shared lock into a lease on the finished tree, marking it used now; gives the
    /// lock back if there is no finished tree.
    pub fn lease(&self, lock: Flock<File>, key: &str) -> Result<Lease, Flock<File>> {
        let Some(record) = self.record(key) else {
            return Err(lock);
        };
        let record_path = self.entry_dir(key).join(RECORD);
        // Last use, for pruning; a failure only makes the tree look older than it is.
        let _ = File::options().write(true).open(&record_path).and_then(|f| f.set_modified(SystemTime::now()));
        Ok(Lease { _lock: lock, modules: self.modules_dir(key), record })
    }

    /// A fresh staging directory for `key`; the caller holds the key's exclusive lock.
    pub fn stage(&self, key: &str) -> Result<Staging, CacheError> {
        self.create_layout()?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join("tmp").join(format!(".tmp-{key}-{}-{n}", std::process::id()));
        fs::create_dir(&dir).at("create", &dir)?;
        Ok(Staging { dir, committed: false })
    }

    /// Records how the staged tree was made and renames it into place as the tree of `key`.
    pub fn commit(&self, mut staging: Staging, record: &InstallRecord) -> Result<(), CacheError> {
        let json =
            serde_json::to_vec_pretty(record).map_err(io::Error::from).at("serialise", staging.dir.join(RECORD))?;
        let record_path = staging.dir.join(RECORD);
        fs::write(&record_path, json).at("write", &record_path)?;
        let entry = self.entry_dir(&record.key);
        // A damaged entry (e.g. install.json lost) is replaced whole.
        if fs::symlink_metadata(&entry).is_ok() {
            remove_any(&entry);
        }
        fs::rename(&staging.dir, &entry).at("rename into place", &entry)?;
        staging.committed = true;
        Ok(())
    }

    /// Removes staging directories of `key` left by a crashed process; the caller holds the
    /// key's exclusive lock, so none of them is in use.
    pub fn remove_stale_temps(&self, key: &str) {
        let prefix = format!(".tmp-{key}-");
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else { return };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                tracing::debug!(path = %entry.path().display(), "removing a stale dependency staging dir");
                remove_any(&entry.path());
            }
        }
    }

    /// Removes every staging directory whose key nobody is installing (for `ignite cleanup`).
    pub fn reap_temps(&self) -> usize {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_prefix(".tmp-").and_then(|r| r.split('-').next()) else { continue };
            if let Ok(Some(_lock)) = self.try_lock(key, LockMode::Exclusive) {
                remove_any(&entry.path());
                removed += 1;
            }
        }
        removed
    }

    /// Removes the least recently used trees until at most `max_entries` trees and
    /// `max_bytes` remain, never `keep` and never a tree in use. Returns the keys removed.
    pub fn prune(&self, keep: &str) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.root) else { return Vec::new() };
        // (last use, key, bytes)
        let mut trees: Vec<(SystemTime, String, u64)> = entries
            .flatten()
            .filter_map(|e| {
                let key = e.file_name().to_str()?.strip_prefix("sha256-")?.to_string();
                let record = e.path().join(RECORD);
                let used = fs::metadata(&record).and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH);
                let bytes = fs::read(&record)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<InstallRecord>(&b).ok())
                    .map_or(0, |r| r.bytes);
                Some((used, key, bytes))
            })
            .collect();
        trees.sort();
        let mut count = trees.len();
        let mut total: u64 = trees.iter().map(|t| t.2).sum();
        let mut removed = Vec::new();
        for (_, key, bytes) in trees {
            if count <= self.max_entries && total <= self.max_bytes {
                break;
            }
            if key == keep {
                continue;
            }
            // In use (or being installed): skip it rather than wait.
            let Ok(Some(_lock)) = self.try_lock(&key, LockMode::Exclusive) else { continue };
            let entry = self.entry_dir(&key);
            // Renamed first, so that nobody ever sees a half-removed tree as installed.
            let trash = self.root.join("tmp").join(format!(".tmp-{key}-prune-{}", std::process::id()));
            if fs::rename(&entry, &trash).is_ok() {
                remove_any(&trash);
                count -= 1;
                total = total.saturating_sub(bytes);
                tracing::info!("removed the least recently used dependency tree sha256-{key}");
                removed.push(key);
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, bytes: u64) -> InstallRecord {
        InstallRecord {
            key: key.into(),
            installer: "bun@1.4.5".into(),
            service: "s".into(),
            lockfile: None,
            scripts: false,
            packages: 1,
            files: 1,
            bytes,
            duration_ms: 1.0,
            created_unix: 0,
        }
    }

    fn install(cache: &DepsCache, key: &str, bytes: u64) {
        let _lock = cache.try_lock(key, LockMode::Exclusive).unwrap().unwrap();
        let staging = cache.stage(key).unwrap();
        fs::create_dir(staging.modules()).unwrap();
        fs::write(staging.modules().join("x"), "y").unwrap();
        cache.commit(staging, &record(key, bytes)).unwrap();
    }

    fn age(cache: &DepsCache, key: &str, secs_ago: u64) {
        let f = File::options().write(true).open(cache.entry_dir(key).join(RECORD)).unwrap();
        f.set_modified(SystemTime::now() - std::time::Duration::from_secs(secs_ago)).unwrap();
    }

    #[test]
    fn lease_needs_a_committed_tree() {
        let d = tempfile::tempdir().unwrap();
        let cache = DepsCache::new(d.path());
        let lock = cache.try_lock("k1", LockMode::Shared).unwrap().unwrap();
        let lock = cache.lease(lock, "k1").unwrap_err();
        drop(lock);
        // A failed install (staging dropped) leaves nothing behind.
        {
            let _x = cache.try_lock("k1", LockMode::Exclusive).unwrap().unwrap();
            let staging = cache.stage("k1").unwrap();
            fs::create_dir(staging.modules()).unwrap();
        }
        assert_eq!(fs::read_dir(cache.root().join("tmp")).unwrap().count(), 0);
        install(&cache, "k1", 10);
        let lease = cache.lease(cache.try_lock("k1", LockMode::Shared).unwrap().unwrap(), "k1").unwrap();
        assert_eq!(lease.modules, d.path().join("deps/sha256-k1/node_modules"));
        assert_eq!(lease.record.bytes, 10);
        // While leased, nobody can take the key exclusively (to install over it or prune it).
        assert!(cache.try_lock("k1", LockMode::Exclusive).unwrap().is_none());
        assert!(cache.try_lock("k1", LockMode::Shared).unwrap().is_some());
        drop(lease);
        assert!(cache.try_lock("k1", LockMode::Exclusive).unwrap().is_some());
    }

    #[test]
    fn prune_removes_least_recently_used_but_never_in_use() {
        let d = tempfile::tempdir().unwrap();
        let mut cache = DepsCache::new(d.path());
        for (i, key) in ["a", "b", "c", "d"].iter().enumerate() {
            install(&cache, key, 100);
            age(&cache, key, 1000 - i as u64 * 100);
        }
        cache.max_entries = 2;
        // "a" is the oldest, but in use.
        let _in_use = cache.lease(cache.try_lock("a", LockMode::Shared).unwrap().unwrap(), "a").unwrap();
        let removed = cache.prune("d");
        assert_eq!(removed, vec!["b".to_string(), "c".to_string()]);
        assert!(cache.record("a").is_some() && cache.record("d").is_some());
        assert!(cache.record("b").is_none());
        cache.max_entries = 10;
        cache.max_bytes = 150;
        drop(_in_use);
        assert_eq!(cache.prune("d"), vec!["a".to_string()]);
        assert_eq!(fs::read_dir(cache.root().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn stale_temps_are_reaped_only_when_unlocked() {
        let d = tempfile::tempdir().unwrap();
        let cache = DepsCache::new(d.path());
        let s1 = cache.stage("k1").unwrap();
        let s2 = cache.stage("k2").unwrap();
        // Simulate a crash: the dirs stay, their owners are gone.
        std::mem::forget(s1);
        std::mem::forget(s2);
        let busy = cache.try_lock("k2", LockMode::Exclusive).unwrap().unwrap();
        assert_eq!(cache.reap_temps(), 1);
        drop(busy);
        cache.remove_stale_temps("k2");
        assert_eq!(fs::read_dir(cache.root().join("tmp")).unwrap().count(), 0);
    }
}
