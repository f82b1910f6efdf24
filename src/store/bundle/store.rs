//! The bundle cache: where packages, tarballs and unpacked rootfs directories live, how they are
//! created atomically under a lock, and the cheap check that every `ignite run` makes.
//!
//! Layout under the cache directory (default [`DEFAULT_CACHE_DIR`]):
//!
//! ```text
//! packages/<npm-name>-<version>.tgz     downloaded packages, integrity-checked
//! bundles/sha256-<hex>.tar.gz           rootfs tarballs, named by their content
//! index/<name>@<version>.json           which bundle a runtime version uses, and how it was made
//! rootfs/sha256-<hex>/                  unpacked, shared, mounted read-only by containers
//! locks/<name>@<version>.lock           flock: one process prepares a runtime version at a time
//! tmp/                                  recipe work directories
//! ```
//!
//! Everything is written to a temp name in the same directory and renamed into place, so a
//! reader sees either nothing or the finished thing, and a crash leaves only temp names behind
//! (removed by the next process that takes the same lock).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::HashingReader;
use super::builder::BuilderError;
use super::fetch::{self, FetchError, Progress};
use super::offline::ImportOutcome;
use super::recipe::{self, BuildRoot, RecipeError};
use super::unpack::{UnpackError, UnpackLimits, unpack_tar_gz};
use crate::data::runtime::{BuildEnvironment, Builder, Package, PackageSource, ResolvedRuntime};
use crate::fsutil::{At, IoError};
use crate::fsutil::{Cleanup, remove_any, temp_name, unix_now};

/// Where ignite keeps bundles unless told otherwise.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/ignite";

/// An unpacked rootfs, ready to be mounted read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    /// `<cache>/rootfs/sha256-<hex>`.
    pub path: PathBuf,
    /// `sha256:<hex>` of the bundle tarball it was unpacked from.
    pub digest: String,
}

/// What the cache holds for one runtime version (`ignite runtime list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    /// `sha256:<hex>` of the bundle tarball.
    pub digest: String,
    /// The unpacked rootfs directory.
    pub path: PathBuf,
    /// Size of the bundle tarball in bytes.
    pub tarball_bytes: u64,
    /// Bytes of the regular files in the unpacked rootfs.
    pub unpacked_bytes: u64,
    /// Built here by the recipe (false: imported).
    pub built: bool,
    /// When it was built or imported (seconds since the epoch).
    pub created_unix: u64,
    /// How long the recipe ran, in milliseconds (0 for imports).
    pub build_millis: u64,
}

/// What the store holds for one runtime version ([`BundleStore::status`]); `bytes` is the
/// size of the bundle tarball as recorded when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleStatus {
    /// Unpacked and recorded for this exact package and recipe.
    Present { digest: String, bytes: u64 },
    /// Recorded for this package and recipe, but not unpacked (the next use unpacks it).
    Packed { digest: String, bytes: u64 },
    /// Recorded for another package or recipe (the next use rebuilds it); `reason` says which.
    Stale { digest: String, bytes: u64, reason: String },
    /// Nothing recorded.
    Absent,
}

/// Errors from the bundle store.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Rootless(crate::sandbox::userns::Unsupported),
    #[error("failed to lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("failed to build the {runtime} rootfs: {source}")]
    Recipe {
        runtime: String,
        #[source]
        source: RecipeError,
    },
    #[error("failed to unpack bundle {path}: {source}")]
    Unpack {
        path: PathBuf,
        #[source]
        source: UnpackError,
    },
    #[error("bundle {path} is corrupt: expected {expected}, found {actual}; it was removed, run again to rebuild it")]
    Corrupt { path: PathBuf, expected: String, actual: String },
    #[error("failed to prepare the build environment of the runtime recipes: {0}")]
    Builder(#[from] super::builder::BuilderError),
}

/// How a bundle came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Built here by the runtime's recipe.
    Built,
    /// A prebuilt tarball handed to [`BundleStore::import`].
    Imported,
}

/// `index/<name>@<version>.json`: which bundle a runtime version uses and how it was made (an
/// offline archive carries it as the bundle's provenance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndexRecord {
    pub runtime: String,
    pub version: String,
    /// `sha256:<hex>` of the bundle tarball.
    pub digest: String,
    pub source: Source,
    pub package: Package,
    /// Digest of the recipe that built the bundle; a changed recipe means a rebuild.
    pub recipe_digest: Option<String>,
    /// Size of the tarball in bytes.
    pub size: u64,
    /// When the bundle was built or imported (seconds since the epoch).
    pub created_unix: u64,
    /// How long the recipe ran, in milliseconds (0 for imports).
    pub build_millis: u64,
}

impl IndexRecord {
    /// Whether this record still describes `rt` as currently defined.
    fn matches(&self, rt: &ResolvedRuntime) -> bool {
        self.runtime == rt.name
            && self.version == rt.version.to_string()
            && self.package.integrity == rt.package.integrity
            && (self.source == Source::Imported || self.recipe_digest.as_deref() == Some(rt.recipe.digest().as_str()))
    }
}

/// Durations of the phases of one first use, for the "ready in" line.
#[derive(Debug, Default)]
struct Timings {
    download: Option<Duration>,
    /// Copying a custom runtime's local package (`file:`) into the cache.
    copy: Option<Duration>,
    build: Option<Duration>,
    import: Option<Duration>,
    unpack: Option<Duration>,
}

impl Timings {
    fn summary(&self, rt: &ResolvedRuntime, total: Duration) -> String {
        let parts: Vec<String> = [
            ("download", self.download),
            ("copy", self.copy),
            ("build", self.build),
            ("import", self.import),
            ("unpack", self.unpack),
        ]
        .into_iter()
        .filter_map(|(name, d)| d.map(|d| format!("{name} {:.1} s", d.as_secs_f64())))
        .collect();
        let mut msg = format!("{rt} ready in {:.1} s", total.as_secs_f64());
        if !parts.is_empty() {
            msg.push_str(&format!(" ({})", parts.join(", ")));
        }
        msg
    }
}

/// The content-addressed cache of runtime bundles.
#[derive(Debug, Clone)]
pub struct BundleStore {
    root: PathBuf,
    limits: UnpackLimits,
}

impl BundleStore {
    /// A store rooted at `cache_dir` (created on first use).
    pub fn new(cache_dir: PathBuf) -> BundleStore {
        BundleStore { root: cache_dir, limits: UnpackLimits::default() }
    }

