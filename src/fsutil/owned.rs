//! Directories owned by a live ignite process (a run's state, its policy grants, an install
//! workspace): each holds a lock file that its owner keeps flock'ed for its whole life, so a
//! crashed owner is recognised by a lock anyone can take. A directory is prepared under a
//! hidden name and renamed into place with its lock already held, so a concurrent
//! [`leftovers`] scan never sees a live directory unlocked.

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

/// A failed step: what was done (`create`, `lock`, `rename`), to which path, and why.
pub type StepError = (&'static str, PathBuf, std::io::Error);

/// Creates `<parent>/<name>/` with `mode`, already holding its lock. `prepare` fills the hidden
/// directory before the rename; on any failure the hidden directory is removed.
pub fn create(
    parent: &Path,
    name: &str,
    mode: u32,
    prepare: impl FnOnce(&Path) -> Result<(), StepError>,
) -> Result<(PathBuf, Flock<File>), StepError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| ("create", parent.to_path_buf(), e))?;
    let tmp = parent.join(format!("{HIDDEN_PREFIX}{name}"));
    fs::DirBuilder::new().mode(mode).create(&tmp).map_err(|e| ("create", tmp.clone(), e))?;
    let result = (|| {
        let path = tmp.join(LOCK_FILE);
        let file = File::create(&path).map_err(|e| ("create", path.clone(), e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| ("lock", path, e.into()))?;
        prepare(&tmp)?;
        let dir = parent.join(name);
        fs::rename(&tmp, &dir).map_err(|e| ("rename", tmp.clone(), e))?;
        Ok((dir, lock))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
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
        let lock = match File::open(dir.join(LOCK_FILE)) {
            Ok(f) => match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => Some(l),
                Err(_) => continue, // Locked: its owner is alive.
            },
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
        let (live, _held) = create(d.path(), "live", 0o700, |tmp| {
            fs::write(tmp.join("x"), "1").map_err(|e| ("write", tmp.to_path_buf(), e))
        })
        .unwrap();
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

    #[test]
    fn a_failed_preparation_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let err =
            create(d.path(), "x", 0o700, |tmp| Err(("prepare", tmp.to_path_buf(), std::io::Error::other("boom"))))
                .unwrap_err();
        assert_eq!(err.0, "prepare");
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
