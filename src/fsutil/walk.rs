//! The one bounded, symlink-safe walk of a directory tree that ignite does on the host (the
//! staging snapshot of a TypeScript service, the fingerprint behind `ignite.lock`).
//!
//! Every open is relative to an already opened parent directory with `O_NOFOLLOW`, so a symlink
//! (planted beforehand or swapped in during the walk) is never followed: it is reported with
//! its target, and nothing behind it is read. An entry that is one type at `fstatat` and
//! another at `open` was replaced meanwhile and fails the walk ([`WalkError::Changed`]). Named
//! pipes, sockets and devices are refused, and so is a second hard link to a file that not
//! everyone may read (the rule of [`super::svcdir`]); entries, bytes read and nesting are bounded.
//!
//! Entries come in a fixed order: depth first, names sorted bytewise, every directory before
//! its contents. Names are bytes: whether a name that is not UTF-8 is acceptable is the
//! caller's call.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::fsutil::{At, IoError};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

/// Caps on one walk. Entries that a [`Visitor`] skips count towards none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files, directories and symlinks together.
    pub max_entries: usize,
    /// Total bytes read from the files, by [`OpenFile::read_chunks`] and
    /// [`OpenFile::read_to_end`].
    pub max_bytes: u64,
    /// Directory nesting below the root.
    pub max_depth: usize,
}

/// Why a walk stopped. Callers usually turn the limit errors into their own, which say what
/// the directory is for and what to do.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path} changed while ignite was reading it ({source}); run again")]
    Changed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is {kind}: a service directory may hold only files, directories and symlinks")]
    Special { path: PathBuf, kind: &'static str },
    /// A file the rule of [`super::svcdir`] refuses (a second hard link to a private file).
    #[error(transparent)]
    Refused(super::svcdir::ReadError),
    #[error("{dir} holds more than {limit} files, directories and symlinks")]
    TooManyEntries { dir: PathBuf, limit: usize },
    #[error("{dir} holds more than {limit} bytes of files")]
    TooLarge { dir: PathBuf, limit: u64 },
    #[error("{path} is nested more than {limit} directories deep")]
    TooDeep { path: PathBuf, limit: usize },
}

/// Why a service directory is walked, for [`LimitError`]'s messages: what the entry limit
/// counts, why the count and the bytes matter for this walk, and what the operator can do.
/// Both walks that use it (the lock's fingerprint, the TypeScript stage) leave node_modules
/// and .git out, and the messages say so.
#[derive(Debug)]
pub struct Purpose {
    /// What the entry limit counts ("files and directories").
    pub entries: &'static str,
    /// Why every entry matters ("a lock file records each of them").
    pub per_entry: &'static str,
    /// Why the bytes matter ("a lock file hashes all of them").
    pub per_byte: &'static str,
    /// What to do about it ("remove what the service does not need").
    pub remedy: &'static str,
}

/// A walk limit that a service directory exceeded, saying what the walk was for.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error(
        "{dir} holds more than {limit} {} (node_modules and .git not counted); {}: {}",
        purpose.entries, purpose.per_entry, purpose.remedy
    )]
    TooManyFiles { dir: PathBuf, limit: usize, purpose: &'static Purpose },
    #[error(
        "{dir} holds more than {} MiB of files (node_modules and .git not counted); {}: {}",
        limit / (1024 * 1024), purpose.per_byte, purpose.remedy
    )]
    TooLarge { dir: PathBuf, limit: u64, purpose: &'static Purpose },
    #[error("{path} is nested more than {limit} directories deep in the service directory")]
    TooDeep { path: PathBuf, limit: usize },
}

impl WalkError {
    /// The limit this error reports, told what the walk was for; any other error comes back.
    pub fn into_limit(self, purpose: &'static Purpose) -> Result<LimitError, WalkError> {
        match self {
            WalkError::TooManyEntries { dir, limit } => Ok(LimitError::TooManyFiles { dir, limit, purpose }),
            WalkError::TooLarge { dir, limit } => Ok(LimitError::TooLarge { dir, limit, purpose }),
            WalkError::TooDeep { path, limit } => Ok(LimitError::TooDeep { path, limit }),
            other => Err(other),
        }
    }
}

/// An entry's type as `fstatat` saw it, without following a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// A named pipe, socket or device: the walk refuses it unless it is skipped.
    Special,
}

