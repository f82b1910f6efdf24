//! A bounded, symlink-safe snapshot of a service directory, read once into memory: what gets
//! hashed is exactly what gets staged, whatever happens to the directory in between.
//!
//! Every open is relative to an already opened parent directory with `O_NOFOLLOW`, so a symlink
//! (planted beforehand or swapped in during the walk) is never followed on the host: it is
//! recorded as a symlink and recreated as one, to be resolved inside the container's view.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

use super::StageError;
use super::strip::{Kind, kind_of};

/// Caps on what a service directory may hold to be staged (`node_modules` and `.git` excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageLimits {
    /// Files, directories and symlinks together.
    pub max_entries: usize,
    /// Total size of the regular files.
    pub max_bytes: u64,
    /// Directory nesting below the service directory.
    pub max_depth: usize,
}

impl Default for StageLimits {
    fn default() -> Self {
        StageLimits { max_entries: 10_000, max_bytes: 64 * 1024 * 1024, max_depth: 32 }
    }
}

/// Directories that are never staged: version-control data, and installed packages (the
/// top-level `node_modules` is mounted as it is, see [`Snapshot::node_modules`]).
const GIT: &[u8] = b".git";
pub const NODE_MODULES: &[u8] = b"node_modules";

/// What one path of the snapshot is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, bytes: Vec<u8> },
    Symlink { target: Vec<u8> },
}

/// One path of the snapshot, relative to the service directory, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub node: Node,
}

impl Entry {
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// The service directory as read: entries in a fixed order (depth first, names sorted, every
/// directory before its contents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Permission bits the staged root directory gets.
    pub root_mode: u32,
    pub entries: Vec<Entry>,
    /// Whether the service has a real `node_modules` directory at its top level. It is not
    /// copied (it can be large, and it is installed packages, not the service's code): the
    /// staged directory holds an empty mount point and the engine binds the service's own
    /// directory there read-only.
    pub node_modules: bool,
}

/// Permission bits of a staged copy: the source's read and execute bits, so that what the
/// sandbox user could not read before it cannot read now; never a write, setuid or sticky bit
/// (the mount is read-only anyway); the owner (who removes the cache) keeps full access.
pub fn staged_mode(source_mode: u32, is_dir: bool) -> u32 {
    (source_mode & 0o555) | if is_dir { 0o700 } else { 0o600 }
}

struct Walker<'a> {
    root: &'a Path,
    limits: &'a StageLimits,
    entries: Vec<Entry>,
    bytes: u64,
    node_modules: bool,
}

/// Reads the service directory `root` into memory, within `limits`.
pub fn snapshot(root: &Path, limits: &StageLimits) -> Result<Snapshot, StageError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir = Dir::open(root, flags, Mode::empty()).map_err(|e| io(e, "open", root.to_path_buf()))?;
    let stat = fstat(&dir).map_err(|e| io(e, "stat", root.to_path_buf()))?;
    let mut walker = Walker { root, limits, entries: Vec::new(), bytes: 0, node_modules: false };
    walker.walk(&mut dir, &[], 0)?;
    Ok(Snapshot {
        root_mode: staged_mode(stat.st_mode, true),
        entries: walker.entries,
        node_modules: walker.node_modules,
    })
}

fn io(errno: nix::errno::Errno, op: &'static str, path: PathBuf) -> StageError {
    StageError::Io { op, path, source: std::io::Error::from(errno) }
}

fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

