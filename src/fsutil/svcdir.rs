//! The one way ignite's own process reads a file from a service directory (service.yaml,
//! policy files, input files, ignite.lock, package.json and lockfiles) or asks whether
//! something exists there.
//!
//! A service directory is untrusted input: it may come from an upload or from a model. So a
//! file in it is opened relative to the directory with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` (per component with `O_NOFOLLOW` on kernels before 5.6): no symbolic
//! link is followed anywhere on the way, and nothing outside the directory is reached. It is
//! first opened `O_PATH` (which has no side effects even on a device), must be a regular file
//! within its size cap, and is then opened for reading with `O_NONBLOCK` and checked to be the
//! same inode, so a named pipe or a device swapped in meanwhile can neither hang nor feed the
//! reader. At most cap + 1 bytes are ever read. A regular file with more than one hard link that
//! not everyone may read is refused: a hard link is how a file that belongs to somebody else
//! (`/etc/shadow`) could sit in a directory without a symlink. Errors name the file and the
//! rule, never its content.
//!
//! Files the operator names on the command line (`--policy FILE`, `--input @FILE` outside the
//! service directory, `--api-key-file`) are the operator's own and may be links; they go through
//! [`read_operator_file`], which keeps the other rules (regular, non-blocking, capped).

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use crate::fsutil::{At, IoError};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

/// What a file is read as: named in errors, with its size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// How the file is called in messages ("service definition", "policy file", ...).
    pub what: &'static str,
    /// Largest size in bytes; a larger file is refused without being read.
    pub max_bytes: u64,
}

/// What [`kind_of`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    /// A named pipe, socket or device.
    Special,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(
        "{path} is a symbolic link or lies behind one; ignite reads nothing from a service directory through a link: put the {what} itself there"
    )]
    Link { path: PathBuf, what: &'static str },
    #[error("{path} is outside the service directory; a {what} must be a path inside it")]
    Outside { path: PathBuf, what: &'static str },
    #[error("{path} is {kind}; a {what} must be a regular file")]
    NotRegular { path: PathBuf, kind: &'static str, what: &'static str },
    #[error("{path} is {size} bytes; a {what} may have at most {max} bytes")]
    TooLarge { path: PathBuf, size: u64, max: u64, what: &'static str },
    #[error(
        "{path} has {links} hard links and is not readable by everyone, so it may be another file's second name: ignite does not read it; replace it with a copy (cp --remove-destination SOURCE {path}) or make it world-readable"
    )]
    PrivateHardLink { path: PathBuf, links: u64 },
    #[error("{path} changed while ignite was reading it; try again")]
    Changed { path: PathBuf },
    #[error("{path} is not UTF-8 text; a {what} must be")]
    NotUtf8 { path: PathBuf, what: &'static str },
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io(IoError { path, .. })
            | ReadError::Link { path, .. }
            | ReadError::Outside { path, .. }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::PrivateHardLink { path, .. }
            | ReadError::Changed { path }
            | ReadError::NotUtf8 { path, .. } => path,
        }
    }
}

/// Reads `rel` (a relative path without `..`) beneath the directory `dir`; `None` when it does
/// not exist. `dir` itself is the caller's (canonical) path and may be reached through links.
pub fn read(dir: &Path, rel: &str, rule: Rule) -> Result<Option<Vec<u8>>, ReadError> {
    read_with(dir, rel, rule, Resolver::Openat2)
}

/// [`read`], as UTF-8 text.
pub fn read_text(dir: &Path, rel: &str, rule: Rule) -> Result<Option<String>, ReadError> {
    let path = dir.join(rel);
    read(dir, rel, rule)?.map(|bytes| utf8(bytes, path, rule)).transpose()
}

/// What `rel` is beneath `dir`, without following a link anywhere (a final symlink is reported
/// as [`EntryKind::Symlink`]; one on the way is an error); `None` when nothing is there.
pub fn kind_of(dir: &Path, rel: &str) -> Result<Option<EntryKind>, ReadError> {
    kind_with(dir, rel, Resolver::Openat2)
}