    /// Replaces the unpack limits.
    pub fn with_limits(mut self, limits: UnpackLimits) -> BundleStore {
        self.limits = limits;
        self
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The unpacked rootfs of `rt`, if it is ready. This is the hot path of every run: it reads
    /// one small index file and stats one directory; it never hashes the tarball (that happens
    /// once, when unpacking).
    pub fn present(&self, rt: &ResolvedRuntime) -> Option<Rootfs> {
        let record = self.read_index(rt)?;
        if !record.matches(rt) {
            return None;
        }
        let path = self.rootfs_dir(&record.digest)?;
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => Some(Rootfs { path, digest: record.digest }),
            _ => None,
        }
    }

    /// What the cache holds for `rt`, if its rootfs is ready. Walks the unpacked tree to size
    /// it, so this is for listings, not for the run path.
    pub fn info(&self, rt: &ResolvedRuntime) -> Option<BundleInfo> {
        let rootfs = self.present(rt)?;
        let record = self.read_index(rt)?;
        Some(BundleInfo {
            unpacked_bytes: tree_bytes(&rootfs.path),
            digest: rootfs.digest,
            path: rootfs.path,
            tarball_bytes: record.size,
            built: record.source == Source::Built,
            created_unix: record.created_unix,
            build_millis: record.build_millis,
        })
    }

    /// What the cache holds for `rt`, from its index record and one stat: nothing is hashed,
    /// downloaded or written (preflight).
    pub fn status(&self, rt: &ResolvedRuntime) -> BundleStatus {
        let Some(record) = self.read_index(rt) else {
            return BundleStatus::Absent;
        };
        let (digest, bytes) = (record.digest.clone(), record.size);
        if !record.matches(rt) {
            let reason = if record.package.integrity != rt.package.integrity {
                format!("another package ({})", record.package.integrity)
            } else {
                format!(
                    "another recipe ({}; the definition now uses {})",
                    record.recipe_digest.as_deref().unwrap_or("none recorded"),
                    rt.recipe.digest()
                )
            };
            return BundleStatus::Stale { digest, bytes, reason };
        }
        match self.present(rt) {
            Some(_) => BundleStatus::Present { digest, bytes },
            None => BundleStatus::Packed { digest, bytes },
        }
    }

    /// The rootfs of `rt`, downloading, building and unpacking it first if needed. Silent when
    /// it is already there; otherwise reports each phase and a "ready in" line.
    ///
    /// Every page of the rootfs is then in the page cache, read in by ignite (see
    /// [`resident`](super::resident)): a sandbox that runs out of memory cannot evict its runtime's
    /// code and thrash on re-reading it. Failing that is logged, not fatal: the run is as safe,
    /// only an out-of-memory program may then take longer to be killed.
    pub fn ensure(&self, rt: &ResolvedRuntime, progress: &dyn Progress) -> Result<Rootfs, BundleError> {
        let rootfs = self.ensure_unpacked(rt, progress)?;
        super::resident::keep_resident_logged(&rootfs.path);
        Ok(rootfs)
    }

    /// [`ensure`](Self::ensure) without the page-cache step: for a caller that reads the rootfs
    /// in itself ([`resident::Background`](super::resident::Background)) before anything runs
    /// from it.
    pub fn ensure_unpacked(&self, rt: &ResolvedRuntime, progress: &dyn Progress) -> Result<Rootfs, BundleError> {
        match self.present(rt) {
            Some(rootfs) => Ok(rootfs),
            None => self.prepare(rt, progress),
        }
    }

    /// Like [`ensure`](Self::ensure), but always reports, also when nothing had to be done
    /// (`ignite runtime pull`).
    pub fn pull(&self, rt: &ResolvedRuntime, progress: &dyn Progress) -> Result<Rootfs, BundleError> {
        match self.present(rt) {
            Some(rootfs) => {
                progress.done(&format!("{rt} already present ({})", rootfs.digest));
                Ok(rootfs)
            }
            None => self.prepare(rt, progress),
        }
    }

    /// Installs a prebuilt rootfs tarball (.tar.gz) as the bundle of `rt`, replacing whatever
    /// bundle `rt` used before. The tarball gets the same safe unpacking as a built one.
    pub fn import(&self, tarball: &Path, rt: &ResolvedRuntime, progress: &dyn Progress) -> Result<Rootfs, BundleError> {
        self.create_layout()?;
        let key = rt.key();
        let _lock = self.lock(&key, progress)?;
        self.remove_stale_temps(rt);
        let started = Instant::now();
        let mut timings = Timings::default();
        progress.phase(&format!("importing {} as {rt}", tarball.display()));

        let temp = Cleanup::new(self.root.join("bundles").join(temp_name(&format!(".import-{key}"))));
        let (digest, size) = {
            let src = File::open(tarball).at("open", tarball)?;
            let mut reader = HashingReader::<_, Sha256>::new(BufReader::with_capacity(1 << 16, src));
            let mut dst =
                OpenOptions::new().write(true).create_new(true).open(temp.path()).at("create", temp.path())?;
            io::copy(&mut reader, &mut dst).at("copy", tarball)?;
            let (digest, size) = reader.finish().at("read", tarball)?;
            (format!("sha256:{}", hex::encode(digest)), size)
        };
        let bundle = self.bundle_path(&digest);
        fs::rename(temp.path(), &bundle).at("rename into place", &bundle)?;
        temp.keep();
        timings.import = Some(started.elapsed());

        let record = IndexRecord {
            runtime: rt.name.clone(),
            version: rt.version.to_string(),
            digest,
            source: Source::Imported,
            package: rt.package.clone(),
            recipe_digest: None,
            size,
            created_unix: unix_now(),
            build_millis: 0,
        };
        self.write_index(rt, &record)?;
        let rootfs = self.unpack(rt, &record, progress, &mut timings)?;
        progress.done(&timings.summary(rt, started.elapsed()));
        Ok(rootfs)
    }

    /// The index record of `rt`, if the store holds one that still describes it (the bundle an
    /// export carries, with its provenance).
    pub fn record(&self, rt: &ResolvedRuntime) -> Option<IndexRecord> {
        self.read_index(rt).filter(|r| r.matches(rt))
    }

    /// `bundles/sha256-<hex>.tar.gz` of a well-formed digest.
    pub fn bundle_file(&self, digest: &str) -> Option<PathBuf> {
        self.rootfs_dir(digest).map(|_| self.bundle_path(digest))
    }

    /// A directory on the cache's filesystem for files that are renamed into the store later
    /// (the members of an archive being imported), created if needed.
    pub fn staging_dir(&self) -> Result<PathBuf, BundleError> {
        self.create_layout()?;
        Ok(self.root.join("tmp"))
    }