impl Walker<'_> {
    fn host_path(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }

    fn push(&mut self, path: Vec<u8>, node: Node) -> Result<(), StageError> {
        if self.entries.len() >= self.limits.max_entries {
            return Err(StageError::TooManyFiles { dir: self.root.to_path_buf(), limit: self.limits.max_entries });
        }
        self.entries.push(Entry { path, node });
        Ok(())
    }

    fn walk(&mut self, dir: &mut Dir, rel: &[u8], depth: usize) -> Result<(), StageError> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| io(e, "read directory", self.host_path(rel)))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        names.sort();
        for name in names {
            let path = if rel.is_empty() { name.clone() } else { [rel, b"/", &name].concat() };
            self.visit(dir, &name, path, depth)?;
        }
        Ok(())
    }

    fn visit(&mut self, dir: &mut Dir, name: &[u8], path: Vec<u8>, depth: usize) -> Result<(), StageError> {
        // Names come from readdir: no NUL inside, so this cannot fail.
        let cname = std::ffi::CString::new(name)
            .map_err(|_| StageError::Special { path: self.host_path(&path), kind: "name with a NUL byte" })?;
        let cname: &CStr = &cname;
        let stat =
            fstatat(&*dir, cname, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| io(e, "stat", self.host_path(&path)))?;
        let ftype = file_type(&stat);
        if name == GIT {
            return Ok(());
        }
        if ftype == SFlag::S_IFDIR && name == NODE_MODULES {
            if depth == 0 {
                self.node_modules = true;
            } else {
                tracing::warn!(
                    path = %self.host_path(&path).display(),
                    "a nested node_modules directory is not staged for runtimes that get stripped TypeScript; only the top-level one is mounted"
                );
            }
            return Ok(());
        }
        if ftype != SFlag::S_IFDIR && kind_of(name) == Kind::Declaration {
            return Ok(());
        }
        match ftype {
            SFlag::S_IFDIR => {
                if depth + 1 > self.limits.max_depth {
                    return Err(StageError::TooDeep { path: self.host_path(&path), limit: self.limits.max_depth });
                }
                self.push(path.clone(), Node::Dir { mode: staged_mode(stat.st_mode, true) })?;
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let mut child = Dir::openat(&*dir, cname, flags, Mode::empty()).map_err(|e| self.changed(e, &path))?;
                self.walk(&mut child, &path, depth + 1)
            }
            SFlag::S_IFREG => {
                let flags =
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
                let fd = openat(&*dir, cname, flags, Mode::empty()).map_err(|e| self.changed(e, &path))?;
                let opened = fstat(&fd).map_err(|e| io(e, "stat", self.host_path(&path)))?;
                if file_type(&opened) != SFlag::S_IFREG {
                    return Err(self.changed(nix::errno::Errno::EINVAL, &path));
                }
                let budget = self.limits.max_bytes - self.bytes;
                let mut bytes = Vec::new();
                File::from(fd).take(budget + 1).read_to_end(&mut bytes).map_err(|source| StageError::Io {
                    op: "read",
                    path: self.host_path(&path),
                    source,
                })?;
                if bytes.len() as u64 > budget {
                    return Err(StageError::TooLarge { dir: self.root.to_path_buf(), limit: self.limits.max_bytes });
                }
                self.bytes += bytes.len() as u64;
                self.push(path, Node::File { mode: staged_mode(opened.st_mode, false), bytes })
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(&*dir, cname).map_err(|e| io(e, "read link", self.host_path(&path)))?;
                self.push(path, Node::Symlink { target: target.as_bytes().to_vec() })
            }
            other => Err(StageError::Special { path: self.host_path(&path), kind: special_kind(other) }),
        }
    }

    /// An entry that was one thing at `fstatat` and another at `open` was replaced meanwhile.
    fn changed(&self, errno: nix::errno::Errno, rel: &[u8]) -> StageError {
        StageError::Changed { path: self.host_path(rel), source: std::io::Error::from(errno) }
    }
}

