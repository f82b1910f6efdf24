//! Keeps an unpacked rootfs in the page cache, charged to ignite rather than to a sandbox.
//!
//! A page-cache page is charged to the memory cgroup of the process that first reads it in. If
//! a sandbox is the one that faults in (part of) its runtime's executable, those pages count
//! against the sandbox's limit, and near the limit they are the only memory its reclaim can take
//! back: instead of OOM-killing, the kernel evicts the runtime's own code and reads it from disk
//! again on the next instruction fetch, over and over. Measured here with a Node heap bomb at
//! 64 MiB: about 1 GB/s of disk reads for the whole time limit, and a "timeout" instead of an
//! "oom". Reading the missing pages from ignite first charges them to ignite's cgroup, out of the
//! sandbox's reach, so a sandbox at its limit has nothing left to reclaim and is OOM-killed.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Directory depth beyond which a rootfs is not walked (bundles are a few levels deep).
const MAX_DEPTH: usize = 32;
const CHUNK: usize = 1 << 20;

/// What [`keep_resident`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Residency {
    /// Regular files checked.
    pub files: u64,
    /// Bytes that were not in the page cache and were read in.
    pub bytes_read: u64,
}

/// Reads into the page cache every page of the regular files under `root` that is not there
/// yet. Cheap when everything is resident (one `cachestat` per file). Symlinks are not followed.
pub fn keep_resident(root: &Path) -> io::Result<Residency> {
    let mut done = Residency::default();
    let mut buf = Vec::new();
    walk(root, 0, &mut done, &mut buf)?;
    Ok(done)
}

/// [`keep_resident`], logging what it did. Failing is not fatal: the run is as safe, only an
/// out-of-memory program may then take longer to be killed.
pub fn keep_resident_logged(root: &Path) {
    match keep_resident(root) {
        Ok(r) if r.bytes_read > 0 => {
            tracing::debug!(rootfs = %root.display(), bytes = r.bytes_read, "read the rootfs into the page cache");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(rootfs = %root.display(), error = %e, "failed to read the rootfs into the page cache");
        }
    }
}

/// [`keep_resident_logged`] on a thread of its own, so that a run's remaining set-up (uid,
/// spec, run directory) proceeds meanwhile; the walk of a cached rootfs costs about 1 ms, most
/// of it `cachestat` over the runtime's 100 MB executable. [`wait`](Self::wait) must return
/// before anything runs from the rootfs: that is what keeps the sandbox from being the first
/// to fault in its runtime's pages. Dropping it also waits.
#[derive(Debug)]
pub struct Background {
    walk: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Starts the walk; if no thread can be started, walks here and now.
    pub fn start(root: &Path) -> Background {
        let path = root.to_path_buf();
        match std::thread::Builder::new().name("ignite-resident".into()).spawn(move || keep_resident_logged(&path)) {
            Ok(handle) => Background { walk: Some(handle) },
            Err(e) => {
                tracing::debug!(error = %e, "no thread for the page-cache walk; walking now");
                keep_resident_logged(root);
                Background { walk: None }
            }
        }
    }

    /// Returns once every page of the rootfs has been checked (and read in if needed).
    pub fn wait(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(handle) = self.walk.take()
            && handle.join().is_err()
        {
            tracing::warn!("the page-cache walk of the rootfs panicked");
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.join();
    }
}

fn walk(dir: &Path, depth: usize, done: &mut Residency, buf: &mut Vec<u8>) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), depth + 1, done, buf)?;
        } else if kind.is_file() {
            done.bytes_read += load(&entry.path(), buf)?;
            done.files += 1;
        }
    }
    Ok(())
}

/// Reads the pages of one file that are not cached; returns how many bytes that was.
fn load(path: &Path, buf: &mut Vec<u8>) -> io::Result<u64> {
    let file = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)?;
    let len = file.metadata()?.len();
    let page = crate::sys::page_size();
    // The common case, everything cached, costs one cachestat; mincore maps out the holes.
    if crate::sys::cached_pages(&file)? == Some(len.div_ceil(page)) {
        return Ok(0);
    }
    let mut read = 0;
    for range in crate::sys::uncached_pages(&file, len)? {
        let (mut at, end) = (range.start * page, (range.end * page).min(len));
        while at < end {
            if buf.is_empty() {
                buf.resize(CHUNK, 0);
            }
            let want = ((end - at) as usize).min(CHUNK);
            let n = read_at(&file, &mut buf[..want], at)?;
            if n == 0 {
                break; // the file shrank: nothing more to load
            }
            at += n as u64;
            read += n as u64;
        }
    }
    Ok(read)
}

fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, at) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Evicts a file's clean pages, as host memory pressure would.
    fn evict(path: &Path) {
        let f = File::open(path).expect("open");
        nix::fcntl::posix_fadvise(&f, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED).expect("fadvise");
    }

    #[test]
    fn missing_pages_are_read_in_and_resident_ones_are_not_read_again() {
        // On the disk beside the sources: tmpfs pages cannot be evicted, so /tmp would prove nothing.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
        let sub = dir.path().join("usr/bin");
        fs::create_dir_all(&sub).expect("mkdir");
        let path = sub.join("runtime");
        let mut f = File::create(&path).expect("create");
        f.write_all(&vec![7u8; 3 * CHUNK + 123]).expect("write");
        f.sync_all().expect("sync");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).expect("symlink");
        evict(&path);
        let file = File::open(&path).expect("open");
        let len = (3 * CHUNK + 123) as u64;
        if crate::sys::uncached_pages(&file, len).expect("mincore").is_empty() {
            eprintln!("SKIPPED: this filesystem keeps evicted pages cached (tmpfs?)");
            return;
        }

        let first = keep_resident(dir.path()).expect("load");
        assert_eq!(first.files, 1, "only the regular file counts; the symlink is not followed");
        assert_eq!(first.bytes_read, len);
        assert!(crate::sys::uncached_pages(&file, len).expect("mincore").is_empty());
        let again = keep_resident(dir.path()).expect("again");
        assert_eq!(again, Residency { files: 1, bytes_read: 0 });
    }

    #[test]
    fn background_walk_has_read_everything_in_when_wait_returns() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
        let path = dir.path().join("runtime");
        let mut f = File::create(&path).expect("create");
        f.write_all(&vec![7u8; 2 * CHUNK + 5]).expect("write");
        f.sync_all().expect("sync");
        evict(&path);
        let file = File::open(&path).expect("open");
        let len = (2 * CHUNK + 5) as u64;
        if crate::sys::uncached_pages(&file, len).expect("mincore").is_empty() {
            eprintln!("SKIPPED: this filesystem keeps evicted pages cached (tmpfs?)");
            return;
        }
        Background::start(dir.path()).wait();
        assert!(crate::sys::uncached_pages(&file, len).expect("mincore").is_empty());
    }

    #[test]
    fn empty_files_and_directories_are_fine() {
        let dir = tempfile::tempdir().expect("tempdir");
        File::create(dir.path().join("empty")).expect("create");
        fs::create_dir(dir.path().join("d")).expect("mkdir");
        assert_eq!(keep_resident(dir.path()).expect("load"), Residency { files: 1, bytes_read: 0 });
    }
}