    /// Makes the verified tarball `staged` (whose sha256 is `archived.digest`) the bundle of
    /// `rt`, recorded as imported with the archive's provenance (package, recipe digest).
    /// Under the runtime's lock, the tarball is unpacked before anything is recorded: if it
    /// cannot be unpacked, neither the tarball nor an index record stays behind. `staged` is
    /// renamed into the store unless a tarball of that digest is there already.
    pub fn adopt(
        &self,
        rt: &ResolvedRuntime,
        archived: &IndexRecord,
        staged: &Path,
        progress: &dyn Progress,
    ) -> Result<(Rootfs, ImportOutcome), BundleError> {
        self.create_layout()?;
        let _lock = self.lock(&rt.key(), progress)?;
        self.remove_stale_temps(rt);
        let previous = self.read_index(rt).map(|r| r.digest);
        if let Some(rootfs) = self.present(rt).filter(|r| r.digest == archived.digest) {
            return Ok((rootfs, ImportOutcome::Unchanged));
        }
        progress.phase(&format!("importing {rt} ({})", archived.digest));
        let started = Instant::now();
        let mut timings = Timings::default();
        let Some(bundle) = self.bundle_file(&archived.digest) else {
            return Err(self.corrupt_index(rt, &archived.digest));
        };
        // The same name holds the same bytes: an existing tarball is kept as it is.
        let created = !bundle.is_file();
        if created {
            fs::rename(staged, &bundle).at("rename into place", &bundle)?;
        }
        let size = fs::metadata(&bundle).at("stat", &bundle)?.len();
        let record = IndexRecord {
            runtime: rt.name.clone(),
            version: rt.version.to_string(),
            digest: archived.digest.clone(),
            source: Source::Imported,
            package: rt.package.clone(),
            recipe_digest: archived.recipe_digest.clone(),
            size,
            created_unix: unix_now(),
            build_millis: 0,
        };
        let rootfs = match self.unpack(rt, &record, progress, &mut timings) {
            Ok(rootfs) => rootfs,
            Err(e) => {
                if created {
                    let _ = fs::remove_file(&bundle);
                }
                return Err(e);
            }
        };
        self.write_index(rt, &record)?;
        progress.done(&timings.summary(rt, started.elapsed()));
        let outcome = match previous {
            Some(previous) if previous != archived.digest => ImportOutcome::Replaced { previous },
            _ => ImportOutcome::Added,
        };
        Ok((rootfs, outcome))
    }

    /// The slow path: under the runtime's lock, do whatever is missing.
    fn prepare(&self, rt: &ResolvedRuntime, progress: &dyn Progress) -> Result<Rootfs, BundleError> {
        self.create_layout()?;
        let _lock = self.lock(&rt.key(), progress)?;
        // Whoever held the lock before us may have finished the job: use their result.
        if let Some(rootfs) = self.present(rt) {
            return Ok(rootfs);
        }
        self.remove_stale_temps(rt);
        let started = Instant::now();
        let mut timings = Timings::default();
        let record = match self.read_index(rt) {
            // Built before, only the unpacked tree is missing (deleted, or a crash in between).
            Some(record) if record.matches(rt) && self.bundle_path(&record.digest).is_file() => record,
            _ => self.build(rt, progress, &mut timings)?,
        };
        let rootfs = self.unpack(rt, &record, progress, &mut timings)?;
        progress.done(&timings.summary(rt, started.elapsed()));
        Ok(rootfs)
    }

    /// Downloads the package if needed, runs the recipe, stores the tarball by digest and
    /// records it in the index.
    fn build(
        &self,
        rt: &ResolvedRuntime,
        progress: &dyn Progress,
        timings: &mut Timings,
    ) -> Result<IndexRecord, BundleError> {
        // Before any download: a build a normal user cannot run is refused with the way out.
        if rt.recipe.environment == BuildEnvironment::Debian && crate::sandbox::userns::is_rootless() {
            return Err(BundleError::Rootless(crate::sandbox::userns::BUILD));
        }
        let package = self.package_path(&rt.package);
        if !fetch::keep_if_intact(&package, &rt.package.integrity)? {
            let t = Instant::now();
            match rt.package.source() {
                PackageSource::Https(url) => {
                    progress.phase(&format!("downloading {} {}", rt.package.name, rt.package.version));
                    fetch::download(url, &rt.package.integrity, &package, progress)?;
                    timings.download = Some(t.elapsed());
                }
                PackageSource::File(path) => {
                    progress.phase(&format!(
                        "copying {} {} from {}",
                        rt.package.name,
                        rt.package.version,
                        path.display()
                    ));
                    fetch::copy_local(path, &rt.package.integrity, &package, progress)?;
                    timings.copy = Some(t.elapsed());
                }
            }
        }

        let t = Instant::now();
        let work = Cleanup::new(self.root.join("tmp").join(temp_name(&format!("build-{}", rt.key()))));
        fs::create_dir(work.path()).at("create", work.path())?;
        let built = match rt.recipe.environment {
            BuildEnvironment::Host => {
                progress.phase(&format!("building {rt} rootfs (recipe {})", rt.recipe.name));
                recipe::run(&rt.recipe, &package, work.path(), None)
            }
            BuildEnvironment::Debian => {
                let builder = Builder::builtin().map_err(|e| BuilderError::Definition(Box::new(e)))?;
                let root = super::builder::ensure(self, &builder, progress)?;
                progress
                    .phase(&format!("building {rt} rootfs (recipe {}, in Debian {})", rt.recipe.name, builder.release));
                let build_root = BuildRoot { root: &root, environment: &builder.environment };
                recipe::run(&rt.recipe, &package, work.path(), Some(&build_root))
            }
        }
        .map_err(|source| BundleError::Recipe { runtime: rt.to_string(), source })?;
        let bundle = self.bundle_path(&built.digest);
        // Same name means same bytes: replacing an existing tarball changes nothing.
        fs::rename(&built.path, &bundle).at("rename into place", &bundle)?;
        let size = fs::metadata(&bundle).at("stat", &bundle)?.len();
        drop(work);
        let elapsed = t.elapsed();
        timings.build = Some(elapsed);

        let record = IndexRecord {
            runtime: rt.name.clone(),
            version: rt.version.to_string(),
            digest: built.digest,
            source: Source::Built,
            package: rt.package.clone(),
            recipe_digest: Some(rt.recipe.digest()),
            size,
            created_unix: unix_now(),
            build_millis: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        };
        self.write_index(rt, &record)?;
        Ok(record)
    }

