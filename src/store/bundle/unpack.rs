//! Safe unpacking of a rootfs tarball into an empty directory.
//!
//! A bundle tarball is checked against its digest, but the unpacker does not rely on that: it
//! treats every archive as hostile, because `import` accepts tarballs built elsewhere and a bug
//! in a recipe must not turn into a write outside the cache. The rules:
//!
//! - names must be relative and free of `..`; `.` components are dropped;
//! - symlinks must have a relative target that stays inside the root, both lexically (checked
//!   per entry) and when resolved through the other symlinks of the archive (checked at the end);
//! - hard links must point at a regular file extracted earlier;
//! - only regular files, directories, symlinks and hard links; device nodes, fifos, sparse files
//!   and anything else are rejected;
//! - nothing is written through a symlink: an entry below an extracted symlink is rejected, and a
//!   path may appear once (a directory may repeat), so a later entry cannot replace a link;
//! - setuid, setgid and sticky bits and group/other write bits are **stripped**, not rejected:
//!   they are harmless in a read-only rootfs run with `no_new_privs`, common in tarballs exported
//!   from other tools, and the caller gets a count in [`UnpackStats`];
//! - owners in the archive are ignored: everything belongs to the user that unpacks (root);
//! - [`UnpackLimits`] caps the entry count and the bytes written (tar bombs), and the
//!   decompressed stream as a whole (so huge GNU long-name or PAX records fail too).
//!
//! On error the destination may hold a partial tree; the caller owns it and removes it.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::fsutil::{At, IoError};
use flate2::read::GzDecoder;
use tar::EntryType;

/// Caps that stop a hostile or broken archive from filling the disk or the inode table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most entries (files, dirs, links) one archive may hold.
    pub max_entries: u64,
    /// Most bytes of file content one archive may hold.
    pub max_bytes: u64,
}

impl Default for UnpackLimits {
    /// Generous for a language runtime (Bun is ~110 MB in ~30 entries; a Debian-based Node image
    /// is ~200 MB in ~10 000 entries) and far below what would hurt a host.
    fn default() -> Self {
        UnpackLimits { max_entries: 100_000, max_bytes: 4 << 30 }
    }
}

/// What an unpack wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
    /// Entries whose setuid/setgid/sticky or group/other write bits were removed.
    pub stripped_modes: u64,
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("absolute path")]
    AbsolutePath,
    #[error("path contains '..'")]
    ParentComponent,
    #[error("empty path")]
    EmptyPath,
    #[error("symlink without a target")]
    MissingLinkTarget,
    #[error("symlink target {0:?} is absolute")]
    AbsoluteLinkTarget(String),
    #[error("symlink target {0:?} points outside the root")]
    LinkEscapes(String),
    #[error("symlink target {0:?} resolves outside the root through other symlinks")]
    LinkEscapesViaLinks(String),
    #[error("symlink target {0:?} loops")]
    LinkLoop(String),
    #[error("hard link target {0:?} is not a regular file extracted earlier in the archive")]
    HardLinkTarget(String),
    #[error("it lies below symlink {0:?} (links are never followed while unpacking)")]
    UnderSymlink(String),
    #[error("it lies below {0:?}, which is not a directory")]
    UnderNonDirectory(String),
    #[error("the path was already extracted")]
    Duplicate,
    #[error("device nodes are not allowed")]
    DeviceNode,
    #[error("fifos are not allowed")]
    Fifo,
    #[error("unsupported entry type {0:?}")]
    UnsupportedType(char),
}

/// Errors from unpacking.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("refusing tar entry {entry:?}: {reason}")]
    Rejected { entry: String, reason: Rejection },
    #[error("archive has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("archive holds more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("failed to read the archive: {source}")]
    Read {
        #[source]
        source: io::Error,
    },
    #[error("destination {path} must be an existing empty directory")]
    DestinationNotEmpty { path: PathBuf },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What a path in the destination is, as far as this unpack created it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// Unpacks a gzip-compressed tar stream into `dest`, which must be an existing empty directory.
pub fn unpack_tar_gz<R: Read>(reader: R, dest: &Path, limits: &UnpackLimits) -> Result<UnpackStats, UnpackError> {
    unpack_tar(GzDecoder::new(reader), dest, limits)
}

/// Unpacks an uncompressed tar stream into `dest`, which must be an existing empty directory.
pub fn unpack_tar<R: Read>(reader: R, dest: &Path, limits: &UnpackLimits) -> Result<UnpackStats, UnpackError> {
    let mut tree = TreeUnpacker::new(dest, limits, AbsoluteLinks::Reject)?;
    tree.add(reader)?;
    tree.finish()
}

