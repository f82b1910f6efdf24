//! Small filesystem helpers shared by the caches (bundles, staged apps, installed
//! dependencies): unique temp names, removal that never follows a planted symlink, and a guard
//! that removes a temp path on every early return; [`walk`] is the bounded, symlink-safe walk
//! of a service directory; [`svcdir`] is the one way to read a file from a service directory;
//! [`owned`] marks directories that a live ignite process owns; [`IoError`] is the crate's one
//! I/O error, built with [`At::at`].

mod io_error;
pub mod owned;
pub mod svcdir;
pub mod walk;

pub use io_error::{At, IoError};

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A unique temp name: `prefix`, pid, time and a counter (threads of one process get distinct
/// names, and a crashed process's leftovers can be recognised by their prefix).
pub fn temp_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos:08x}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Removes a file or a directory tree, without following a symlink at `path` (a symlink is
/// removed itself). Failures are logged: callers use this for best-effort cleanup.
pub fn remove_any(path: &Path) {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => return,
    };
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "failed to remove");
    }
}

/// A temp path that is removed when dropped, unless [`keep`](Cleanup::keep) was called: every
/// early return cleans up after itself.
#[derive(Debug)]
pub struct Cleanup {
    path: PathBuf,
    keep: bool,
}

impl Cleanup {
    pub fn new(path: PathBuf) -> Cleanup {
        Cleanup { path, keep: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path stays: it was renamed into place or is needed after this scope.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.keep {
            remove_any(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_unique_within_a_process() {
        let a = temp_name(".tmp");
        let b = temp_name(".tmp");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!(".tmp-{}-", std::process::id())), "{a}");
    }

    #[test]
    fn cleanup_removes_unless_kept_and_never_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("precious"), "x").unwrap();

        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("sub/file"), "x").unwrap();
        drop(Cleanup::new(tree.clone()));
        assert!(!tree.exists());

        let kept = dir.path().join("kept");
        fs::create_dir(&kept).unwrap();
        Cleanup::new(kept.clone()).keep();
        assert!(kept.exists());

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        drop(Cleanup::new(link.clone()));
        assert!(fs::symlink_metadata(&link).is_err(), "the link itself is removed");
        assert!(outside.join("precious").exists(), "its target is untouched");
    }
}
