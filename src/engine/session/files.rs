//! The files of a session's workspace as ignite's own process (root, on the host) lists, reads,
//! writes and removes them for a client: the path rules, and the fd-relative operations that
//! never follow a link the session's programs planted.
//!
//! Everything in a workspace was made by untrusted code, so every path is checked lexically
//! first ([`check_path`]: relative, no `..`, no NUL or control characters, bounded length and
//! depth), then walked one component at a time from a descriptor of the workspace's root, each
//! step an `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV)` with `O_NOFOLLOW` (a plain `openat(O_NOFOLLOW)` on kernels without openat2).
//! A symbolic link anywhere on the way is refused ([`FileError::Link`]), never followed, and the
//! operation then acts on the directory descriptor it holds: a directory swapped for a link
//! after it was opened changes nothing, and one swapped before it is opened is refused.
//! Files are read only when they are regular files (checked with `fstatat` without following,
//! then again on the opened descriptor); writes go to a fresh temporary file in the target's
//! directory that is renamed into place, so a full workspace leaves the old file as it was.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::NixPath;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, RenameFlags, ResolveFlag, open, openat, openat2, renameat, renameat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};

use crate::engine::relpath;
use crate::fsutil::svcdir::{self, file_type};
use crate::fsutil::{IoError, temp_name};

/// Largest file [`Workspace::write_file`](crate::engine::Workspace::write_file) accepts and the HTTP API serves or takes in one request.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Entries a listing holds at most; more make it `truncated`.
pub const MAX_LIST_ENTRIES: usize = 4096;
/// Longest path, and most components a path may have (and so the deepest a listing goes).
pub use crate::engine::relpath::{MAX_DEPTH, MAX_PATH_BYTES};
/// How deep a recursive removal descends: programs can nest directories far deeper than a path
/// may name, and the removal must stay bounded.
const MAX_REMOVE_DEPTH: usize = 256;
/// The prefix of the temporary file a write goes through before it is renamed into place.
const UPLOAD_PREFIX: &str = ".ignite-upload";
/// Mode of the files and directories ignite creates: the session's uid owns them and may change
/// them; the workspace root is 0700, so nobody else reaches them anyway.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// What an entry is, as `fstatat` sees it without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// A named pipe or a socket (a workspace is `nodev`: no device works there).
    Other,
}

impl FileKind {
    fn of(stat: &FileStat) -> FileKind {
        match file_type(stat) {
            SFlag::S_IFREG => FileKind::File,
            SFlag::S_IFDIR => FileKind::Dir,
            SFlag::S_IFLNK => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }

    /// Its name in the API: `file`, `dir`, `symlink`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Other => "other",
        }
    }
}

/// One entry of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the workspace, `/`-separated, as [`check_path`] accepts it.
    pub path: String,
    /// Bytes, for a file; 0 for anything else.
    pub size: u64,
    pub kind: FileKind,
}

/// A bounded listing of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    /// Depth first, names sorted bytewise, every directory before its contents.
    pub entries: Vec<FileEntry>,
    /// Something was left out: more than [`MAX_LIST_ENTRIES`] entries, entries nested deeper
    /// than [`MAX_DEPTH`], or names no path can give (not UTF-8, control characters).
    pub truncated: bool,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub entry: FileEntry,
    /// No file was there before (otherwise it was replaced).
    pub created: bool,
}

/// Whose fault a [`FileError`] is, for the edges (HTTP statuses, MCP tool errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileErrorKind {
    /// The path cannot name anything in a workspace (HTTP 400).
    InvalidPath,
    /// Nothing is there (404).
    NotFound,
    /// What is there does not allow the operation: a link, a directory where a file is wanted,
    /// a file where a directory is wanted, a directory that is not empty (409).
    Conflict,
    /// Larger than the operation's cap (413).
    TooLarge,
    /// The workspace's quota (bytes or files) is used up (507).
    NoSpace,
    /// A host step failed (500).
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("path {path:?} {reason}")]
    BadPath { path: String, reason: String },
    #[error("{}", link_message(path, link))]
    Link { path: String, link: String },
    #[error("{path:?} does not exist in the workspace")]
    NotFound { path: String },
    #[error("{path:?} is {kind}, not a regular file")]
    NotAFile { path: String, kind: &'static str },
    #[error("{path:?} cannot be in the workspace: {parent:?} is {kind}, not a directory")]
    NotADirectory { path: String, parent: String, kind: &'static str },
    #[error("{path:?} is a directory that is not empty; remove it recursively, or its entries first")]
    NotEmpty { path: String },
    #[error("{path:?} is {size} bytes; at most {max} bytes are accepted")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error(
        "the workspace is full ({quota_mb} MiB and {max_files} files at most): {path:?} was not written; remove files first"
    )]
    NoSpace { path: String, quota_mb: u64, max_files: u64 },
    #[error("{path:?} is nested more than {limit} directories deep; remove its contents from a run (rm -rf)")]
    TooDeep { path: String, limit: usize },
    #[error("{path:?} changed while ignite was working on it; try again")]
    Changed { path: String },
    #[error("the session's workspace is closed")]
    Closed,
    /// A host step failed; the path is relative to the workspace.
    #[error(transparent)]
    Io(#[from] IoError),
}