/// What to do with a symlink whose target is absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbsoluteLinks {
    /// Refuse the archive (bundles: a rootfs must not hold links into the host's layout).
    Reject,
    /// Rewrite `/a/b` as the relative path from the link's directory (`../a/b` for a link in
    /// `lib64/`), which means the same inside a root where the tree is `/`. For trees that
    /// are only ever used as a root, like Debian packages unpacked into a build environment.
    Relativize,
}

/// One tree built from one or more tar streams, with the rules of the module doc applied across
/// all of them (a later archive cannot write below a link or over a file of an earlier one).
pub struct TreeUnpacker<'a> {
    unpacker: Unpacker<'a>,
    links: AbsoluteLinks,
}

impl<'a> TreeUnpacker<'a> {
    /// Starts a tree in `dest`, which must be an existing empty directory.
    pub fn new(dest: &'a Path, limits: &'a UnpackLimits, links: AbsoluteLinks) -> Result<Self, UnpackError> {
        let mut entries_dir = fs::read_dir(dest).at("read destination", dest)?;
        if entries_dir.next().is_some() {
            return Err(UnpackError::DestinationNotEmpty { path: dest.to_path_buf() });
        }
        let unpacker = Unpacker {
            dest,
            limits,
            seen: HashMap::new(),
            dir_modes: Vec::new(),
            stats: UnpackStats::default(),
            chunk: Vec::new(),
        };
        Ok(TreeUnpacker { unpacker, links })
    }

    /// Unpacks one uncompressed tar stream into the tree.
    pub fn add<R: Read>(&mut self, reader: R) -> Result<(), UnpackError> {
        let limits = self.unpacker.limits;
        // Headers, padding and long-name records come on top of the content: allow 1 KiB per
        // entry. The cap is per stream; the entry and byte limits hold for the whole tree.
        let stream_cap =
            limits.max_bytes.saturating_add(limits.max_entries.saturating_mul(1024)).saturating_add(1 << 20);
        let exceeded = Rc::new(Cell::new(false));
        let capped = CappedReader { inner: reader, left: stream_cap, exceeded: Rc::clone(&exceeded) };
        let read_error = |source: io::Error| {
            if exceeded.get() {
                UnpackError::TooLarge { limit: limits.max_bytes }
            } else {
                UnpackError::Read { source }
            }
        };
        let mut archive = tar::Archive::new(capped);
        for entry in archive.entries().map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            self.unpacker.entry(entry, self.links).map_err(|e| match e {
                UnpackError::Read { source } => read_error(source),
                other => other,
            })?;
        }
        Ok(())
    }

    /// Checks every link of the tree through the others and applies directory modes.
    pub fn finish(self) -> Result<UnpackStats, UnpackError> {
        self.unpacker.check_links()?;
        self.unpacker.apply_dir_modes()?;
        Ok(self.unpacker.stats)
    }
}

/// Size of the writes that put a file's content on disk. A buffered write's page-cache folios
/// are sized by the write: in `io::copy`'s 8 KiB writes a runtime's 100 MB executable stays in
/// small folios, and every start of it pays for that in page faults and in unmapping it at
/// exit (≈ 0.75 ms of each bun start on a 2-core host). Whole 2 MiB writes at 2 MiB offsets
/// let the filesystem cache it in huge folios, which a process maps 2 MiB at a time.
const WRITE_CHUNK: usize = 2 << 20;

