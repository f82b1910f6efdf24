//! The runtime bundles outside any run — `ignite runtime pull` and `ignite runtime list` —
//! which need neither root nor an OCI runtime, so no [`Engine`](super::Engine).

use std::path::{Path, PathBuf};

use crate::data::runtime::Registry;
use crate::host::inventory::{self, Inventory};
use crate::store::bundle::{BundleStore, Progress};

use super::EngineError;

/// A runtime bundle present in the cache after [`pull_runtime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The exact version pulled, `name@version`.
    pub runtime: String,
    /// `sha256:<hex>` of the bundle tarball.
    pub digest: String,
    /// The unpacked root filesystem.
    pub path: PathBuf,
}

/// Downloads, verifies, builds and unpacks the bundle of the runtime `spec` names (`bun`,
/// `node@22`, …), unless the cache holds it already.
pub fn pull_runtime(
    registry: &Registry,
    spec: &str,
    cache_dir: &Path,
    progress: &dyn Progress,
) -> Result<Pulled, EngineError> {
    let rt = registry.resolve(spec)?;
    let rootfs = BundleStore::new(cache_dir.to_path_buf()).pull(&rt, progress)?;
    Ok(Pulled { runtime: rt.key(), digest: rootfs.digest, path: rootfs.path })
}

/// Every runtime and pinned version of `registry`, and which bundles the cache holds; reads
/// only.
pub fn runtime_inventory(registry: &Registry, cache_dir: &Path, runtimes_dirs: &[PathBuf]) -> Inventory {
    inventory::inventory(registry, &BundleStore::new(cache_dir.to_path_buf()), runtimes_dirs)
}
