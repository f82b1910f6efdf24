//! Offline archives: one tar file (gzip-compressed or not) that carries runtime bundles, or a
//! service's installed dependencies, from one cache to another — to a host without registry
//! access, or into a CI cache between jobs.
//!
//! Layout (format `ignite-archive/1`):
//!
//! ```text
//! ignite-archive.json            the manifest: what the archive holds, first member, ≤ 1 MiB
//! bundles/sha256-<hex>.tar.gz    a runtime bundle, as the store keeps it (or:)
//! deps/sha256-<key>.tar          an installed node_modules tree, packed
//! ```
//!
//! The manifest lists, per entry, the member that holds its bytes, the member's size and
//! `sha256:` digest, and the record the store keeps for it (provenance). An archive is
//! untrusted input, so reading one ([`read`]) accepts only that shape: the manifest first;
//! then each member the manifest lists, once, as a regular file, with exactly the recorded
//! size; nothing else — no links, directories, devices, absolute or `..` names, unlisted or
//! duplicate members — and every member is hashed into a staging file and compared with its
//! digest before the caller sees any of them. The decompressed stream is capped by what the
//! manifest announces, so a member the tar reader would buffer (a long name) cannot be large.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::bundle::{BundleError, HashingReader};
use super::deps::cache::CacheError;
use crate::data::runtime::RuntimeError;
use crate::fsutil::{At, Cleanup, IoError, temp_name};

/// The format this ignite writes and reads.
pub const FORMAT: &str = "ignite-archive/1";
/// The manifest's member name; always the first member.
pub const MANIFEST: &str = "ignite-archive.json";
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Largest member: as large as the bundle unpacker lets a rootfs be.
pub const MAX_MEMBER_BYTES: u64 = 4 << 30;
/// Most entries one archive may list.
pub const MAX_ENTRIES: usize = 256;
/// Tar's own bytes beside the members: a header (and perhaps a PAX or long-name record) and
/// padding per member, the end-of-archive blocks, and the padding of the last record.
const TAR_OVERHEAD_PER_MEMBER: u64 = 8 * 1024;
const TAR_OVERHEAD: u64 = 64 * 1024;

/// What an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Contents {
    /// Runtime bundles (`ignite runtime export`).
    Bundles,
    /// One service's installed dependencies (`ignite install DIR --export`).
    Deps,
}

impl Contents {
    fn describe(self) -> &'static str {
        match self {
            Contents::Bundles => "runtime bundles (import it with `ignite runtime import FILE`)",
            Contents::Deps => "a service's dependencies (import it with `ignite install DIR --import FILE`)",
        }
    }
}

/// `ignite-archive.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest<T> {
    /// [`FORMAT`].
    pub format: String,
    pub contents: Contents,
    pub entries: Vec<Entry<T>>,
}

/// One thing an archive carries: the member with its bytes, and the store's record of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry<T> {
    /// Member name, e.g. `bundles/sha256-<hex>.tar.gz`. Entries may share a member.
    pub member: String,
    /// `sha256:<hex>` of the member's bytes.
    pub digest: String,
    /// The member's size in bytes.
    pub size: u64,
    /// What the store records for it (a bundle's index record, a tree's install record).
    pub record: T,
}

/// A member read out of an archive, its digest checked; the file is removed when dropped.
#[derive(Debug)]
pub struct Staged {
    pub file: Cleanup,
    pub digest: String,
    pub size: u64,
}

/// Why a member was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberProblem {
    #[error("it is a symbolic link; an ignite archive holds regular files only")]
    Symlink,
    #[error("it is a hard link; an ignite archive holds regular files only")]
    HardLink,
    #[error("it is {0}; an ignite archive holds regular files only")]
    NotRegular(&'static str),
    #[error("its name is absolute")]
    Absolute,
    #[error("its name contains '..'")]
    ParentComponent,
    #[error("the manifest does not list it")]
    Unexpected,
    #[error("it appears twice")]
    Duplicate,
    #[error("it is {size} bytes, more than the {limit} an archive member may hold")]
    TooLarge { size: u64, limit: u64 },
    #[error("it is {actual} bytes, but the manifest records {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
}

