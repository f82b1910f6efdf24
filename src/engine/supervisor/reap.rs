//! Removing what a run leaves when its own teardown may not have: the container (`delete
//! --force`) and its recorded cgroup directories; and reaping the runs of an ignite that died
//! (their run directory's lock is free).

use super::Supervisor;
use super::state::{CGROUP_FILE, remove_run_files};
use crate::fsutil::owned::{self, Leftover};
use crate::sandbox::cgroup::{self, CgroupPaths};
use crate::sandbox::oci::{OciError, OciRuntime};

impl<R: OciRuntime> Supervisor<R> {
    /// Removes the container (and with it the cgroup). Errors are logged, not returned:
    /// cleanup runs after the report is final, and a failure here is retried by the next
    /// ignite through the run's state directory.
    pub(super) async fn cleanup(&self, id: &str) {
        match self.oci.delete(id, true).await {
            Ok(()) | Err(OciError::NotFound { .. }) => {}
            Err(e) => tracing::warn!("failed to delete container {id}: {e}"),
        }
        let cg = self.state.run_dir(id).join(CGROUP_FILE);
        if let Ok(text) = std::fs::read(&cg)
            && let Ok(paths) = serde_json::from_slice::<CgroupPaths>(&text)
            && let Err(e) = cgroup::remove_cgroup_dirs(&paths)
        {
            tracing::warn!("failed to remove cgroup of {id}: {e}");
        }
    }

    /// Finds runs whose owner died (their lock is free) and removes what they left:
    /// container, cgroup, run directory. Returns the ids it cleaned.
    pub async fn reap_stale(&self) -> Vec<String> {
        let mut reaped = Vec::new();
        for leftover in owned::leftovers(&self.state.runs()) {
            let (id, lock) = match leftover {
                // Half-made by a process that died during set-up (nothing was started yet).
                Leftover::Abandoned { dir, .. } => {
                    let _ = std::fs::remove_dir_all(&dir);
                    continue;
                }
                Leftover::Dead { name, lock, .. } => (name, lock),
            };
            tracing::info!("removing leftovers of run {id}");
            self.cleanup(&id).await;
            remove_run_files(&self.state, &id);
            drop(lock);
            reaped.push(id);
        }
        reaped
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::supervisor::{StateDir, Supervisor};
    use crate::fsutil::owned::{HIDDEN_PREFIX, LOCK_FILE};

    #[tokio::test]
    async fn reap_stale_removes_only_runs_whose_owner_died() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let fake = d.path().join("fake-runc");
        std::fs::write(&fake, "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let state = StateDir { root: d.path().join("state") };
        let oci = crate::sandbox::oci::CliRuntime::new(
            crate::sandbox::oci::OciKind::Runc,
            fake,
            state.oci_root("runc"),
            state.runs(),
        );
        let sup = Supervisor::new(oci, state.clone());
        std::fs::create_dir_all(state.runs()).unwrap();

        // Alive: created through the real path, lock held by this process.
        let _alive = sup.create_locked_run_dir(&state.run_dir("alive")).unwrap();
        // Dead: a lock file nobody holds.
        std::fs::create_dir(state.run_dir("dead")).unwrap();
        std::fs::write(state.run_dir("dead").join(LOCK_FILE), "").unwrap();
        std::fs::write(state.log_path("dead"), "").unwrap();
        // Being set up right now: hidden and fresh.
        std::fs::create_dir(state.runs().join(format!("{HIDDEN_PREFIX}new"))).unwrap();

        let reaped = sup.reap_stale().await;
        assert_eq!(reaped, vec!["dead".to_string()]);
        assert!(!state.run_dir("dead").exists() && !state.log_path("dead").exists());
        assert!(state.run_dir("alive").exists());
        assert!(state.runs().join(format!("{HIDDEN_PREFIX}new")).exists());
        let calls = std::fs::read_to_string(d.path().join("calls")).unwrap();
        assert!(calls.contains("delete --force dead"), "{calls}");
        assert!(!calls.contains("alive"), "{calls}");
    }
}