fn link_message(path: &str, link: &str) -> String {
    let what = if path == link { String::new() } else { format!(" on the way to {path:?}") };
    format!(
        "{link:?} is a symbolic link{what}: ignite never follows a link in a workspace (the session's programs can; or delete the link)"
    )
}

impl FileError {
    pub fn kind(&self) -> FileErrorKind {
        match self {
            FileError::BadPath { .. } => FileErrorKind::InvalidPath,
            FileError::NotFound { .. } | FileError::Closed => FileErrorKind::NotFound,
            FileError::Link { .. }
            | FileError::NotAFile { .. }
            | FileError::NotADirectory { .. }
            | FileError::NotEmpty { .. }
            | FileError::TooDeep { .. }
            | FileError::Changed { .. } => FileErrorKind::Conflict,
            FileError::TooLarge { .. } => FileErrorKind::TooLarge,
            FileError::NoSpace { .. } => FileErrorKind::NoSpace,
            FileError::Io(_) => FileErrorKind::Internal,
        }
    }

    /// A stable, machine-readable name of the variant (the HTTP error `code`).
    pub fn code(&self) -> &'static str {
        match self {
            FileError::BadPath { .. } => "invalid_path",
            FileError::Link { .. } => "symlink_refused",
            FileError::NotFound { .. } | FileError::Closed => "not_found",
            FileError::NotAFile { .. } => "not_a_file",
            FileError::NotADirectory { .. } => "not_a_directory",
            FileError::NotEmpty { .. } => "not_empty",
            FileError::TooLarge { .. } => "file_too_large",
            FileError::NoSpace { .. } => "workspace_full",
            FileError::TooDeep { .. } => "too_deep",
            FileError::Changed { .. } => "changed",
            FileError::Io(_) => "internal",
        }
    }
}

/// `path` as a workspace path: its components, `.` and empty ones dropped. Refuses anything that
/// could leave the workspace or mean different things to different readers (see
/// [`relpath`](crate::engine::relpath)).
pub fn check_path(path: &str) -> Result<Vec<&str>, FileError> {
    relpath::components(path, "the workspace", "data/in.csv")
        .map_err(|reason| FileError::BadPath { path: path.to_string(), reason })
}

/// A workspace's root, whose files the operations below work on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Root<'a> {
    /// The root on the host: ignite's own path (`STATE/sessions/<id>`), never the program's.
    pub dir: &'a Path,
    /// Who owns what a write creates (the session's uid and gid); `None` keeps ignite's own.
    pub owner: Option<(u32, u32)>,
    /// For [`FileError::NoSpace`]'s message.
    pub quota_mb: u64,
    /// Likewise.
    pub max_files: u64,
}

impl Root<'_> {
    fn open(&self) -> Result<Dir, FileError> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        open(self.dir, flags, Mode::empty())
            .and_then(Dir::from_fd)
            .map_err(|e| IoError::new("open", "the workspace", e).into())
    }

    fn no_space(&self, path: &str) -> FileError {
        FileError::NoSpace { path: path.to_string(), quota_mb: self.quota_mb, max_files: self.max_files }
    }
}

/// Opens the single component `name` beneath `dir` with `flags`, following no link: openat2
/// where the kernel has it, `O_NOFOLLOW` otherwise (a component holds no `/` and is never
/// `..`, so one step cannot leave `dir` either way).
fn step<Fd: AsFd, P: ?Sized + NixPath>(dir: Fd, name: &P, flags: OFlag) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let resolve = ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
        | ResolveFlag::RESOLVE_NO_XDEV;
    match openat2(dir.as_fd(), name, OpenHow::new().flags(flags).resolve(resolve)) {
        // Kernels before 5.6 (or a seccomp profile that hides openat2).
        Err(Errno::ENOSYS) => openat(dir, name, flags, Mode::empty()),
        other => other,
    }
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY
}

fn kind_name(stat: &FileStat) -> &'static str {
    svcdir::kind_name(file_type(stat))
}