/// Errors from writing or reading an archive, and from importing what it holds.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path} is not a readable ignite archive: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not an ignite archive: its first member must be {MANIFEST}{found}")]
    NoManifest { path: PathBuf, found: String },
    #[error("{path}: {MANIFEST}: {problem}")]
    Manifest { path: PathBuf, problem: String },
    #[error("{path} holds {found}, not {expected}")]
    WrongContents { path: PathBuf, expected: &'static str, found: &'static str },
    #[error("{path}: refusing member {member:?}: {problem}; nothing was imported")]
    Member { path: PathBuf, member: String, problem: MemberProblem },
    #[error("{path}: member {member:?} is listed in the manifest but missing; nothing was imported")]
    MissingMember { path: PathBuf, member: String },
    #[error("{path} is larger than its manifest announces; nothing was imported")]
    Oversized { path: PathBuf },
    #[error(
        "{path}: member {member:?} does not match its recorded digest: expected {expected}, found {actual}; the archive was altered or damaged, nothing was imported"
    )]
    DigestMismatch { path: PathBuf, member: String, expected: String, actual: String },
    #[error("{path}: {runtime} is not a runtime version this ignite defines: {source}; nothing was imported")]
    UnknownRuntime {
        path: PathBuf,
        runtime: String,
        #[source]
        source: Box<RuntimeError>,
    },
    #[error(
        "{path}: the {runtime} bundle was built from package {archived}, but this ignite pins {pinned}; export it again with the same ignite version, nothing was imported"
    )]
    PackageMismatch { path: PathBuf, runtime: String, archived: String, pinned: String },
    #[error(
        "{path} holds the dependencies of another package.json or lockfile (key {archived}); {service}'s package.json, lockfile and installer give key {expected}: export them again from this service, nothing was imported"
    )]
    KeyMismatch { path: PathBuf, service: String, archived: String, expected: String },
    #[error("{path}: member {member:?}: {problem}; nothing was imported")]
    BadMember { path: PathBuf, member: String, problem: String },
    #[error(
        "dependency tree sha256-{key}: another ignite process held it for {secs} s (installing it, or running with it); try again"
    )]
    Busy { key: String, secs: u64 },
    #[error("{what} is not in the cache: {hint}")]
    NotCached { what: String, hint: String },
    #[error("{what}: {problem}")]
    Export { what: String, problem: String },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// `sha256:<hex>` with 64 lower-case hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// A file of a cache to put into an archive under `member`.
#[derive(Debug, Clone)]
pub struct Source {
    pub member: String,
    pub path: PathBuf,
}

/// What [`write()`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Size of the archive file.
    pub bytes: u64,
    pub gzip: bool,
}

/// Whether `out` names a compressed archive (`.gz`, `.tgz`).
pub fn wants_gzip(out: &Path) -> bool {
    out.extension().is_some_and(|e| e == "gz" || e == "tgz")
}

