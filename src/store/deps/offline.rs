//! A service's installed dependencies in an offline archive ([`crate::store::archive`]): the
//! tree of one cache key, packed as a tar member with its install record. The key is the
//! verification that matters: it is derived from the service's package.json, lockfile and
//! installer ([`super::cache_key`]), so an import accepts only the tree of exactly the inputs
//! the service has now, and the member's digest shows the tree is the one that was exported.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cache::{DepsCache, InstallRecord, LockMode};
use super::tree::{TreeLimits, copy_tree};
use crate::fsutil::{At, Cleanup, IoError, temp_name};
use crate::store::archive::{self, ArchiveError, Contents, Entry, Source};
use crate::store::bundle::{UnpackLimits, unpack::unpack_tar};

/// How long an export or import waits for another process's install of the same key.
const LOCK_WAIT: Duration = Duration::from_secs(600);
const LOCK_POLL: Duration = Duration::from_millis(50);

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedTree {
    pub record: InstallRecord,
    /// `sha256:<hex>` of the packed tree, as the archive recorded and the import verified.
    pub digest: String,
    /// The cache held the tree already; nothing was written.
    pub unchanged: bool,
}

/// Writes the installed tree of `key` (which must be in the cache) to the archive `out`.
/// Returns the tree's record, its packed digest and the archive's size.
pub fn export(
    cache: &DepsCache,
    key: &str,
    out: &Path,
) -> Result<(InstallRecord, String, archive::Written), ArchiveError> {
    let _lock = wait_lock(cache, key, LockMode::Shared)?;
    let record = cache.record(key).ok_or_else(|| ArchiveError::NotCached {
        what: format!("dependency tree sha256-{key}"),
        hint: "install it first with `ignite install DIR`".into(),
    })?;
    let packed = Cleanup::new(cache.root().join("tmp").join(temp_name(&format!(".pack-{key}"))));
    pack_tree(&cache.modules_dir(key), packed.path())?;
    let digest = crate::store::bundle::sha256_file(packed.path()).at("read", packed.path())?;
    let size = fs::metadata(packed.path()).at("stat", packed.path())?.len();
    let member = format!("deps/sha256-{key}.tar");
    let entries = [Entry { member: member.clone(), digest: digest.clone(), size, record: record.clone() }];
    let written =
        archive::write(out, Contents::Deps, &entries, &[Source { member, path: packed.path().to_path_buf() }])?;
    Ok((record, digest, written))
}

/// Imports the archive `file` as the tree of `key` (the key the service's inputs give now).
/// Refused unless the archive holds exactly one tree, recorded under `key`, whose packed bytes
/// match their digest; the tree is then held to the rules of an installed one (see
/// [`copy_tree`]) and committed whole.
pub fn import(cache: &DepsCache, key: &str, service: &str, file: &Path) -> Result<ImportedTree, ArchiveError> {
    fs::create_dir_all(cache.root().join("tmp")).at("create", cache.root().join("tmp"))?;
    let staging = cache.root().join("tmp");
    let (entries, staged) = archive::read::<InstallRecord>(file, Contents::Deps, &staging, |entries| {
        let [entry] = entries else {
            return Err(ArchiveError::Manifest {
                path: file.to_path_buf(),
                problem: format!("a dependency archive holds one tree, this one lists {}", entries.len()),
            });
        };
        if entry.member != format!("deps/sha256-{}.tar", entry.record.key) {
            return Err(ArchiveError::Manifest {
                path: file.to_path_buf(),
                problem: format!("member {:?} is not named after its key {}", entry.member, entry.record.key),
            });
        }
        if entry.record.key != key {
            return Err(ArchiveError::KeyMismatch {
                path: file.to_path_buf(),
                service: service.to_string(),
                archived: entry.record.key.clone(),
                expected: key.to_string(),
            });
        }
        Ok(())
    })?;
    let Some(entry) = entries.into_iter().next() else {
        return Err(ArchiveError::Manifest { path: file.to_path_buf(), problem: "it lists no entries".into() });
    };
    let Some(packed) = staged.get(&entry.member) else {
        return Err(ArchiveError::MissingMember { path: file.to_path_buf(), member: entry.member });
    };

    if let Some(record) = cache_record_now(cache, key)? {
        return Ok(ImportedTree { record, digest: entry.digest, unchanged: true });
    }
    let _lock = wait_lock(cache, key, LockMode::Exclusive)?;
    if let Some(record) = cache.record(key) {
        return Ok(ImportedTree { record, digest: entry.digest, unchanged: true });
    }
    cache.remove_stale_temps(key);
    // Unpacked with the bundle unpacker's rules (no links out, no devices, capped), then copied
    // with an installed tree's rules (normalised modes, root-owned), which also counts it.
    let scratch = cache.stage(key)?;
    let unpacked = scratch.modules();
    fs::create_dir(&unpacked).at("create", &unpacked)?;
    let limits = TreeLimits::default();
    let unpack_limits = UnpackLimits { max_entries: limits.max_entries, max_bytes: limits.max_bytes };
    let reader = io::BufReader::with_capacity(1 << 16, File::open(packed.file.path()).at("open", packed.file.path())?);
    unpack_tar(reader, &unpacked, &unpack_limits).map_err(|source| ArchiveError::BadMember {
        path: file.to_path_buf(),
        member: entry.member.clone(),
        problem: source.to_string(),
    })?;
    let staging = cache.stage(key)?;
    let stats = copy_tree(&unpacked, &staging.modules(), &limits).map_err(|source| ArchiveError::BadMember {
        path: file.to_path_buf(),
        member: entry.member.clone(),
        problem: format!("is not a dependency tree ignite accepts: {source}"),
    })?;
    drop(scratch);
    let record = InstallRecord {
        key: key.to_string(),
        packages: stats.packages,
        files: stats.files,
        bytes: stats.bytes,
        ..entry.record
    };
    cache.commit(staging, &record)?;
    Ok(ImportedTree { record, digest: entry.digest, unchanged: false })
}

