//! The writable root of `security.filesystem.readOnly: false`: an overlay whose lower layer is
//! the runtime's shared, read-only rootfs and whose upper layer lives on a tmpfs of
//! `writableMb` that ignite mounts for the one run. Writes land in that tmpfs (and count
//! against the run's memory limit, like `/tmp`); the shared rootfs is never written (overlayfs
//! never writes to a lower layer), and unmounting the tmpfs discards everything.
//!
//! The sandbox user is not root, so a plain overlay over root-owned directories would be as
//! unwritable as the read-only root. Before mounting, every directory of the rootfs that the
//! sandbox user may enter gets a counterpart in the upper layer with the same owner and mode
//! plus the sticky bit and write permission for others — what `/tmp` has. Overlayfs shows a
//! merged directory with its upper directory's attributes, so inside the run the program can
//! create files and directories anywhere in the root, and change or remove only what it
//! created: the runtime's own files stay as they are (owned by root, not writable, and the
//! sticky bit keeps them from being renamed, replaced or removed).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::fsutil::{At, IoError};
use nix::mount::{MntFlags, MsFlags};

/// Directories of a rootfs mirrored into the upper layer at most (a runtime's rootfs has a
/// few dozen; a custom runtime's full distribution rootfs a few thousand).
const MAX_DIRS: usize = 100_000;
/// Inodes of the layer's tmpfs per MiB of `writableMb` (on top of the mirrored directories):
/// one per 4 KiB, so a flood of empty files ends in ENOSPC, not in kernel memory.
const INODES_PER_MB: u64 = 256;
const UPPER: &str = "upper";
const WORK: &str = "work";

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("failed to mount {what} at {path}: {source}")]
    Mount { what: &'static str, path: PathBuf, source: nix::Error },
    #[error(
        "the writable layer cannot use {path}: overlayfs mount options cannot name a path containing ',', ':' or '\\'; choose another --state-dir or --cache-dir"
    )]
    UnsafePath { path: PathBuf },
    #[error("the rootfs {path} has more than {MAX_DIRS} directories; a writable layer over it is refused")]
    TooManyDirs { path: PathBuf },
    #[error("{path} is not the overlay ignite mounted for this run; refusing to start the run on it")]
    NotOverlay { path: PathBuf },
}

/// A mounted writable layer: the tmpfs at `layer` (upper and work directories) and the overlay
/// at `root`. Dropping it unmounts both (overlay first).
#[derive(Debug)]
pub struct Layer {
    layer: PathBuf,
    root: PathBuf,
    tmpfs_mounted: bool,
    root_mounted: bool,
}

impl Layer {
    /// Mounts the layer: a tmpfs of `size_mb` at `layer` and the overlay of `lower` at `root`
    /// (both existing, empty, root-only directories that the caller owns).
    pub fn mount(layer: &Path, root: &Path, lower: &Path, size_mb: u32) -> Result<Layer, LayerError> {
        let upper = layer.join(UPPER);
        let work = layer.join(WORK);
        for p in [lower, &upper, &work] {
            if p.to_string_lossy().contains([',', ':', '\\']) {
                return Err(LayerError::UnsafePath { path: p.to_path_buf() });
            }
        }
        let dirs = directories(lower)?;
        let mut this =
            Layer { layer: layer.to_path_buf(), root: root.to_path_buf(), tmpfs_mounted: false, root_mounted: false };

        let inodes = dirs.len() as u64 + 64 + u64::from(size_mb) * INODES_PER_MB;
        let data = format!("size={size_mb}m,nr_inodes={inodes},mode=0700");
        nix::mount::mount(
            Some("tmpfs"),
            layer,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(data.as_str()),
        )
        .map_err(|source| LayerError::Mount {
            what: "the writable layer's tmpfs",
            path: layer.to_path_buf(),
            source,
        })?;
        this.tmpfs_mounted = true;

        fs::DirBuilder::new().mode(0o700).create(&work).at("create", &work)?;
        fs::DirBuilder::new().mode(0o700).create(&upper).at("create", &upper)?;
        for (rel, meta) in &dirs {
            let dest = if rel.as_os_str().is_empty() { upper.clone() } else { upper.join(rel) };
            if !rel.as_os_str().is_empty() {
                fs::DirBuilder::new().mode(0o700).create(&dest).at("create", &dest)?;
            }
            std::os::unix::fs::lchown(&dest, Some(meta.uid()), Some(meta.gid())).at("chown", &dest)?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(writable_mode(meta.mode())))
                .at("set the mode of", &dest)?;
        }

