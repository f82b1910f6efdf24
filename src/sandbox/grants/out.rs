//! A run's output directory: a tmpfs of its own (size and inode caps; nosuid, nodev, noexec;
//! owned by the run's uid) under the run's grants directory, bound read-write at
//! [`OUT_DIR`](crate::sandbox::spec::OUT_DIR), and read back after the program is gone without
//! following any link: regular files only, within a count and a byte cap.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag, fstat};

use super::overlay::LayerError;

/// Most bytes the program may write to its output directory (the tmpfs's size).
pub const MAX_OUT_BYTES: u64 = 8 * 1024 * 1024;
/// Most files (and directories) it may create there (the tmpfs's inodes, less its root).
pub const MAX_OUT_FILES: u64 = 64;
/// Deepest directory nesting read back.
const MAX_DEPTH: usize = 16;

/// One file read back from the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    pub bytes: Vec<u8>,
}

/// What the output directory held after the run: its regular files by relative path, and what
/// was left out and why (links, devices, directories too deep: never followed or read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    pub files: BTreeMap<String, OutFile>,
    pub skipped: Vec<String>,
    /// The directory was full (its size or its inode cap reached): the program may have been
    /// refused a write (ENOSPC).
    pub full: bool,
}

/// The mounted tmpfs; dropping it unmounts it.
#[derive(Debug)]
pub struct OutMount {
    path: PathBuf,
    mounted: bool,
}

impl OutMount {
    /// Mounts the tmpfs at `path` (an existing, empty, root-only directory), owned by
    /// `uid:gid` with mode 0700.
    pub fn mount(path: &Path, uid: u32, gid: u32) -> Result<OutMount, LayerError> {
        let data = format!("size={MAX_OUT_BYTES},nr_inodes={},mode=0700,uid={uid},gid={gid}", MAX_OUT_FILES + 1);
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(data.as_str()),
        )
        .map_err(|source| LayerError::Mount {
            what: "the output directory's tmpfs",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(OutMount { path: path.to_path_buf(), mounted: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads back the regular files (call it once the container is gone).
    pub fn collect(&self) -> std::io::Result<Collected> {
        let root =
            nix::fcntl::open(&self.path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW, Mode::empty())?;
        let mut out = Collected::default();
        walk(root.as_fd(), "", 0, &mut out)?;
        if let Ok(s) = nix::sys::statvfs::fstatvfs(&root) {
            out.full = s.blocks_free() == 0 || s.files_free() == 0;
        }
        Ok(out)
    }

    /// Unmounts the tmpfs (which frees what the run wrote); whether nothing is mounted there.
    pub fn unmount(&mut self) -> bool {
        if self.mounted {
            self.mounted = !super::overlay::unmount(&self.path);
        }
        !self.mounted
    }
}

impl Drop for OutMount {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Walks `dir` (relative path `prefix`), opening every entry beneath it without following a
/// link (O_NOFOLLOW on each component; the entry's type checked on the opened descriptor).
fn walk(dir: BorrowedFd<'_>, prefix: &str, depth: usize, out: &mut Collected) -> std::io::Result<()> {
    let mut names = Vec::new();
    let owned = openat(dir, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
    let mut listing = nix::dir::Dir::from_fd(owned)?;
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort();
    for name in names {
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let flags = READ_FLAGS | OFlag::O_NOFOLLOW;
        let fd: OwnedFd = match openat(dir, name.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            // A link (ELOOP with O_NOFOLLOW) or anything that cannot be opened for reading.
            Err(_) => {
                out.skipped.push(rel);
                continue;
            }
        };
        let st = fstat(&fd)?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFDIR {
            if depth + 1 >= MAX_DEPTH {
                out.skipped.push(rel);
                continue;
            }
            walk(fd.as_fd(), &rel, depth + 1, out)?;
        } else if kind == SFlag::S_IFREG {
            let mut bytes = Vec::new();
            std::fs::File::from(fd).take(MAX_OUT_BYTES + 1).read_to_end(&mut bytes)?;
            out.files.insert(rel, OutFile { bytes });
        } else {
            out.skipped.push(rel);
        }
    }
    Ok(())
}

/// Read-only and non-blocking: a FIFO the program left must not block the host.
const READ_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_NONBLOCK).union(OFlag::O_CLOEXEC);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_reads_regular_files_and_never_follows_links() {
        let d = tempfile::tempdir().unwrap();
        let secret = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret.path(), "host secret").unwrap();
        std::fs::write(d.path().join("a.txt"), "A").unwrap();
        std::fs::create_dir_all(d.path().join("sub/deeper")).unwrap();
        std::fs::write(d.path().join("sub/deeper/b.bin"), [0u8, 1, 2]).unwrap();
        std::os::unix::fs::symlink(secret.path(), d.path().join("link")).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("sub/dirlink")).unwrap();
        nix::unistd::mkfifo(&d.path().join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        let m = OutMount { path: d.path().to_path_buf(), mounted: false };
        let c = m.collect().unwrap();
        assert_eq!(c.files.keys().collect::<Vec<_>>(), ["a.txt", "sub/deeper/b.bin"]);
        assert_eq!(c.files["sub/deeper/b.bin"].bytes, [0, 1, 2]);
        assert_eq!(c.skipped, ["fifo", "link", "sub/dirlink"]);
    }
}