fn special_kind(ftype: SFlag) -> &'static str {
    match ftype {
        SFlag::S_IFIFO => "a named pipe",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        _ => "a special file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn paths(s: &Snapshot) -> Vec<String> {
        s.entries.iter().map(Entry::display).collect()
    }

    #[test]
    fn walks_in_a_fixed_order_and_skips_what_is_not_staged() {
        let t = tempfile::tempdir().expect("tempdir");
        write(t.path(), "b.ts", "b");
        write(t.path(), "a/z.ts", "z");
        write(t.path(), "a/types.d.ts", "declare const x: number;");
        write(t.path(), ".git/HEAD", "ref");
        write(t.path(), "node_modules/lodash/index.js", "x");
        write(t.path(), "lib/node_modules/x/index.js", "x");
        write(t.path(), "c.json", "{}");
        let s = snapshot(t.path(), &StageLimits::default()).expect("snapshot");
        assert_eq!(paths(&s), ["a", "a/z.ts", "b.ts", "c.json", "lib"]);
        assert!(s.node_modules);
        assert_eq!(s.entries[1].node, Node::File { mode: 0o644, bytes: b"z".to_vec() });
    }

    #[test]
    fn symlinks_are_recorded_never_followed() {
        let t = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        write(outside.path(), "secret.txt", "secret");
        symlink(outside.path().join("secret.txt"), t.path().join("leak.txt")).expect("symlink");
        symlink(outside.path(), t.path().join("leakdir")).expect("symlink");
        let s = snapshot(t.path(), &StageLimits::default()).expect("snapshot");
        let target = outside.path().join("secret.txt");
        assert_eq!(s.entries[0].node, Node::Symlink { target: target.as_os_str().as_bytes().to_vec() });
        assert!(matches!(s.entries[1].node, Node::Symlink { .. }));
        assert_eq!(s.entries.len(), 2, "nothing behind the links was read");
        // A service directory that is itself a symlink is refused (it was canonicalised before).
        let link = outside.path().join("svc");
        symlink(t.path(), &link).expect("symlink");
        assert!(matches!(snapshot(&link, &StageLimits::default()), Err(StageError::Io { .. })));
    }

    #[test]
    fn special_files_are_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        nix::unistd::mkfifo(&t.path().join("pipe"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
        let err = snapshot(t.path(), &StageLimits::default()).expect_err("fifo");
        assert!(err.to_string().contains("named pipe"), "{err}");
        assert!(err.to_string().contains("pipe"), "{err}");
    }

    #[test]
    fn limits_are_enforced_with_clear_errors() {
        let t = tempfile::tempdir().expect("tempdir");
        for i in 0..5 {
            write(t.path(), &format!("f{i}.js"), "0123456789");
        }
        let limits = StageLimits { max_entries: 4, ..StageLimits::default() };
        let err = snapshot(t.path(), &limits).expect_err("too many");
        assert!(matches!(err, StageError::TooManyFiles { limit: 4, .. }), "{err}");
        let limits = StageLimits { max_bytes: 45, ..StageLimits::default() };
        let err = snapshot(t.path(), &limits).expect_err("too large");
        assert!(matches!(err, StageError::TooLarge { limit: 45, .. }), "{err}");
        let limits = StageLimits { max_bytes: 50, ..StageLimits::default() };
        snapshot(t.path(), &limits).expect("exactly at the byte limit");
        write(t.path(), "a/b/c/d.js", "");
        let limits = StageLimits { max_depth: 2, ..StageLimits::default() };
        let err = snapshot(t.path(), &limits).expect_err("too deep");
        assert!(matches!(err, StageError::TooDeep { limit: 2, .. }), "{err}");
    }

    #[test]
    fn modes_keep_read_and_execute_bits_only() {
        assert_eq!(staged_mode(0o100644, false), 0o644);
        assert_eq!(staged_mode(0o100755, false), 0o755);
        assert_eq!(staged_mode(0o104777, false), 0o755);
        assert_eq!(staged_mode(0o100600, false), 0o600);
        assert_eq!(staged_mode(0o40755, true), 0o755);
        assert_eq!(staged_mode(0o41777, true), 0o755);
        assert_eq!(staged_mode(0o40700, true), 0o700);
        let t = tempfile::tempdir().expect("tempdir");
        write(t.path(), "run.sh", "#!/bin/sh");
        std::fs::set_permissions(t.path().join("run.sh"), std::fs::Permissions::from_mode(0o4775)).expect("chmod");
        let s = snapshot(t.path(), &StageLimits::default()).expect("snapshot");
        assert_eq!(s.entries[0].node, Node::File { mode: 0o755, bytes: b"#!/bin/sh".to_vec() });
    }
}
