//! A run's output directory: a tmpfs of its own (size and inode caps; nosuid, nodev, noexec;
//! owned by the run's uid) under the run's grants directory, bound read-write at
//! [`OUT_DIR`](crate::sandbox::spec::OUT_DIR), and read back after the program is gone without
//! following any link: regular files only, within a count and a byte cap.
//!
//! Rootless, ignite cannot mount a tmpfs on the host, so the OCI runtime mounts the same tmpfs
//! (same caps and flags, [`out_tmpfs_options`](crate::sandbox::spec::out_tmpfs_options)) inside the container, which the container's user
//! namespace allows. It is read back while the program is gone but the entrypoint still waits
//! for its release, so the mount still exists: by [`read_from_container`], which runs `ignite
//! __read-out PID` joined to the container's user namespace (where it may read the run uid's
//! files, as root reads them on the host, and open `/proc/PID/root`), and decodes what it
//! writes. The helper finds the directory beneath the container's root without following any
//! link and checks that it is a tmpfs with exactly these caps before it reads anything.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag, fstat};

use super::overlay::LayerError;

pub use crate::sandbox::spec::{MAX_OUT_BYTES, MAX_OUT_FILES};
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
        let data = crate::sandbox::spec::out_tmpfs_data(uid, gid);
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
        collect_dir(root.as_fd())
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

/// The regular files beneath the open directory `root`, and whether its filesystem is full.
fn collect_dir(root: BorrowedFd<'_>) -> std::io::Result<Collected> {
    let mut out = Collected::default();
    walk(root, "", 0, &mut out)?;
    if let Ok(s) = nix::sys::statvfs::fstatvfs(root) {
        out.full = s.blocks_free() == 0 || s.files_free() == 0;
    }
    Ok(out)
}

/// The hidden command that reads a container's output directory: `ignite __read-out PID`.
pub const READ_OUT_COMMAND: &str = "__read-out";

/// Most bytes [`read_from_container`] takes from the helper: every byte the tmpfs can hold, and
/// a path (at most [`MAX_DEPTH`] names of 255 bytes) and a header for each of its inodes.
const MAX_ENCODED: u64 = MAX_OUT_BYTES + (MAX_OUT_FILES + 1) * (MAX_DEPTH as u64 * 256 + 16) + 64;