/// What `rel` leads to beneath `dir` when links inside the directory are followed (an entry
/// file may be a link to another file of the service): a link or `..` that leads out is
/// [`ReadError::Outside`] however its target looks on the host, so the answer says nothing about
/// host paths; `None` when the target does not exist inside.
pub fn target_kind(dir: &Path, rel: &str) -> Result<Option<EntryKind>, ReadError> {
    let path = dir.join(rel);
    let parts = components(dir, rel, "path")?;
    let base = open_dir(dir)?;
    let rel_path: PathBuf = parts.iter().collect();
    // RESOLVE_BENEATH refuses an absolute link or a `..` that climbs out when it meets it,
    // before anything beyond the directory is looked up.
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(&base, &rel_path, how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(Errno::EXDEV | Errno::ELOOP) => return Err(ReadError::Outside { path, what: "path" }),
        // Kernels before 5.6: links are not followed at all there.
        Err(Errno::ENOSYS) => return kind_of(dir, rel),
        Err(e) => return Err(IoError::new("open", &path, e).into()),
    };
    let stat = fstat(&fd).at("stat", &path)?;
    Ok(Some(entry_kind(&stat)))
}

/// Reads a file the operator named (it may be a link: the path is the operator's own), with the
/// same rules otherwise: regular file, opened without blocking, at most `rule.max_bytes`.
pub fn read_operator_file(path: &Path, rule: Rule) -> Result<Vec<u8>, ReadError> {
    let fd = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).at("open", path)?;
    let stat = fstat(&fd).at("stat", path)?;
    check(&stat, path, rule, false)?;
    let file = open(path, read_flags(), Mode::empty()).at("open", path)?;
    read_same(file, &stat, path, rule)
}

/// [`read_operator_file`], as UTF-8 text.
pub fn read_operator_text(path: &Path, rule: Rule) -> Result<String, ReadError> {
    utf8(read_operator_file(path, rule)?, path.to_path_buf(), rule)
}

/// The hard-link rule, here and in the walk of a service directory ([`crate::fsutil::walk`]):
/// a file with more than one link that not everyone may read is refused.
pub(crate) fn check_links(stat: &FileStat, path: &Path) -> Result<(), ReadError> {
    // `st_nlink` is a u64 on x86_64 and a u32 on aarch64.
    #[allow(clippy::useless_conversion)]
    let links = u64::from(stat.st_nlink);
    if links > 1 && stat.st_mode & libc::S_IROTH == 0 {
        return Err(ReadError::PrivateHardLink { path: path.to_path_buf(), links });
    }
    Ok(())
}

/// How paths are resolved beneath the directory: `openat2` where the kernel has it (5.6+),
/// otherwise one `openat(O_NOFOLLOW)` per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolver {
    Openat2,
    // Chosen directly only by tests: the running code reaches that path when openat2 fails
    // with ENOSYS.
    #[allow(dead_code)]
    PerComponent,
}

fn read_with(dir: &Path, rel: &str, rule: Rule, resolver: Resolver) -> Result<Option<Vec<u8>>, ReadError> {
    match find_checked(dir, rel, rule, resolver)? {
        Some(found) => found.read(rule).map(Some),
        None => Ok(None),
    }
}

/// A file beneath a service directory, found without following a link and checked against its
/// rule (regular, within its cap, the hard-link rule), not read yet.
struct Found {
    base: OwnedFd,
    dir: PathBuf,
    rel: String,
    path: PathBuf,
    stat: FileStat,
    resolver: Resolver,
}

fn find_checked(dir: &Path, rel: &str, rule: Rule, resolver: Resolver) -> Result<Option<Found>, ReadError> {
    let path = dir.join(rel);
    let base = open_dir(dir)?;
    let path_only = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Some(fd) = resolve(&base, dir, rel, rule.what, resolver, path_only)? else { return Ok(None) };
    let stat = fstat(&fd).at("stat", &path)?;
    check(&stat, &path, rule, true)?;
    Ok(Some(Found { base, dir: dir.to_path_buf(), rel: rel.to_string(), path, stat, resolver }))
}

impl Found {
    fn read(self, rule: Rule) -> Result<Vec<u8>, ReadError> {
        // Reopened for reading through the O_PATH descriptor's own proc entry would need /proc;
        // resolving again (same rules) and comparing the inode is enough: a swap is refused.
        let flags = read_flags() | OFlag::O_NOFOLLOW;
        let file = match resolve(&self.base, &self.dir, &self.rel, rule.what, self.resolver, flags)? {
            Some(fd) => File::from(fd),
            None => return Err(ReadError::Changed { path: self.path }),
        };
        read_same(file, &self.stat, &self.path, rule)
    }
}