/// Where an entry is.
#[derive(Debug, Clone, Copy)]
pub struct EntryPath<'a> {
    root: &'a Path,
    /// Relative to the root, `/`-separated.
    pub rel: &'a [u8],
    /// The last component of `rel`.
    pub name: &'a [u8],
    /// How many directories lie between the root and the entry: 0 for the root's own entries.
    pub depth: usize,
}

impl EntryPath<'_> {
    /// The path on the host, for messages (never opened: it may run through a symlink).
    pub fn host(&self) -> PathBuf {
        host_path(self.root, self.rel)
    }
}

/// What an entry is, handed to [`Visitor::visit`].
#[derive(Debug)]
pub enum Entry<'a> {
    /// A directory, visited before its contents; `mode` is its `st_mode`.
    Dir { mode: u32 },
    /// A regular file, already opened (and checked to still be one).
    File(OpenFile<'a>),
    /// A symlink and its target as written; the target is never looked at.
    Symlink { target: OsString },
}

/// A regular file of the walk, opened without following a symlink. Its contents are read
/// through it so that they count against [`Limits::max_bytes`].
#[derive(Debug)]
pub struct OpenFile<'a> {
    /// `st_mode` of the opened file.
    pub mode: u32,
    file: File,
    path: EntryPath<'a>,
    bytes: &'a mut u64,
    max_bytes: u64,
}

impl OpenFile<'_> {
    /// Streams the contents to `sink`, failing once the walk's byte budget is exceeded.
    pub fn read_chunks(&mut self, mut sink: impl FnMut(&[u8])) -> Result<(), WalkError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(WalkError::from(IoError::new("read", self.path.host(), source))),
            };
            *self.bytes += n as u64;
            if *self.bytes > self.max_bytes {
                return Err(WalkError::TooLarge { dir: self.path.root.to_path_buf(), limit: self.max_bytes });
            }
            sink(&buf[..n]);
        }
    }

    /// The contents, in memory: at most the walk's byte budget is held.
    pub fn read_to_end(&mut self) -> Result<Vec<u8>, WalkError> {
        let mut out = Vec::new();
        self.read_chunks(|chunk| out.extend_from_slice(chunk))?;
        Ok(out)
    }
}

/// What a caller does with the walk. Errors of the walk itself reach the caller through
/// `From<WalkError>`, so that it keeps its own error type.
pub trait Visitor {
    type Error: From<WalkError>;

    /// Whether to leave `name` (in a directory at `depth`) alone before anything about it is
    /// looked up: it is neither stat-ed, counted nor visited.
    fn skip_name(&mut self, _name: &[u8], _depth: usize) -> bool {
        false
    }

    /// Whether to leave an entry out once its type is known: it is not counted, a directory is
    /// not entered, a special file is not refused.
    fn skip(&mut self, _path: &EntryPath<'_>, _kind: Kind) -> bool {
        false
    }

    /// One entry, in the walk's order.
    fn visit(&mut self, path: &EntryPath<'_>, entry: Entry<'_>) -> Result<(), Self::Error>;
}

/// Walks the directory `root` (refused if it is itself a symlink: callers canonicalise it
/// first), within `limits`, handing every entry not skipped to `visitor`. Returns the root's
/// `st_mode`.
pub fn walk<V: Visitor>(root: &Path, limits: Limits, visitor: &mut V) -> Result<u32, V::Error> {
    let mut dir = Dir::open(root, dir_flags(), Mode::empty()).at("open", root).map_err(WalkError::Io)?;
    let stat = fstat(&dir).at("stat", root).map_err(WalkError::Io)?;
    Walker { root, limits, visitor, entries: 0, bytes: 0 }.walk(&mut dir, &[], 0)?;
    Ok(stat.st_mode)
}