/// Writes an archive of `entries` to `out` (gzip-compressed when its name ends in `.gz` or
/// `.tgz`): the manifest, then each member from its source file. Every source is hashed as it
/// is copied and must match its entry's digest and size, so an export never carries a damaged
/// file. The archive is written beside `out` under a temp name and renamed into place.
pub fn write<T: Serialize + Clone>(
    out: &Path,
    contents: Contents,
    entries: &[Entry<T>],
    sources: &[Source],
) -> Result<Written, ArchiveError> {
    let manifest = Manifest { format: FORMAT.to_string(), contents, entries: entries.to_vec() };
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other).at("serialise", out)?;
    json.push(b'\n');
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "archive".into());
    let temp = Cleanup::new(dir.join(temp_name(&format!(".{file_name}"))));
    let file = OpenOptions::new().write(true).create_new(true).open(temp.path()).at("create", temp.path())?;
    let gzip = wants_gzip(out);
    let sink = if gzip {
        Sink::Gz(flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default()))
    } else {
        Sink::Plain(BufWriter::new(file))
    };
    let mut builder = tar::Builder::new(sink);
    append(&mut builder, MANIFEST, json.len() as u64, &mut &json[..]).at("write", temp.path())?;
    let mut written: BTreeSet<&str> = BTreeSet::new();
    for source in sources {
        if !written.insert(&source.member) {
            continue;
        }
        let Some(entry) = entries.iter().find(|e| e.member == source.member) else {
            return Err(ArchiveError::Export {
                what: source.member.clone(),
                problem: "no manifest entry names this member".into(),
            });
        };
        let src = File::open(&source.path).at("open", &source.path)?;
        let actual_size = src.metadata().at("stat", &source.path)?.len();
        if actual_size != entry.size {
            return Err(ArchiveError::Export {
                what: source.path.display().to_string(),
                problem: format!("is {actual_size} bytes, but its record says {}", entry.size),
            });
        }
        let mut reader = HashingReader::<_, Sha256>::new(BufReader::with_capacity(1 << 16, src).take(entry.size));
        append(&mut builder, &source.member, entry.size, &mut reader).at("write", temp.path())?;
        let (digest, _) = reader.finish().at("read", &source.path)?;
        let actual = format!("sha256:{}", hex::encode(digest));
        if actual != entry.digest {
            return Err(ArchiveError::Export {
                what: source.path.display().to_string(),
                problem: format!(
                    "does not match its recorded digest (expected {}, found {actual}); it is damaged, pull or install it again",
                    entry.digest
                ),
            });
        }
    }
    let sink = builder.into_inner().at("write", temp.path())?;
    let file = sink.finish().at("write", temp.path())?;
    file.sync_all().at("sync", temp.path())?;
    let bytes = file.metadata().at("stat", temp.path())?.len();
    drop(file);
    fs::rename(temp.path(), out).at("rename into place", out)?;
    temp.keep();
    Ok(Written { bytes, gzip })
}

/// One member: a regular file, root-owned, mode 0644, time 0 (an archive of the same entries
/// is the same bytes).
fn append<W: Write>(builder: &mut tar::Builder<W>, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    builder.append_data(&mut header, name, data)
}

/// The output stream, compressed or not.
enum Sink {
    Plain(BufWriter<File>),
    Gz(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn finish(self) -> io::Result<File> {
        let buffered = match self {
            Sink::Plain(w) => w,
            Sink::Gz(gz) => gz.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gz(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gz(w) => w.flush(),
        }
    }
}

/// What [`read`] returns: the manifest's entries, and the staged members by name.
pub type ReadArchive<T> = (Vec<Entry<T>>, BTreeMap<String, Staged>);

/// Reads the archive at `path`, which must hold `contents`: parses the manifest, lets
/// `check` refuse its entries (before any member is read), then copies every listed member
/// into a file of `staging` (a directory on the cache's filesystem), verifying its size and
/// digest. Returns the entries and the staged members by name; on any error nothing staged
/// remains.
pub fn read<T: DeserializeOwned>(
    path: &Path,
    contents: Contents,
    staging: &Path,
    check: impl FnOnce(&[Entry<T>]) -> Result<(), ArchiveError>,
) -> Result<ReadArchive<T>, ArchiveError> {
    reap_stale(staging);
    let read_err = |source: io::Error| ArchiveError::Read { path: path.to_path_buf(), source };
    let mut file = File::open(path).at("open", path)?;
    let mut magic = [0u8; 2];
    let gzip = match file.read_exact(&mut magic) {
        Ok(()) => magic == [0x1f, 0x8b],
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(read_err(e)),
    };
    file.rewind().at("read", path)?;
    let buffered = BufReader::with_capacity(1 << 16, file);
    let raw: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(buffered)) } else { Box::new(buffered) };
    // Until the manifest is read, only its size is allowed; then what it announces.
    let left = Rc::new(Cell::new(MAX_MANIFEST_BYTES + TAR_OVERHEAD));
    let exceeded = Rc::new(Cell::new(false));
    let capped = Capped { inner: raw, left: Rc::clone(&left), exceeded: Rc::clone(&exceeded) };
    let read_err = |source: io::Error| {
        if exceeded.get() {
            ArchiveError::Oversized { path: path.to_path_buf() }
        } else {
            ArchiveError::Read { path: path.to_path_buf(), source }
        }
    };
    let mut archive = tar::Archive::new(capped);
    let mut members = archive.entries().map_err(read_err)?;

