//! The process's own mount table (`/proc/self/mountinfo`), read once and read again only after
//! the kernel says it changed. A run needs it three or four times (choosing the cgroup driver,
//! checking the host, resolving the container's cgroup directories); rendering it is the
//! kernel's work, a path lookup per mount each time.
//!
//! The kernel tells: a `poll` on an open mountinfo file reports `POLLPRI` once the mount
//! namespace's table changed since the file was opened or last reported on (proc(5), "mountinfo";
//! what systemd and libmount watch). So the text is kept with the open file it was read from,
//! and a `poll` with no timeout before each use says whether it still holds. A change that
//! races with the read is reported by the next `poll`, so it costs a read, never a stale answer.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The host's proc, whose `self/mountinfo` is the one kept; any other root (a test's fake
/// tree) is read afresh each time.
const HOST_PROC: &str = "/proc";

struct Kept {
    file: File,
    text: Arc<str>,
}

static KEPT: Mutex<Option<Kept>> = Mutex::new(None);

/// The text of `<proc_root>/self/mountinfo`.
pub fn self_mountinfo(proc_root: &Path) -> io::Result<Arc<str>> {
    let path = proc_root.join("self/mountinfo");
    if proc_root != Path::new(HOST_PROC) {
        return std::fs::read_to_string(path).map(Arc::from);
    }
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(k) = kept.as_mut() {
        if !changed(&k.file)? {
            return Ok(k.text.clone());
        }
        // Read again through the same file: the next change is reported against this read.
        k.file.rewind()?;
        k.text = read_all(&mut k.file)?;
        return Ok(k.text.clone());
    }
    let mut file = File::open(&path)?;
    let text = read_all(&mut file)?;
    *kept = Some(Kept { file, text: text.clone() });
    Ok(text)
}

fn changed(file: &File) -> io::Result<bool> {
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
    poll(&mut fds, PollTimeout::ZERO).map_err(io::Error::from)?;
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    Ok(revents.intersects(PollFlags::POLLPRI | PollFlags::POLLERR))
}

fn read_all(file: &mut File) -> io::Result<Arc<str>> {
    let mut text = String::with_capacity(8192);
    file.read_to_string(&mut text)?;
    Ok(Arc::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mounting and unmounting in a private mount namespace of a child process would be the
    /// direct test, but the table kept is this process's: so this test changes this process's
    /// own table (root only) with a tmpfs on a fresh directory and checks that the kept text
    /// follows both changes.
    #[test]
    fn the_kept_table_follows_mounts_and_unmounts() {
        if !nix::unistd::geteuid().is_root() {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "needs root to mount a tmpfs; CI runs as root");
            eprintln!("SKIP the_kept_table_follows_mounts_and_unmounts: needs root to mount");
            return;
        }
        let first = self_mountinfo(Path::new(HOST_PROC)).unwrap();
        assert_eq!(*first, *std::fs::read_to_string("/proc/self/mountinfo").unwrap());
        // Unchanged: the very same text comes back.
        assert!(Arc::ptr_eq(&first, &self_mountinfo(Path::new(HOST_PROC)).unwrap()));

        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().to_str().unwrap().to_string();
        nix::mount::mount(Some("tmpfs"), dir.path(), Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=1m"))
            .unwrap();
        let mounted = self_mountinfo(Path::new(HOST_PROC)).unwrap();
        nix::mount::umount(dir.path()).unwrap();
        assert!(mounted.contains(&format!(" {target} ")), "the new mount is in the kept table");
        let unmounted = self_mountinfo(Path::new(HOST_PROC)).unwrap();
        assert!(!unmounted.contains(&format!(" {target} ")), "the unmount is seen too");
    }

    #[test]
    fn another_proc_root_is_read_as_it_is() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("self")).unwrap();
        std::fs::write(root.path().join("self/mountinfo"), "one\n").unwrap();
        assert_eq!(&*self_mountinfo(root.path()).unwrap(), "one\n");
        std::fs::write(root.path().join("self/mountinfo"), "two\n").unwrap();
        assert_eq!(&*self_mountinfo(root.path()).unwrap(), "two\n");
    }
}