/// The finished tree of `key`, looked at under a shared lock.
fn cache_record_now(cache: &DepsCache, key: &str) -> Result<Option<InstallRecord>, ArchiveError> {
    let _lock = wait_lock(cache, key, LockMode::Shared)?;
    Ok(cache.record(key))
}

/// Takes the key's lock, waiting (boundedly) while another process installs it.
fn wait_lock(cache: &DepsCache, key: &str, mode: LockMode) -> Result<nix::fcntl::Flock<File>, ArchiveError> {
    let started = Instant::now();
    loop {
        if let Some(lock) = cache.try_lock(key, mode)? {
            return Ok(lock);
        }
        if started.elapsed() > LOCK_WAIT {
            return Err(ArchiveError::Busy { key: key.to_string(), secs: LOCK_WAIT.as_secs() });
        }
        std::thread::sleep(LOCK_POLL);
    }
}

/// Packs the tree at `root` into the tar file `out`: names relative to `root` in sorted order,
/// directories 0755, files 0644 or 0755, symlinks as they are, owner root and time 0 — the
/// same tree always packs to the same bytes.
fn pack_tree(root: &Path, out: &Path) -> Result<(), ArchiveError> {
    let file = OpenOptions::new().write(true).create_new(true).open(out).at("create", out)?;
    let mut builder = tar::Builder::new(BufWriter::new(file));
    builder.mode(tar::HeaderMode::Deterministic);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut names: Vec<_> =
            fs::read_dir(&dir).at("read directory", &dir)?.collect::<Result<Vec<_>, _>>().at("read directory", &dir)?;
        names.sort_by_key(|e| e.file_name());
        // Pushed in reverse, so that directories are visited in name order.
        let mut subdirs = Vec::new();
        for entry in names {
            let rel_child = rel.join(entry.file_name());
            let path = root.join(&rel_child);
            let ft = entry.file_type().at("stat", &path)?;
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            if ft.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, &rel_child, io::empty()).at("write", out)?;
                subdirs.push(rel_child);
            } else if ft.is_file() {
                let src = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path).at("open", &path)?;
                let meta = src.metadata().at("stat", &path)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 });
                header.set_size(meta.len());
                builder.append_data(&mut header, &rel_child, io::Read::take(src, meta.len())).at("write", out)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&path).at("read link", &path)?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, &rel_child, &target).at("write", out)?;
            } else {
                return Err(ArchiveError::Export {
                    what: path.display().to_string(),
                    problem: "is not a file, directory or symlink; the cached tree is damaged".into(),
                });
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    let writer = builder.into_inner().at("write", out)?;
    let file = writer.into_inner().map_err(|e| IoError::new("write", out, e.into_error()))?;
    file.sync_all().at("sync", out)?;
    Ok(())
}