fn stat_at<Fd: AsFd>(dir: Fd, name: &str) -> Result<FileStat, Errno> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// The workspace path of the first `n` components.
fn prefix(parts: &[&str], n: usize) -> String {
    parts[..n].join("/")
}

/// Opens the directory that holds the last component of `parts`, one component at a time;
/// with `create`, missing directories are made (owned by `root.owner`, mode 0755).
fn open_parent(root: &Root<'_>, parts: &[&str], create: bool) -> Result<Dir, FileError> {
    let path = parts.join("/");
    let mut dir = root.open()?;
    for (i, name) in parts[..parts.len() - 1].iter().enumerate() {
        let mut made = false;
        if create {
            match mkdirat(&dir, *name, Mode::from_bits_truncate(DIR_MODE)) {
                Ok(()) => made = true,
                Err(Errno::EEXIST) => {}
                Err(Errno::ENOSPC | Errno::EDQUOT) => return Err(root.no_space(&path)),
                Err(e) => return Err(IoError::new("create", prefix(parts, i + 1), e).into()),
            }
        }
        let fd = match step(&dir, *name, dir_flags()) {
            Ok(fd) => fd,
            Err(e) => return Err(refusal(&dir, name, e, parts, i + 1)),
        };
        if made {
            // fd-relative: the directory just opened is the one that gets the owner and mode.
            own(&fd, root.owner, DIR_MODE).map_err(|e| IoError::new("set the owner of", prefix(parts, i + 1), e))?;
        }
        dir = Dir::from_fd(fd).map_err(|e| IoError::new("open", prefix(parts, i + 1), e))?;
    }
    Ok(dir)
}

/// Why opening component `n - 1` of `parts` (named `name`, in `dir`) failed, precisely.
fn refusal(dir: &Dir, name: &str, e: Errno, parts: &[&str], n: usize) -> FileError {
    let path = parts.join("/");
    let at = prefix(parts, n);
    match e {
        Errno::ENOENT => FileError::NotFound { path },
        Errno::ELOOP | Errno::EXDEV => FileError::Link { path, link: at },
        // O_DIRECTORY on something else (or a link, on the fallback path): say which.
        Errno::ENOTDIR => match stat_at(dir, name) {
            Ok(s) if file_type(&s) == SFlag::S_IFLNK => FileError::Link { path, link: at },
            Ok(s) => FileError::NotADirectory { path, parent: at, kind: kind_name(&s) },
            Err(_) => FileError::Changed { path },
        },
        e => IoError::new("open", at, e).into(),
    }
}

fn own<Fd: AsFd>(fd: Fd, owner: Option<(u32, u32)>, mode: u32) -> Result<(), Errno> {
    if let Some((uid, gid)) = owner {
        fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    }
    fchmod(&fd, Mode::from_bits_truncate(mode))
}

/// Every entry of the workspace, bounded (see [`Listing`]).
pub(crate) fn list(root: &Root<'_>) -> Result<Listing, FileError> {
    let mut listing = Listing::default();
    let mut dir = root.open()?;
    list_dir(&mut dir, "", 0, &mut listing)?;
    Ok(listing)
}

fn list_dir(dir: &mut Dir, rel: &str, depth: usize, out: &mut Listing) -> Result<(), FileError> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| IoError::new("read the directory", display(rel), e))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    for name in names {
        if out.entries.len() >= MAX_LIST_ENTRIES {
            out.truncated = true;
            return Ok(());
        }
        // A name no path can give is left out, and so is what lies beneath it.
        let Ok(name) = String::from_utf8(name) else {
            out.truncated = true;
            continue;
        };
        let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        if check_path(&path).is_err() {
            out.truncated = true;
            continue;
        }
        let stat = match stat_at(&*dir, &name) {
            Ok(s) => s,
            // Removed since it was listed: nothing to show.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(IoError::new("stat", path, e).into()),
        };
        let kind = FileKind::of(&stat);
        let size = if kind == FileKind::File { stat.st_size.max(0) as u64 } else { 0 };
        out.entries.push(FileEntry { path: path.clone(), size, kind });
        if kind != FileKind::Dir {
            continue;
        }
        if depth + 1 >= MAX_DEPTH {
            // Its entries would be nested deeper than a path may be.
            out.truncated = true;
            continue;
        }
        let mut child = match step(&*dir, name.as_str(), dir_flags()).and_then(Dir::from_fd) {
            Ok(d) => d,
            // Replaced (by a link, say) since the stat: refused at the open, so skipped.
            Err(Errno::ELOOP | Errno::ENOTDIR | Errno::ENOENT | Errno::EXDEV) => {
                out.truncated = true;
                continue;
            }
            Err(e) => return Err(IoError::new("open", path, e).into()),
        };
        list_dir(&mut child, &path, depth + 1, out)?;
    }
    Ok(())
}

