//! What a run keeps on disk, under `<state>/runs/`: its directory, created already locked (the
//! lock is what tells a live run from a dead one's leftovers), the init pid and cgroup paths
//! recorded there, the log beside it; and the ids that name runs and containers.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use nix::fcntl::Flock;

use super::{Supervisor, SupervisorError};
use crate::fsutil::owned;
use crate::sandbox::cgroup::CgroupPaths;
use crate::sandbox::oci::OciRuntime;

/// Where per-run state lives: `<state>/runs/<id>/` (bundle dir with config.json, a lock
/// held for the run's lifetime, the cgroup paths) and `<state>/runs/<id>.log`.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runs().join(id)
    }
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.runs().join(format!("{id}.log"))
    }
    pub fn oci_root(&self, oci: &str) -> PathBuf {
        self.root.join("oci").join(oci)
    }
}

/// The run directory's record of the container's cgroup paths.
pub(super) const CGROUP_FILE: &str = "cgroup.json";

impl<R: OciRuntime> Supervisor<R> {
    /// Creates `runs/<id>/` already holding its lock: the directory is prepared under a
    /// hidden name and renamed into place, so a concurrent `reap_stale` never sees a run
    /// directory whose lock is not yet taken.
    pub(super) fn create_locked_run_dir(&self, run_dir: &Path) -> Result<Flock<File>, SupervisorError> {
        let name = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (_, lock) = owned::create(&self.state.runs(), &name, 0o755, |_| Ok(()))?;
        Ok(lock)
    }

    /// The cgroups of the container's init, if the runtime has written its pid file by now.
    pub(super) fn locate_cgroups(&self, run_dir: &Path) -> Option<CgroupPaths> {
        self.record_cgroups(init_pid(run_dir)?, run_dir)
    }

    /// Finds the cgroups of `pid` and records them, so that a later ignite can remove them if
    /// needed.
    pub(super) fn record_cgroups(&self, pid: u32, run_dir: &Path) -> Option<CgroupPaths> {
        let paths = match CgroupPaths::for_pid(pid, &self.proc_root) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("failed to find the sandbox's cgroup: {e}");
                return None;
            }
        };
        if let Ok(json) = serde_json::to_vec(&paths) {
            let _ = std::fs::write(run_dir.join(CGROUP_FILE), json);
        }
        Some(paths)
    }

    /// Whether any cgroup directory recorded for this run still exists.
    pub(super) fn cgroups_remain(&self, run_dir: &Path) -> bool {
        let recorded = std::fs::read(run_dir.join(CGROUP_FILE)).ok();
        match recorded.and_then(|t| serde_json::from_slice::<CgroupPaths>(&t).ok()) {
            Some(paths) => paths.dirs().iter().any(|d| d.exists()),
            None => true,
        }
    }
}

/// The pid of the container's init, from the pid file the runtime writes once it started it.
pub(super) fn init_pid(run_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(run_dir.join("init.pid")).ok()?.trim().parse().ok()
}

/// Removes a run's state; called with the run's lock still held (see [`owned::remove`]).
pub(super) fn remove_run_files(state: &StateDir, id: &str) {
    let dir = state.run_dir(id);
    if let Err(e) = owned::remove(&dir) {
        tracing::warn!("failed to remove {}: {e}", dir.display());
    }
    let _ = std::fs::remove_file(state.log_path(id));
}

/// A fresh container id: unique on this host (time + pid + a counter).
pub fn new_run_id() -> String {
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("ig-{nanos:x}-{:x}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique() {
        assert_ne!(new_run_id(), new_run_id());
    }
}