    /// Unpacks the bundle of `record` into `rootfs/sha256-<hex>` via a temp dir and a rename,
    /// checking the tarball's digest in the same pass.
    fn unpack(
        &self,
        rt: &ResolvedRuntime,
        record: &IndexRecord,
        progress: &dyn Progress,
        timings: &mut Timings,
    ) -> Result<Rootfs, BundleError> {
        let bundle = self.bundle_path(&record.digest);
        let Some(final_dir) = self.rootfs_dir(&record.digest) else {
            return Err(self.corrupt_index(rt, &record.digest));
        };
        let rootfs = Rootfs { path: final_dir.clone(), digest: record.digest.clone() };
        // Another runtime version with the very same bundle may have unpacked it already.
        if final_dir.is_dir() {
            return Ok(rootfs);
        }
        progress.phase(&format!("unpacking {rt}"));
        let t = Instant::now();
        let temp = Cleanup::new(self.root.join("rootfs").join(temp_name(&format!(".tmp-{}", rt.key()))));
        fs::create_dir(temp.path()).at("create", temp.path())?;
        // The container's "/" must be traversable by its unprivileged user.
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755)).at("set mode of", temp.path())?;

        let file = File::open(&bundle).at("open", &bundle)?;
        let mut reader = HashingReader::<_, Sha256>::new(BufReader::with_capacity(1 << 16, file));
        let unpacked = unpack_tar_gz(&mut reader, temp.path(), &self.limits);
        // Check the digest even when unpacking failed: a corrupt tarball usually shows up as a
        // gzip or tar error first, and "corrupt" is the useful diagnosis.
        let (actual, _) = reader.finish().at("read", &bundle)?;
        let actual = format!("sha256:{}", hex::encode(actual));
        if actual != record.digest {
            let _ = fs::remove_file(&bundle);
            let _ = fs::remove_file(self.index_path(rt));
            return Err(BundleError::Corrupt { path: bundle, expected: record.digest.clone(), actual });
        }
        let stats = unpacked.map_err(|source| BundleError::Unpack { path: bundle.clone(), source })?;
        if stats.stripped_modes > 0 {
            tracing::warn!(bundle = %bundle.display(), count = stats.stripped_modes, "stripped setuid/setgid/sticky or group/other write bits");
        }
        match fs::rename(temp.path(), &final_dir) {
            Ok(()) => temp.keep(),
            // Lost a race on the same digest to a different runtime version: theirs is
            // identical, ours is removed when `temp` drops.
            Err(_) if final_dir.is_dir() => {}
            Err(source) => {
                return Err(BundleError::from(IoError::new("rename into place", final_dir, source)));
            }
        }
        timings.unpack = Some(t.elapsed());
        Ok(rootfs)
    }

    fn corrupt_index(&self, rt: &ResolvedRuntime, digest: &str) -> BundleError {
        let path = self.index_path(rt);
        let _ = fs::remove_file(&path);
        BundleError::Corrupt { path, expected: "a sha256:<hex> digest".into(), actual: digest.to_string() }
    }

    fn create_layout(&self) -> Result<(), BundleError> {
        for dir in ["packages", "bundles", "index", "rootfs", "locks", "tmp"] {
            let path = self.root.join(dir);
            fs::create_dir_all(&path).at("create", &path)?;
        }
        Ok(())
    }

    /// Takes `locks/<key>.lock`, telling the user when another process holds it.
    pub(super) fn lock(&self, key: &str, progress: &dyn Progress) -> Result<Flock<File>, BundleError> {
        let path = self.root.join("locks").join(format!("{key}.lock"));
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).at("open lock file", &path)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((file, Errno::EWOULDBLOCK)) => {
                progress.phase(&format!("waiting for another ignite process preparing {key}"));
                file
            }
            Err((_, source)) => return Err(BundleError::Lock { path, source }),
        };
        loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(lock) => return Ok(lock),
                Err((f, Errno::EINTR)) => file = f,
                Err((_, source)) => return Err(BundleError::Lock { path, source }),
            }
        }
    }

    /// Removes what a crashed process left for this runtime. Called with the runtime's lock
    /// held, so none of it can be in use.
    fn remove_stale_temps(&self, rt: &ResolvedRuntime) {
        let key = rt.key();
        let package = self.package_path(&rt.package);
        let package_name = package.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let sets = [
            ("rootfs", format!(".tmp-{key}-")),
            ("tmp", format!("build-{key}-")),
            ("bundles", format!(".import-{key}-")),
            ("packages", format!("{package_name}.partial-")),
        ];
        for (dir, prefix) in sets {
            let Ok(entries) = fs::read_dir(self.root.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    tracing::debug!(path = %entry.path().display(), "removing stale temp");
                    remove_any(&entry.path());
                }
            }
        }
    }

    fn read_index(&self, rt: &ResolvedRuntime) -> Option<IndexRecord> {
        let bytes = fs::read(self.index_path(rt)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write_index(&self, rt: &ResolvedRuntime, record: &IndexRecord) -> Result<(), BundleError> {
        let path = self.index_path(rt);
        let temp = Cleanup::new(path.with_file_name(temp_name(&format!(".{}", rt.key()))));
        let mut json = serde_json::to_vec_pretty(record).map_err(io::Error::other).at("serialize", &path)?;
        json.push(b'\n');
        fs::write(temp.path(), &json).at("write", temp.path())?;
        fs::rename(temp.path(), &path).at("rename into place", &path)?;
        temp.keep();
        Ok(())
    }

    fn index_path(&self, rt: &ResolvedRuntime) -> PathBuf {
        self.root.join("index").join(format!("{}.json", rt.key()))
    }

    /// `packages/oven+bun-linux-x64-1.4.5.tgz` for `@oven/bun-linux-x64` 1.4.5.
    fn package_path(&self, package: &Package) -> PathBuf {
        let name: String = format!("{}-{}", package.name, package.version)
            .chars()
            .filter(|c| *c != '@')
            .map(|c| match c {
                '/' => '+',
                c if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') => c,
                _ => '_',
            })
            .collect();
        self.root.join("packages").join(format!("{name}.tgz"))
    }

    fn bundle_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("bundles").join(format!("sha256-{hex}.tar.gz"))
    }

    /// `rootfs/sha256-<hex>`, or `None` if `digest` is not a well-formed sha256 digest (an index
    /// file is data, and must not steer a path anywhere else).
    fn rootfs_dir(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let well_formed = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| self.root.join("rootfs").join(format!("sha256-{hex}")))
    }
}

/// Bytes of the regular files below `dir`, without following symlinks.
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => stack.push(entry.path()),
                Ok(meta) if meta.is_file() => total += meta.len(),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::runtime::{Integrity, RECIPE_LIB, Recipe, Registry};
    use sha2::{Digest as _, Sha512};
    use std::borrow::Cow;
    use std::io::Write;
    use std::sync::Mutex;

    /// A recipe built from the real lib.sh: unpacks the fake package, adds its file to the
    /// skeleton, packs. It logs every run to `<cache>/builds.log` so tests can count builds.
    const FAKE_RECIPE: &str = r#"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ignite_require_env IGNITE_PACKAGE IGNITE_OUT IGNITE_WORK