fn display(rel: &str) -> &str {
    if rel.is_empty() { "the workspace" } else { rel }
}

/// The content of the regular file `rel`, at most `max_bytes`.
pub(crate) fn read_file(root: &Root<'_>, rel: &str, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let parts = check_path(rel)?;
    let path = parts.join("/");
    let parent = open_parent(root, &parts, false)?;
    let name = parts[parts.len() - 1];
    let before = stat_at(&parent, name).map_err(|e| refusal(&parent, name, e, &parts, parts.len()))?;
    match file_type(&before) {
        SFlag::S_IFREG => {}
        SFlag::S_IFLNK => return Err(FileError::Link { link: path.clone(), path }),
        _ => return Err(FileError::NotAFile { path, kind: kind_name(&before) }),
    }
    let size = before.st_size.max(0) as u64;
    if size > max_bytes {
        return Err(FileError::TooLarge { path, size, max: max_bytes });
    }
    // O_NONBLOCK and O_NOCTTY: a pipe swapped in since the stat neither blocks nor is adopted;
    // the inode check below refuses it.
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let fd = match step(&parent, name, flags) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(FileError::NotFound { path }),
        Err(Errno::ELOOP | Errno::EXDEV) => return Err(FileError::Link { link: path.clone(), path }),
        Err(_) => return Err(FileError::Changed { path }),
    };
    let now = fstat(&fd).map_err(|e| IoError::new("stat", &path, e))?;
    if now.st_dev != before.st_dev || now.st_ino != before.st_ino || file_type(&now) != SFlag::S_IFREG {
        return Err(FileError::Changed { path });
    }
    let mut bytes = Vec::with_capacity((now.st_size.max(0) as u64).min(max_bytes) as usize);
    File::from(fd).take(max_bytes + 1).read_to_end(&mut bytes).map_err(|e| IoError::new("read", &path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(FileError::TooLarge { path, size: bytes.len() as u64, max: max_bytes });
    }
    Ok(bytes)
}

/// Writes `bytes` to `rel` (at most [`MAX_FILE_BYTES`]), creating its parent directories; the
/// file (and any directory made) belongs to `root.owner`, mode 0644 (directories 0755). An
/// existing file is replaced atomically; a directory or a link there is refused.
pub(crate) fn write_file(root: &Root<'_>, rel: &str, bytes: &[u8]) -> Result<Written, FileError> {
    let parts = check_path(rel)?;
    let path = parts.join("/");
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge { path, size: bytes.len() as u64, max: MAX_FILE_BYTES });
    }
    let parent = open_parent(root, &parts, true)?;
    let name = parts[parts.len() - 1];
    match stat_at(&parent, name) {
        Ok(s) if file_type(&s) == SFlag::S_IFLNK => return Err(FileError::Link { link: path.clone(), path }),
        Ok(s) if file_type(&s) != SFlag::S_IFREG => {
            return Err(FileError::NotAFile { path, kind: kind_name(&s) });
        }
        Ok(_) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(IoError::new("stat", &path, e).into()),
    }
    let tmp = temp_name(UPLOAD_PREFIX);
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(&parent, tmp.as_str(), flags, Mode::from_bits_truncate(0o600)) {
        Ok(fd) => fd,
        Err(Errno::ENOSPC | Errno::EDQUOT) => return Err(root.no_space(&path)),
        Err(e) => return Err(IoError::new("create a file beside", &path, e).into()),
    };
    let result = (|| {
        let mut file = File::from(fd);
        if let Err(e) = file.write_all(bytes) {
            return Err(match e.raw_os_error() {
                Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => root.no_space(&path),
                _ => IoError::new("write", &path, e).into(),
            });
        }
        own(&file, root.owner, FILE_MODE).map_err(|e| IoError::new("set the owner of", &path, e))?;
        // RENAME_NOREPLACE tells a new file from a replaced one; the rename itself never follows
        // a link at the target (it would replace the link, which the stat above refused).
        match renameat2(&parent, tmp.as_str(), &parent, name, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => match renameat(&parent, tmp.as_str(), &parent, name) {
                Ok(()) => Ok(false),
                Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST) => {
                    Err(FileError::NotAFile { path: path.clone(), kind: "a directory" })
                }
                Err(e) => Err(IoError::new("rename into place", &path, e).into()),
            },
            Err(e) => Err(IoError::new("rename into place", &path, e).into()),
        }
    })();
    match result {
        Ok(created) => {
            Ok(Written { entry: FileEntry { path, size: bytes.len() as u64, kind: FileKind::File }, created })
        }
        Err(e) => {
            let _ = unlinkat(&parent, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            Err(e)
        }
    }
}

