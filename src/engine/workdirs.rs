//! What `ignite serve` keeps under the state dir besides its runs — session workspaces (tmpfs
//! mounts under `sessions/<id>`) and inline code directories (`inline/run-<pid>-…`) — how each
//! is known to belong to a live server, and how a dead server's are found and removed (and,
//! alike, the program directory of a live `ignite bench`, [`BenchDir`]). Both the
//! next `ignite serve` and `ignite cleanup` call [`reap_stale`], so a `kill -9` of the server
//! leaves nothing that `ignite cleanup` cannot remove.
//!
//! A session is owned by a directory `session-owners/<id>/` whose lock the server holds for
//! the session's life ([`crate::fsutil::owned`]); it is created (and locked) before the
//! workspace is, and removed after the workspace is unmounted, so a workspace without a live
//! owner is a dead server's. The lock lives outside the workspace: the sandbox, which writes in
//! the workspace, cannot plant or remove it. An inline directory carries its server's pid.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::mount::MntFlags;

use crate::fsutil::owned::{self, LOCK_FILE, Leftover};
use crate::fsutil::{At, IoError, remove_any};

/// Subdirectory of the state dir holding the session workspaces' mount points.
pub const SESSIONS_DIR: &str = "sessions";
/// Subdirectory of the state dir holding one owner directory (and lock) per live session.
pub const SESSION_OWNERS_DIR: &str = "session-owners";
/// Subdirectory of the state dir holding the per-run directories of inline code.
pub const INLINE_DIR: &str = "inline";
/// Subdirectory of the state dir holding the program of each live `ignite bench`.
pub const BENCH_DIR: &str = "bench";

#[derive(Debug, thiserror::Error)]
#[error("failed to {step} {path} (marking a session as owned by this server): {source}")]
pub struct OwnerError {
    step: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// A live session's mark of ownership: while this value lives, no reaper touches the
/// session's workspace. Dropping it removes the mark (after the workspace is gone).
#[derive(Debug)]
pub struct SessionOwner {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Drop for SessionOwner {
    fn drop(&mut self) {
        // Removed while the lock is still held, so no reaper sees it unlocked meanwhile.
        remove_any(&self.dir);
    }
}

/// Marks session `id` under `state_dir` as owned by this process. Call it before the workspace
/// is created, and keep the value until the workspace is unmounted.
pub fn own_session(state_dir: &Path, id: &str) -> Result<SessionOwner, OwnerError> {
    let (dir, lock) = owned::create(&state_dir.join(SESSION_OWNERS_DIR), id, 0o700, |_| Ok(()))
        .map_err(|e| OwnerError { step: e.op, path: e.path, source: e.source })?;
    Ok(SessionOwner { dir, _lock: lock })
}

/// Unmounts a session workspace (detached: a mount still busy goes away once its last user
/// does) and removes its mount point.
pub fn unmount_workspace(dir: &Path) {
    if let Err(e) = nix::mount::umount2(dir, MntFlags::MNT_DETACH)
        && e != nix::errno::Errno::EINVAL
        && e != nix::errno::Errno::ENOENT
    {
        tracing::warn!(dir = %dir.display(), error = %e, "failed to unmount a session workspace");
    }
    remove_any(dir);
}

/// The service directory `ignite bench` runs, under `<state>/bench/run-<pid>/`: written before
/// it is visible, owned (locked) by this process for its life, removed when dropped. Those of
/// benchmarks that died are removed when the next one creates its own.
#[derive(Debug)]
pub struct BenchDir {
    root: PathBuf,
    _lock: Flock<File>,
}

/// The service directory inside a [`BenchDir`]: the lock file beside it stays out of `/app`.
const BENCH_SERVICE: &str = "service";

impl BenchDir {
    /// Creates the directory with `files` (name, text), readable by the sandbox's uid.
    pub fn create(state_dir: &Path, files: &[(&str, &str)]) -> Result<BenchDir, IoError> {
        let parent = state_dir.join(BENCH_DIR);
        for leftover in owned::leftovers(&parent) {
            // A dead one's lock is held (in `leftover`) until it is gone.
            let (Leftover::Abandoned { dir, .. } | Leftover::Dead { dir, .. }) = &leftover;
            remove_any(dir);
        }
        let (root, lock) = owned::create(&parent, &format!("run-{}", std::process::id()), 0o755, |tmp| {
            use std::os::unix::fs::PermissionsExt;
            let svc = tmp.join(BENCH_SERVICE);
            fs::create_dir(&svc).at("create", &svc)?;
            for (name, text) in files {
                fs::write(svc.join(name), text).at("write", svc.join(name))?;
            }
            fs::set_permissions(&svc, fs::Permissions::from_mode(0o755)).at("chmod", &svc)
        })?;
        Ok(BenchDir { root, _lock: lock })
    }

