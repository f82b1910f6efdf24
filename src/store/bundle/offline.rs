//! Runtime bundles in offline archives ([`crate::store::archive`]): export the bundles of some
//! runtime versions with their index records, and import such an archive into a store —
//! every bundle verified against its recorded digest, and every entry checked against this
//! ignite's runtime definitions, before any of them enters the store.

use std::path::Path;

use super::store::{BundleStore, IndexRecord};
use super::{Progress, Rootfs};
use crate::data::runtime::{Registry, ResolvedRuntime};
use crate::fsutil::At;
use crate::store::archive::{self, ArchiveError, Contents, Entry, Source};

/// One bundle an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedBundle {
    /// `name@version`.
    pub runtime: String,
    pub digest: String,
    pub bytes: u64,
}

/// One bundle an import handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedBundle {
    /// `name@version`.
    pub runtime: String,
    pub rootfs: Rootfs,
    pub outcome: ImportOutcome,
}

/// What an import changed for one runtime version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The store had no bundle for it.
    Added,
    /// The store used another bundle for it (this digest), which the import replaced.
    Replaced { previous: String },
    /// The store already used this very bundle.
    Unchanged,
}

/// Writes the bundles of `runtimes` (pulled first where the store lacks them) to the archive
/// `out`. Returns what it wrote and the archive's size.
pub fn export(
    store: &BundleStore,
    runtimes: &[ResolvedRuntime],
    out: &Path,
    progress: &dyn Progress,
) -> Result<(Vec<ExportedBundle>, archive::Written), ArchiveError> {
    let mut entries: Vec<Entry<IndexRecord>> = Vec::new();
    let mut sources = Vec::new();
    let mut exported = Vec::new();
    for rt in runtimes {
        if entries.iter().any(|e| e.record.runtime == rt.name && e.record.version == rt.version.to_string()) {
            continue;
        }
        store.ensure_unpacked(rt, progress)?;
        let not_cached = |hint: String| ArchiveError::NotCached { what: format!("the bundle of {rt}"), hint };
        let record = store.record(rt).ok_or_else(|| not_cached(format!("pull it with `ignite runtime pull {rt}`")))?;
        let path = store.bundle_file(&record.digest).ok_or_else(|| not_cached("its index record is damaged".into()))?;
        if !path.is_file() {
            return Err(not_cached(format!(
                "its tarball {} is gone (the unpacked rootfs remains); remove {}/index/{}.json and pull it again",
                path.display(),
                store.root().display(),
                rt.key()
            )));
        }
        let size = std::fs::metadata(&path).at("stat", &path)?.len();
        let member = format!("bundles/{}", file_name(&path));
        exported.push(ExportedBundle { runtime: rt.key(), digest: record.digest.clone(), bytes: size });
        entries.push(Entry { member: member.clone(), digest: record.digest.clone(), size, record });
        sources.push(Source { member, path });
    }
    let written = archive::write(out, Contents::Bundles, &entries, &sources)?;
    Ok((exported, written))
}

/// Imports the bundles of the archive `file` into `store`. Every entry must name a runtime
/// version `registry` defines, built from the very package it pins, and every bundle must
/// match its recorded digest: otherwise nothing is imported. Each bundle is then unpacked
/// (with the hostile-archive rules of every bundle) and recorded as imported.
pub fn import(
    store: &BundleStore,
    registry: &Registry,
    file: &Path,
    progress: &dyn Progress,
) -> Result<Vec<ImportedBundle>, ArchiveError> {
    let staging = store.staging_dir()?;
    progress.phase(&format!("verifying {}", file.display()));
    let mut resolved: Vec<ResolvedRuntime> = Vec::new();
    let (entries, staged) = archive::read::<IndexRecord>(file, Contents::Bundles, &staging, |entries| {
        for e in entries {
            let key = format!("{}@{}", e.record.runtime, e.record.version);
            if e.record.digest != e.digest {
                return Err(ArchiveError::Manifest {
                    path: file.to_path_buf(),
                    problem: format!("the entry of {key} records bundle {} but carries {}", e.record.digest, e.digest),
                });
            }
            if e.record.runtime.contains('@') || rt_version_is_partial(&e.record.version) {
                return Err(ArchiveError::Manifest {
                    path: file.to_path_buf(),
                    problem: format!("the entry of {key:?} does not name one exact runtime version"),
                });
            }
            let rt = registry.resolve(&key).map_err(|source| ArchiveError::UnknownRuntime {
                path: file.to_path_buf(),
                runtime: key.clone(),
                source: Box::new(source),
            })?;
            if rt.package.integrity != e.record.package.integrity {
                return Err(ArchiveError::PackageMismatch {
                    path: file.to_path_buf(),
                    runtime: key,
                    archived: format!(
                        "{} {} ({})",
                        e.record.package.name, e.record.package.version, e.record.package.integrity
                    ),
                    pinned: format!("{} {} ({})", rt.package.name, rt.package.version, rt.package.integrity),
                });
            }
            resolved.push(rt);
        }
        Ok(())
    })?;
    let mut imported = Vec::new();
    for (entry, rt) in entries.iter().zip(&resolved) {
        // Entries may share a member: the first moves the file into the store, the others
        // find it there. What is left in `staged` is removed when it drops.
        let staged_path = staged.get(&entry.member).map(|s| s.file.path().to_path_buf()).unwrap_or_default();
        let (rootfs, outcome) = store.adopt(rt, &entry.record, &staged_path, progress)?;
        imported.push(ImportedBundle { runtime: rt.key(), rootfs, outcome });
    }
    drop(staged);
    Ok(imported)
}

/// Whether a version is not `MAJOR.MINOR.PATCH` (a prefix would resolve to the newest match).
fn rt_version_is_partial(version: &str) -> bool {
    version.split('.').count() != 3
        || version.split('.').any(|c| c.is_empty() || !c.bytes().all(|b| b.is_ascii_digit()))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