/// Removes `rel`: a file, a link (the link itself, never its target), a named pipe or socket, or
/// a directory: an empty one, or with `recursive` one with everything in it (fd-relative all
/// the way down, never through a link, at most [`MAX_REMOVE_DEPTH`] deep).
pub(crate) fn remove(root: &Root<'_>, rel: &str, recursive: bool) -> Result<(), FileError> {
    let parts = check_path(rel)?;
    let path = parts.join("/");
    let parent = open_parent(root, &parts, false)?;
    let name = parts[parts.len() - 1];
    let stat = stat_at(&parent, name).map_err(|e| refusal(&parent, name, e, &parts, parts.len()))?;
    if file_type(&stat) != SFlag::S_IFDIR {
        return unlinkat(&parent, name, UnlinkatFlags::NoRemoveDir).map_err(|e| match e {
            Errno::ENOENT => FileError::NotFound { path: path.clone() },
            Errno::EISDIR => FileError::Changed { path: path.clone() },
            e => IoError::new("remove", &path, e).into(),
        });
    }
    if recursive {
        let mut dir = match step(&parent, name, dir_flags()).and_then(Dir::from_fd) {
            Ok(d) => d,
            Err(Errno::ENOENT) => return Err(FileError::NotFound { path }),
            Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV) => return Err(FileError::Changed { path }),
            Err(e) => return Err(IoError::new("open", &path, e).into()),
        };
        clear(&mut dir, &path, 1)?;
    }
    unlinkat(&parent, name, UnlinkatFlags::RemoveDir).map_err(|e| match e {
        Errno::ENOTEMPTY | Errno::EEXIST => FileError::NotEmpty { path: path.clone() },
        Errno::ENOENT => FileError::NotFound { path: path.clone() },
        Errno::ENOTDIR => FileError::Changed { path: path.clone() },
        e => IoError::new("remove", &path, e).into(),
    })
}