    // The manifest.
    let no_manifest = |found: String| ArchiveError::NoManifest { path: path.to_path_buf(), found };
    let mut first = match members.next() {
        None => return Err(no_manifest(" (it is empty)".to_string())),
        Some(Err(e)) => return Err(read_err(e)),
        Some(Ok(entry)) => entry,
    };
    let first_name = String::from_utf8_lossy(&first.path_bytes()).into_owned();
    if first_name != MANIFEST || first.header().entry_type() != tar::EntryType::Regular {
        return Err(no_manifest(format!(", found {first_name:?}")));
    }
    if first.size() > MAX_MANIFEST_BYTES {
        return Err(ArchiveError::Member {
            path: path.to_path_buf(),
            member: MANIFEST.into(),
            problem: MemberProblem::TooLarge { size: first.size(), limit: MAX_MANIFEST_BYTES },
        });
    }
    let mut json = Vec::new();
    (&mut first).take(MAX_MANIFEST_BYTES).read_to_end(&mut json).map_err(read_err)?;
    let entries = parse_manifest::<T>(path, contents, &json)?;
    check(&entries)?;

    // What the members may be: each listed name once, with its size and digest.
    let mut expected: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for e in &entries {
        if let Some((size, digest)) = expected.get(&e.member)
            && (*size != e.size || *digest != e.digest)
        {
            return Err(manifest_err(
                path,
                format!("entries list member {:?} with different sizes or digests", e.member),
            ));
        }
        expected.insert(e.member.clone(), (e.size, e.digest.clone()));
    }
    let announced = expected.values().map(|(size, _)| size).sum::<u64>();
    left.set(announced.saturating_add(TAR_OVERHEAD_PER_MEMBER * expected.len() as u64).saturating_add(TAR_OVERHEAD));

    let mut staged: BTreeMap<String, Staged> = BTreeMap::new();
    for member in members {
        let mut member = member.map_err(read_err)?;
        let raw_name = member.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let refuse =
            |problem: MemberProblem| ArchiveError::Member { path: path.to_path_buf(), member: name.clone(), problem };
        match member.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => return Err(refuse(MemberProblem::Symlink)),
            tar::EntryType::Link => return Err(refuse(MemberProblem::HardLink)),
            tar::EntryType::Directory => return Err(refuse(MemberProblem::NotRegular("a directory"))),
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(refuse(MemberProblem::NotRegular("a device node")));
            }
            tar::EntryType::Fifo => return Err(refuse(MemberProblem::NotRegular("a fifo"))),
            _ => return Err(refuse(MemberProblem::NotRegular("an entry of an unsupported type"))),
        }
        if raw_name.first() == Some(&b'/') {
            return Err(refuse(MemberProblem::Absolute));
        }
        if raw_name.split(|b| *b == b'/').any(|c| c == b"..") {
            return Err(refuse(MemberProblem::ParentComponent));
        }
        if staged.contains_key(&name) || name == MANIFEST {
            return Err(refuse(MemberProblem::Duplicate));
        }
        let Some((size, digest)) = expected.get(&name) else {
            return Err(refuse(MemberProblem::Unexpected));
        };
        if member.size() > MAX_MEMBER_BYTES {
            return Err(refuse(MemberProblem::TooLarge { size: member.size(), limit: MAX_MEMBER_BYTES }));
        }
        if member.size() != *size {
            return Err(refuse(MemberProblem::SizeMismatch { expected: *size, actual: member.size() }));
        }
        let file = Cleanup::new(staging.join(temp_name(STAGING_PREFIX)));
        let mut dst = OpenOptions::new().write(true).create_new(true).open(file.path()).at("create", file.path())?;
        let mut reader = HashingReader::<_, Sha256>::new(&mut member);
        io::copy(&mut reader, &mut dst).map_err(read_err)?;
        let (actual, count) = reader.finish().map_err(read_err)?;
        let actual = format!("sha256:{}", hex::encode(actual));
        if count != *size {
            return Err(refuse(MemberProblem::SizeMismatch { expected: *size, actual: count }));
        }
        if actual != *digest {
            return Err(ArchiveError::DigestMismatch {
                path: path.to_path_buf(),
                member: name,
                expected: digest.clone(),
                actual,
            });
        }
        staged.insert(name, Staged { file, digest: actual, size: count });
    }
    if let Some(missing) = expected.keys().find(|m| !staged.contains_key(*m)) {
        return Err(ArchiveError::MissingMember { path: path.to_path_buf(), member: missing.clone() });
    }
    Ok((entries, staged))
}