/// What tells a file's content apart without reading it: the same inode on the same device,
/// with the same size, mode, link count and modification and change times. Every write moves
/// the change time (which no caller can set back), and a replacement is another inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: i64,
    mode: u32,
    links: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(stat: &FileStat) -> Identity {
        // `st_nlink` is a u64 on x86_64 and a u32 on aarch64.
        #[allow(clippy::useless_conversion)]
        let links = u64::from(stat.st_nlink);
        Identity {
            dev: stat.st_dev,
            ino: stat.st_ino,
            size: stat.st_size,
            mode: stat.st_mode,
            links,
            mtime: (stat.st_mtime, stat.st_mtime_nsec),
            ctime: (stat.st_ctime, stat.st_ctime_nsec),
        }
    }
}

/// Files of service directories parsed once and kept while they do not change: `ignite
/// serve` reads a service's service.yaml and policy file on every request, and parses them
/// again only when they changed. Every lookup still finds the file the safe way (no link,
/// regular, within its cap, the hard-link rule) and compares its identity (inode, size, mode, links, times) with the one it
/// had when it was parsed; only the reading and the parsing are saved. Failures are never kept.
///
/// A file changed within [`ParseCache::SETTLE`] of being parsed is not kept ("racy", as git
/// calls it): file times come from a clock that may tick only every few milliseconds, so a
/// second write of the same size in the same tick would leave the identity as it was.
pub struct ParseCache<T> {
    entries: std::sync::Mutex<std::collections::HashMap<PathBuf, (Identity, T)>>,
    settle: std::time::Duration,
}

impl<T: Clone> Default for ParseCache<T> {
    fn default() -> Self {
        Self::with_settle(Self::SETTLE)
    }
}

impl<T: Clone> ParseCache<T> {
    /// How long after its last change a file is parsed afresh every time.
    pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

    fn with_settle(settle: std::time::Duration) -> Self {
        ParseCache { entries: std::sync::Mutex::new(std::collections::HashMap::new()), settle }
    }

    /// Files kept at most; past it the cache starts again empty (a server has one entry per
    /// service and file kind, so this is reached only by a directory with thousands of them).
    pub const MAX_ENTRIES: usize = 4096;

    /// `rel` beneath `dir` as [`read_text`] reads it, parsed by `parse`; the value parsed
    /// before when the file is the same. `None` when it does not exist.
    pub fn get<E: From<ReadError>>(
        &self,
        dir: &Path,
        rel: &str,
        rule: Rule,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, E> {
        let Some(found) = find_checked(dir, rel, rule, Resolver::Openat2)? else { return Ok(None) };
        let identity = Identity::of(&found.stat);
        let path = found.path.clone();
        if let Some((known, value)) = self.lock().get(&path)
            && *known == identity
        {
            return Ok(Some(value.clone()));
        }
        // The identity is the one taken before the read: a write during the read leaves a
        // newer change time behind, so the next lookup reads again.
        let text = utf8(found.read(rule)?, path.clone(), rule)?;
        let value = parse(&text)?;
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::new(identity.ctime.0.max(0) as u64, identity.ctime.1.clamp(0, 999_999_999) as u32);
        let settled = std::time::SystemTime::now().duration_since(changed).is_ok_and(|age| age >= self.settle);
        let mut entries = self.lock();
        if !settled {
            entries.remove(&path);
            return Ok(Some(value));
        }
        if entries.len() >= Self::MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(path, (identity, value.clone()));
        Ok(Some(value))
    }

    /// How many files are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no file is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<PathBuf, (Identity, T)>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn kind_with(dir: &Path, rel: &str, resolver: Resolver) -> Result<Option<EntryKind>, ReadError> {
    let path = dir.join(rel);
    let base = open_dir(dir)?;
    // A final symlink is opened as the link itself (O_PATH|O_NOFOLLOW), and reported as one.
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Some(fd) = resolve(&base, dir, rel, "path", resolver, flags)? else { return Ok(None) };
    let stat = fstat(&fd).at("stat", &path)?;
    Ok(Some(entry_kind(&stat)))
}

fn entry_kind(stat: &FileStat) -> EntryKind {
    match file_type(stat) {
        SFlag::S_IFDIR => EntryKind::Dir,
        SFlag::S_IFREG => EntryKind::File,
        SFlag::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Special,
    }
}

fn read_flags() -> OFlag {
    // O_NONBLOCK: a named pipe opens at once instead of waiting for a writer (and is refused
    // by the inode check); O_NOCTTY: a terminal is never adopted.
    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC
}

/// The components of `rel`, or why it cannot be a path beneath the directory.
fn components<'a>(dir: &Path, rel: &'a str, what: &'static str) -> Result<Vec<&'a OsStr>, ReadError> {
    let path = dir.join(rel);
    let mut parts = Vec::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(s) => parts.push(s),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(ReadError::Outside { path, what });
            }
        }
    }
    if parts.is_empty() || rel.contains('\0') {
        return Err(ReadError::Outside { path, what });
    }
    Ok(parts)
}