        let options = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
        nix::mount::mount(
            Some("overlay"),
            root,
            Some("overlay"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .map_err(|source| LayerError::Mount {
            what: "the writable root (overlayfs)",
            path: root.to_path_buf(),
            source,
        })?;
        this.root_mounted = true;
        Ok(this)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root path still holds an overlay: checked right before the OCI runtime is given it,
    /// so a writable root is only ever this layer, never the directory underneath it.
    pub fn verify(&self) -> Result<(), LayerError> {
        match nix::sys::statfs::statfs(&self.root) {
            Ok(s) if s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC => Ok(()),
            _ => Err(LayerError::NotOverlay { path: self.root.clone() }),
        }
    }

    /// Unmounts the overlay, then the tmpfs (which frees what the run wrote). Returns whether
    /// both are gone.
    pub fn unmount(&mut self) -> bool {
        if self.root_mounted {
            self.root_mounted = !unmount(&self.root);
        }
        if self.tmpfs_mounted && !self.root_mounted {
            self.tmpfs_mounted = !unmount(&self.layer);
        }
        !self.root_mounted && !self.tmpfs_mounted
    }
}

impl Drop for Layer {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Unmounts `path` (detached: after the run nothing should hold it, and a late holder must not
/// keep the mount point in place). True when nothing is mounted there any more.
pub fn unmount(path: &Path) -> bool {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => true,
        Err(e) => {
            tracing::warn!("failed to unmount {}: {e}", path.display());
            false
        }
    }
}

/// Whether `path` is a mount point (its device differs from its parent's).
pub fn is_mount_point(path: &Path) -> bool {
    let (Ok(own), Some(Ok(parent))) = (fs::symlink_metadata(path), path.parent().map(fs::symlink_metadata)) else {
        return false;
    };
    own.is_dir() && own.dev() != parent.dev()
}

/// A directory others may enter becomes writable by others and sticky (like `/tmp`); one they
/// may not enter stays as it is. Set-id bits are dropped.
fn writable_mode(mode: u32) -> u32 {
    let mode = mode & 0o777;
    if mode & 0o001 != 0 { mode | 0o1002 } else { mode }
}

/// Every directory of `root` (relative paths, `""` for `root` itself) with its metadata,
/// parents before children; symlinks are not followed.
fn directories(root: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>, LayerError> {
    let meta = fs::symlink_metadata(root).at("read", root)?;
    let mut out = vec![(PathBuf::new(), meta)];
    let mut i = 0;
    while i < out.len() {
        let rel = out[i].0.clone();
        let dir = root.join(&rel);
        for entry in fs::read_dir(&dir).at("read", &dir)? {
            let entry = entry.at("read", &dir)?;
            let meta = fs::symlink_metadata(entry.path()).at("read", entry.path())?;
            if meta.is_dir() {
                if out.len() >= MAX_DIRS {
                    return Err(LayerError::TooManyDirs { path: root.to_path_buf() });
                }
                out.push((rel.join(entry.file_name()), meta));
            }
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_open_only_what_others_could_enter() {
        assert_eq!(writable_mode(0o40755), 0o1757);
        assert_eq!(writable_mode(0o700), 0o700);
        assert_eq!(writable_mode(0o4755), 0o1757);
        assert_eq!(writable_mode(0o750), 0o750);
    }

    #[test]
    fn directories_are_listed_parents_first_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("usr/local/bin")).unwrap();
        fs::create_dir_all(d.path().join("etc")).unwrap();
        fs::write(d.path().join("etc/hosts"), "").unwrap();
        std::os::unix::fs::symlink("/", d.path().join("host")).unwrap();
        let dirs: Vec<PathBuf> = directories(d.path()).unwrap().into_iter().map(|(p, _)| p).collect();
        assert_eq!(dirs[0], PathBuf::new());
        for want in ["usr", "usr/local", "usr/local/bin", "etc"] {
            assert!(dirs.contains(&PathBuf::from(want)), "{want}: {dirs:?}");
        }
        let pos = |p: &str| dirs.iter().position(|d| d == Path::new(p)).unwrap();
        assert!(pos("usr") < pos("usr/local") && pos("usr/local") < pos("usr/local/bin"));
        assert!(!dirs.contains(&PathBuf::from("host")), "followed a symlink: {dirs:?}");
        assert_eq!(dirs.len(), 5);
    }

    #[test]
    fn paths_overlayfs_cannot_take_are_refused_before_anything_is_mounted() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("a,b");
        fs::create_dir(&lower).unwrap();
        let err = Layer::mount(&d.path().join("layer"), &d.path().join("root"), &lower, 4).unwrap_err();
        assert!(matches!(err, LayerError::UnsafePath { .. }), "{err}");
    }
}