/// Copies `reader` to `out` in writes of [`WRITE_CHUNK`] bytes, the last one shorter (the reader
/// may hand out less at a time: each chunk is filled first). `buf` is reused from call to call.
fn copy_in_chunks(reader: &mut impl Read, out: &mut impl Write, buf: &mut Vec<u8>) -> io::Result<u64> {
    if buf.len() < WRITE_CHUNK {
        buf.resize(WRITE_CHUNK, 0);
    }
    let mut written = 0u64;
    loop {
        let mut filled = 0;
        while filled < WRITE_CHUNK {
            match reader.read(&mut buf[filled..WRITE_CHUNK]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(written);
        }
        out.write_all(&buf[..filled])?;
        written += filled as u64;
        if filled < WRITE_CHUNK {
            return Ok(written);
        }
    }
}

struct Unpacker<'a> {
    dest: &'a Path,
    limits: &'a UnpackLimits,
    /// Every path created so far (relative), so that links are never followed and nothing is
    /// written twice.
    seen: HashMap<PathBuf, Kind>,
    /// Directory modes are applied at the end: a read-only directory must still receive its
    /// children.
    dir_modes: Vec<(PathBuf, u32)>,
    stats: UnpackStats,
    /// The buffer of [`copy_in_chunks`], kept from file to file.
    chunk: Vec<u8>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>, links: AbsoluteLinks) -> Result<(), UnpackError> {
        let raw_path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        let reject = |reason: Rejection| UnpackError::Rejected { entry: name.clone(), reason };
        let kind = entry.header().entry_type();
        // A PAX global header carries only metadata defaults, which this unpacker ignores anyway.
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(UnpackError::TooManyEntries { limit: self.limits.max_entries });
        }
        match kind {
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link => {}
            EntryType::Char | EntryType::Block => return Err(reject(Rejection::DeviceNode)),
            EntryType::Fifo => return Err(reject(Rejection::Fifo)),
            other => return Err(reject(Rejection::UnsupportedType(other.as_byte() as char))),
        }

        let rel = relative_path(&raw_path).map_err(reject)?;
        if rel.as_os_str().is_empty() {
            // The archive's own root ("./"): the destination already exists.
            return if kind == EntryType::Directory { Ok(()) } else { Err(reject(Rejection::EmptyPath)) };
        }
        self.check_ancestors(&rel).map_err(reject)?;
        match self.seen.get(&rel) {
            None => {}
            Some(Kind::Dir) if kind == EntryType::Directory => {}
            Some(_) => return Err(reject(Rejection::Duplicate)),
        }

        let mode = entry.header().mode().map_err(|source| UnpackError::Read { source })?;
        let kept = mode & 0o755;
        // Link modes mean nothing (a symlink is always 0777, a hard link shares its target's).
        let has_mode = !matches!(kind, EntryType::Symlink | EntryType::Link);
        if has_mode && mode & 0o7777 != kept {
            self.stats.stripped_modes += 1;
        }
        self.create_parents(&rel)?;
        let target = self.dest.join(&rel);
        match kind {
            EntryType::Directory => {
                if !self.seen.contains_key(&rel) {
                    mkdir(&target)?;
                    self.seen.insert(rel.clone(), Kind::Dir);
                }
                self.dir_modes.push((rel, kept));
            }
            EntryType::Symlink => {
                let link = entry.link_name_bytes().ok_or_else(|| reject(Rejection::MissingLinkTarget))?.into_owned();
                let mut link = PathBuf::from(OsStr::from_bytes(&link));
                if links == AbsoluteLinks::Relativize && link.is_absolute() {
                    link = relativize(&rel, &link).map_err(reject)?;
                }
                check_symlink_target(&rel, &link).map_err(reject)?;
                std::os::unix::fs::symlink(&link, &target).at("create symlink", &target)?;
                self.seen.insert(rel, Kind::Symlink(link));
            }
            EntryType::Link => {
                let link = entry.link_name_bytes().ok_or_else(|| reject(Rejection::MissingLinkTarget))?.into_owned();
                let shown = String::from_utf8_lossy(&link).into_owned();
                // Hard link names are archive paths (relative to the root, not to the link).
                let source_rel = relative_path(&link)
                    .ok()
                    .filter(|p| self.seen.get(p) == Some(&Kind::File))
                    .ok_or_else(|| reject(Rejection::HardLinkTarget(shown)))?;
                fs::hard_link(self.dest.join(&source_rel), &target).at("create hard link", &target)?;
                self.seen.insert(rel, Kind::File);
            }
            _ => {
                let size = entry.size();
                self.stats.bytes = self.stats.bytes.saturating_add(size);
                if self.stats.bytes > self.limits.max_bytes {
                    return Err(UnpackError::TooLarge { limit: self.limits.max_bytes });
                }
                // create_new (O_EXCL) and O_NOFOLLOW: never write through anything already there.
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&target)
                    .at("create file", &target)?;
                let written = copy_in_chunks(&mut (&mut entry).take(size), &mut file, &mut self.chunk)
                    .map_err(|source| UnpackError::Read { source })?;
                if written != size {
                    return Err(UnpackError::Read {
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("entry {name:?} is truncated ({written} of {size} bytes)"),
                        ),
                    });
                }
                // fchmod on the open file: the umask must not decide the mode, and no path is
                // looked up again.
                file.set_permissions(Permissions::from_mode(kept)).at("set mode of", &target)?;
                self.seen.insert(rel, Kind::File);
            }
        }
        Ok(())
    }

    fn check_ancestors(&self, rel: &Path) -> Result<(), Rejection> {
        let mut prefix = PathBuf::new();
        let components: Vec<_> = rel.components().collect();
        for component in &components[..components.len().saturating_sub(1)] {
            prefix.push(component);
            match self.seen.get(&prefix) {
                Some(Kind::Symlink(_)) => {
                    return Err(Rejection::UnderSymlink(prefix.display().to_string()));
                }
                Some(Kind::File) => {
                    return Err(Rejection::UnderNonDirectory(prefix.display().to_string()));
                }
                Some(Kind::Dir) | None => {}
            }
        }
        Ok(())
    }

    /// Creates missing parent directories (archives need not list them). Safe to do by path:
    /// `check_ancestors` has shown that none of them is a link, and only this unpacker writes
    /// into the fresh destination.
    fn create_parents(&mut self, rel: &Path) -> Result<(), UnpackError> {
        let mut prefix = PathBuf::new();
        let components: Vec<_> = rel.components().collect();
        for component in &components[..components.len().saturating_sub(1)] {
            prefix.push(component);
            if !self.seen.contains_key(&prefix) {
                mkdir(&self.dest.join(&prefix))?;
                self.seen.insert(prefix.clone(), Kind::Dir);
            }
        }
        Ok(())
    }

    /// Resolves every symlink through the others, as the kernel would, and rejects any that
    /// climbs above the root. Per-entry checks are lexical and cannot see that `a/..` means
    /// something else when `a` is itself a link.
    fn check_links(&self) -> Result<(), UnpackError> {
        for (path, kind) in &self.seen {
            if let Kind::Symlink(target) = kind {
                self.resolve_within_root(path, target)
                    .map_err(|reason| UnpackError::Rejected { entry: path.display().to_string(), reason })?;
            }
        }
        Ok(())
    }

    fn resolve_within_root(&self, link: &Path, target: &Path) -> Result<(), Rejection> {
        const MAX_HOPS: usize = 40; // Linux's own limit on nested symlinks.
        let shown = || target.display().to_string();
        let mut current: Vec<OsString> =
            link.parent().into_iter().flat_map(Path::components).map(|c| c.as_os_str().to_os_string()).collect();
        let mut pending: VecDeque<OsString> = target.components().map(|c| c.as_os_str().to_os_string()).collect();
        let mut hops = 0;
        while let Some(component) = pending.pop_front() {
            if component == "." {
                continue;
            }
            if component == ".." {
                if current.pop().is_none() {
                    return Err(Rejection::LinkEscapesViaLinks(shown()));
                }
                continue;
            }
            current.push(component);
            let here: PathBuf = current.iter().collect();
            if let Some(Kind::Symlink(next)) = self.seen.get(&here) {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(Rejection::LinkLoop(shown()));
                }
                current.pop();
                for c in next.components().rev() {
                    pending.push_front(c.as_os_str().to_os_string());
                }
            }
        }
        Ok(())
    }

    fn apply_dir_modes(&self) -> Result<(), UnpackError> {
        // Deepest first, so that making a parent read-only cannot get in the way of a child.
        let mut dirs = self.dir_modes.clone();
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (rel, mode) in dirs {
            let path = self.dest.join(&rel);
            let dir = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .at("open directory", &path)?;
            dir.set_permissions(Permissions::from_mode(mode)).at("set mode of", &path)?;
        }
        Ok(())
    }
}