struct Walker<'a, V> {
    root: &'a Path,
    limits: Limits,
    visitor: &'a mut V,
    entries: usize,
    bytes: u64,
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn host_path(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

impl<V: Visitor> Walker<'_, V> {
    fn walk(&mut self, dir: &mut Dir, rel: &[u8], depth: usize) -> Result<(), V::Error> {
        let mut names: Vec<CString> = Vec::new();
        for entry in dir.iter() {
            let entry = entry.at("read directory", host_path(self.root, rel)).map_err(WalkError::Io)?;
            let name = entry.file_name();
            if name != c"." && name != c".." {
                names.push(name.to_owned());
            }
        }
        // Byte order: a C string's terminating NUL sorts before any byte a name can hold.
        names.sort();
        for name in names {
            if self.visitor.skip_name(name.as_bytes(), depth) {
                continue;
            }
            let path = if rel.is_empty() { name.as_bytes().to_vec() } else { [rel, b"/", name.as_bytes()].concat() };
            self.entry(dir, &name, &path, depth)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: &mut Dir, name: &CStr, rel: &[u8], depth: usize) -> Result<(), V::Error> {
        let path = EntryPath { root: self.root, rel, name: name.to_bytes(), depth };
        let stat = fstatat(&*dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .at("stat", host_path(self.root, rel))
            .map_err(WalkError::Io)?;
        let ftype = file_type(&stat);
        let kind = match ftype {
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFREG => Kind::File,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Special,
        };
        if self.visitor.skip(&path, kind) {
            return Ok(());
        }
        match kind {
            Kind::Dir => {
                self.count()?;
                if depth + 1 > self.limits.max_depth {
                    return Err(WalkError::TooDeep { path: path.host(), limit: self.limits.max_depth }.into());
                }
                self.visitor.visit(&path, Entry::Dir { mode: stat.st_mode })?;
                let mut child = Dir::openat(&*dir, name, dir_flags(), Mode::empty()).map_err(|e| changed(&path, e))?;
                self.walk(&mut child, rel, depth + 1)
            }
            Kind::File => {
                self.count()?;
                // O_NONBLOCK and O_NOCTTY: should a pipe or a terminal have been swapped in since
                // `fstatat`, opening it neither blocks nor adopts it; the `fstat` below refuses it.
                let flags =
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
                let fd = openat(&*dir, name, flags, Mode::empty()).map_err(|e| changed(&path, e))?;
                let opened = fstat(&fd).at("stat", host_path(self.root, rel)).map_err(WalkError::Io)?;
                if file_type(&opened) != SFlag::S_IFREG {
                    return Err(changed(&path, Errno::EINVAL).into());
                }
                // The same rule as every other read from a service directory (fsutil::svcdir).
                super::svcdir::check_links(&opened, &path.host()).map_err(WalkError::Refused)?;
                let max_bytes = self.limits.max_bytes;
                let file =
                    OpenFile { mode: opened.st_mode, file: File::from(fd), path, bytes: &mut self.bytes, max_bytes };
                self.visitor.visit(&path, Entry::File(file))
            }
            Kind::Symlink => {
                self.count()?;
                let target =
                    readlinkat(&*dir, name).at("read link", host_path(self.root, rel)).map_err(WalkError::Io)?;
                self.visitor.visit(&path, Entry::Symlink { target })
            }
            Kind::Special => {
                Err(WalkError::Special { path: path.host(), kind: super::svcdir::kind_name(ftype) }.into())
            }
        }
    }

    fn count(&mut self) -> Result<(), WalkError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(WalkError::TooManyEntries { dir: self.root.to_path_buf(), limit: self.limits.max_entries });
        }
        Ok(())
    }
}