/// Removes everything in `dir` (at workspace path `rel`, `depth` below the removed directory).
fn clear(dir: &mut Dir, rel: &str, depth: usize) -> Result<(), FileError> {
    if depth > MAX_REMOVE_DEPTH {
        return Err(FileError::TooDeep { path: rel.to_string(), limit: MAX_REMOVE_DEPTH });
    }
    let mut names: Vec<Vec<u8>> = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| IoError::new("read the directory", rel, e))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    for name in names {
        let name = OsStr::from_bytes(&name);
        let shown = || format!("{rel}/{}", name.to_string_lossy());
        let stat = match fstatat(&*dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(IoError::new("stat", shown(), e).into()),
        };
        if file_type(&stat) == SFlag::S_IFDIR {
            let mut child = match step(&*dir, name, dir_flags()).and_then(Dir::from_fd) {
                Ok(d) => d,
                Err(Errno::ENOENT) => continue,
                Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV) => return Err(FileError::Changed { path: shown() }),
                Err(e) => return Err(IoError::new("open", shown(), e).into()),
            };
            clear(&mut child, &shown(), depth + 1)?;
            match unlinkat(&*dir, name, UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(Errno::ENOTEMPTY | Errno::ENOTDIR) => return Err(FileError::Changed { path: shown() }),
                Err(e) => return Err(IoError::new("remove", shown(), e).into()),
            }
        } else {
            match unlinkat(&*dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(Errno::EISDIR) => return Err(FileError::Changed { path: shown() }),
                Err(e) => return Err(IoError::new("remove", shown(), e).into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::relpath::MAX_COMPONENT_BYTES;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    /// A workspace stand-in (a temp dir) and a directory outside it holding a secret.
    struct Fixture {
        ws: tempfile::TempDir,
        outside: tempfile::TempDir,
        owner: Option<(u32, u32)>,
    }

    const SECRET: &str = "root:$6$not-for-clients";

    impl Fixture {
        fn new() -> Fixture {
            let outside = tempfile::tempdir().unwrap();
            fs::write(outside.path().join("secret"), SECRET).unwrap();
            // Ownership can only be given away as root; elsewhere files keep the test's uid.
            let owner = nix::unistd::geteuid().is_root().then_some((4242, 4243));
            Fixture { ws: tempfile::tempdir().unwrap(), outside, owner }
        }

        fn root(&self) -> Root<'_> {
            Root { dir: self.ws.path(), owner: self.owner, quota_mb: 1, max_files: 16 }
        }

        fn outside_names(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(self.outside.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }

        fn assert_outside_untouched(&self) {
            assert_eq!(self.outside_names(), ["secret"]);
            assert_eq!(fs::read_to_string(self.outside.path().join("secret")).unwrap(), SECRET);
        }
    }

    fn paths(listing: &Listing) -> Vec<String> {
        listing.entries.iter().map(|e| format!("{} {} {}", e.path, e.kind.as_str(), e.size)).collect()
    }

    #[test]
    fn paths_must_be_relative_without_dotdot_nul_or_excess() {
        assert_eq!(check_path("./a//b/").unwrap(), ["a", "b"]);
        assert_eq!(check_path("notes.txt").unwrap(), ["notes.txt"]);
        let refused = |p: &str, reason: &str| {
            let e = check_path(p).expect_err(p);
            assert_eq!(e.kind(), FileErrorKind::InvalidPath, "{p}");
            assert_eq!(e.code(), "invalid_path");
            assert!(e.to_string().contains(reason), "{p}: {e}");
        };
        refused("", "is empty");
        refused("..", "contains `..`; paths must stay inside the workspace");
        refused("a/../../etc/passwd", "contains `..`");
        refused("/etc/passwd", "is absolute; give it relative to the workspace");
        refused("a\0b", "NUL or control character");
        refused("a\nb", "NUL or control character");
        refused("a\\b", "backslash");
        refused(".", "names no file");
        refused("./", "names no file");
        refused(&"x".repeat(MAX_PATH_BYTES + 1), "bytes long");
        refused(&"x".repeat(MAX_COMPONENT_BYTES + 1), "component longer than");
        refused(&vec!["d"; MAX_DEPTH + 1].join("/"), "levels deep");
        assert!(check_path(&vec!["d"; MAX_DEPTH].join("/")).is_ok(), "exactly at the depth cap");
    }

    #[test]
    fn planted_links_are_refused_and_never_followed() {
        let f = Fixture::new();
        let ws = f.ws.path();
        symlink("/etc/shadow", ws.join("x")).unwrap();
        symlink("/", ws.join("d")).unwrap();
        symlink(f.outside.path().join("secret"), ws.join("s")).unwrap();
        symlink(f.outside.path(), ws.join("o")).unwrap();
        fs::create_dir(ws.join("real")).unwrap();
        symlink(f.outside.path(), ws.join("real/inner")).unwrap();
        let root = f.root();
        let link = |r: Result<(), FileError>, what: &str, at: &str| {
            let e = r.expect_err(what);
            assert!(matches!(&e, FileError::Link { link, .. } if link == at), "{what}: {e:?}");
            assert_eq!((e.kind(), e.code()), (FileErrorKind::Conflict, "symlink_refused"), "{what}");
            assert!(e.to_string().starts_with(&format!("{at:?} is a symbolic link")), "{what}: {e}");
            assert!(e.to_string().contains("ignite never follows a link in a workspace"), "{what}: {e}");
            assert!(!e.to_string().contains("root:"), "{e}");
        };
        for (path, at) in [
            ("x", "x"),
            ("s", "s"),
            ("d/etc/passwd", "d"),
            ("d/etc/shadow", "d"),
            ("o/secret", "o"),
            ("real/inner/secret", "real/inner"),
        ] {
            link(read_file(&root, path, MAX_FILE_BYTES).map(drop), &format!("read {path}"), at);
        }
        for (path, at) in
            [("d/tmp/ignite-pwned", "d"), ("o/new", "o"), ("o/secret", "o"), ("real/inner/x/y", "real/inner")]
        {
            link(write_file(&root, path, b"pwned").map(drop), &format!("write {path}"), at);
        }
        // A link as the file itself is refused too, not replaced nor written through.
        link(write_file(&root, "s", b"pwned").map(drop), "write s", "s");
        link(remove(&root, "o/secret", false), "remove o/secret", "o");
        link(remove(&root, "real/inner/secret", true), "remove real/inner/secret", "real/inner");
        assert!(!Path::new("/tmp/ignite-pwned").exists());
        f.assert_outside_untouched();

        // Listed as links, never descended into.
        let listing = list(&root).unwrap();
        assert_eq!(
            paths(&listing),
            ["d symlink 0", "o symlink 0", "real dir 0", "real/inner symlink 0", "s symlink 0", "x symlink 0"]
        );
        assert!(!listing.truncated);
        // Removing a link removes the link, never what it points to.
        remove(&root, "s", false).unwrap();
        remove(&root, "o", true).unwrap();
        remove(&root, "real", true).unwrap();
        assert!(fs::symlink_metadata(ws.join("s")).is_err() && fs::symlink_metadata(ws.join("o")).is_err());
        f.assert_outside_untouched();
    }

    #[test]
    fn writes_create_parents_owned_by_the_session_with_sane_modes_and_replace_atomically() {
        let f = Fixture::new();
        let root = f.root();
        let w = write_file(&root, "a/b/c.txt", b"hello").unwrap();
        assert_eq!(
            w,
            Written { entry: FileEntry { path: "a/b/c.txt".into(), size: 5, kind: FileKind::File }, created: true }
        );
        let ws = f.ws.path();
        assert_eq!(fs::read(ws.join("a/b/c.txt")).unwrap(), b"hello");
        for (rel, mode) in [("a", 0o755), ("a/b", 0o755), ("a/b/c.txt", 0o644)] {
            let m = fs::symlink_metadata(ws.join(rel)).unwrap();
            assert_eq!(m.permissions().mode() & 0o7777, mode, "{rel}");
            if let Some((uid, gid)) = f.owner {
                assert_eq!((m.uid(), m.gid()), (uid, gid), "{rel}");
            }
        }
        let w = write_file(&root, "./a//b/c.txt", b"bye").unwrap();
        assert!(!w.created, "replaced");
        assert_eq!(fs::read(ws.join("a/b/c.txt")).unwrap(), b"bye");
        assert_eq!(read_file(&root, "a/b/c.txt", 3).unwrap(), b"bye");
        write_file(&root, "empty", b"").unwrap();
        assert_eq!(read_file(&root, "empty", 0).unwrap(), b"");

        let e = write_file(&root, "a/b", b"x").unwrap_err();
        assert_eq!((e.code(), e.kind()), ("not_a_file", FileErrorKind::Conflict), "{e}");
        assert!(e.to_string().contains("\"a/b\" is a directory, not a regular file"), "{e}");
        let e = write_file(&root, "a/b/c.txt/d", b"x").unwrap_err();
        assert_eq!(e.code(), "not_a_directory", "{e}");
        assert!(e.to_string().contains("\"a/b/c.txt\" is a regular file, not a directory"), "{e}");
        let big = vec![0u8; MAX_FILE_BYTES as usize + 1];
        let e = write_file(&root, "big", &big).unwrap_err();
        assert_eq!((e.code(), e.kind()), ("file_too_large", FileErrorKind::TooLarge), "{e}");
        // No temporary file is left behind by any of it.
        let names: Vec<String> =
            list(&root).unwrap().entries.into_iter().map(|e| e.path).filter(|p| p.contains(UPLOAD_PREFIX)).collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn reads_take_regular_files_within_their_cap_only() {
        let f = Fixture::new();
        let root = f.root();
        let ws = f.ws.path();
        fs::write(ws.join("ten"), "0123456789").unwrap();
        assert_eq!(read_file(&root, "ten", 10).unwrap(), b"0123456789");
        let e = read_file(&root, "ten", 9).unwrap_err();
        assert!(matches!(e, FileError::TooLarge { size: 10, max: 9, .. }), "{e:?}");
        assert_eq!(e.kind(), FileErrorKind::TooLarge);
        assert!(e.to_string().contains("\"ten\" is 10 bytes; at most 9 bytes are accepted"), "{e}");
        let e = read_file(&root, "missing", 10).unwrap_err();
        assert_eq!((e.code(), e.kind()), ("not_found", FileErrorKind::NotFound));
        assert_eq!(e.to_string(), "\"missing\" does not exist in the workspace");
        let e = read_file(&root, "missing/deeper", 10).unwrap_err();
        assert_eq!(e.code(), "not_found", "{e}");
        let e = read_file(&root, "ten/x", 10).unwrap_err();
        assert_eq!(e.code(), "not_a_directory", "{e}");
        assert!(e.to_string().contains("\"ten\" is a regular file, not a directory"), "{e}");
        fs::create_dir(ws.join("dir")).unwrap();
        let e = read_file(&root, "dir", 10).unwrap_err();
        assert!(e.to_string().contains("\"dir\" is a directory, not a regular file"), "{e}");
        nix::unistd::mkfifo(&ws.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        let e = read_file(&root, "fifo", 10).unwrap_err();
        assert!(e.to_string().contains("\"fifo\" is a named pipe, not a regular file"), "{e}");
    }

    #[test]
    fn removal_takes_files_links_and_directories_and_recursion_is_asked_for() {
        let f = Fixture::new();
        let root = f.root();
        let ws = f.ws.path();
        fs::create_dir_all(ws.join("tree/sub/deeper")).unwrap();
        fs::write(ws.join("tree/sub/deeper/f"), "x").unwrap();
        fs::write(ws.join("tree/g"), "x").unwrap();
        symlink(f.outside.path(), ws.join("tree/sub/out")).unwrap();
        fs::create_dir(ws.join("empty")).unwrap();
        fs::write(ws.join("file"), "x").unwrap();

        remove(&root, "file", false).unwrap();
        remove(&root, "empty", false).unwrap();
        let e = remove(&root, "tree", false).unwrap_err();
        assert_eq!((e.code(), e.kind()), ("not_empty", FileErrorKind::Conflict), "{e}");
        assert!(ws.join("tree/g").exists(), "nothing removed without recursion");
        remove(&root, "tree", true).unwrap();
        assert_eq!(fs::read_dir(ws).unwrap().count(), 0);
        f.assert_outside_untouched();
        let e = remove(&root, "tree", true).unwrap_err();
        assert_eq!(e.code(), "not_found", "{e}");
        let e = remove(&root, "..", true).unwrap_err();
        assert_eq!(e.code(), "invalid_path", "{e}");
    }

    #[test]
    fn listings_are_ordered_and_bounded() {
        let f = Fixture::new();
        let root = f.root();
        let ws = f.ws.path();
        fs::create_dir_all(ws.join("b/c")).unwrap();
        fs::write(ws.join("b/c/d.txt"), "four").unwrap();
        fs::write(ws.join("a.txt"), "1").unwrap();
        let listing = list(&root).unwrap();
        assert_eq!(paths(&listing), ["a.txt file 1", "b dir 0", "b/c dir 0", "b/c/d.txt file 4"]);
        assert!(!listing.truncated);

        // A name no path can give (not UTF-8, a newline) is left out, and the listing says so.
        fs::write(ws.join(OsStr::from_bytes(b"bad\xff")), "x").unwrap();
        fs::write(ws.join("new\nline"), "x").unwrap();
        let listing = list(&root).unwrap();
        assert_eq!(listing.entries.len(), 4);
        assert!(listing.truncated);

        // Deeper than a path may be: listed down to MAX_DEPTH components.
        let f = Fixture::new();
        let deep: Vec<&str> = vec!["d"; MAX_DEPTH + 2];
        fs::create_dir_all(f.ws.path().join(deep.join("/"))).unwrap();
        let listing = list(&f.root()).unwrap();
        assert_eq!(listing.entries.len(), MAX_DEPTH);
        assert!(listing.truncated);

        // More entries than the cap.
        let f = Fixture::new();
        for i in 0..=MAX_LIST_ENTRIES {
            fs::write(f.ws.path().join(format!("f{i:05}")), "").unwrap();
        }
        let listing = list(&f.root()).unwrap();
        assert_eq!(listing.entries.len(), MAX_LIST_ENTRIES);
        assert!(listing.truncated);
    }

    /// A program swapping a directory for a link to the outside (atomically, over and over)
    /// while ignite works in it: every operation either acts inside the workspace or is
    /// refused; nothing outside is read, written or removed.
    #[test]
    fn a_directory_swapped_for_a_link_meanwhile_never_leads_outside() {
        let f = Fixture::new();
        let ws = f.ws.path().to_path_buf();
        fs::create_dir(ws.join("d")).unwrap();
        fs::write(ws.join("d/secret"), "mine").unwrap();
        symlink(f.outside.path(), ws.join("l")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (ws, stop) = (ws.clone(), stop.clone());
            std::thread::spawn(move || {
                let dir = File::open(&ws).unwrap();
                let mut swaps = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    renameat2(&dir, "d", &dir, "l", RenameFlags::RENAME_EXCHANGE).unwrap();
                    swaps += 1;
                }
                swaps
            })
        };
        let root = f.root();
        let mut done = [0usize; 4];
        for i in 0..2000 {
            if write_file(&root, "d/new", b"uploaded").is_ok() {
                done[0] += 1;
            }
            match read_file(&root, "d/secret", 1024) {
                Ok(bytes) => {
                    assert_eq!(bytes, b"mine", "iteration {i}: read outside the workspace");
                    done[1] += 1;
                }
                Err(e) => assert!(matches!(e.kind(), FileErrorKind::Conflict | FileErrorKind::NotFound), "{e:?}"),
            }
            if list(&root).is_ok() {
                done[2] += 1;
            }
            if remove(&root, "d/new", false).is_ok() {
                done[3] += 1;
            }
            f.assert_outside_untouched();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(swapper.join().unwrap() > 0);
        f.assert_outside_untouched();
        // Both outcomes happened: the operations did run inside, and were refused through the link.
        assert!(done[1] > 0 && done[2] > 0, "{done:?}");
    }
}
