//! What a run's policy grants beyond the default sandbox, set up on the host before the
//! container starts and torn down after it is gone: a user-mode network
//! (`security.network.enabled: true`, see [`crate::sandbox::netns`]) and a writable layer over the root
//! (`security.filesystem.readOnly: false`, see [`overlay`]), and an output directory when the
//! request asks for one (see [`out`]). A run granted none gets nothing from here.
//!
//! Everything lives in `<state>/grants/<id>/` (root-only): a lock held while the run's ignite
//! lives, resolv.conf and slirp4netns's log, and the mount points `layer/` (the tmpfs holding
//! the upper layer) and `root/` (the overlay the spec names as its root). Dropping a
//! [`RunGrants`] stops slirp4netns, releases the namespace, unmounts both, and removes the
//! directory — on success, error, timeout, OOM and interruption alike, since all of them return
//! through the engine. If ignite is killed, slirp4netns exits on its own (its exit fd closes)
//! and the namespace dies with ignite's thread; the mounts stay until the next ignite, or
//! `ignite cleanup`, runs [`reap_stale`].

pub mod out;
pub mod overlay;

use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::fcntl::Flock;

use crate::data::policy::Policy;
use crate::fsutil::owned::{self, Leftover};
use crate::fsutil::{At, IoError};
use crate::sandbox::netns::{self, NetError, Tools, UserNet};
use crate::sandbox::spec::NetworkAttach;
use crate::sandbox::userns::Mapper;
use overlay::{Layer, LayerError};

/// `<state>/grants/`.
pub const GRANTS_DIR: &str = "grants";
const LAYER_DIR: &str = "layer";
const ROOT_DIR: &str = "root";
const OUT_DIR: &str = "out";
/// Who needs the network tools, for the error when they are missing.
pub const NETWORK_PURPOSE: &str = "a run with security.network.enabled: true";

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("the run's network namespace changed before the sandbox started; refusing to run it")]
    NetnsChanged,
}

/// `<state>/grants/<id>/`.
pub fn dir_of(state_root: &Path, id: &str) -> PathBuf {
    state_root.join(GRANTS_DIR).join(id)
}

/// Where the writable root of run `id` is mounted (what its spec names as the root).
pub fn root_path(state_root: &Path, id: &str) -> PathBuf {
    dir_of(state_root, id).join(ROOT_DIR)
}

/// Where run `id`'s output directory is mounted (what its spec binds at the output path).
pub fn out_path(state_root: &Path, id: &str) -> PathBuf {
    dir_of(state_root, id).join(OUT_DIR)
}

/// The host's resolv.conf for run `id`'s network (bound at `/etc/resolv.conf`).
pub fn resolv_conf_path(state_root: &Path, id: &str) -> PathBuf {
    dir_of(state_root, id).join(netns::RESOLV_CONF_FILE)
}

/// The network tools a policy needs, looked for before anything else is done (`None` when the
/// policy grants no network).
pub fn tools_for(policy: &Policy) -> Result<Option<Tools>, GrantError> {
    Ok(if policy.network { Some(Tools::find(NETWORK_PURPOSE)?) } else { None })
}

/// The grants of one run, set up. Dropping it tears them down.
pub struct RunGrants {
    dir: PathBuf,
    net: Option<UserNet>,
    layer: Option<Layer>,
    out: Option<out::OutMount>,
    _lock: Flock<File>,
}

impl RunGrants {
    /// Sets up what `policy` grants run `id`, whose runtime rootfs is `rootfs`; `None` when it
    /// grants nothing beyond the default sandbox. `tools` come from [`tools_for`]. With
    /// `out_owner` (the run's uid and gid) the run gets an output directory owned by it.
    /// `owner` (rootless) makes the user namespace, with the sandbox's maps, that owns the
    /// network namespace (see [`UserNet::start`]).
    pub async fn setup(
        state_root: &Path,
        id: &str,
        policy: &Policy,
        tools: Option<&Tools>,
        rootfs: &Path,
        out_owner: Option<(u32, u32)>,
        owner: Option<&Mapper>,
    ) -> Result<Option<RunGrants>, GrantError> {
        if !policy.network && policy.read_only && out_owner.is_none() {
            return Ok(None);
        }
        let started = Instant::now();
        let (dir, lock) = create_locked(&state_root.join(GRANTS_DIR), id)?;
        // From here on, every early return drops `grants`, which undoes what was done.
        let mut grants = RunGrants { dir, net: None, layer: None, out: None, _lock: lock };
        if let Some((uid, gid)) = out_owner {
            let path = grants.dir.join(OUT_DIR);
            fs::DirBuilder::new().mode(0o700).create(&path).at("create", &path)?;
            grants.out = Some(out::OutMount::mount(&path, uid, gid)?);
        }
        if !policy.read_only {
            let layer = grants.dir.join(LAYER_DIR);
            let root = grants.dir.join(ROOT_DIR);
            for d in [&layer, &root] {
                fs::DirBuilder::new().mode(0o700).create(d).at("create", d)?;
            }
            grants.layer = Some(Layer::mount(&layer, &root, rootfs, policy.writable_mb)?);
            tracing::debug!(ms = started.elapsed().as_secs_f64() * 1000.0, "writable layer mounted");
        }
        if policy.network {
            let tools = match tools {
                Some(t) => t.clone(),
                None => Tools::find(NETWORK_PURPOSE)?,
            };
            grants.net = Some(UserNet::start(&tools, &grants.dir, owner).await?);
        }
        tracing::debug!(ms = started.elapsed().as_secs_f64() * 1000.0, "policy grants set up");
        Ok(Some(grants))
    }

    /// The network the spec joins, if granted.
    pub fn network(&self) -> Option<NetworkAttach> {
        self.net.as_ref().map(UserNet::attach)
    }