echo built >>"$(dirname "$IGNITE_PACKAGE")/../builds.log"
root="$IGNITE_WORK/rootfs"
ignite_skeleton "$root"
mkdir -p "$IGNITE_WORK/pkg"
tar -xzf "$IGNITE_PACKAGE" -C "$IGNITE_WORK/pkg"
ignite_copy_file "$IGNITE_WORK/pkg/package/hello.txt" "$root/hello.txt" 0644
ignite_normalize "$root"
ignite_pack "$root" "$IGNITE_OUT"
"#;

    fn fake_package() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        builder.append_data(&mut header, "package/hello.txt", &b"hello\n"[..]).expect("append");
        let tar = builder.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        gz.finish().expect("gzip")
    }

    fn fake_runtime(package: &[u8], script: &str) -> ResolvedRuntime {
        let mut rt = Registry::builtin().expect("registry").resolve("bun").expect("bun");
        rt.name = "fake".into();
        rt.version = "1.0.0".parse().expect("version");
        rt.package = Package {
            name: "@test/fake".into(),
            version: "1.0.0".into(),
            // Never contacted: tests put the package into the cache first.
            url: "https://example.invalid/fake-1.0.0.tgz".into(),
            integrity: Integrity::from_sha512(Sha512::digest(package).into()),
        };
        rt.recipe = Recipe {
            name: "fake".into(),
            script: Cow::Owned(script.to_string()),
            lib: Cow::Borrowed(RECIPE_LIB),
            files: Vec::new(),
            environment: BuildEnvironment::Host,
        };
        rt
    }

    /// A store in a tempdir with the fake package already "downloaded".
    fn store_with_package(script: &str) -> (tempfile::TempDir, BundleStore, ResolvedRuntime) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BundleStore::new(dir.path().join("cache"));
        let package = fake_package();
        let rt = fake_runtime(&package, script);
        store.create_layout().expect("layout");
        fs::write(store.package_path(&rt.package), &package).expect("package");
        (dir, store, rt)
    }

    fn builds(store: &BundleStore) -> usize {
        fs::read_to_string(store.root().join("builds.log")).map(|s| s.lines().count()).unwrap_or(0)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|entries| entries.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Only final names remain: no temp dirs, partial files or work directories.
    fn assert_no_temps(store: &BundleStore) {
        let root = store.root();
        for name in names(&root.join("rootfs")) {
            assert!(name.starts_with("sha256-"), "leftover in rootfs/: {name}");
        }
        for name in names(&root.join("bundles")) {
            assert!(name.starts_with("sha256-") && name.ends_with(".tar.gz"), "leftover: {name}");
        }
        for name in names(&root.join("packages")) {
            assert!(!name.contains(".partial"), "leftover in packages/: {name}");
        }
        for name in names(&root.join("index")) {
            assert!(name.ends_with(".json") && !name.starts_with('.'), "leftover: {name}");
        }
        assert!(names(&root.join("tmp")).is_empty(), "leftover in tmp/");
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);
    impl Progress for Recorder {
        fn phase(&self, msg: &str) {
            self.0.lock().expect("lock").push(format!("phase: {msg}"));
        }
        fn bytes(&self, _: u64, _: Option<u64>) {}
        fn done(&self, msg: &str) {
            self.0.lock().expect("lock").push(format!("done: {msg}"));
        }
    }
    impl Recorder {
        fn lines(&self) -> Vec<String> {
            self.0.lock().expect("lock").clone()
        }
    }

    #[test]
    fn ensure_builds_once_then_hits_the_fast_path() {
        let (_dir, store, rt) = store_with_package(FAKE_RECIPE);
        assert_eq!(store.present(&rt), None);

        let progress = Recorder::default();
        let rootfs = store.ensure(&rt, &progress).expect("ensure");
        assert!(rootfs.digest.starts_with("sha256:") && rootfs.digest.len() == 71);
        assert_eq!(rootfs.path, store.root().join("rootfs").join(rootfs.digest.replace(':', "-")));
        assert_eq!(fs::read(rootfs.path.join("hello.txt")).expect("hello"), b"hello\n");
        for mount_point in ["app", "tmp", "proc", "sys", "dev", "etc"] {
            assert!(rootfs.path.join(mount_point).is_dir(), "{mount_point}");
        }
        let init = fs::metadata(rootfs.path.join(".ignite/init")).expect("init");
        assert!(init.is_file() && init.len() == 0);
        let lines = progress.lines();
        assert!(lines.iter().any(|l| l.starts_with("phase: building fake 1.0.0")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("phase: unpacking fake 1.0.0")), "{lines:?}");
        let done = lines.last().expect("done line");
        assert!(done.starts_with("done: fake 1.0.0 ready in "), "{done}");
        assert!(done.contains("build ") && done.contains("unpack ") && !done.contains("download"), "{done}");

        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(store.root().join("index/fake@1.0.0.json")).expect("index"))
                .expect("json");
        assert_eq!(index["digest"], rootfs.digest.as_str());
        assert_eq!(index["package"]["integrity"], rt.package.integrity.to_string().as_str());
        assert_eq!(index["source"], "built");
        assert_no_temps(&store);

        // The second call neither builds nor reads the tarball or the package: with both
        // gone it still answers, silently.
        fs::remove_file(store.bundle_path(&rootfs.digest)).expect("rm bundle");
        fs::remove_file(store.package_path(&rt.package)).expect("rm package");
        let quiet = Recorder::default();
        assert_eq!(store.ensure(&rt, &quiet).expect("again"), rootfs);
        assert!(quiet.lines().is_empty(), "{:?}", quiet.lines());
        assert_eq!(store.present(&rt), Some(rootfs.clone()));
        assert_eq!(builds(&store), 1);

        let pulled = Recorder::default();
        assert_eq!(store.pull(&rt, &pulled).expect("pull"), rootfs);
        assert_eq!(pulled.lines(), [format!("done: fake 1.0.0 already present ({})", rootfs.digest)]);
    }

    #[test]
    fn status_reads_the_index_without_building_anything() {
        let (_dir, store, mut rt) = store_with_package(FAKE_RECIPE);
        assert_eq!(store.status(&rt), BundleStatus::Absent);
        let rootfs = store.ensure(&rt, &NoProgressForTests).expect("ensure");
        let bytes = fs::metadata(store.bundle_path(&rootfs.digest)).expect("bundle").len();
        assert_eq!(store.status(&rt), BundleStatus::Present { digest: rootfs.digest.clone(), bytes });
        fs::remove_dir_all(&rootfs.path).expect("rm rootfs");
        assert_eq!(store.status(&rt), BundleStatus::Packed { digest: rootfs.digest.clone(), bytes });
        rt.recipe.script = Cow::Owned(format!("{FAKE_RECIPE}\n# changed\n"));
        match store.status(&rt) {
            BundleStatus::Stale { digest, reason, .. } => {
                assert_eq!(digest, rootfs.digest);
                assert!(reason.contains("another recipe") && reason.contains(&rt.recipe.digest()), "{reason}");
            }
            other => panic!("expected stale, got {other:?}"),
        }
        // Looking changed nothing: no build, no unpack.
        assert_eq!(builds(&store), 1);
        assert!(!rootfs.path.exists());
    }

    #[test]
    fn building_twice_gives_the_same_digest() {
        let (_a, store_a, rt) = store_with_package(FAKE_RECIPE);
        let (_b, store_b, _) = store_with_package(FAKE_RECIPE);
        let a = store_a.ensure(&rt, &NoProgressForTests).expect("a");
        let b = store_b.ensure(&rt, &NoProgressForTests).expect("b");
        assert_eq!(a.digest, b.digest);
    }

    use crate::store::bundle::NoProgress as NoProgressForTests;

    #[test]
    fn a_missing_rootfs_is_unpacked_again_without_rebuilding() {
        let (_dir, store, rt) = store_with_package(FAKE_RECIPE);
        let first = store.ensure(&rt, &NoProgressForTests).expect("ensure");
        fs::remove_dir_all(&first.path).expect("rm rootfs");
        let progress = Recorder::default();
        let second = store.ensure(&rt, &progress).expect("again");
        assert_eq!(first, second);
        assert_eq!(builds(&store), 1);
        let done = progress.lines().last().cloned().unwrap_or_default();
        assert!(done.contains("(unpack ") && !done.contains("build"), "{done}");
        assert_no_temps(&store);
    }

    #[test]
    fn a_corrupted_tarball_is_detected_removed_and_rebuilt_next_time() {
        let (_dir, store, rt) = store_with_package(FAKE_RECIPE);
        let first = store.ensure(&rt, &NoProgressForTests).expect("ensure");
        fs::remove_dir_all(&first.path).expect("rm rootfs");
        let bundle = store.bundle_path(&first.digest);
        let mut bytes = fs::read(&bundle).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        fs::write(&bundle, &bytes).expect("corrupt");

        let err = store.ensure(&rt, &NoProgressForTests).expect_err("corrupt");
        let msg = err.to_string();
        assert!(matches!(err, BundleError::Corrupt { .. }), "{msg}");
        assert!(msg.contains(&first.digest) && msg.contains("found sha256:"), "{msg}");
        assert!(!bundle.exists(), "corrupt tarball removed");
        assert!(!first.path.exists(), "nothing unpacked");
        assert_no_temps(&store);

        // The package is still cached: the next call rebuilds the same bytes.
        let again = store.ensure(&rt, &NoProgressForTests).expect("rebuild");
        assert_eq!(again, first);
        assert_eq!(builds(&store), 2);
    }

    #[test]
    fn racing_threads_both_succeed_with_one_build_and_one_rootfs() {
        let (_dir, store, rt) = store_with_package(FAKE_RECIPE);
        let results: Vec<Result<Rootfs, BundleError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| store.ensure(&rt, &NoProgressForTests))).collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        let rootfs: Vec<Rootfs> = results.into_iter().map(|r| r.expect("ensure")).collect();
        assert!(rootfs.windows(2).all(|w| w[0] == w[1]), "{rootfs:?}");
        assert_eq!(builds(&store), 1);
        assert_eq!(names(&store.root().join("rootfs")).len(), 1);
        assert_no_temps(&store);
    }

    #[test]
    fn racing_unpacks_of_an_existing_bundle_leave_one_rootfs() {
        let (_dir, store, rt) = store_with_package(FAKE_RECIPE);
        let first = store.ensure(&rt, &NoProgressForTests).expect("ensure");
        fs::remove_dir_all(&first.path).expect("rm rootfs");
        let results: Vec<Rootfs> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2).map(|_| s.spawn(|| store.ensure(&rt, &NoProgressForTests))).collect();
            handles.into_iter().map(|h| h.join().expect("thread").expect("ensure")).collect()
        });
        assert_eq!(results, [first.clone(), first]);
        assert_eq!(names(&store.root().join("rootfs")).len(), 1);
        assert_no_temps(&store);
    }

    #[test]
    fn a_failing_recipe_reports_its_stderr_and_leaves_no_temps() {
        let (_dir, store, rt) = store_with_package("echo 'ldd: cannot find libc' >&2\nexit 7\n");
        let err = store.ensure(&rt, &NoProgressForTests).expect_err("fails");
        let msg = err.to_string();
        assert!(msg.contains("failed to build the fake 1.0.0 rootfs"), "{msg}");
        let source = std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default();
        assert!(source.contains("cannot find libc"), "{source}");
        assert_no_temps(&store);
        assert!(names(&store.root().join("index")).is_empty());
    }

    #[test]
    fn a_changed_recipe_means_a_rebuild() {
        let (_dir, store, rt) = store_with_package(FAKE_RECIPE);
        store.ensure(&rt, &NoProgressForTests).expect("ensure");
        let mut changed = rt.clone();
        changed.recipe.script = Cow::Owned(format!("{FAKE_RECIPE}\n# v2\n"));
        assert_eq!(store.present(&changed), None);
        store.ensure(&changed, &NoProgressForTests).expect("rebuild");
        assert_eq!(builds(&store), 2);
    }

    #[test]
    fn a_damaged_cached_package_is_not_used() {
        let (_dir, store, rt) = store_with_package(FAKE_RECIPE);
        let package = store.package_path(&rt.package);
        fs::write(&package, b"not the package").expect("damage");
        // The download that follows goes to example.invalid and fails, which is the point: the
        // damaged file was not built from, and is gone.
        let err = store.ensure(&rt, &NoProgressForTests).expect_err("no network");
        assert!(matches!(err, BundleError::Fetch(_)), "{err}");
        assert!(!package.exists());
        assert_eq!(builds(&store), 0);
        assert_no_temps(&store);
    }

    #[test]
    fn stale_temps_of_a_crashed_process_are_removed() {
        let (_dir, store, rt) = store_with_package(FAKE_RECIPE);
        let stale = store.root().join("rootfs/.tmp-fake@1.0.0-999-0-0");
        fs::create_dir_all(stale.join("usr")).expect("stale");
        let other = store.root().join("rootfs/.tmp-other@1.0.0-999-0-0");
        fs::create_dir_all(&other).expect("other");
        store.ensure(&rt, &NoProgressForTests).expect("ensure");
        assert!(!stale.exists());
        assert!(other.exists(), "another runtime's temp may be in use");
    }

    #[test]
    fn import_installs_a_prebuilt_tarball() {
        let (dir, store, rt) = store_with_package("exit 1\n");
        let tarball = dir.path().join("prebuilt.tar.gz");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o4755); // setuid: stripped
        builder.append_data(&mut header, "usr/local/bin/fake", &b"bin"[..]).expect("append");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&builder.into_inner().expect("tar")).expect("gz");
        fs::write(&tarball, gz.finish().expect("gz")).expect("write");

        let progress = Recorder::default();
        let rootfs = store.import(&tarball, &rt, &progress).expect("import");
        let expected = sha256_of(&tarball);
        assert_eq!(rootfs.digest, expected);
        let mode = fs::metadata(rootfs.path.join("usr/local/bin/fake")).expect("bin").permissions().mode();
        assert_eq!(mode & 0o7777, 0o755);
        assert_eq!(store.present(&rt), Some(rootfs.clone()));
        assert_eq!(store.ensure(&rt, &NoProgressForTests).expect("ensure"), rootfs);
        assert!(progress.lines().last().is_some_and(|l| l.contains("(import ")));
        assert_no_temps(&store);
        assert_eq!(builds(&store), 0);
    }

    #[test]
    fn a_hostile_import_is_rejected_and_leaves_nothing_unpacked() {
        let (dir, store, rt) = store_with_package("exit 1\n");
        let tarball = dir.path().join("evil.tar.gz");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..9].copy_from_slice(b"../escape");
        header.set_size(0);
        header.set_cksum();
        builder.append(&header, &b""[..]).expect("append");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&builder.into_inner().expect("tar")).expect("gz");
        fs::write(&tarball, gz.finish().expect("gz")).expect("write");

        let err = store.import(&tarball, &rt, &NoProgressForTests).expect_err("evil");
        assert!(err.to_string().contains("refusing tar entry \"../escape\""), "{err}");
        assert!(names(&store.root().join("rootfs")).is_empty());
        assert!(!store.root().join("escape").exists());
        assert_no_temps(&store);
    }

    /// A runtime whose package is a local file (`file:` in a custom definition), and a store
    /// that does not hold the package yet.
    fn store_with_local_package(
        package: &[u8],
        recipe: Recipe,
    ) -> (tempfile::TempDir, BundleStore, ResolvedRuntime, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("local.tgz");
        fs::write(&file, package).expect("package");
        let store = BundleStore::new(dir.path().join("cache"));
        let mut rt = fake_runtime(package, "");
        rt.package.url = format!("file:{}", file.display());
        rt.recipe = recipe;
        (dir, store, rt, file)
    }

    fn fake_recipe() -> Recipe {
        Recipe {
            name: "fake".into(),
            script: Cow::Borrowed(FAKE_RECIPE),
            lib: Cow::Borrowed(RECIPE_LIB),
            files: Vec::new(),
            environment: BuildEnvironment::Host,
        }
    }

    #[test]
    fn a_local_package_is_copied_verified_and_built() {
        let (_dir, store, rt, file) = store_with_local_package(&fake_package(), fake_recipe());
        let progress = Recorder::default();
        let rootfs = store.ensure(&rt, &progress).expect("ensure");
        assert_eq!(fs::read(rootfs.path.join("hello.txt")).expect("hello"), b"hello\n");
        let lines = progress.lines();
        assert!(
            lines.iter().any(|l| l.contains(&format!("copying @test/fake 1.0.0 from {}", file.display()))),
            "{lines:?}"
        );
        let done = lines.last().expect("done line");
        assert!(done.contains("(copy ") && !done.contains("download"), "{done}");
        assert_eq!(fs::read(store.package_path(&rt.package)).expect("cached copy"), fake_package());
        assert_no_temps(&store);
    }

    #[test]
    fn a_changed_local_package_is_refused_and_not_cached() {
        let (_dir, store, rt, file) = store_with_local_package(&fake_package(), fake_recipe());
        fs::write(&file, b"replaced by something else").expect("replace");
        let err = store.ensure(&rt, &NoProgressForTests).expect_err("mismatch");
        let msg = err.to_string();
        assert!(matches!(err, BundleError::Fetch(FetchError::LocalIntegrityMismatch { .. })), "{msg}");
        assert!(msg.contains(&file.display().to_string()) && msg.contains("found sha512-"), "{msg}");
        assert!(!store.package_path(&rt.package).exists());
        assert_eq!(builds(&store), 0);
        assert_no_temps(&store);
    }

    /// A .tar.gz of `entries`: (name, kind, content or link target).
    fn tarball(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(if *kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
            match kind {
                tar::EntryType::Symlink => {
                    header.set_size(0);
                    builder.append_link(&mut header, name, data).expect("link");
                }
                _ => {
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, name, data.as_bytes()).expect("append");
                }
            }
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&builder.into_inner().expect("tar")).expect("gz");
        gz.finish().expect("gz")
    }

    fn rootfs_recipe() -> Recipe {
        crate::data::runtime::builtin_recipe("rootfs").expect("rootfs recipe")
    }

    #[test]
    fn the_rootfs_recipe_turns_a_prebuilt_tarball_into_a_rootfs() {
        use tar::EntryType::{Directory, Regular, Symlink};
        // Enough `..` to reach "/" from wherever the recipe's scratch directory is.
        let escape = format!("{}tmp/ignite-rootfs-test-escape-{}", "../".repeat(40), std::process::id());
        let package = tarball(&[
            ("usr/local/bin/", Directory, ""),
            ("usr/local/bin/tool", Regular, "#!tool\n"),
            ("bin/", Directory, ""),
            ("bin/sh", Symlink, "/usr/local/bin/tool"),
            ("etc/", Directory, ""),
            ("etc/passwd", Regular, "root:x:0:0::/:/bin/sh\n"),
            // A link where the skeleton writes: it must be replaced, never written through.
            ("etc/hosts", Symlink, &escape),
        ]);
        let (_dir, store, rt, _file) = store_with_local_package(&package, rootfs_recipe());
        let rootfs = store.ensure(&rt, &NoProgressForTests).expect("ensure");
        let root = &rootfs.path;
        assert_eq!(fs::read_to_string(root.join("usr/local/bin/tool")).expect("tool"), "#!tool\n");
        assert_eq!(fs::read_link(root.join("bin/sh")).expect("link"), Path::new("../usr/local/bin/tool"));
        assert!(fs::read_to_string(root.join("etc/passwd")).expect("passwd").contains("nobody:x:65534"));
        assert!(fs::symlink_metadata(root.join("etc/hosts")).expect("hosts").is_file());
        assert!(!Path::new(&format!("/tmp/ignite-rootfs-test-escape-{}", std::process::id())).exists());
        for dir in ["app", "node_modules", "tmp", "proc", "sys", "dev", ".ignite"] {
            assert!(fs::symlink_metadata(root.join(dir)).expect(dir).is_dir(), "{dir}");
        }
        assert!(root.join(".ignite/init").is_file());
        assert_no_temps(&store);

        // Reproducible: the same tarball gives the same bundle.
        let (_dir2, store2, rt2, _) = store_with_local_package(&package, rootfs_recipe());
        assert_eq!(store2.ensure(&rt2, &NoProgressForTests).expect("again").digest, rootfs.digest);
    }

    #[test]
    fn the_rootfs_recipe_refuses_what_it_cannot_make_safe() {
        use tar::EntryType::{Char, Directory, Fifo, Regular, Symlink};
        let dotdot = {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_old();
            header.as_old_mut().name[..12].copy_from_slice(b"../escape.sh");
            header.set_size(0);
            header.set_cksum();
            builder.append(&header, &b""[..]).expect("append");
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&builder.into_inner().expect("tar")).expect("gz");
            gz.finish().expect("gz")
        };
        let cases: [(Vec<u8>, &str); 6] = [
            (dotdot, "an absolute or '..' name: ../escape.sh"),
            (b"not a tarball".to_vec(), "is not a tar archive"),
            (tarball(&[("dev/null", Char, "")]), "something other than files, directories and links"),
            (tarball(&[("fifo", Fifo, "")]), "something other than files, directories and links"),
            (tarball(&[("tmp", Symlink, "/var/tmp")]), "/tmp in the rootfs tarball must be a directory"),
            (
                tarball(&[("etc/", Directory, ""), ("etc/passwd/", Directory, ""), ("x", Regular, "")]),
                "/etc/passwd in the rootfs tarball is a directory",
            ),
        ];
        for (package, needle) in cases {
            let (_dir, store, rt, _) = store_with_local_package(&package, rootfs_recipe());
            let err = store.ensure(&rt, &NoProgressForTests).expect_err(needle);
            let source = std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default();
            assert!(source.contains(needle), "expected {needle:?} in: {source}");
            assert_no_temps(&store);
        }
    }

    #[test]
    fn malformed_index_digests_never_become_paths() {
        let (_dir, store, rt) = store_with_package(FAKE_RECIPE);
        assert_eq!(store.rootfs_dir("sha256:../../etc"), None);
        assert_eq!(store.rootfs_dir(&format!("sha256:{}", "A".repeat(64))), None);
        let record = IndexRecord {
            runtime: rt.name.clone(),
            version: rt.version.to_string(),
            digest: "sha256:../../../tmp".into(),
            source: Source::Imported,
            package: rt.package.clone(),
            recipe_digest: None,
            size: 0,
            created_unix: 0,
            build_millis: 0,
        };
        store.write_index(&rt, &record).expect("index");
        assert_eq!(store.present(&rt), None);
    }

    /// The real thing: downloads Bun from the npm registry (~52 MB), builds and unpacks its
    /// rootfs, runs it in a chroot, then builds it again in a second cache from the same package
    /// and compares digests. Needs root (chroot) and the network, so it is run by hand:
    ///
    /// `IGNITE_TEST_CACHE=/var/lib/ignite cargo test --release --lib real_bun -- --ignored --nocapture`
    ///
    /// Without IGNITE_TEST_CACHE it uses a temp dir.
    #[test]
    #[ignore = "downloads ~52 MB from the npm registry and needs root; run by hand"]
    fn real_bun_builds_runs_and_rebuilds_identically() {
        use crate::store::bundle::StderrProgress;
        use std::process::Command;

        let temp = tempfile::tempdir().expect("tempdir");
        let cache =
            std::env::var_os("IGNITE_TEST_CACHE").map(PathBuf::from).unwrap_or_else(|| temp.path().join("cache"));
        let spec = std::env::var("IGNITE_TEST_RUNTIME").unwrap_or_else(|_| "bun".into());
        let rt = Registry::builtin().expect("registry").resolve(&spec).expect("resolve");
        let store = BundleStore::new(cache);

        let progress = StderrProgress::with_tty(false);
        let rootfs = store.pull(&rt, &progress).expect("pull");
        eprint!("{}", progress.captured());
        eprintln!("rootfs {} ({})", rootfs.path.display(), rootfs.digest);

        let t = Instant::now();
        assert_eq!(store.ensure(&rt, &NoProgressForTests).expect("hit"), rootfs);
        eprintln!("fast path: {:?}", t.elapsed());

        // `bun --version` needs nothing but the rootfs.
        let version = Command::new("chroot")
            .arg(&rootfs.path)
            .args(["/usr/local/bin/bun", "--version"])
            .output()
            .expect("chroot (coreutils) is needed");
        assert!(version.status.success(), "{}", String::from_utf8_lossy(&version.stderr));
        assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), rt.version.to_string());

        // Running code needs /proc, /dev and a writable /tmp, as a container has: mount them
        // in a private mount namespace (invisible to the host), run as nobody with the
        // runtime's command and env, and the service directory read-only at /app.
        let app = temp.path().join("app");
        fs::create_dir(&app).expect("app");
        fs::write(
            app.join("main.ts"),
            "const sum: number = 1 + 2;\nconsole.log(JSON.stringify({ sum, uid: process.getuid() }));\n",
        )
        .expect("main.ts");
        let argv = rt.command_for("main.ts").expect("command").join(" ");
        let env: Vec<String> = rt.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let r = rootfs.path.display();
        let script = format!(
            "set -e; mount -t proc proc {r}/proc; mount -t tmpfs tmpfs {r}/tmp; \
             mount --bind /dev {r}/dev; mount --bind -o ro {app} {r}/app; \
             exec env -i PATH=/usr/local/bin HOME=/tmp {env} \"$(command -v chroot)\" --userspec=65534:65534 {r} {argv}",
            app = app.display(),
            env = env.join(" "),
        );
        let out = Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c"])
            .arg(&script)
            .output()
            .expect("unshare (util-linux) is needed");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"sum":3,"uid":65534}"#);

        // A second build from the same package in another cache: same bytes, same digest.
        let again = BundleStore::new(temp.path().join("again"));
        again.create_layout().expect("layout");
        fs::copy(store.package_path(&rt.package), again.package_path(&rt.package)).expect("copy");
        let progress = StderrProgress::with_tty(false);
        let rebuilt = again.ensure(&rt, &progress).expect("rebuild");
        eprint!("{}", progress.captured());
        assert_eq!(rebuilt.digest, rootfs.digest, "the rootfs tarball is not reproducible");
    }

    fn sha256_of(path: &Path) -> String {
        super::super::sha256_file(path).expect("hash")
    }
}
