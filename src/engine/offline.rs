//! Offline archives at the façade: `ignite runtime export|import` (runtime bundles) and
//! `ignite install DIR --export|--import` (a service's dependency tree). None of them needs
//! root or an OCI runtime, except that exporting dependencies installs them first (the caller
//! does that through [`Engine::install`](super::Engine::install)).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::runtime::Registry;
use crate::data::service::Service;
use crate::store::bundle::offline::{self as bundles, ImportOutcome};
use crate::store::bundle::{BundleStore, Progress};
use crate::store::deps::{self, DepsCache, Modules, offline as trees};

use super::EngineError;

/// What `ignite runtime export` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeExport {
    pub archive: PathBuf,
    /// Size of the archive file.
    pub bytes: u64,
    /// gzip-compressed (the file name ends in `.gz` or `.tgz`).
    pub compressed: bool,
    pub bundles: Vec<ExportedBundle>,
}

/// One bundle in an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedBundle {
    /// `name@version`.
    pub runtime: String,
    /// `sha256:<hex>` of the bundle tarball: its name in every cache, and a CI cache key.
    pub digest: String,
    /// Size of the bundle tarball.
    pub bytes: u64,
}

/// What `ignite runtime import` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeImport {
    pub archive: PathBuf,
    pub bundles: Vec<ImportedBundle>,
}

/// One bundle an import handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportedBundle {
    /// `name@version`.
    pub runtime: String,
    pub digest: String,
    /// The unpacked root filesystem.
    pub path: PathBuf,
    /// `added`, `replaced` (the version used another bundle, `previous`) or `unchanged`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// Writes the bundles of the runtimes `specs` name (`bun`, `node@22`, …) to the archive `out`
/// (gzip-compressed if its name ends in `.gz` or `.tgz`), pulling any the cache lacks.
pub fn export_runtimes(
    registry: &Registry,
    specs: &[String],
    cache_dir: &Path,
    out: &Path,
    progress: &dyn Progress,
) -> Result<RuntimeExport, EngineError> {
    let runtimes = specs.iter().map(|s| registry.resolve(s)).collect::<Result<Vec<_>, _>>()?;
    let store = BundleStore::new(cache_dir.to_path_buf());
    let (exported, written) = bundles::export(&store, &runtimes, out, progress)?;
    Ok(RuntimeExport {
        archive: out.to_path_buf(),
        bytes: written.bytes,
        compressed: written.gzip,
        bundles: exported
            .into_iter()
            .map(|b| ExportedBundle { runtime: b.runtime, digest: b.digest, bytes: b.bytes })
            .collect(),
    })
}

/// Imports the archive `file` into the bundle cache: all or nothing as far as verification
/// goes (digests, runtime definitions, pinned packages); see [`bundles::import`].
pub fn import_runtimes(
    registry: &Registry,
    file: &Path,
    cache_dir: &Path,
    progress: &dyn Progress,
) -> Result<RuntimeImport, EngineError> {
    let store = BundleStore::new(cache_dir.to_path_buf());
    let imported = bundles::import(&store, registry, file, progress)?;
    Ok(RuntimeImport {
        archive: file.to_path_buf(),
        bundles: imported
            .into_iter()
            .map(|b| {
                let (outcome, previous) = match b.outcome {
                    ImportOutcome::Added => ("added", None),
                    ImportOutcome::Replaced { previous } => ("replaced", Some(previous)),
                    ImportOutcome::Unchanged => ("unchanged", None),
                };
                ImportedBundle { runtime: b.runtime, digest: b.rootfs.digest, path: b.rootfs.path, outcome, previous }
            })
            .collect(),
    })
}

/// A service's dependency tree in an archive (`ignite install DIR --export|--import`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DepsArchive {
    pub archive: PathBuf,
    /// The cache key (hex sha256 of package.json, lockfile, installer, platform, settings).
    pub key: String,
    /// `sha256:<hex>` of the packed tree.
    pub digest: String,
    pub installer: String,
    pub packages: u64,
    /// Export: the archive's size. Import: the installed bytes.
    pub bytes: u64,
    /// Import only: the cache held the tree already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchanged: Option<bool>,
}

/// The cache key of a service that has dependencies to install.
fn deps_key(svc: &Service, registry: &Registry) -> Result<String, EngineError> {
    match deps::plan(svc, registry)? {
        Modules::Install(plan) => Ok(plan.key),
        Modules::None => Err(EngineError::NoDependencyTree {
            service: svc.name.clone(),
            why: "its package.json declares no dependencies (or it has none)".into(),
        }),
        Modules::Vendored(path) => Err(EngineError::NoDependencyTree {
            service: svc.name.clone(),
            why: format!("it brings its own {}, which ignite uses as it is", path.display()),
        }),
    }
}

/// Writes the installed dependency tree of `svc` to the archive `out`; the tree must be in the
/// cache (install it first with [`Engine::install`](super::Engine::install)).
pub fn export_deps(
    svc: &Service,
    registry: &Registry,
    cache_dir: &Path,
    out: &Path,
) -> Result<DepsArchive, EngineError> {
    let key = deps_key(svc, registry)?;
    let (record, digest, written) = trees::export(&DepsCache::new(cache_dir), &key, out)?;
    Ok(DepsArchive {
        archive: out.to_path_buf(),
        key,
        digest,
        installer: record.installer,
        packages: record.packages,
        bytes: written.bytes,
        unchanged: None,
    })
}

/// Imports the archive `file` as the dependency tree of `svc`: accepted only if it holds the
/// tree of exactly the key the service's package.json, lockfile and installer give now, and
/// its bytes match their digest. Nothing is downloaded and no sandbox runs.
pub fn import_deps(
    svc: &Service,
    registry: &Registry,
    cache_dir: &Path,
    file: &Path,
) -> Result<DepsArchive, EngineError> {
    let key = deps_key(svc, registry)?;
    let imported = trees::import(&DepsCache::new(cache_dir), &key, &svc.name, file)?;
    Ok(DepsArchive {
        archive: file.to_path_buf(),
        key,
        digest: imported.digest,
        installer: imported.record.installer,
        packages: imported.record.packages,
        bytes: imported.record.bytes,
        unchanged: Some(imported.unchanged),
    })
}