/// Prefix of the staging files of [`read`] (then the reading process's pid).
const STAGING_PREFIX: &str = "archive";

/// Removes the staging files that imports killed before they could clean up left in `staging`:
/// those whose process is gone. (A live process's files, including this one's, stay.)
pub fn reap_stale(staging: &Path) {
    let Ok(entries) = fs::read_dir(staging) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(STAGING_PREFIX)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
        if pid > 0 && gone {
            tracing::debug!(path = %entry.path().display(), "removing a stale archive staging file");
            crate::fsutil::remove_any(&entry.path());
        }
    }
}

fn manifest_err(path: &Path, problem: String) -> ArchiveError {
    ArchiveError::Manifest { path: path.to_path_buf(), problem }
}

/// The manifest's entries, with every field checked: the format, the contents, digests,
/// member names (`<dir>/<file>` of the contents' kind).
fn parse_manifest<T: DeserializeOwned>(
    path: &Path,
    contents: Contents,
    json: &[u8],
) -> Result<Vec<Entry<T>>, ArchiveError> {
    // Format and contents first, so that another format or kind gets its own message rather
    // than a complaint about the first field it lacks.
    #[derive(Deserialize)]
    struct Head {
        format: Option<String>,
        contents: Option<Contents>,
    }
    let head: Head = serde_json::from_slice(json).map_err(|e| manifest_err(path, format!("is not valid JSON: {e}")))?;
    match head.format.as_deref() {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(manifest_err(
                path,
                format!("format {other:?} is not one this ignite reads (it reads {FORMAT})"),
            ));
        }
        None => return Err(manifest_err(path, "field `format` is missing".into())),
    }
    match head.contents {
        Some(found) if found != contents => {
            return Err(ArchiveError::WrongContents {
                path: path.to_path_buf(),
                expected: contents.describe(),
                found: found.describe(),
            });
        }
        _ => {}
    }
    let de = &mut serde_json::Deserializer::from_slice(json);
    let manifest: Manifest<T> = serde_path_to_error::deserialize(de)
        .map_err(|e| manifest_err(path, format!("field `{}`: {}", e.path(), e.inner())))?;
    if manifest.entries.is_empty() {
        return Err(manifest_err(path, "it lists no entries".into()));
    }
    if manifest.entries.len() > MAX_ENTRIES {
        return Err(manifest_err(path, format!("it lists more than {MAX_ENTRIES} entries")));
    }
    let dir = match contents {
        Contents::Bundles => "bundles/",
        Contents::Deps => "deps/",
    };
    for (i, e) in manifest.entries.iter().enumerate() {
        if !is_sha256_digest(&e.digest) {
            return Err(manifest_err(
                path,
                format!("field `entries[{i}].digest`: {:?} is not sha256: and 64 lower-case hex digits", e.digest),
            ));
        }
        let file = e.member.strip_prefix(dir).unwrap_or("");
        let plain = !file.is_empty()
            && file.starts_with("sha256-")
            && file.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            && !file.contains("..");
        if !plain {
            return Err(manifest_err(
                path,
                format!("field `entries[{i}].member`: {:?} is not a member name of the form {dir}sha256-…", e.member),
            ));
        }
        if e.size > MAX_MEMBER_BYTES {
            return Err(manifest_err(
                path,
                format!(
                    "field `entries[{i}].size`: {} bytes is more than the {MAX_MEMBER_BYTES} a member may hold",
                    e.size
                ),
            ));
        }
    }
    Ok(manifest.entries)
}

