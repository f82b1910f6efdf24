//! What `ignite runtime list` reports: every runtime and pinned version in the registry, where
//! its definition came from, and which bundles the cache holds. The serialised shape is the
//! documented `ignite runtime list --json` output (docs/runtimes.md, "Listing runtimes"):
//! fields may be added, existing ones keep their name and meaning.

use std::path::PathBuf;

use serde::Serialize;

use crate::data::runtime::{Origin, Registry, TypeScript};
use crate::store::bundle::BundleStore;

/// The whole listing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// The bundle cache that was inspected.
    pub cache_dir: PathBuf,
    /// The runtimes directories whose custom runtimes are included, in the order loaded.
    pub runtimes_dirs: Vec<PathBuf>,
    /// By name.
    pub runtimes: Vec<RuntimeEntry>,
}

/// One runtime definition.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeEntry {
    pub name: String,
    pub description: String,
    /// `"built-in"`, or the path of the custom definition's `runtime.yaml`.
    pub origin: String,
    /// The version a bare `NAME` resolves to.
    pub default_version: String,
    /// `native` (the runtime runs .ts itself) or `strip` (ignite strips the types first).
    pub typescript: TypeScript,
    pub entry_extensions: Vec<String>,
    /// The recipe as the definition names it: a built-in recipe or a script path.
    pub recipe: String,
    /// Newest first.
    pub versions: Vec<VersionEntry>,
}

/// One pinned version.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionEntry {
    pub version: String,
    pub default: bool,
    /// Whether the bundle is unpacked in the cache, ready to run.
    pub present: bool,
    pub package: PackageEntry,
    /// The local bundle, or `null` when it has not been pulled.
    pub bundle: Option<BundleEntry>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageEntry {
    pub name: String,
    pub version: String,
    /// `https://…`, or `file:/absolute/path` for a custom runtime's local package.
    pub url: String,
    pub integrity: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    /// `sha256:<hex>` of the rootfs tarball; also names the unpacked directory.
    pub digest: String,
    /// The unpacked, read-only rootfs.
    pub path: PathBuf,
    pub tarball_bytes: u64,
    pub unpacked_bytes: u64,
    /// `built` (by the recipe, here) or `imported`.
    pub source: &'static str,
    pub created_unix: u64,
    pub build_millis: u64,
}

/// Lists `registry` against what `store` holds.
pub fn inventory(registry: &Registry, store: &BundleStore, runtimes_dirs: &[PathBuf]) -> Inventory {
    let runtimes = registry
        .definitions()
        .map(|(def, origin)| {
            let versions = registry
                .list()
                .into_iter()
                .filter(|rt| rt.name == def.name)
                .map(|rt| {
                    let bundle = store.info(&rt).map(|b| BundleEntry {
                        digest: b.digest,
                        path: b.path,
                        tarball_bytes: b.tarball_bytes,
                        unpacked_bytes: b.unpacked_bytes,
                        source: if b.built { "built" } else { "imported" },
                        created_unix: b.created_unix,
                        build_millis: b.build_millis,
                    });
                    VersionEntry {
                        version: rt.version.to_string(),
                        default: rt.is_default,
                        present: bundle.is_some(),
                        package: PackageEntry {
                            name: rt.package.name.clone(),
                            version: rt.package.version.clone(),
                            url: rt.package.url.clone(),
                            integrity: rt.package.integrity.to_string(),
                        },
                        bundle,
                    }
                })
                .collect();
            RuntimeEntry {
                name: def.name.clone(),
                description: def.description.clone(),
                origin: match origin {
                    Origin::BuiltIn(_) => "built-in".to_string(),
                    Origin::Custom(path) => path.display().to_string(),
                },
                default_version: def.default.to_string(),
                typescript: def.typescript,
                entry_extensions: def.entry_extensions.clone(),
                recipe: def.recipe.clone(),
                versions,
            }
        })
        .collect();
    Inventory { cache_dir: store.root().to_path_buf(), runtimes_dirs: runtimes_dirs.to_vec(), runtimes }
}
