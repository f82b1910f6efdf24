//! The build environment of the built-in recipes in the cache: the pinned Debian packages of
//! `runtimes/builder/builder.yaml` downloaded and checked, their `data.tar` members unpacked
//! into one tree by the hostile-archive unpacker, and the mount points a recipe run needs.
//!
//! ```text
//! packages/debian/<file>.deb        the pinned packages (checked by sha256 on every use)
//! builders/sha256-<hex>/            the tree; renamed into place whole, so present = complete
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use crate::data::runtime::Builder;
use crate::fsutil::{At, Cleanup, IoError, temp_name};

use super::deb::{self, DebError};
use super::fetch::{self, FetchError, Progress};
use super::store::{BundleError, BundleStore};
use super::unpack::{AbsoluteLinks, TreeUnpacker, UnpackError, UnpackLimits};

/// Replaces the definition's `mirror` (an internal mirror, or a snapshot of the archive).
pub const MIRROR_ENV: &str = "IGNITE_DEBIAN_MIRROR";

/// The largest `data.tar` one package may unpack to (gcc-12's is about 70 MB).
const MAX_DATA_TAR_BYTES: u64 = 1 << 30;

/// Paths a recipe run mounts over, created in every build environment: the recipe's work
/// directory, a private /tmp, and the four character devices tools open.
pub const WORK_DIR: &str = "ignite";
pub const DEVICES: &[&str] = &["null", "zero", "random", "urandom"];

/// Errors from preparing the build environment.
#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error(
        "failed to fetch {package} for the build environment: {source}. If the archive no longer has this pinned version (a Debian point release replaces it), point {MIRROR_ENV} at a mirror that keeps it, e.g. {MIRROR_ENV}=https://snapshot.debian.org/archive/debian/20261201T000000Z, or move the pins forward with runtimes/builder/pin.sh"
    )]
    Fetch {
        package: String,
        #[source]
        source: FetchError,
    },
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error("failed to unpack {package} into the build environment: {source}")]
    Unpack {
        package: String,
        #[source]
        source: UnpackError,
    },
    #[error("{MIRROR_ENV}: {problem}")]
    Mirror { problem: String },
    #[error(transparent)]
    Definition(Box<crate::data::runtime::RuntimeError>),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Where the build environment `builder` is unpacked, preparing it first if it is not there.
/// Takes the environment's lock, so concurrent builds share one download and one unpack.
pub fn ensure(store: &BundleStore, builder: &Builder, progress: &dyn Progress) -> Result<PathBuf, BundleError> {
    let digest = builder.digest();
    let hex = digest.trim_start_matches("sha256:");
    let dir = store.root().join("builders").join(format!("sha256-{hex}"));
    if dir.is_dir() {
        return Ok(dir);
    }
    let _lock = store.lock(&format!("builder-{}", &hex[..16]), progress)?;
    if dir.is_dir() {
        return Ok(dir);
    }
    let mirror = mirror(builder)?;
    let packages = store.root().join("packages").join("debian");
    let builders = store.root().join("builders");
    for path in [&packages, &builders] {
        fs::create_dir_all(path).at("create", path)?;
    }
    remove_stale(&builders, &packages);

    let mut files = Vec::with_capacity(builder.packages.len());
    for (i, pkg) in builder.packages.iter().enumerate() {
        let path = packages.join(pkg.file_name());
        if !fetch::keep_if_intact(&path, &pkg.integrity())? {
            progress.phase(&format!(
                "downloading build environment package {}/{}: {} {}",
                i + 1,
                builder.packages.len(),
                pkg.name,
                pkg.version
            ));
            let url = Builder::url(&mirror, pkg);
            fetch::download(&url, &pkg.integrity(), &path, progress)
                .map_err(|source| BuilderError::Fetch { package: pkg.name.clone(), source })?;
        }
        files.push(path);
    }

    progress.phase(&format!("unpacking the build environment ({} Debian {} packages)", files.len(), builder.release));
    let staging = Cleanup::new(builders.join(temp_name(".tmp-builder")));
    fs::create_dir(staging.path()).at("create", staging.path())?;
    let data_tar = Cleanup::new(builders.join(temp_name(".tmp-data-tar")));
    let limits = UnpackLimits::default();
    let mut tree = TreeUnpacker::new(staging.path(), &limits, AbsoluteLinks::Relativize)
        .map_err(|source| unpack_error("the build environment", source))?;
    for (pkg, file) in builder.packages.iter().zip(&files) {
        deb::extract_data_tar(file, data_tar.path(), MAX_DATA_TAR_BYTES).map_err(BuilderError::from)?;
        let tar = fs::File::open(data_tar.path()).at("open", data_tar.path())?;
        tree.add(std::io::BufReader::with_capacity(1 << 16, tar)).map_err(|source| unpack_error(&pkg.name, source))?;
        fs::remove_file(data_tar.path()).at("remove", data_tar.path())?;
    }
    tree.finish().map_err(|source| unpack_error("the build environment", source))?;
    add_mount_points(staging.path())?;
    fs::rename(staging.path(), &dir).at("rename into place", &dir)?;
    staging.keep();
    Ok(dir)
}

fn unpack_error(package: &str, source: UnpackError) -> BundleError {
    BundleError::from(BuilderError::Unpack { package: package.to_string(), source })
}

/// The mirror to fetch from: the operator's, or the definition's.
fn mirror(builder: &Builder) -> Result<String, BuilderError> {
    match std::env::var(MIRROR_ENV) {
        Ok(value) if !value.is_empty() => {
            crate::data::runtime::check_mirror(&value).map_err(|problem| BuilderError::Mirror { problem })?;
            Ok(value)
        }
        _ => Ok(builder.mirror.clone()),
    }
}

/// Leftovers of a killed preparation (called with the lock held, so none is in use).
fn remove_stale(builders: &Path, packages: &Path) {
    for (dir, marker) in [(builders, ".tmp-"), (packages, ".partial-")] {
        let Ok(entries) = fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().contains(marker) {
                crate::fsutil::remove_any(&entry.path());
            }
        }
    }
}

fn add_mount_points(root: &Path) -> Result<(), IoError> {
    for dir in [WORK_DIR, "tmp", "dev"] {
        let path = root.join(dir);
        if !path.is_dir() {
            fs::create_dir(&path).at("create", &path)?;
        }
    }
    for device in DEVICES {
        let path = root.join("dev").join(device);
        fs::write(&path, b"").at("create", &path)?;
    }
    Ok(())
}