/// A reader that fails once `left` bytes have been read.
struct Capped<R> {
    inner: R,
    left: Rc<Cell<u64>>,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            // Only an error if there is more to read.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded.set(true);
                    Err(io::Error::other("the archive is larger than its manifest announces"))
                }
            };
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        name: String,
    }

    fn digest_of(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    fn entry(member: &str, bytes: &[u8]) -> Entry<Rec> {
        Entry {
            member: member.into(),
            digest: digest_of(bytes),
            size: bytes.len() as u64,
            record: Rec { name: "a".into() },
        }
    }

    fn manifest_json(contents: Contents, entries: &[Entry<Rec>]) -> Vec<u8> {
        serde_json::to_vec(&Manifest { format: FORMAT.into(), contents, entries: entries.to_vec() }).unwrap()
    }

    /// A raw member: any name bytes and type, `data` as content.
    fn raw(builder: &mut tar::Builder<Vec<u8>>, name: &[u8], kind: tar::EntryType, data: &[u8], link: Option<&[u8]>) {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link);
        }
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }

    const M: &str = "bundles/sha256-aa.tar.gz";

    /// An archive with the manifest listing `entries`, then `members` as given.
    fn archive(entries: &[Entry<Rec>], members: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, MANIFEST.as_bytes(), tar::EntryType::Regular, &manifest_json(Contents::Bundles, entries), None);
        for (name, kind, data) in members {
            let link = matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link).then_some(&b"target"[..]);
            raw(&mut b, name, *kind, data, link);
        }
        b.into_inner().unwrap()
    }

    fn read_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<ReadArchive<Rec>, ArchiveError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        fs::write(&path, bytes).unwrap();
        let staging = dir.path().join("staging");
        fs::create_dir(&staging).unwrap();
        let result = read::<Rec>(&path, Contents::Bundles, &staging, |_| Ok(()));
        (dir, result)
    }

    fn refused(bytes: &[u8]) -> String {
        let (dir, result) = read_bytes(bytes);
        let err = result.expect_err("refused");
        assert_eq!(fs::read_dir(dir.path().join("staging")).unwrap().count(), 0, "staged files left behind");
        err.to_string()
    }

    #[test]
    fn written_archives_read_back_verified_gzip_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("bundle");
        fs::write(&src, b"bundle bytes").unwrap();
        for name in ["a.tar", "a.tar.gz"] {
            let out = dir.path().join(name);
            let entries = [entry(M, b"bundle bytes")];
            let written =
                write(&out, Contents::Bundles, &entries, &[Source { member: M.into(), path: src.clone() }]).unwrap();
            assert_eq!(written.gzip, name.ends_with(".gz"));
            assert_eq!(written.bytes, fs::metadata(&out).unwrap().len());
            let (read_entries, staged) =
                read::<Rec>(&out, Contents::Bundles, dir.path(), |e| if e.len() == 1 { Ok(()) } else { panic!() })
                    .unwrap();
            assert_eq!(read_entries, entries);
            assert_eq!(fs::read(staged[M].file.path()).unwrap(), b"bundle bytes");
            // Deterministic: the same entries give the same bytes.
            let again = dir.path().join(format!("again-{name}"));
            write(&again, Contents::Bundles, &entries, &[Source { member: M.into(), path: src.clone() }]).unwrap();
            assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());
        }
        // A damaged source is never exported.
        let err = write(
            &dir.path().join("b.tar"),
            Contents::Bundles,
            &[entry(M, b"bundle bytez")],
            &[Source { member: M.into(), path: src }],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not match its recorded digest"), "{err}");
        assert!(!dir.path().join("b.tar").exists());
    }

    #[test]
    fn hostile_members_are_refused_precisely() {
        use tar::EntryType::{Block, Directory, Link, Regular, Symlink};
        let data = b"bundle bytes";
        let ok = [entry(M, data)];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                archive(&ok, &[(M.as_bytes(), Symlink, b"")]),
                "is a symbolic link; an ignite archive holds regular files only",
            ),
            (archive(&ok, &[(M.as_bytes(), Link, b"")]), "is a hard link"),
            (archive(&ok, &[(b"bundles/", Directory, b"")]), "it is a directory"),
            (archive(&ok, &[(b"dev/sda", Block, b"")]), "it is a device node"),
            (archive(&ok, &[(b"/etc/passwd", Regular, data)]), "refusing member \"/etc/passwd\": its name is absolute"),
            (archive(&ok, &[(b"bundles/../../x", Regular, data)]), "its name contains '..'"),
            (archive(&ok, &[(b"bundles/sha256-bb.tar.gz", Regular, data)]), "the manifest does not list it"),
            (archive(&ok, &[(M.as_bytes(), Regular, data), (M.as_bytes(), Regular, data)]), "it appears twice"),
            (archive(&ok, &[(M.as_bytes(), Regular, b"bundle bytes!")]), "it is 13 bytes, but the manifest records 12"),
            (archive(&ok, &[(M.as_bytes(), Regular, b"bundle bytez")]), "does not match its recorded digest"),
            (archive(&ok, &[]), "is listed in the manifest but missing"),
            (archive(&ok, &[(MANIFEST.as_bytes(), Regular, b"{}")]), "it appears twice"),
        ];
        for (bytes, needle) in cases {
            let err = refused(&bytes);
            assert!(err.contains(needle), "expected {needle:?} in: {err}");
        }
    }

    #[test]
    fn the_manifest_is_checked_before_any_member() {
        let data = b"bundle bytes";
        // Not first.
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, M.as_bytes(), tar::EntryType::Regular, data, None);
        let err = refused(&b.into_inner().unwrap());
        assert!(err.contains("is not an ignite archive: its first member must be ignite-archive.json"), "{err}");
        assert!(refused(b"").contains("(it is empty)"));
        assert!(refused(b"not a tar file at all, just text").contains("not"));

        let with_manifest = |json: &[u8]| {
            let mut b = tar::Builder::new(Vec::new());
            raw(&mut b, MANIFEST.as_bytes(), tar::EntryType::Regular, json, None);
            b.into_inner().unwrap()
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{".to_vec(), "is not valid JSON"),
            (
                br#"{"format":"ignite-archive/9","contents":"bundles","entries":[]}"#.to_vec(),
                "format \"ignite-archive/9\" is not one this ignite reads",
            ),
            (
                manifest_json(Contents::Deps, &[entry("deps/sha256-k.tar", data)]),
                "holds a service's dependencies (import it with `ignite install DIR --import FILE`), not runtime bundles",
            ),
            (manifest_json(Contents::Bundles, &[]), "it lists no entries"),
            (
                manifest_json(Contents::Bundles, &[Entry { digest: "md5:0".into(), ..entry(M, data) }]),
                "field `entries[0].digest`",
            ),
            (manifest_json(Contents::Bundles, &[entry("../../etc/passwd", data)]), "field `entries[0].member`"),
            (
                manifest_json(Contents::Bundles, &[Entry { size: MAX_MEMBER_BYTES + 1, ..entry(M, data) }]),
                "more than the 4294967296 a member may hold",
            ),
            (
                br#"{"format":"ignite-archive/1","contents":"bundles","entries":[],"extra":1}"#.to_vec(),
                "unknown field `extra`",
            ),
        ];
        for (json, needle) in cases {
            let err = refused(&with_manifest(&json));
            assert!(err.contains(needle), "expected {needle:?} in: {err}");
        }
    }

    #[test]
    fn staging_files_of_dead_processes_are_reaped() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this pid is not alive.
        let dead = dir.path().join("archive-9999999-0000-0");
        let mine = dir.path().join(temp_name(STAGING_PREFIX));
        let other = dir.path().join("build-bun@1.4.5-9999999-0000-0");
        for p in [&dead, &mine, &other] {
            fs::write(p, b"x").unwrap();
        }
        reap_stale(dir.path());
        assert!(!dead.exists());
        assert!(mine.exists() && other.exists());
    }

    #[test]
    fn a_stream_longer_than_announced_is_cut_off() {
        // A member the manifest does not announce, made huge: the reader stops at the cap
        // instead of reading (or, for a long name, buffering) it.
        let data = b"bundle bytes";
        let mut bytes = archive(&[entry(M, data)], &[(M.as_bytes(), tar::EntryType::Regular, data)]);
        // Drop the end-of-archive blocks and append a long-name record of 1 MiB.
        bytes.truncate(bytes.len() - 1024);
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, b"././@LongLink", tar::EntryType::GNULongName, &vec![b'a'; 1 << 20], None);
        bytes.extend(b.into_inner().unwrap());
        let err = refused(&bytes);
        assert!(err.contains("is larger than its manifest announces"), "{err}");
    }
}
