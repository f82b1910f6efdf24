//! `ignite lock` without an engine: writing a service's `ignite.lock` and checking the service
//! against it need neither root nor an OCI runtime, only the runtime definitions and the bundle
//! store. (The `--locked` gate of a run is [`Engine::run`](super::Engine::run)'s.)

use std::path::{Path, PathBuf};

use crate::data::runtime::{Registry, RuntimeError};
use crate::store::bundle::{BundleStore, Progress};
use crate::store::lock::{self, BundleCheck, LockError};

pub use crate::store::lock::{Check as LockStatus, LockFile};

#[derive(Debug, thiserror::Error)]
pub enum LockfileError {
    #[error("failed to open service directory {}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{} is not a directory", path.display())]
    NotDir { path: PathBuf },
    /// The runtime definitions could not be loaded.
    #[error(transparent)]
    Registry(#[from] RuntimeError),
    #[error("{}: runtime {spec:?}", dir.display())]
    Resolve { dir: PathBuf, spec: String, source: Box<RuntimeError> },
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A lock file written (or found already up to date) by [`write_lock`].
#[derive(Debug, Clone)]
pub struct Locked {
    /// The service directory, canonical.
    pub dir: PathBuf,
    /// `<dir>/ignite.lock`.
    pub path: PathBuf,
    /// False when the file already held exactly this lock (it was left untouched).
    pub changed: bool,
    pub lock: LockFile,
}

/// A service compared with its lock file by [`verify_lock`].
#[derive(Debug, Clone)]
pub struct Verified {
    /// The service directory, canonical.
    pub dir: PathBuf,
    pub status: LockStatus,
}

/// Writes `dir/ignite.lock` for the runtime `runtime` names (else service.yaml's, else the
/// default); a bundle not yet in the cache is pulled first, as a run would pull it.
pub fn write_lock(
    dir: &Path,
    runtime: Option<&str>,
    runtimes_dirs: &[PathBuf],
    cache_dir: &Path,
    progress: &dyn Progress,
) -> Result<Locked, LockfileError> {
    let (dir, rt, store) = resolve(dir, runtime, runtimes_dirs, cache_dir)?;
    let locked = lock::snapshot(&dir, &rt, &store, progress)?;
    let written = lock::write(&dir, &locked)?;
    Ok(Locked { dir, path: written.path, changed: written.changed, lock: locked })
}

/// Compares `dir` with its lock file (pulling the runtime's bundle if missing, since a run
/// would use it); the drift is in the status, not an error.
pub fn verify_lock(
    dir: &Path,
    runtime: Option<&str>,
    runtimes_dirs: &[PathBuf],
    cache_dir: &Path,
    progress: &dyn Progress,
) -> Result<Verified, LockfileError> {
    let (dir, rt, store) = resolve(dir, runtime, runtimes_dirs, cache_dir)?;
    let status = lock::check(&dir, &rt, &store, BundleCheck::Ensure(progress))?;
    Ok(Verified { dir, status })
}

/// The canonical directory, the runtime it locks to and the bundle store.
fn resolve(
    dir: &Path,
    runtime: Option<&str>,
    runtimes_dirs: &[PathBuf],
    cache_dir: &Path,
) -> Result<(PathBuf, crate::data::runtime::ResolvedRuntime, BundleStore), LockfileError> {
    let dir = dir.canonicalize().map_err(|source| LockfileError::Open { path: dir.to_path_buf(), source })?;
    if !dir.is_dir() {
        return Err(LockfileError::NotDir { path: dir });
    }
    let registry = Registry::load(runtimes_dirs)?;
    let store = BundleStore::new(cache_dir.to_path_buf());
    let spec = lock::runtime_spec(&dir, runtime)?;
    let rt = registry.resolve(&spec).map_err(|source| LockfileError::Resolve {
        dir: dir.clone(),
        spec,
        source: Box::new(source),
    })?;
    Ok((dir, rt, store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::bundle::NoProgress;

    /// Fails before any bundle is looked at: the cache directory is never touched.
    fn write(dir: &Path, runtime: Option<&str>) -> LockfileError {
        write_lock(dir, runtime, &[], Path::new("/nonexistent-cache"), &NoProgress).unwrap_err()
    }

    #[test]
    fn a_missing_directory_is_named_as_given() {
        let e = write(Path::new("/nonexistent-service"), None);
        assert!(matches!(e, LockfileError::Open { .. }), "{e:?}");
        assert_eq!(e.to_string(), "failed to open service directory /nonexistent-service");
    }

    #[test]
    fn a_file_is_not_a_service_directory() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = verify_lock(&file, None, &[], Path::new("/nonexistent-cache"), &NoProgress).unwrap_err();
        assert!(matches!(e, LockfileError::NotDir { .. }), "{e:?}");
    }

    #[test]
    fn an_unknown_runtime_names_the_directory_and_the_spec() {
        let d = tempfile::tempdir().unwrap();
        let e = write(d.path(), Some("nosuch@1"));
        let dir = d.path().canonicalize().unwrap();
        assert_eq!(e.to_string(), format!("{}: runtime \"nosuch@1\"", dir.display()));
        let source = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
        assert!(source.contains("unknown runtime \"nosuch\""), "{source}");
    }
}
