//! Per-run identities: each run's program gets a uid (and the same gid) of its own from a
//! dedicated range, unique among the runs alive on this host at the same time.
//!
//! Some kernel limits are counted per user, not per namespace or cgroup — inotify instances
//! and watches, POSIX message queue bytes, pending signals, pipe buffer pages. With one uid
//! for every run, one run could use them up for all the others while it lives; with a uid of
//! its own, it only exhausts its own.
//!
//! Allocation is safe across concurrent ignite processes: a uid is taken by holding an
//! exclusive `flock` on `<state>/uids/<uid>.lock` for the run's life. Each allocation starts
//! at a random uid (so concurrent allocators rarely contend) and walks the range. A process
//! that dies releases its locks with its file descriptors, so a stale file is free to take.
//! A released lease removes its file while still holding the lock; an allocator that locked a
//! file someone removed meanwhile sees that its descriptor no longer matches the path, and
//! moves on — so no two live leases ever share a uid.
//!
//! Beside each lock, the lease writes the `/etc/passwd` and `/etc/group` its sandbox sees
//! (bound read-only over the rootfs's): root, nobody, and `ignite` for the run's uid, so that
//! tools looking up their own user (`os.userInfo()`, `whoami`) get an answer, as with nobody.

use std::fs::{self, File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::fsutil::{At, IoError};
use nix::fcntl::{Flock, FlockArg};

/// First uid handed to runs. Far above the ranges distributions give to users (1000..60000)
/// and to systemd's dynamic users (61184..65519), and below the 524288 systemd-nspawn starts at.
pub const FIRST_UID: u32 = 200_000;
/// How many uids the range holds: `FIRST_UID..=LAST_UID` (200000..=265535).
pub const UID_COUNT: u32 = 65_536;
pub const LAST_UID: u32 = FIRST_UID + UID_COUNT - 1;
/// Subdirectory of the state dir holding the uid lock files.
pub const UIDS_DIR: &str = "uids";

/// Whether `uid` is one ignite gives to runs.
pub fn is_run_uid(uid: u32) -> bool {
    (FIRST_UID..=LAST_UID).contains(&uid)
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(
        "all {count} run uids ({FIRST_UID}..{end}) are in use by runs alive on this host (locks in {dir}); wait for some to finish", end = FIRST_UID + count
    )]
    Exhausted { dir: PathBuf, count: u32 },
}

/// The user name a run's uid has inside its sandbox.
pub const USER_NAME: &str = "ignite";

/// A uid held for one run (or one session): released, and its files removed, on drop.
#[derive(Debug)]
pub struct UidLease {
    uid: u32,
    path: PathBuf,
    _lock: Flock<File>,
}

impl UidLease {
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The gid that goes with it: the same number, so nothing else shares the group either.
    pub fn gid(&self) -> u32 {
        self.uid
    }

    /// The sandbox's `/etc/passwd`: root, nobody and [`USER_NAME`] (home `/tmp`).
    pub fn passwd(&self) -> PathBuf {
        self.path.with_extension("passwd")
    }

    /// The sandbox's `/etc/group`: root, nobody and [`USER_NAME`].
    pub fn group(&self) -> PathBuf {
        self.path.with_extension("group")
    }

    fn write_user_db(&self) -> Result<(), IdentityError> {
        let uid = self.uid;
        let passwd = format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n{USER_NAME}:x:{uid}:{uid}:{USER_NAME}:/tmp:/usr/sbin/nologin\n"
        );
        let group = format!("root:x:0:\nnobody:x:65534:\n{USER_NAME}:x:{uid}:\n");
        for (path, text) in [(self.passwd(), passwd), (self.group(), group)] {
            let _ = fs::remove_file(&path); // A dead holder's; ours now.
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .at("create", &path)?;
            std::io::Write::write_all(&mut f, text.as_bytes()).at("write", &path)?;
        }
        Ok(())
    }
}

/// Removes a uid's files, the lock last and while it is still held (the caller drops it after),
/// so an allocator that opened the old lock file sees it was replaced and does not take it.
fn remove_files(lock: &Path) {
    for path in [lock.with_extension("passwd"), lock.with_extension("group"), lock.to_path_buf()] {
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "failed to remove a uid file");
        }
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        remove_files(&self.path);
    }
}

/// `<state>/uids/`.
pub fn uids_dir(state_root: &Path) -> PathBuf {
    state_root.join(UIDS_DIR)
}

fn lock_path(dir: &Path, uid: u32) -> PathBuf {
    dir.join(format!("{uid}.lock"))
}

fn random_offset() -> u32 {
    let mut bytes = [0u8; 4];
    // Only spreads the starting point: a failed read costs contention, never uniqueness.
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        bytes = std::process::id().to_le_bytes();
    }
    u32::from_le_bytes(bytes) % UID_COUNT
}