fn mkdir(path: &Path) -> Result<(), UnpackError> {
    fs::create_dir(path).at("create directory", path)?;
    fs::set_permissions(path, Permissions::from_mode(0o755)).at("set mode of", path)?;
    Ok(())
}

/// An archive name as a relative path: no leading `/`, no `..`, `.` and empty components dropped.
fn relative_path(raw: &[u8]) -> Result<PathBuf, Rejection> {
    if raw.first() == Some(&b'/') {
        return Err(Rejection::AbsolutePath);
    }
    let mut out = PathBuf::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(Rejection::ParentComponent),
            name => out.push(OsStr::from_bytes(name)),
        }
    }
    Ok(out)
}

/// `target` (absolute) as seen from the directory of `link` (relative to the root): one `..`
/// per directory above the link, then the target without its leading `/`.
fn relativize(link: &Path, target: &Path) -> Result<PathBuf, Rejection> {
    let bytes = target.as_os_str().as_bytes();
    let start = bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len());
    let inside = relative_path(&bytes[start..])?;
    let mut out = PathBuf::new();
    for _ in 0..link.components().count().saturating_sub(1) {
        out.push("..");
    }
    if inside.as_os_str().is_empty() {
        out.push(".");
    } else {
        out.push(inside);
    }
    Ok(out)
}