/// The helper's side, run in the user namespace of the container whose entrypoint is `pid`:
/// opens [`OUT_DIR`](crate::sandbox::spec::OUT_DIR) beneath the container's root without
/// following any link, checks it is the output tmpfs (a tmpfs with exactly its caps: nothing
/// else can stand in for it), and reads it as [`OutMount::collect`] does.
pub fn read_in_container(pid: u32) -> std::io::Result<Collected> {
    let root_path = format!("/proc/{pid}/root");
    // The one link followed: /proc's own, to the container's root.
    let root =
        nix::fcntl::open(root_path.as_str(), OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let rel = crate::sandbox::spec::OUT_DIR.trim_start_matches('/');
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let dir = openat2(&root, rel, how)?;
    let fs = nix::sys::statfs::fstatfs(&dir)?;
    let size = (fs.blocks() as u64).saturating_mul(fs.block_size() as u64);
    if fs.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC
        || size != MAX_OUT_BYTES
        || fs.files() as u64 != MAX_OUT_FILES + 1
    {
        return Err(std::io::Error::other(format!(
            "{} in the container is not its output tmpfs ({size} bytes, {} inodes)",
            crate::sandbox::spec::OUT_DIR,
            fs.files()
        )));
    }
    collect_dir(dir.as_fd())
}

/// Reads the output directory of the container whose entrypoint is `pid` (alive, waiting for
/// its release) through `exe __read-out PID` joined to the container's user namespace.
pub fn read_from_container(exe: &Path, pid: u32) -> std::io::Result<Collected> {
    let userns =
        nix::fcntl::open(format!("/proc/{pid}/ns/user").as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut cmd = Command::new(exe);
    cmd.arg(READ_OUT_COMMAND).arg(pid.to_string()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    crate::sys::join_namespaces_on_spawn(&mut cmd, &[(&userns, libc::CLONE_NEWUSER)]);
    let mut child = cmd.spawn()?;
    let mut encoded = Vec::new();
    let mut stderr = Vec::new();
    if let Some(out) = child.stdout.take() {
        out.take(MAX_ENCODED + 1).read_to_end(&mut encoded)?;
    }
    if let Some(err) = child.stderr.take() {
        err.take(4096).read_to_end(&mut stderr)?;
    }
    if encoded.len() as u64 > MAX_ENCODED {
        let _ = child.kill();
        let _ = child.wait();
        return Err(std::io::Error::other(format!("{READ_OUT_COMMAND} wrote more than {MAX_ENCODED} bytes")));
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "{READ_OUT_COMMAND} failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    Collected::decode(&encoded)
}

const MAGIC: &[u8] = b"ignite-out 1\n";

impl Collected {
    /// The helper's output: a header, then per file `F`, the path's length (u32, little
    /// endian), the path, the content's length (u64) and the content; per skipped entry `S`,
    /// the length and the path; then `E` and whether the directory was full (one byte).
    pub fn encode(&self, w: &mut dyn Write) -> std::io::Result<()> {
        w.write_all(MAGIC)?;
        for (path, f) in &self.files {
            w.write_all(b"F")?;
            w.write_all(&(path.len() as u32).to_le_bytes())?;
            w.write_all(path.as_bytes())?;
            w.write_all(&(f.bytes.len() as u64).to_le_bytes())?;
            w.write_all(&f.bytes)?;
        }
        for path in &self.skipped {
            w.write_all(b"S")?;
            w.write_all(&(path.len() as u32).to_le_bytes())?;
            w.write_all(path.as_bytes())?;
        }
        w.write_all(&[b'E', u8::from(self.full)])?;
        w.flush()
    }

    /// Reads what [`Collected::encode`] wrote; anything else is an error.
    pub fn decode(bytes: &[u8]) -> std::io::Result<Collected> {
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("helper output: {what}"));
        let mut rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("no header"))?;
        let mut take = |n: usize| -> std::io::Result<&[u8]> {
            if rest.len() < n {
                return Err(bad("truncated"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let mut out = Collected::default();
        loop {
            match take(1)?[0] {
                tag @ (b'F' | b'S') => {
                    let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad("length"))?) as usize;
                    let path = std::str::from_utf8(take(len)?).map_err(|_| bad("a path is not UTF-8"))?.to_string();
                    if tag == b'S' {
                        out.skipped.push(path);
                        continue;
                    }
                    let len = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad("length"))?);
                    let len = usize::try_from(len).map_err(|_| bad("length"))?;
                    out.files.insert(path, OutFile { bytes: take(len)?.to_vec() });
                }
                b'E' => {
                    out.full = take(1)?[0] == 1;
                    return if take(1).is_err() { Ok(out) } else { Err(bad("bytes after the end")) };
                }
                _ => return Err(bad("unknown record")),
            }
        }
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
        // What the helper writes reads back as the same thing; anything cut or added does not.
        let mut encoded = Vec::new();
        c.encode(&mut encoded).unwrap();
        assert_eq!(Collected::decode(&encoded).unwrap(), c);
        for cut in [0, MAGIC.len(), encoded.len() - 1] {
            assert!(Collected::decode(&encoded[..cut]).is_err(), "{cut}");
        }
        encoded.push(0);
        assert!(Collected::decode(&encoded).is_err());
    }

    #[test]
    fn a_directory_that_is_not_the_output_tmpfs_is_not_read() {
        // This process's own root holds no /tmp/out tmpfs with the output caps.
        let err = read_in_container(std::process::id()).unwrap_err();
        assert!(
            err.to_string().contains("not its output tmpfs") || err.kind() == std::io::ErrorKind::NotFound,
            "{err}"
        );
    }
}