/// Takes the lock on `path` if it is free and still the file at `path`.
fn try_lock(path: &Path) -> Result<Option<Flock<File>>, IdentityError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .at("open", path)?;
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
        Err((_, e)) => return Err(IoError::new("lock", path, e).into()),
    };
    let held = lock.metadata().at("inspect", path)?;
    match fs::symlink_metadata(path) {
        Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => Ok(Some(lock)),
        // Released (and removed) between our open and our lock: someone may hold a new file.
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoError::new("inspect", path, e).into()),
    }
}

/// Allocates a uid no other live run on this host (using the same state dir) holds, from the
/// first `count` run uids (all [`UID_COUNT`] as root; rootless, as many as the user's
/// subordinate range maps, see [`crate::sandbox::userns`]).
pub fn allocate(state_root: &Path, count: u32) -> Result<UidLease, IdentityError> {
    allocate_in(state_root, FIRST_UID, count.clamp(1, UID_COUNT))
}

/// [`allocate`] from `first..first + count` (tests use a small range).
fn allocate_in(state_root: &Path, first: u32, count: u32) -> Result<UidLease, IdentityError> {
    let dir = uids_dir(state_root);
    fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).at("create", &dir)?;
    let start = random_offset() % count;
    for i in 0..count {
        let uid = first + (start + i) % count;
        let path = lock_path(&dir, uid);
        if let Some(lock) = try_lock(&path)? {
            let lease = UidLease { uid, path, _lock: lock };
            lease.write_user_db()?;
            return Ok(lease);
        }
    }
    Err(IdentityError::Exhausted { dir, count })
}

/// Removes the lock files of runs whose ignite died (their lock is free). Returns how many.
pub fn reap_stale(state_root: &Path) -> usize {
    let Ok(entries) = fs::read_dir(uids_dir(state_root)) else { return 0 };
    let mut reaped = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        // The other files go with their lock, which is created first and removed last.
        if path.extension().is_none_or(|e| e != "lock") {
            continue;
        }
        // Held while removed, like a released lease, so that no allocator takes a dead uid.
        if let Ok(Some(lock)) = try_lock(&path) {
            remove_files(&path);
            reaped += 1;
            drop(lock);
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_unique_in_range_and_released_on_drop() {
        let state = tempfile::tempdir().unwrap();
        let leases: Vec<_> = (0..64).map(|_| allocate(state.path(), UID_COUNT).unwrap()).collect();
        let mut uids: Vec<u32> = leases.iter().map(UidLease::uid).collect();
        assert!(uids.iter().all(|&u| is_run_uid(u) && u != 0), "{uids:?}");
        uids.sort_unstable();
        uids.dedup();
        assert_eq!(uids.len(), leases.len(), "a uid was handed out twice");
        assert_eq!(fs::read_dir(uids_dir(state.path())).unwrap().count(), 3 * leases.len());
        let passwd = fs::read_to_string(leases[0].passwd()).unwrap();
        let uid = leases[0].uid();
        assert!(passwd.ends_with(&format!("\nignite:x:{uid}:{uid}:ignite:/tmp:/usr/sbin/nologin\n")), "{passwd}");
        assert!(fs::read_to_string(leases[0].group()).unwrap().ends_with(&format!("\nignite:x:{uid}:\n")));
        drop(leases);
        assert_eq!(fs::read_dir(uids_dir(state.path())).unwrap().count(), 0, "lock files left behind");
    }

    #[test]
    fn a_held_uid_is_skipped_and_a_dead_holders_file_is_free() {
        let state = tempfile::tempdir().unwrap();
        let dir = uids_dir(state.path());
        fs::create_dir_all(&dir).unwrap();
        // Every uid but one is held by someone else: the allocator must find the free one.
        let (first, count) = (FIRST_UID + 1000, 32);
        let free = first + 17;
        let mut held = Vec::new();
        for uid in first..first + count {
            if uid != free {
                let f = File::create(lock_path(&dir, uid)).unwrap();
                held.push(Flock::lock(f, FlockArg::LockExclusiveNonblock).unwrap());
            }
        }
        // Stale files whose holder died (nobody holds its lock) are as good as none.
        File::create(lock_path(&dir, free)).unwrap();
        fs::write(lock_path(&dir, free).with_extension("passwd"), "stale").unwrap();
        let lease = allocate_in(state.path(), first, count).unwrap();
        assert_eq!(lease.uid(), free);
        assert!(fs::read_to_string(lease.passwd()).unwrap().contains(&format!(":{free}:{free}:")));
        assert!(matches!(allocate_in(state.path(), first, count), Err(IdentityError::Exhausted { .. })));
        drop(lease);
        drop(held);
        // Files of holders that are gone (here: dropped without removing) are reaped.
        assert_eq!(reap_stale(state.path()), (count - 1) as usize);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    }
}
