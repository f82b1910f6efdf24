//! The bounded, symlink-safe walk that fingerprints a service directory for its lock file: the
//! sha256 of every regular file and the target of every symlink, streamed (nothing is held in
//! memory but the digests).
//!
//! Like the staging snapshot (`stage::tree`), every open is relative to an already opened
//! directory with `O_NOFOLLOW`: a symlink is recorded as a link and never followed, so a link
//! to `/etc/shadow` or out of the service directory costs nothing and reads nothing.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use sha2::{Digest as _, Sha256};

use super::{Digest, LOCK_FILE, LockError, TEMP_PREFIX};

/// Caps on what a directory may hold to be locked (`node_modules` and `.git` excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkLimits {
    /// Files, directories and symlinks together.
    pub max_entries: usize,
    /// Total size of the regular files hashed.
    pub max_bytes: u64,
    /// Directory nesting below the service directory.
    pub max_depth: usize,
}

impl Default for WalkLimits {
    /// The entry and depth caps of staging; bytes are hashed as they stream by rather than
    /// held, so the byte cap only bounds the time a check takes (about 2 s per GiB here).
    fn default() -> Self {
        WalkLimits { max_entries: 10_000, max_bytes: 1024 * 1024 * 1024, max_depth: 32 }
    }
}

/// Names skipped wherever they appear: installed packages and version-control data are not
/// the service's sources.
const SKIPPED: &[&[u8]] = &[b"node_modules", b".git"];

/// What the walk found, by `/`-separated path relative to the service directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub files: BTreeMap<String, Digest>,
    pub symlinks: BTreeMap<String, String>,
}

struct Walker<'a> {
    root: &'a Path,
    limits: &'a WalkLimits,
    tree: Tree,
    entries: usize,
    bytes: u64,
}

/// Fingerprints the directory `root` (which must not itself be a symlink), within `limits`.
pub fn walk(root: &Path, limits: &WalkLimits) -> Result<Tree, LockError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir = Dir::open(root, flags, Mode::empty()).map_err(|e| io(e, "open", root.to_path_buf()))?;
    let mut walker = Walker { root, limits, tree: Tree::default(), entries: 0, bytes: 0 };
    walker.walk(&mut dir, &[], 0)?;
    Ok(walker.tree)
}

fn io(errno: nix::errno::Errno, op: &'static str, path: PathBuf) -> LockError {
    LockError::Io { op, path, source: std::io::Error::from(errno) }
}

fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