    /// The output directory's host path (what the spec binds), if granted.
    pub fn out_dir(&self) -> Option<&Path> {
        self.out.as_ref().map(out::OutMount::path)
    }

    /// Reads back the output directory (once the container is gone), if granted.
    pub fn collect_out(&self) -> Option<std::io::Result<out::Collected>> {
        self.out.as_ref().map(out::OutMount::collect)
    }

    /// The writable root the spec names, if granted.
    pub fn writable_root(&self) -> Option<&Path> {
        self.layer.as_ref().map(Layer::root)
    }

    /// Checked right before the OCI runtime starts: the namespace path still names the one
    /// created, and the root path still holds the overlay mounted for the run.
    pub fn verify(&self) -> Result<(), GrantError> {
        if let Some(net) = &self.net
            && !net.still_ours()
        {
            return Err(GrantError::NetnsChanged);
        }
        if let Some(layer) = &self.layer {
            layer.verify()?;
        }
        Ok(())
    }

    /// The pid of the run's slirp4netns, if it has a network.
    pub fn slirp_pid(&self) -> Option<u32> {
        self.net.as_ref().map(UserNet::slirp_pid)
    }
}

impl Drop for RunGrants {
    fn drop(&mut self) {
        let started = Instant::now();
        // slirp4netns first, then the namespace (UserNet drops them in that order).
        self.net.take();
        let unmounted = self.layer.as_mut().is_none_or(Layer::unmount);
        self.layer.take();
        let unmounted = self.out.as_mut().is_none_or(out::OutMount::unmount) && unmounted;
        self.out.take();
        remove_dir(&self.dir, unmounted);
        tracing::debug!(ms = started.elapsed().as_secs_f64() * 1000.0, "policy grants torn down");
    }
}

/// Removes a grants directory, unless something is still mounted in it: then deleting would
/// reach into the mount, and the next [`reap_stale`] tries again.
fn remove_dir(dir: &Path, unmounted: bool) {
    let mounted = !unmounted || [LAYER_DIR, ROOT_DIR, OUT_DIR].iter().any(|d| overlay::is_mount_point(&dir.join(d)));
    if mounted {
        tracing::warn!("{} still has a mount; leaving it for `ignite cleanup`", dir.display());
        return;
    }
    // Renamed away first (its lock is still held): a scan by another run never sees it
    // unlocked.
    if let Err(e) = owned::remove(dir) {
        tracing::warn!("failed to remove {}: {e}", dir.display());
    }
}

/// Creates `<parent>/<id>/` already holding its lock: it is prepared under a hidden name and
/// renamed into place, so a concurrent [`reap_stale`] never sees it unlocked.
fn create_locked(parent: &Path, id: &str) -> Result<(PathBuf, Flock<File>), GrantError> {
    owned::create(parent, id, 0o700, |_| Ok(())).map_err(Into::into)
}

/// Unmounts and removes the grants of runs whose ignite died (their lock is free). Call it
/// after the containers of those runs are gone. Returns the ids cleaned.
pub fn reap_stale(state_root: &Path) -> Vec<String> {
    let mut reaped = Vec::new();
    for leftover in owned::leftovers(&state_root.join(GRANTS_DIR)) {
        match leftover {
            // Nothing is mounted before the rename into place.
            Leftover::Abandoned { dir, .. } => {
                let _ = fs::remove_dir_all(&dir);
            }
            Leftover::Dead { name, dir, lock: _lock } => {
                let unmounted = overlay::unmount(&dir.join(ROOT_DIR))
                    & overlay::unmount(&dir.join(LAYER_DIR))
                    & overlay::unmount(&dir.join(OUT_DIR));
                remove_dir(&dir, unmounted);
                tracing::info!("removed the leftovers of run {name}'s policy grants");
                reaped.push(name);
            }
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::owned::{HIDDEN_PREFIX, LOCK_FILE};

    #[test]
    fn nothing_is_set_up_for_the_default_policy() {
        let d = tempfile::tempdir().unwrap();
        let policy = crate::data::policy::builtin_only(false).unwrap().policy;
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let g = rt
            .block_on(RunGrants::setup(d.path(), "ig-1", &policy, None, Path::new("/nonexistent"), None, None))
            .unwrap();
        assert!(g.is_none());
        assert!(!d.path().join(GRANTS_DIR).exists());
        assert!(tools_for(&policy).unwrap().is_none());
    }

    #[test]
    fn reap_stale_skips_live_grants_and_removes_dead_ones() {
        let d = tempfile::tempdir().unwrap();
        let parent = d.path().join(GRANTS_DIR);
        let (live, lock) = create_locked(&parent, "live").unwrap();
        fs::create_dir_all(parent.join("dead").join(ROOT_DIR)).unwrap();
        fs::write(parent.join("dead").join(LOCK_FILE), "").unwrap();
        fs::create_dir_all(parent.join(format!("{HIDDEN_PREFIX}fresh"))).unwrap();
        assert_eq!(reap_stale(d.path()), vec!["dead".to_string()]);
        assert!(live.exists() && parent.join(format!("{HIDDEN_PREFIX}fresh")).exists());
        assert!(!parent.join("dead").exists());
        drop(lock);
        assert_eq!(reap_stale(d.path()), vec!["live".to_string()]);
    }

    #[test]
    fn paths_are_under_the_state_dir() {
        let s = Path::new("/run/ignite");
        assert_eq!(root_path(s, "ig-1"), Path::new("/run/ignite/grants/ig-1/root"));
        assert_eq!(resolv_conf_path(s, "ig-1"), Path::new("/run/ignite/grants/ig-1/resolv.conf"));
    }
}