/// A symlink's target must be relative and, read lexically from the link's directory, never
/// climb above the root.
fn check_symlink_target(link: &Path, target: &Path) -> Result<(), Rejection> {
    let shown = || target.display().to_string();
    let bytes = target.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(Rejection::MissingLinkTarget);
    }
    if bytes[0] == b'/' {
        return Err(Rejection::AbsoluteLinkTarget(shown()));
    }
    let mut depth = link.components().count().saturating_sub(1);
    for part in bytes.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                depth = depth.checked_sub(1).ok_or_else(|| Rejection::LinkEscapes(shown()))?;
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Stops reading after `left` bytes; `exceeded` tells the caller that the cap, not the data,
/// ended the stream.
struct CappedReader<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Distinguish "exactly at the cap" from "over it" by peeking one byte.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded.set(true);
                    Err(io::Error::other("archive exceeds the size limit"))
                }
            };
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tar::Header;

    /// One raw tar entry. Names and link names are written into the header bytes directly, so
    /// that the tar crate's own path checks cannot stop a malicious archive from being built.
    struct Raw<'a> {
        name: &'a [u8],
        kind: EntryType,
        link: &'a [u8],
        mode: u32,
        data: &'a [u8],
    }

    fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
        Raw { name: name.as_bytes(), kind: EntryType::Regular, link: b"", mode: 0o644, data }
    }
    fn dir(name: &str) -> Raw<'_> {
        Raw { name: name.as_bytes(), kind: EntryType::Directory, link: b"", mode: 0o755, data: b"" }
    }
    fn symlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
        Raw { name: name.as_bytes(), kind: EntryType::Symlink, link: target.as_bytes(), mode: 0o777, data: b"" }
    }
    fn hardlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
        Raw { name: name.as_bytes(), kind: EntryType::Link, link: target.as_bytes(), mode: 0o644, data: b"" }
    }
    fn special(name: &str, kind: EntryType) -> Raw<'_> {
        Raw { name: name.as_bytes(), kind, link: b"", mode: 0o644, data: b"" }
    }

    fn tar_bytes(entries: &[Raw<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for e in entries {
            // The tar crate parses sparse maps itself and wants a GNU header for them.
            let mut header = if e.kind == EntryType::GNUSparse { Header::new_gnu() } else { Header::new_old() };
            {
                let old = header.as_old_mut();
                old.name[..e.name.len()].copy_from_slice(e.name);
                old.linkname[..e.link.len()].copy_from_slice(e.link);
            }
            if let Some(gnu) = header.as_gnu_mut() {
                gnu.set_real_size(e.data.len() as u64);
            }
            header.set_entry_type(e.kind);
            header.set_mode(e.mode);
            header.set_size(e.data.len() as u64);
            header.set_uid(1000);
            header.set_gid(1000);
            header.set_cksum();
            builder.append(&header, e.data).expect("append");
        }
        builder.into_inner().expect("finish")
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("gzip");
        enc.finish().expect("gzip")
    }

    /// A scratch area with `root/` (the destination) and `outside/` (a canary that nothing may
    /// touch).
    struct Scratch {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn scratch() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir(&root).expect("root");
        fs::create_dir(&outside).expect("outside");
        fs::write(outside.join("canary"), b"untouched").expect("canary");
        Scratch { _dir: dir, root, outside }
    }

    impl Scratch {
        fn unpack(&self, entries: &[Raw<'_>]) -> Result<UnpackStats, UnpackError> {
            self.unpack_with(entries, &UnpackLimits::default())
        }
        fn unpack_with(&self, entries: &[Raw<'_>], limits: &UnpackLimits) -> Result<UnpackStats, UnpackError> {
            unpack_tar_gz(&gz(&tar_bytes(entries))[..], &self.root, limits)
        }
        /// Nothing outside the root changed: the canary directory holds exactly the canary.
        fn assert_outside_untouched(&self) {
            let names: Vec<_> =
                fs::read_dir(&self.outside).expect("outside").map(|e| e.expect("entry").file_name()).collect();
            assert_eq!(names, [OsString::from("canary")]);
            assert_eq!(fs::read(self.outside.join("canary")).expect("canary"), b"untouched");
            let parent: Vec<_> = fs::read_dir(self.root.parent().expect("parent"))
                .expect("parent")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert_eq!(parent.len(), 2, "unexpected files beside the root: {parent:?}");
        }
    }

    fn rejected<T: std::fmt::Debug>(result: Result<T, UnpackError>) -> (String, Rejection) {
        match result {
            Err(UnpackError::Rejected { entry, reason }) => (entry, reason),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn unpacks_a_normal_tree_with_modes() {
        let s = scratch();
        let stats = s
            .unpack(&[
                dir("./"),
                dir("./usr/"),
                dir("usr/bin/"),
                Raw { mode: 0o755, ..file("usr/bin/tool", b"#!/bin/sh\n") },
                file("etc/passwd", b"root:x:0:0::/:/bin/false\n"),
                symlink("usr/bin/alias", "tool"),
                symlink("lib64", "usr/bin"),
                hardlink("usr/bin/tool2", "usr/bin/tool"),
                Raw { mode: 0o555, ..dir("ro/") },
                file("ro/inside", b"x"),
            ])
            .expect("unpack");
        assert_eq!(stats.entries, 10);
        assert_eq!(stats.stripped_modes, 0);
        assert_eq!(stats.bytes, 10 + 25 + 1);
        let meta = |p: &str| fs::symlink_metadata(s.root.join(p)).expect(p);
        assert_eq!(meta("usr/bin/tool").permissions().mode() & 0o7777, 0o755);
        assert_eq!(meta("etc/passwd").permissions().mode() & 0o7777, 0o644);
        assert_eq!(meta("etc").permissions().mode() & 0o7777, 0o755);
        assert_eq!(meta("ro").permissions().mode() & 0o7777, 0o555);
        assert_eq!(fs::read_link(s.root.join("lib64")).expect("link"), Path::new("usr/bin"));
        assert_eq!(fs::read(s.root.join("usr/bin/tool2")).expect("hardlink"), b"#!/bin/sh\n");
        s.assert_outside_untouched();
    }

    #[test]
    fn rejects_absolute_paths() {
        let s = scratch();
        let (entry, reason) = rejected(s.unpack(&[file("/tmp/ignite-evil", b"x")]));
        assert_eq!((entry.as_str(), reason), ("/tmp/ignite-evil", Rejection::AbsolutePath));
        assert!(!Path::new("/tmp/ignite-evil").exists());
        s.assert_outside_untouched();
    }

    #[test]
    fn rejects_parent_components() {
        for name in ["../outside/canary", "a/../../outside/canary", "a/.."] {
            let s = scratch();
            let (entry, reason) = rejected(s.unpack(&[file(name, b"pwned")]));
            assert_eq!(entry, name);
            assert_eq!(reason, Rejection::ParentComponent);
            s.assert_outside_untouched();
        }
    }

    #[test]
    fn rejects_absolute_symlink_targets() {
        let s = scratch();
        let (entry, reason) = rejected(s.unpack(&[symlink("etc/shadow", "/etc/shadow")]));
        assert_eq!(entry, "etc/shadow");
        assert_eq!(reason, Rejection::AbsoluteLinkTarget("/etc/shadow".into()));
        s.assert_outside_untouched();
    }

    #[test]
    fn a_tree_of_several_archives_relativizes_absolute_links_and_keeps_every_rule_across_them() {
        // Two "packages": the first ships lib64/ld.so -> /lib/x/ld.so (absolute, as Debian's
        // libc6 does) and a directory link; the second adds files beside them.
        let s = scratch();
        let limits = UnpackLimits::default();
        let mut tree = TreeUnpacker::new(&s.root, &limits, AbsoluteLinks::Relativize).expect("tree");
        let first = tar_bytes(&[
            dir("./"),
            file("./lib/x/ld.so", b"loader"),
            symlink("./lib64/ld.so", "/lib/x/ld.so"),
            symlink("./usr/bin/cc", "/"),
            symlink("./lnk", "/lib"),
        ]);
        tree.add(&first[..]).expect("first archive");
        let second = tar_bytes(&[dir("./"), dir("./lib"), file("./lib/x/libc.so", b"libc")]);
        tree.add(&second[..]).expect("second archive: directories repeat across archives");
        // A later archive may not write below a link of an earlier one, nor replace a file.
        let below_link = tar_bytes(&[file("./lnk/evil", b"x")]);
        let (entry, reason) = rejected(tree.add(&below_link[..]));
        assert_eq!((entry.as_str(), reason), ("./lnk/evil", Rejection::UnderSymlink("lnk".into())));
        let again = tar_bytes(&[file("./lib/x/ld.so", b"other")]);
        assert_eq!(rejected(tree.add(&again[..])).1, Rejection::Duplicate);
        tree.finish().expect("finish");
        assert_eq!(fs::read_link(s.root.join("lib64/ld.so")).expect("link"), Path::new("../lib/x/ld.so"));
        assert_eq!(fs::read_link(s.root.join("usr/bin/cc")).expect("link"), Path::new("../../."));
        assert_eq!(fs::read(s.root.join("lib64/ld.so")).expect("through the link"), b"loader");
        assert_eq!(fs::read(s.root.join("lib/x/libc.so")).expect("second"), b"libc");
        s.assert_outside_untouched();

        // Bundles keep refusing absolute targets.
        let s = scratch();
        let mut tree = TreeUnpacker::new(&s.root, &limits, AbsoluteLinks::Reject).expect("tree");
        let (_, reason) = rejected(tree.add(&first[..]));
        assert_eq!(reason, Rejection::AbsoluteLinkTarget("/lib/x/ld.so".into()));
    }

    #[test]
    fn rejects_symlinks_escaping_lexically() {
        for (name, target) in [("up", ".."), ("a/b/link", "../../../outside"), ("x", "a/../../y")] {
            let s = scratch();
            let (_, reason) = rejected(s.unpack(&[symlink(name, target)]));
            assert_eq!(reason, Rejection::LinkEscapes(target.into()), "{name} -> {target}");
            s.assert_outside_untouched();
        }
        // Staying inside is fine, even with '..'.
        let s = scratch();
        s.unpack(&[symlink("a/b/link", "../../c"), symlink("a/up", "..")]).expect("inside links");
    }

    #[test]
    fn rejects_symlinks_escaping_through_other_symlinks() {
        // Lexically "sub/../self/.." is the root, but `self` points at the root, so the kernel
        // would resolve sub/up -> <root>/.. , the host directory above the rootfs.
        let s = scratch();
        let (entry, reason) = rejected(s.unpack(&[symlink("self", "."), symlink("sub/up", "../self/..")]));
        assert_eq!(entry, "sub/up");
        assert_eq!(reason, Rejection::LinkEscapesViaLinks("../self/..".into()));

        let s = scratch();
        let (_, reason) = rejected(s.unpack(&[symlink("a", "b"), symlink("b", "a"), symlink("c", "a/x")]));
        assert!(matches!(reason, Rejection::LinkLoop(_)), "{reason:?}");
    }

    #[test]
    fn never_writes_through_a_symlink() {
        // Classic: a link to a directory (here one inside the root), then a file "through" it.
        let s = scratch();
        let (entry, reason) = rejected(s.unpack(&[dir("d/"), symlink("l", "d"), file("l/f", b"x")]));
        assert_eq!(entry, "l/f");
        assert_eq!(reason, Rejection::UnderSymlink("l".into()));
        assert!(!s.root.join("d/f").exists());

        // A link first, then a regular file of the same name: replacing it is refused, so
        // nothing is written to the link's target.
        let s = scratch();
        let (_, reason) = rejected(s.unpack(&[file("t", b"orig"), symlink("l", "t"), file("l", b"pwned")]));
        assert_eq!(reason, Rejection::Duplicate);
        assert_eq!(fs::read(s.root.join("t")).expect("t"), b"orig");

        // A file, then a directory entry below it.
        let s = scratch();
        let (_, reason) = rejected(s.unpack(&[file("f", b""), file("f/g", b"")]));
        assert_eq!(reason, Rejection::UnderNonDirectory("f".into()));
    }

    #[test]
    fn rejects_bad_hard_links() {
        for target in ["/etc/passwd", "../outside/canary", "later", "dir", "sym"] {
            let s = scratch();
            let (entry, reason) =
                rejected(s.unpack(&[dir("dir/"), symlink("sym", "dir"), hardlink("h", target), file("later", b"x")]));
            assert_eq!(entry, "h");
            assert_eq!(reason, Rejection::HardLinkTarget(target.into()));
            s.assert_outside_untouched();
        }
    }

    #[test]
    fn rejects_device_nodes_fifos_and_other_types() {
        for (kind, expected) in [
            (EntryType::Char, Rejection::DeviceNode),
            (EntryType::Block, Rejection::DeviceNode),
            (EntryType::Fifo, Rejection::Fifo),
            (EntryType::GNUSparse, Rejection::UnsupportedType('S')),
            (EntryType::new(b'Z'), Rejection::UnsupportedType('Z')),
        ] {
            let s = scratch();
            let (entry, reason) = rejected(s.unpack(&[special("dev/evil", kind)]));
            assert_eq!((entry.as_str(), reason), ("dev/evil", expected));
            assert!(!s.root.join("dev/evil").exists());
        }
    }

    #[test]
    fn strips_setuid_setgid_sticky_and_world_write() {
        let s = scratch();
        let stats = s
            .unpack(&[
                Raw { mode: 0o4755, ..file("suid", b"x") },
                Raw { mode: 0o2755, ..file("sgid", b"x") },
                Raw { mode: 0o1777, ..dir("tmp/") },
                Raw { mode: 0o666, ..file("ww", b"x") },
                file("plain", b"x"),
            ])
            .expect("unpack");
        assert_eq!(stats.stripped_modes, 4);
        let mode = |p: &str| fs::metadata(s.root.join(p)).expect(p).permissions().mode() & 0o7777;
        assert_eq!(mode("suid"), 0o755);
        assert_eq!(mode("sgid"), 0o755);
        assert_eq!(mode("tmp"), 0o755);
        assert_eq!(mode("ww"), 0o644);
    }

    #[test]
    fn enforces_entry_and_byte_limits() {
        let limits = UnpackLimits { max_entries: 3, max_bytes: 10 };
        let s = scratch();
        let many: Vec<_> = (0..4).map(|_| dir("d/")).collect();
        assert!(matches!(s.unpack_with(&many, &limits), Err(UnpackError::TooManyEntries { limit: 3 })));
        let s = scratch();
        assert!(matches!(
            s.unpack_with(&[file("a", b"123456"), file("b", b"123456")], &limits),
            Err(UnpackError::TooLarge { limit: 10 })
        ));
        // A single entry that claims a huge size but is really a compressed run of zeros.
        let s = scratch();
        let zeros = vec![0u8; 1 << 20];
        assert!(matches!(
            s.unpack_with(&[file("bomb", &zeros)], &UnpackLimits { max_entries: 10, max_bytes: 1000 }),
            Err(UnpackError::TooLarge { .. })
        ));
        assert!(!s.root.join("bomb").exists());
    }

    #[test]
    fn caps_the_decompressed_stream() {
        // Every entry is tiny, but the stream carries a 2 MiB GNU long name the tar crate would
        // read into memory: the stream cap stops it.
        let mut builder = tar::Builder::new(Vec::new());
        let long = "a/".repeat(1 << 20);
        let mut header = Header::new_gnu();
        header.set_size(0);
        header.set_entry_type(EntryType::Regular);
        builder.append_data(&mut header, format!("{long}f"), &b""[..]).expect("append");
        let bytes = gz(&builder.into_inner().expect("finish"));
        let s = scratch();
        let result = unpack_tar_gz(&bytes[..], &s.root, &UnpackLimits { max_entries: 10, max_bytes: 1000 });
        assert!(matches!(result, Err(UnpackError::TooLarge { limit: 1000 })), "{result:?}");
    }

    #[test]
    fn refuses_a_non_empty_destination() {
        let s = scratch();
        fs::write(s.root.join("existing"), b"").expect("write");
        assert!(matches!(s.unpack(&[file("a", b"")]), Err(UnpackError::DestinationNotEmpty { .. })));
    }

    #[test]
    fn reports_corrupt_streams_as_read_errors() {
        let s = scratch();
        let mut bytes = gz(&tar_bytes(&[file("a", b"hello")]));
        let n = bytes.len();
        bytes.truncate(n / 2);
        assert!(matches!(unpack_tar_gz(&bytes[..], &s.root, &UnpackLimits::default()), Err(UnpackError::Read { .. })));
    }

    /// Hands out at most `step` bytes per read, and is interrupted once before the first.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        interrupted: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Records the length of every write it is given.
    #[derive(Default)]
    struct Writes {
        bytes: Vec<u8>,
        sizes: Vec<usize>,
    }

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sizes.push(buf.len());
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn files_are_written_in_whole_chunks_whatever_the_reader_hands_out() {
        let data = pattern(2 * WRITE_CHUNK + 12_345);
        let (mut out, mut buf) = (Writes::default(), Vec::new());
        let mut reader = Trickle { data: &data, step: 1000, interrupted: false };
        let n = copy_in_chunks(&mut reader, &mut out, &mut buf).expect("copy");
        assert_eq!(n, data.len() as u64);
        assert_eq!(out.sizes, [WRITE_CHUNK, WRITE_CHUNK, 12_345]);
        assert!(out.bytes == data, "content differs");

        // An exact multiple ends without an empty write; an empty file makes none; the buffer
        // is reused.
        let data = pattern(WRITE_CHUNK);
        let mut out = Writes::default();
        copy_in_chunks(&mut Trickle { data: &data, step: 70_000, interrupted: false }, &mut out, &mut buf)
            .expect("copy");
        assert_eq!(out.sizes, [WRITE_CHUNK]);
        let mut out = Writes::default();
        assert_eq!(copy_in_chunks(&mut io::empty(), &mut out, &mut buf).expect("copy"), 0);
        assert!(out.sizes.is_empty());
        assert_eq!(buf.len(), WRITE_CHUNK);
    }

    #[test]
    fn a_file_larger_than_a_chunk_is_unpacked_whole() {
        let s = scratch();
        let big = pattern(2 * WRITE_CHUNK + 777);
        let stats = s.unpack(&[Raw { mode: 0o755, ..file("bin/runtime", &big) }, file("small", b"x")]).expect("unpack");
        assert_eq!(stats.bytes, big.len() as u64 + 1);
        assert!(fs::read(s.root.join("bin/runtime")).expect("runtime") == big, "content differs");
        assert_eq!(fs::read(s.root.join("small")).expect("small"), b"x");
        s.assert_outside_untouched();
    }
}