fn open_dir(dir: &Path) -> Result<OwnedFd, ReadError> {
    open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .at("open", dir)
        .map_err(ReadError::Io)
}

/// Opens `rel` beneath the directory `base` (`dir` is its path, for messages) with `flags`,
/// following no link; `None` when it does not exist.
fn resolve(
    base: &OwnedFd,
    dir: &Path,
    rel: &str,
    what: &'static str,
    resolver: Resolver,
    flags: OFlag,
) -> Result<Option<OwnedFd>, ReadError> {
    let parts = components(dir, rel, what)?;
    let path = dir.join(rel);
    let refused = |e: Errno| -> Result<Option<OwnedFd>, ReadError> {
        match e {
            Errno::ENOENT | Errno::ENOTDIR => Ok(None),
            Errno::ELOOP => Err(ReadError::Link { path: path.clone(), what }),
            Errno::EXDEV => Err(ReadError::Outside { path: path.clone(), what }),
            e => Err(IoError::new("open", &path, e).into()),
        }
    };
    if resolver == Resolver::Openat2 {
        let rel_path: PathBuf = parts.iter().collect();
        let how = OpenHow::new().flags(flags).resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2(base, &rel_path, how) {
            Ok(fd) => return Ok(Some(fd)),
            // Kernels before 5.6 (or a seccomp profile that hides openat2): per component.
            Err(Errno::ENOSYS) => {}
            Err(e) => return refused(e),
        }
    }
    let mut current: Option<OwnedFd> = None;
    let (last, parents) = parts.split_last().ok_or_else(|| ReadError::Outside { path: path.clone(), what })?;
    for part in parents {
        let parent = current.as_ref().unwrap_or(base);
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        current = Some(match openat(parent, *part, flags, Mode::empty()) {
            Ok(fd) => fd,
            // O_NOFOLLOW|O_DIRECTORY on a symlink fails with ENOTDIR (or ELOOP): tell which.
            Err(e @ (Errno::ENOTDIR | Errno::ELOOP)) => {
                let is_link = nix::sys::stat::fstatat(parent, *part, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| file_type(&s) == SFlag::S_IFLNK);
                return if is_link { Err(ReadError::Link { path: path.clone(), what }) } else { refused(e) };
            }
            Err(e) => return refused(e),
        });
    }
    match openat(current.as_ref().unwrap_or(base), *last, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) => refused(e),
    }
}

/// The file type of `stat` (`S_IFREG`, `S_IFDIR`, …).
pub(crate) fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

/// What a file type is called in messages ("a named pipe"), here, in the walk and in a
/// workspace's file operations.
pub(crate) fn kind_name(ftype: SFlag) -> &'static str {
    match ftype {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFIFO => "a named pipe",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        _ => "a special file",
    }
}

/// Type, size and (inside a service directory) the hard-link rule, from one `fstat`.
fn check(stat: &FileStat, path: &Path, rule: Rule, in_service_dir: bool) -> Result<(), ReadError> {
    match file_type(stat) {
        SFlag::S_IFREG => {}
        SFlag::S_IFLNK => return Err(ReadError::Link { path: path.to_path_buf(), what: rule.what }),
        _ => {
            return Err(ReadError::NotRegular {
                path: path.to_path_buf(),
                kind: kind_name(file_type(stat)),
                what: rule.what,
            });
        }
    }
    let size = stat.st_size.max(0) as u64;
    if size > rule.max_bytes {
        return Err(ReadError::TooLarge { path: path.to_path_buf(), size, max: rule.max_bytes, what: rule.what });
    }
    if in_service_dir {
        check_links(stat, path)?;
    }
    Ok(())
}

