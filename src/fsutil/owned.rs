//! Directories owned by a live ignite process (a run's state, its policy grants, an install
//! workspace): each holds a lock file that its owner keeps flock'ed for its whole life, so a
//! crashed owner is recognised by a lock anyone can take. A directory is prepared under a
//! hidden name and renamed into place with its lock already held, and its owner takes it out
//! of place again (renamed to a hidden name) before it lets go of the lock, so a concurrent
//! [`leftovers`] scan never sees a live directory unlocked, not even one being removed.

use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

/// The lock file inside an owned directory.
pub const LOCK_FILE: &str = "lock";
/// Prefix of a directory still being prepared.
pub const HIDDEN_PREFIX: &str = ".new-";
/// A hidden directory this old was left by a process that died while preparing it.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

use super::{At, IoError};

/// Creates `<parent>/<name>/` with `mode`, already holding its lock. `prepare` fills the hidden
/// directory before the rename; on any failure the hidden directory is removed.
pub fn create(
    parent: &Path,
    name: &str,
    mode: u32,
    prepare: impl FnOnce(&Path) -> Result<(), IoError>,
) -> Result<(PathBuf, Flock<File>), IoError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).at("create", parent)?;
    let tmp = parent.join(format!("{HIDDEN_PREFIX}{name}"));
    fs::DirBuilder::new().mode(mode).create(&tmp).at("create", &tmp)?;
    let result = (|| {
        let path = tmp.join(LOCK_FILE);
        let file = File::create(&path).at("create", &path)?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e).at("lock", &path)?;
        prepare(&tmp)?;
        let dir = parent.join(name);
        fs::rename(&tmp, &dir).at("rename", &tmp)?;
        Ok((dir, lock))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Removes an owned directory; its owner calls this while still holding its lock. The
/// directory is first renamed to a hidden name, so a [`leftovers`] scan that runs meanwhile
/// (another run of the same process starting) never finds it unlocked or half-deleted and
/// takes it for a dead owner's.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let retired = dir.with_file_name(format!("{HIDDEN_PREFIX}{name}.removed"));
    let target = match fs::rename(dir, &retired) {
        Ok(()) => retired,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Not renamable (e.g. a mount point): removed in place, as before.
        Err(_) => dir.to_path_buf(),
    };
    match fs::remove_dir_all(&target) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether the locked file is still the one at `path` (not renamed away or replaced).
fn still_at(lock: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (lock.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A directory under a parent that no live process owns.
#[derive(Debug)]
pub enum Leftover {
    /// Hidden and old: its owner died while preparing it (nothing was started from it).
    Abandoned { name: String, dir: PathBuf },
    /// Its lock was free (now held here until this value is dropped), or it has no lock file
    /// at all (damaged): its owner is gone.
    Dead { name: String, dir: PathBuf, lock: Option<Flock<File>> },
}

/// The directories under `parent` whose owner is gone. Live ones, and hidden ones young
/// enough to be in preparation right now, are left out.
pub fn leftovers(parent: &Path) -> Vec<Leftover> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        if name.starts_with(HIDDEN_PREFIX) {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > ABANDONED_AFTER);
            if old {
                found.push(Leftover::Abandoned { name, dir });
            }
            continue;
        }
        let path = dir.join(LOCK_FILE);
        let lock = match File::open(&path) {
            Ok(f) => match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                // Free, but its owner may have renamed the directory away (see [`remove`])
                // after this scan opened the file: only a lock file still in place is proof
                // that the owner died.
                Ok(l) if still_at(&l, &path) => Some(l),
                Ok(_) => continue,
                Err(_) => continue, // Locked: its owner is alive.
            },
            // Renamed away by its owner since the directory was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && fs::symlink_metadata(&dir).is_err() => continue,
            Err(_) => None,
        };
        found.push(Leftover::Dead { name, dir, lock });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(found: &[Leftover]) -> Vec<String> {
        let mut v: Vec<String> = found
            .iter()
            .map(|l| match l {
                Leftover::Abandoned { name, .. } => format!("abandoned:{name}"),
                Leftover::Dead { name, lock, .. } => format!("dead:{name}:{}", lock.is_some()),
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn live_and_fresh_directories_are_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let (live, _held) =
            create(d.path(), "live", 0o700, |tmp| fs::write(tmp.join("x"), "1").at("write", tmp)).unwrap();
        assert!(live.join("x").exists() && live.join(LOCK_FILE).exists());
        fs::create_dir(d.path().join("dead")).unwrap();
        fs::write(d.path().join("dead").join(LOCK_FILE), "").unwrap();
        fs::create_dir(d.path().join("damaged")).unwrap();
        fs::create_dir(d.path().join(format!("{HIDDEN_PREFIX}fresh"))).unwrap();
        fs::write(d.path().join("a-file"), "").unwrap();
        assert_eq!(names(&leftovers(d.path())), ["dead:damaged:false", "dead:dead:true"]);
        drop(_held);
        assert_eq!(names(&leftovers(d.path())), ["dead:damaged:false", "dead:dead:true", "dead:live:true"]);
    }

    /// An owner removing its directories while another thread of the same process scans
    /// (what every run start of a busy server does) is never taken for a dead one.
    #[test]
    fn directories_their_owner_removes_are_never_leftovers() {
        let d = tempfile::tempdir().unwrap();
        let parent = d.path().to_path_buf();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let owner = {
            let (parent, done) = (parent.clone(), done.clone());
            std::thread::spawn(move || {
                for i in 0..2000 {
                    let (dir, lock) = create(&parent, &format!("run-{i}"), 0o700, |tmp| {
                        fs::write(tmp.join("data"), "x").at("write", tmp)
                    })
                    .unwrap();
                    remove(&dir).unwrap();
                    drop(lock);
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let mut scans = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let found = leftovers(&parent);
            assert!(found.is_empty(), "a live owner's directory was taken for a leftover: {found:?}");
            scans += 1;
        }
        owner.join().unwrap();
        assert!(scans > 0);
        assert_eq!(fs::read_dir(&parent).unwrap().count(), 0, "everything was removed");
    }

    #[test]
    fn a_failed_preparation_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let err = create(d.path(), "x", 0o700, |tmp| Err(IoError::new("prepare", tmp, std::io::Error::other("boom"))))
            .unwrap_err();
        assert_eq!(err.op, "prepare");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_old_hidden_directory_is_abandoned() {
        let d = tempfile::tempdir().unwrap();
        let hidden = d.path().join(format!("{HIDDEN_PREFIX}old"));
        fs::create_dir(&hidden).unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(120);
        File::open(&hidden).unwrap().set_modified(old).unwrap();
        assert_eq!(names(&leftovers(d.path())), [format!("abandoned:{HIDDEN_PREFIX}old")]);
    }
}