    pub fn service_dir(&self) -> PathBuf {
        self.root.join(BENCH_SERVICE)
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        // Removed while the lock is still held, so no other benchmark sees it unowned meanwhile.
        remove_any(&self.root);
    }
}

/// What [`reap_stale`] removed: session ids and inline directory names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    pub sessions: Vec<String>,
    pub inline: Vec<String>,
}

/// Removes the session workspaces and inline directories of servers that are gone; those of a
/// live server (this one or another on the same state dir) are left alone.
pub fn reap_stale(state_dir: &Path) -> Reaped {
    Reaped { sessions: reap_sessions(state_dir), inline: reap_inline(state_dir) }
}

fn reap_sessions(state_dir: &Path) -> Vec<String> {
    let owners = state_dir.join(SESSION_OWNERS_DIR);
    let mut reaped = Vec::new();
    if let Ok(entries) = fs::read_dir(state_dir.join(SESSIONS_DIR)) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Held until the workspace is gone: its owner cannot come back meanwhile, and a
            // session being created right now holds its owner before its workspace exists.
            let Some(_dead_owner) = dead_owner(&owners.join(&name)) else { continue };
            unmount_workspace(&e.path());
            reaped.push(name);
        }
    }
    // Marks whose workspace is already gone (the owner died between the two removals).
    for leftover in owned::leftovers(&owners) {
        let dir = match &leftover {
            Leftover::Abandoned { dir, .. } | Leftover::Dead { dir, .. } => dir,
        };
        remove_any(dir);
    }
    reaped.sort();
    reaped
}

/// `Some` (holding the owner's lock, if there is one) when no live process owns the session
/// whose owner directory is `dir`; `None` when one does.
fn dead_owner(dir: &Path) -> Option<Option<Flock<File>>> {
    match File::open(dir.join(LOCK_FILE)) {
        Ok(f) => Flock::lock(f, FlockArg::LockExclusiveNonblock).ok().map(Some),
        // No owner at all: a workspace of a process that died (or of an older ignite).
        Err(_) => Some(None),
    }
}

/// The pid in an inline directory's name (`run-<pid>-…`).
fn inline_pid(name: &str) -> Option<u32> {
    name.strip_prefix("run-").and_then(|r| r.split('-').next()).and_then(|p| p.parse().ok())
}

fn reap_inline(state_dir: &Path) -> Vec<String> {
    let mut reaped = Vec::new();
    let Ok(entries) = fs::read_dir(state_dir.join(INLINE_DIR)) else { return reaped };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if inline_pid(&name).is_none_or(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            remove_any(&e.path());
            reaped.push(name);
        }
    }
    reaped.sort();
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_of_a_live_owner_stay_and_dead_ones_go() {
        let d = tempfile::tempdir().unwrap();
        let sessions = d.path().join(SESSIONS_DIR);
        fs::create_dir_all(&sessions).unwrap();
        let live = own_session(d.path(), "live").unwrap();
        fs::create_dir(sessions.join("live")).unwrap();
        // A dead owner: its lock file exists but nobody holds it.
        fs::create_dir_all(d.path().join(SESSION_OWNERS_DIR).join("dead")).unwrap();
        fs::write(d.path().join(SESSION_OWNERS_DIR).join("dead").join(LOCK_FILE), "").unwrap();
        fs::create_dir(sessions.join("dead")).unwrap();
        // No owner at all.
        fs::create_dir(sessions.join("orphan")).unwrap();
        // An owner whose workspace is gone already.
        fs::create_dir_all(d.path().join(SESSION_OWNERS_DIR).join("gone")).unwrap();

        let reaped = reap_stale(d.path());
        assert_eq!(reaped.sessions, ["dead", "orphan"]);
        assert!(sessions.join("live").is_dir());
        let owners: Vec<_> = fs::read_dir(d.path().join(SESSION_OWNERS_DIR)).unwrap().flatten().collect();
        assert_eq!(owners.len(), 1, "only the live owner remains: {owners:?}");

        drop(live);
        assert!(!d.path().join(SESSION_OWNERS_DIR).join("live").exists(), "the owner mark goes with its session");
        assert_eq!(reap_stale(d.path()).sessions, ["live"]);
    }

    #[test]
    fn inline_directories_of_dead_pids_go() {
        let d = tempfile::tempdir().unwrap();
        let inline = d.path().join(INLINE_DIR);
        let mine = format!("run-{}-0000-1", std::process::id());
        // Pid beyond pid_max (4194304 at most): never alive.
        for name in [mine.as_str(), "run-99999999-0000-1", "junk"] {
            fs::create_dir_all(inline.join(name)).unwrap();
        }
        assert_eq!(reap_stale(d.path()).inline, ["junk", "run-99999999-0000-1"]);
        assert!(inline.join(&mine).is_dir());
    }
}