/// Reads `file` if it is the inode `expected` describes, at most `rule.max_bytes` (a file that
/// grew past the cap after the check is refused, never read to its end).
fn read_same<F: Into<File>>(file: F, expected: &FileStat, path: &Path, rule: Rule) -> Result<Vec<u8>, ReadError> {
    let file: File = file.into();
    let now = fstat(&file).at("stat", path)?;
    if now.st_dev != expected.st_dev || now.st_ino != expected.st_ino || file_type(&now) != SFlag::S_IFREG {
        return Err(ReadError::Changed { path: path.to_path_buf() });
    }
    let mut bytes = Vec::with_capacity((now.st_size.max(0) as u64).min(rule.max_bytes) as usize);
    file.take(rule.max_bytes + 1).read_to_end(&mut bytes).at("read", path)?;
    if bytes.len() as u64 > rule.max_bytes {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            max: rule.max_bytes,
            what: rule.what,
        });
    }
    Ok(bytes)
}

fn utf8(bytes: Vec<u8>, path: PathBuf, rule: Rule) -> Result<String, ReadError> {
    // The decoder's message would quote the offending bytes' position only, but say nothing of
    // the content either way: keep it out entirely.
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 { path, what: rule.what })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    const RULE: Rule = Rule { what: "test file", max_bytes: 64 };

    fn both(test: impl Fn(Resolver)) {
        test(Resolver::Openat2);
        test(Resolver::PerComponent);
    }

    /// Parses by counting: each real parse returns the next number with the text.
    fn counting(count: &std::cell::Cell<u32>) -> impl Fn(&str) -> Result<(u32, String), ReadError> + '_ {
        move |text| {
            count.set(count.get() + 1);
            Ok((count.get(), text.to_string()))
        }
    }

    #[test]
    fn the_parse_cache_parses_again_exactly_when_the_file_changed() {
        let d = tempfile::tempdir().unwrap();
        let cache: ParseCache<(u32, String)> = ParseCache::with_settle(std::time::Duration::ZERO);
        let parses = std::cell::Cell::new(0);
        let get = || cache.get(d.path(), "a.yaml", RULE, counting(&parses)).unwrap();
        assert_eq!(get(), None, "absent");
        fs::write(d.path().join("a.yaml"), "x: 1\n").unwrap();
        assert_eq!(get(), Some((1, "x: 1\n".into())));
        assert_eq!(get(), Some((1, "x: 1\n".into())), "unchanged: kept");
        assert_eq!(cache.len(), 1);
        // Rewritten in place. (The same size in the same clock tick is what SETTLE is for:
        // a_file_changed_moments_ago_is_parsed_again_every_time.)
        fs::write(d.path().join("a.yaml"), "x: 22\n").unwrap();
        assert_eq!(get(), Some((2, "x: 22\n".into())));
        // Replaced by another file (a new inode) through a rename.
        fs::write(d.path().join("b.yaml"), "x: 3\n").unwrap();
        fs::rename(d.path().join("b.yaml"), d.path().join("a.yaml")).unwrap();
        assert_eq!(get(), Some((3, "x: 3\n".into())));
        // Removed: absent again, whatever was kept.
        fs::remove_file(d.path().join("a.yaml")).unwrap();
        assert_eq!(get(), None);
    }

    #[test]
    fn a_file_changed_moments_ago_is_parsed_again_every_time() {
        let d = tempfile::tempdir().unwrap();
        let cache: ParseCache<(u32, String)> = ParseCache::default();
        let parses = std::cell::Cell::new(0);
        fs::write(d.path().join("a.yaml"), "x: 1\n").unwrap();
        for n in 1..=3 {
            assert_eq!(cache.get(d.path(), "a.yaml", RULE, counting(&parses)).unwrap(), Some((n, "x: 1\n".into())));
        }
        assert!(cache.is_empty(), "a file younger than SETTLE is not kept");
    }

    #[test]
    fn the_parse_cache_checks_the_rules_on_every_lookup() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let cache: ParseCache<(u32, String)> = ParseCache::with_settle(std::time::Duration::ZERO);
        let parses = std::cell::Cell::new(0);
        let get = || cache.get(d.path(), "a.yaml", RULE, counting(&parses));
        fs::write(d.path().join("a.yaml"), "x: 1\n").unwrap();
        assert_eq!(get().unwrap(), Some((1, "x: 1\n".into())));
        // A link put in place of a kept file is refused, not answered from the cache.
        fs::write(outside.path().join("secret"), "x: 1\n").unwrap();
        fs::remove_file(d.path().join("a.yaml")).unwrap();
        symlink(outside.path().join("secret"), d.path().join("a.yaml")).unwrap();
        assert!(matches!(get(), Err(ReadError::Link { .. })), "{:?}", get());
        // So are a file grown past its cap and a directory.
        fs::remove_file(d.path().join("a.yaml")).unwrap();
        fs::write(d.path().join("a.yaml"), "y".repeat(65)).unwrap();
        assert!(matches!(get(), Err(ReadError::TooLarge { .. })), "{:?}", get());
        fs::remove_file(d.path().join("a.yaml")).unwrap();
        fs::create_dir(d.path().join("a.yaml")).unwrap();
        assert!(matches!(get(), Err(ReadError::NotRegular { .. })), "{:?}", get());
        // A parse failure is not kept: the next lookup parses again.
        fs::remove_dir(d.path().join("a.yaml")).unwrap();
        fs::write(d.path().join("a.yaml"), "x: 9\n").unwrap();
        let fails = std::cell::Cell::new(0);
        let failing = |_: &str| -> Result<(u32, String), ReadError> {
            fails.set(fails.get() + 1);
            Err(ReadError::Changed { path: PathBuf::from("parse") })
        };
        assert!(cache.get(d.path(), "a.yaml", RULE, failing).is_err());
        assert!(cache.get(d.path(), "a.yaml", RULE, failing).is_err());
        assert_eq!(fails.get(), 2);
    }

    #[test]
    fn reads_a_regular_file_and_reports_absence() {
        both(|r| {
            let d = tempfile::tempdir().unwrap();
            fs::create_dir(d.path().join("sub")).unwrap();
            fs::write(d.path().join("sub/a.yaml"), "x: 1\n").unwrap();
            assert_eq!(read_with(d.path(), "sub/a.yaml", RULE, r).unwrap().unwrap(), b"x: 1\n");
            assert_eq!(read_with(d.path(), "./sub/a.yaml", RULE, r).unwrap().unwrap(), b"x: 1\n");
            assert!(read_with(d.path(), "missing.yaml", RULE, r).unwrap().is_none());
            assert!(read_with(d.path(), "nodir/a.yaml", RULE, r).unwrap().is_none());
        });
    }

    #[test]
    fn links_anywhere_on_the_path_are_refused_without_reading_the_target() {
        both(|r| {
            let d = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            fs::write(outside.path().join("secret"), "top secret content").unwrap();
            symlink(outside.path().join("secret"), d.path().join("service.yaml")).unwrap();
            symlink(outside.path(), d.path().join("linkdir")).unwrap();
            symlink("service.yaml", d.path().join("relative.yaml")).unwrap();
            for rel in ["service.yaml", "linkdir/secret", "relative.yaml"] {
                let e = read_with(d.path(), rel, RULE, r).unwrap_err();
                assert!(matches!(e, ReadError::Link { .. }), "{r:?} {rel}: {e:?}");
                assert!(!e.to_string().contains("top secret"), "{e}");
            }
            assert_eq!(kind_with(d.path(), "service.yaml", r).unwrap(), Some(EntryKind::Symlink));
            assert!(matches!(kind_with(d.path(), "linkdir/secret", r), Err(ReadError::Link { .. })));
        });
    }

    #[test]
    fn targets_inside_are_found_through_links_and_every_way_out_looks_the_same() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("src")).unwrap();
        fs::write(d.path().join("src/main.ts"), "").unwrap();
        symlink("src/main.ts", d.path().join("index.ts")).unwrap();
        assert_eq!(target_kind(d.path(), "index.ts").unwrap(), Some(EntryKind::File));
        assert_eq!(target_kind(d.path(), "src").unwrap(), Some(EntryKind::Dir));
        assert_eq!(target_kind(d.path(), "nothing.ts").unwrap(), None);
        // Out to a host file that exists, and to one that does not: the same answer.
        symlink("/etc/passwd", d.path().join("abs-existing.ts")).unwrap();
        symlink("/does/not/exist", d.path().join("abs-missing.ts")).unwrap();
        symlink("../../../../../../etc/passwd", d.path().join("rel-existing.ts")).unwrap();
        symlink("../../../../../../nope", d.path().join("rel-missing.ts")).unwrap();
        for name in ["abs-existing.ts", "abs-missing.ts", "rel-existing.ts", "rel-missing.ts"] {
            let e = target_kind(d.path(), name).unwrap_err();
            assert!(matches!(e, ReadError::Outside { .. }), "{name}: {e:?}");
        }
    }

    #[test]
    fn paths_leaving_the_directory_are_refused() {
        both(|r| {
            let d = tempfile::tempdir().unwrap();
            for rel in ["../x", "/etc/passwd", "a/../../x", ""] {
                let e = read_with(d.path(), rel, RULE, r).unwrap_err();
                assert!(matches!(e, ReadError::Outside { .. }), "{rel}: {e:?}");
            }
        });
    }

    #[test]
    fn a_named_pipe_is_refused_at_once_and_never_blocks() {
        both(|r| {
            let d = tempfile::tempdir().unwrap();
            nix::unistd::mkfifo(&d.path().join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
            let e = read_with(d.path(), "fifo", RULE, r).unwrap_err();
            assert!(e.to_string().contains("is a named pipe; a test file must be a regular file"), "{e}");
            assert_eq!(kind_with(d.path(), "fifo", r).unwrap(), Some(EntryKind::Special));
        });
    }

    #[test]
    fn oversized_files_are_refused_before_reading() {
        both(|r| {
            let d = tempfile::tempdir().unwrap();
            fs::write(d.path().join("big"), vec![b'a'; 65]).unwrap();
            let e = read_with(d.path(), "big", RULE, r).unwrap_err();
            assert!(e.to_string().contains("is 65 bytes; a test file may have at most 64 bytes"), "{e}");
            fs::write(d.path().join("ok"), vec![b'a'; 64]).unwrap();
            assert_eq!(read_with(d.path(), "ok", RULE, r).unwrap().unwrap().len(), 64);
        });
    }

    #[test]
    fn a_private_file_with_a_second_link_is_refused_a_public_one_is_read() {
        both(|r| {
            let d = tempfile::tempdir().unwrap();
            let elsewhere = tempfile::tempdir().unwrap();
            let private = elsewhere.path().join("private");
            fs::write(&private, "root-only content").unwrap();
            fs::set_permissions(&private, fs::Permissions::from_mode(0o640)).unwrap();
            fs::hard_link(&private, d.path().join("service.yaml")).unwrap();
            let e = read_with(d.path(), "service.yaml", RULE, r).unwrap_err();
            assert!(matches!(e, ReadError::PrivateHardLink { links: 2, .. }), "{e:?}");
            assert!(!e.to_string().contains("root-only"), "{e}");

            let public = elsewhere.path().join("public");
            fs::write(&public, "shared").unwrap();
            fs::set_permissions(&public, fs::Permissions::from_mode(0o644)).unwrap();
            fs::hard_link(&public, d.path().join("public")).unwrap();
            assert_eq!(read_with(d.path(), "public", RULE, r).unwrap().unwrap(), b"shared");

            // A private file with one link is the directory's own.
            fs::write(d.path().join("own"), "mine").unwrap();
            fs::set_permissions(d.path().join("own"), fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(read_with(d.path(), "own", RULE, r).unwrap().unwrap(), b"mine");
        });
    }

    #[test]
    fn text_must_be_utf8_and_the_error_quotes_nothing() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("bin"), b"secret\xff\xfe").unwrap();
        let e = read_text(d.path(), "bin", RULE).unwrap_err().to_string();
        assert!(e.contains("is not UTF-8 text") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn operator_files_may_be_links_but_must_be_regular_and_small() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("real"), "{}").unwrap();
        symlink(d.path().join("real"), d.path().join("link")).unwrap();
        assert_eq!(read_operator_file(&d.path().join("link"), RULE).unwrap(), b"{}");
        nix::unistd::mkfifo(&d.path().join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        let e = read_operator_file(&d.path().join("fifo"), RULE).unwrap_err().to_string();
        assert!(e.contains("named pipe"), "{e}");
        symlink("/dev/zero", d.path().join("zero")).unwrap();
        let e = read_operator_file(&d.path().join("zero"), RULE).unwrap_err().to_string();
        assert!(e.contains("character device"), "{e}");
    }
}