impl Walker<'_> {
    fn host_path(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }

    fn count(&mut self) -> Result<(), LockError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(LockError::TooManyFiles { dir: self.root.to_path_buf(), limit: self.limits.max_entries });
        }
        Ok(())
    }

    /// The path as the lock file spells it; names that are not UTF-8 cannot be written there.
    fn text(&self, rel: &[u8]) -> Result<String, LockError> {
        String::from_utf8(rel.to_vec()).map_err(|_| LockError::NotUtf8 { path: self.host_path(rel), what: "name" })
    }

    fn walk(&mut self, dir: &mut Dir, rel: &[u8], depth: usize) -> Result<(), LockError> {
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
            if SKIPPED.contains(&name.as_slice()) {
                continue;
            }
            // The lock file does not fingerprint itself, nor a half-written replacement of it.
            if depth == 0 && (name == LOCK_FILE.as_bytes() || name.starts_with(TEMP_PREFIX.as_bytes())) {
                continue;
            }
            let path = if rel.is_empty() { name.clone() } else { [rel, b"/", &name].concat() };
            self.visit(dir, &name, path, depth)?;
        }
        Ok(())
    }

    fn visit(&mut self, dir: &mut Dir, name: &[u8], path: Vec<u8>, depth: usize) -> Result<(), LockError> {
        // Names come from readdir and hold no NUL byte.
        let cname = CString::new(name).map_err(|_| LockError::NotUtf8 { path: self.host_path(&path), what: "name" })?;
        let cname: &CStr = &cname;
        let stat =
            fstatat(&*dir, cname, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| io(e, "stat", self.host_path(&path)))?;
        self.count()?;
        match file_type(&stat) {
            SFlag::S_IFDIR => {
                if depth + 1 > self.limits.max_depth {
                    return Err(LockError::TooDeep { path: self.host_path(&path), limit: self.limits.max_depth });
                }
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let mut child = Dir::openat(&*dir, cname, flags, Mode::empty()).map_err(|e| self.changed(e, &path))?;
                self.walk(&mut child, &path, depth + 1)
            }
            SFlag::S_IFREG => {
                let text = self.text(&path)?;
                let flags =
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
                let fd = openat(&*dir, cname, flags, Mode::empty()).map_err(|e| self.changed(e, &path))?;
                let opened = fstat(&fd).map_err(|e| io(e, "stat", self.host_path(&path)))?;
                if file_type(&opened) != SFlag::S_IFREG {
                    return Err(self.changed(nix::errno::Errno::EINVAL, &path));
                }
                let digest = self.hash(File::from(fd), &path)?;
                self.tree.files.insert(text, digest);
                Ok(())
            }
            SFlag::S_IFLNK => {
                let text = self.text(&path)?;
                let target = readlinkat(&*dir, cname).map_err(|e| io(e, "read link", self.host_path(&path)))?;
                let target = target
                    .into_string()
                    .map_err(|_| LockError::NotUtf8 { path: self.host_path(&path), what: "symlink target" })?;
                self.tree.symlinks.insert(text, target);
                Ok(())
            }
            other => Err(LockError::Special { path: self.host_path(&path), kind: special_kind(other) }),
        }
    }

    /// sha256 of an opened file, counting its bytes against the budget as they stream by.
    fn hash(&mut self, mut file: File, rel: &[u8]) -> Result<Digest, LockError> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(|source| LockError::Io {
                op: "read",
                path: self.host_path(rel),
                source,
            })?;
            if n == 0 {
                break;
            }
            self.bytes += n as u64;
            if self.bytes > self.limits.max_bytes {
                return Err(LockError::TooLarge { dir: self.root.to_path_buf(), limit: self.limits.max_bytes });
            }
            hasher.update(&buf[..n]);
        }
        Ok(Digest::from_sha256(hasher.finalize().into()))
    }

    /// An entry that was one thing at `fstatat` and another at `open` was replaced meanwhile.
    fn changed(&self, errno: nix::errno::Errno, rel: &[u8]) -> LockError {
        LockError::Changed { path: self.host_path(rel), source: std::io::Error::from(errno) }
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
    use std::os::unix::fs::symlink;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn sha(text: &str) -> Digest {
        Digest::from_sha256(Sha256::digest(text.as_bytes()).into())
    }

    #[test]
    fn fingerprints_files_and_links_and_skips_what_is_not_source() {
        let t = tempfile::tempdir().expect("tempdir");
        write(t.path(), "index.ts", "a");
        write(t.path(), "lib/types.d.ts", "declare const x: number;");
        write(t.path(), ".git/HEAD", "ref");
        write(t.path(), "node_modules/lodash/index.js", "x");
        write(t.path(), "lib/node_modules/x/index.js", "x");
        write(t.path(), "ignite.lock", "version: 1");
        write(t.path(), ".ignite.lock.tmp-1-2-3", "half");
        write(t.path(), "lib/ignite.lock", "a file like any other below the top");
        write(t.path(), ".env.example", "");
        std::fs::create_dir(t.path().join("empty")).expect("mkdir");
        symlink("../index.ts", t.path().join("lib/alias.ts")).expect("symlink");
        let tree = walk(t.path(), &WalkLimits::default()).expect("walk");
        let files: Vec<&str> = tree.files.keys().map(String::as_str).collect();
        assert_eq!(files, [".env.example", "index.ts", "lib/ignite.lock", "lib/types.d.ts"]);
        assert_eq!(tree.files["index.ts"], sha("a"));
        assert_eq!(tree.symlinks.into_iter().collect::<Vec<_>>(), [("lib/alias.ts".into(), "../index.ts".into())]);
    }

    #[test]
    fn symlinks_are_recorded_never_followed() {
        let t = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        write(outside.path(), "secret/a.txt", "secret");
        symlink(outside.path().join("secret"), t.path().join("leak")).expect("symlink");
        let tree = walk(t.path(), &WalkLimits::default()).expect("walk");
        assert!(tree.files.is_empty(), "nothing behind the link was read: {tree:?}");
        assert_eq!(tree.symlinks["leak"], outside.path().join("secret").display().to_string());
        // A directory that is itself a symlink is refused (callers canonicalise first).
        let link = outside.path().join("svc");
        symlink(t.path(), &link).expect("symlink");
        assert!(matches!(walk(&link, &WalkLimits::default()), Err(LockError::Io { .. })));
    }

    #[test]
    fn special_files_and_non_utf8_names_are_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        nix::unistd::mkfifo(&t.path().join("pipe"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
        let err = walk(t.path(), &WalkLimits::default()).expect_err("fifo");
        assert!(err.to_string().contains("named pipe") && err.to_string().contains("pipe"), "{err}");
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join(OsStr::from_bytes(b"bad\xff.ts")), "x").expect("write");
        let err = walk(t.path(), &WalkLimits::default()).expect_err("not utf-8");
        assert!(matches!(err, LockError::NotUtf8 { what: "name", .. }), "{err}");
    }

    #[test]
    fn limits_are_enforced() {
        let t = tempfile::tempdir().expect("tempdir");
        for i in 0..5 {
            write(t.path(), &format!("f{i}.js"), "0123456789");
        }
        let err = walk(t.path(), &WalkLimits { max_entries: 4, ..WalkLimits::default() }).expect_err("too many");
        assert!(matches!(err, LockError::TooManyFiles { limit: 4, .. }), "{err}");
        walk(t.path(), &WalkLimits { max_entries: 5, ..WalkLimits::default() }).expect("exactly at the limit");
        let err = walk(t.path(), &WalkLimits { max_bytes: 49, ..WalkLimits::default() }).expect_err("too large");
        assert!(matches!(err, LockError::TooLarge { limit: 49, .. }), "{err}");
        walk(t.path(), &WalkLimits { max_bytes: 50, ..WalkLimits::default() }).expect("exactly at the byte limit");
        write(t.path(), "a/b/c/d.js", "");
        let err = walk(t.path(), &WalkLimits { max_depth: 2, ..WalkLimits::default() }).expect_err("too deep");
        assert!(matches!(err, LockError::TooDeep { limit: 2, .. }), "{err}");
    }
}