/// An entry that was one thing at `fstatat` and another at `open` was replaced meanwhile.
fn changed(path: &EntryPath<'_>, errno: Errno) -> WalkError {
    WalkError::Changed { path: path.host(), source: io::Error::from(errno) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;

    /// A temp directory holding `files` (`path`, contents), parents created as needed.
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        for (rel, text) in files {
            let p = t.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        t
    }

    fn limits() -> Limits {
        Limits { max_entries: 100, max_bytes: 1024, max_depth: 8 }
    }

    /// Runs between an entry's `fstatat` and its `open`.
    type Meddle = Box<dyn FnMut(&EntryPath<'_>)>;

    /// Records what it is shown as `path kind detail` lines; reads files only when `read`.
    #[derive(Default)]
    struct Record {
        seen: Vec<String>,
        read: bool,
        skip_names: Vec<&'static [u8]>,
        skip_special: bool,
        meddle: Option<Meddle>,
    }

    impl Visitor for Record {
        type Error = WalkError;

        fn skip_name(&mut self, name: &[u8], _depth: usize) -> bool {
            self.skip_names.contains(&name)
        }

        fn skip(&mut self, path: &EntryPath<'_>, kind: Kind) -> bool {
            if let Some(meddle) = &mut self.meddle {
                meddle(path);
            }
            self.skip_special && kind == Kind::Special
        }

        fn visit(&mut self, path: &EntryPath<'_>, entry: Entry<'_>) -> Result<(), WalkError> {
            let rel = String::from_utf8_lossy(path.rel);
            let line = match entry {
                Entry::Dir { mode } => format!("{rel} dir {:o} depth {}", mode & 0o777, path.depth),
                Entry::File(mut f) if self.read => {
                    format!("{rel} file {}", String::from_utf8_lossy(&f.read_to_end()?))
                }
                Entry::File(f) => format!("{rel} file {:o}", f.mode & 0o777),
                Entry::Symlink { target } => format!("{rel} link {}", target.to_string_lossy()),
            };
            self.seen.push(line);
            Ok(())
        }
    }

    #[test]
    fn entries_come_sorted_depth_first_with_directories_before_their_contents() {
        let t = tree(&[("b.js", "b"), ("a/z.js", "z"), ("a/b/c.js", "c"), ("a.js", "a"), ("skipped/x.js", "x")]);
        std::fs::write(t.path().join(OsStr::from_bytes(b"\xff.js")), "not utf-8").expect("write");
        symlink("../b.js", t.path().join("a/link")).expect("symlink");
        let mut v = Record { read: true, skip_names: vec![b"skipped"], ..Record::default() };
        let root_mode = walk(t.path(), limits(), &mut v).expect("walk");
        let mode = std::fs::metadata(t.path().join("a")).expect("stat").permissions();
        let dir_mode = std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777;
        assert_eq!(
            v.seen,
            [
                format!("a dir {dir_mode:o} depth 0"),
                format!("a/b dir {dir_mode:o} depth 1"),
                "a/b/c.js file c".into(),
                "a/link link ../b.js".into(),
                "a/z.js file z".into(),
                "a.js file a".into(),
                "b.js file b".into(),
                "\u{fffd}.js file not utf-8".into(),
            ]
        );
        assert_eq!(root_mode & 0o170000, 0o040000, "the root's own mode is a directory's");
    }

    #[test]
    fn symlinks_are_reported_never_followed_and_a_symlinked_root_is_refused() {
        let t = tree(&[]);
        let outside = tree(&[("secret/a.txt", "secret")]);
        symlink(outside.path().join("secret"), t.path().join("dir")).expect("symlink");
        symlink(outside.path().join("secret/a.txt"), t.path().join("file")).expect("symlink");
        let mut v = Record { read: true, ..Record::default() };
        walk(t.path(), limits(), &mut v).expect("walk");
        let secret = outside.path().join("secret");
        assert_eq!(v.seen, [format!("dir link {}", secret.display()), format!("file link {}/a.txt", secret.display())]);
        let link = outside.path().join("svc");
        symlink(t.path(), &link).expect("symlink");
        let err = walk(&link, limits(), &mut Record::default()).expect_err("symlinked root");
        assert!(matches!(err, WalkError::Io(IoError { op: "open", .. })), "{err}");
    }

    /// An entry swapped between `fstatat` and `open` fails the walk, and nothing behind a
    /// swapped-in symlink is read.
    #[test]
    fn an_entry_replaced_during_the_walk_is_detected() {
        let outside = tree(&[("secret/a.txt", "secret")]);
        let secret_dir = outside.path().join("secret");
        let secret_file = secret_dir.join("a.txt");
        type Swap = Box<dyn Fn(&Path)>;
        let swaps: Vec<(&str, Swap)> = vec![
            (
                "file -> symlink",
                Box::new(move |p: &Path| {
                    std::fs::remove_file(p).expect("rm");
                    symlink(&secret_file, p).expect("symlink");
                }),
            ),
            (
                "file -> named pipe",
                Box::new(|p: &Path| {
                    std::fs::remove_file(p).expect("rm");
                    nix::unistd::mkfifo(p, Mode::from_bits_truncate(0o644)).expect("mkfifo");
                }),
            ),
            (
                "file -> directory",
                Box::new(|p: &Path| {
                    std::fs::remove_file(p).expect("rm");
                    std::fs::create_dir(p).expect("mkdir");
                }),
            ),
        ];
        for (what, swap) in swaps {
            let t = tree(&[("victim", "mine")]);
            let meddle = Box::new(move |p: &EntryPath<'_>| swap(&p.host()));
            let mut v = Record { read: true, meddle: Some(meddle), ..Record::default() };
            let err = walk(t.path(), limits(), &mut v).expect_err(what);
            assert!(matches!(err, WalkError::Changed { .. }), "{what}: {err}");
            assert!(err.to_string().contains("victim changed while ignite was reading it"), "{what}: {err}");
            assert!(v.seen.is_empty(), "{what}: {:?}", v.seen);
        }
        let t = tree(&[]);
        std::fs::create_dir(t.path().join("victim")).expect("mkdir");
        let meddle = Box::new(move |p: &EntryPath<'_>| {
            std::fs::remove_dir(p.host()).expect("rmdir");
            symlink(&secret_dir, p.host()).expect("symlink");
        });
        let mut v = Record { read: true, meddle: Some(meddle), ..Record::default() };
        let err = walk(t.path(), limits(), &mut v).expect_err("directory -> symlink");
        assert!(matches!(err, WalkError::Changed { .. }), "{err}");
        assert!(!v.seen.iter().any(|l| l.contains("secret")), "{:?}", v.seen);
    }

    #[test]
    fn a_second_link_to_a_private_file_is_refused_and_its_content_never_read() {
        use std::os::unix::fs::PermissionsExt;
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let secret = elsewhere.path().join("shadow");
        std::fs::write(&secret, "root:$6$hash").expect("write");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let t = tree(&[("a.ts", "1")]);
        std::fs::hard_link(&secret, t.path().join("copy")).expect("link");
        let mut v = Record { read: true, ..Record::default() };
        let err = walk(t.path(), limits(), &mut v).expect_err("private hard link");
        assert!(
            matches!(err, WalkError::Refused(super::super::svcdir::ReadError::PrivateHardLink { links: 2, .. })),
            "{err}"
        );
        assert!(!v.seen.iter().any(|l| l.contains("root:")), "{:?}", v.seen);
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        walk(t.path(), limits(), &mut Record::default()).expect("a world-readable file may be linked");
    }

    #[test]
    fn special_files_are_refused_unless_skipped() {
        let t = tree(&[]);
        nix::unistd::mkfifo(&t.path().join("pipe"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
        let err = walk(t.path(), limits(), &mut Record::default()).expect_err("fifo");
        assert!(matches!(err, WalkError::Special { kind: "a named pipe", .. }), "{err}");
        assert!(err.to_string().contains("pipe is a named pipe"), "{err}");
        let mut v = Record { skip_special: true, ..Record::default() };
        walk(t.path(), Limits { max_entries: 0, ..limits() }, &mut v).expect("skipped, so neither refused nor counted");
        assert!(v.seen.is_empty(), "{:?}", v.seen);

        let t = tree(&[]);
        let _socket = UnixListener::bind(t.path().join("sock")).expect("bind");
        let err = walk(t.path(), limits(), &mut Record::default()).expect_err("socket");
        assert!(matches!(err, WalkError::Special { kind: "a socket", .. }), "{err}");
    }

    #[test]
    fn limits_are_enforced_exactly_and_skipped_entries_count_for_nothing() {
        let ten = "0123456789";
        let big = "x".repeat(4096);
        let t = tree(&[("f0", ten), ("f1", ten), ("f2", ten), ("f3", ten), ("f4", ten), ("node_modules/big", &big)]);
        let skip = || Record { read: true, skip_names: vec![b"node_modules"], ..Record::default() };
        let at = |max_entries, max_bytes, max_depth| Limits { max_entries, max_bytes, max_depth };
        let err = walk(t.path(), at(4, 1024, 8), &mut skip()).expect_err("too many");
        assert!(matches!(err, WalkError::TooManyEntries { limit: 4, .. }), "{err}");
        walk(t.path(), at(5, 1024, 8), &mut skip()).expect("exactly at the entry limit");
        let err = walk(t.path(), at(5, 49, 8), &mut skip()).expect_err("too large");
        assert!(matches!(err, WalkError::TooLarge { limit: 49, .. }), "{err}");
        walk(t.path(), at(5, 50, 8), &mut skip()).expect("exactly at the byte limit");
        let mut unread = Record { skip_names: vec![b"node_modules"], ..Record::default() };
        walk(t.path(), at(5, 0, 8), &mut unread).expect("bytes count only when read");

        std::fs::create_dir_all(t.path().join("a/b/c")).expect("mkdir");
        let err = walk(t.path(), at(100, 1024, 2), &mut skip()).expect_err("too deep");
        assert!(matches!(err, WalkError::TooDeep { limit: 2, .. }), "{err}");
        assert!(err.to_string().contains("a/b/c is nested more than 2"), "{err}");
        walk(t.path(), at(100, 1024, 3), &mut skip()).expect("exactly at the depth limit");
    }
}
