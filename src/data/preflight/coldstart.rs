//! The cold start this host measured last for each runtime version: written by every real
//! run, read by preflight. One small JSON file per runtime version under
//! `<cache>/measurements/cold-start/`, replaced atomically (temp file + rename), so a reader
//! sees the previous measurement or the new one, never half of one, and separate ignite
//! processes (the CLI, a server) share it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::{At, IoError};
use serde::{Deserialize, Serialize};

/// Below the cache directory.
const DIR: &str = "measurements/cold-start";
/// Larger files are not measurements ignite wrote.
const MAX_BYTES: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path} is not a cold-start measurement ({reason}); the next run replaces it")]
    Invalid { path: PathBuf, reason: String },
    #[error("runtime key {0:?} cannot name a file")]
    BadKey(String),
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ColdStart {
    /// `name@version`.
    pub runtime: String,
    /// Launching the OCI runtime → the runtime's exec inside the new sandbox (the report's
    /// `metrics.initTimeMs`).
    pub ms: f64,
    /// RFC 3339 UTC time of the run that measured it.
    pub measured_at: String,
}

/// The measurements of one cache directory.
#[derive(Debug, Clone)]
pub struct ColdStarts {
    dir: PathBuf,
}

impl ColdStarts {
    pub fn new(cache_dir: &Path) -> ColdStarts {
        ColdStarts { dir: cache_dir.join(DIR) }
    }

    fn path(&self, runtime: &str) -> Result<PathBuf, ColdStartError> {
        // A runtime key is `name@version` of validated parts; anything else must not become a path.
        let ok = !runtime.is_empty()
            && runtime.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'-'))
            && !runtime.starts_with('.');
        if !ok {
            return Err(ColdStartError::BadKey(runtime.to_string()));
        }
        Ok(self.dir.join(format!("{runtime}.json")))
    }

    /// The last measurement of `runtime`, `None` when there is none yet.
    pub fn last(&self, runtime: &str) -> Result<Option<ColdStart>, ColdStartError> {
        let path = self.path(runtime)?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ColdStartError::from(IoError::new("stat", path, source))),
        };
        if !meta.is_file() || meta.len() > MAX_BYTES {
            return Err(ColdStartError::Invalid { path, reason: "not a small regular file".into() });
        }
        let bytes = fs::read(&path).at("read", &path)?;
        let m: ColdStart = serde_json::from_slice(&bytes)
            .map_err(|e| ColdStartError::Invalid { path: path.clone(), reason: e.to_string() })?;
        if m.runtime != runtime || !m.ms.is_finite() || m.ms < 0.0 {
            return Err(ColdStartError::Invalid {
                path,
                reason: format!("it records {:?} taking {} ms", m.runtime, m.ms),
            });
        }
        Ok(Some(m))
    }

    /// Replaces the measurement of `m.runtime`.
    pub fn record(&self, m: &ColdStart) -> Result<(), ColdStartError> {
        let path = self.path(&m.runtime)?;
        fs::create_dir_all(&self.dir).at("create", &self.dir)?;
        let temp = crate::fsutil::Cleanup::new(self.dir.join(crate::fsutil::temp_name(&format!(".{}", m.runtime))));
        let json =
            serde_json::to_vec(m).map_err(|e| ColdStartError::Invalid { path: path.clone(), reason: e.to_string() })?;
        fs::write(temp.path(), json).at("write", temp.path())?;
        fs::rename(temp.path(), &path).at("rename into place", &path)?;
        temp.keep();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(runtime: &str, ms: f64) -> ColdStart {
        ColdStart { runtime: runtime.into(), ms, measured_at: "2026-01-01T00:00:00.000Z".into() }
    }

    #[test]
    fn none_until_recorded_then_the_last_one() {
        let d = tempfile::tempdir().unwrap();
        let store = ColdStarts::new(d.path());
        assert_eq!(store.last("bun@1.4.5").unwrap(), None);
        store.record(&m("bun@1.4.5", 41.5)).unwrap();
        store.record(&m("bun@1.4.5", 38.0)).unwrap();
        store.record(&m("node@24.21.0", 50.0)).unwrap();
        assert_eq!(store.last("bun@1.4.5").unwrap(), Some(m("bun@1.4.5", 38.0)));
        // Another process (a new store on the same directory) sees it: it is on disk.
        assert_eq!(ColdStarts::new(d.path()).last("node@24.21.0").unwrap().unwrap().ms, 50.0);
        // No temp files are left beside the measurements.
        let names: Vec<_> = fs::read_dir(d.path().join(DIR)).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn damaged_files_and_bad_keys_are_errors_not_values() {
        let d = tempfile::tempdir().unwrap();
        let store = ColdStarts::new(d.path());
        fs::create_dir_all(d.path().join(DIR)).unwrap();
        fs::write(d.path().join(DIR).join("bun@1.4.5.json"), "{not json").unwrap();
        let e = store.last("bun@1.4.5").unwrap_err().to_string();
        assert!(e.contains("bun@1.4.5.json") && e.contains("next run replaces it"), "{e}");
        store.record(&m("deno@2.9.6", 1.0)).unwrap();
        fs::rename(d.path().join(DIR).join("deno@2.9.6.json"), d.path().join(DIR).join("bun@1.4.5.json")).unwrap();
        assert!(store.last("bun@1.4.5").is_err(), "a file about another runtime is not this runtime's measurement");
        assert!(matches!(store.last("../x"), Err(ColdStartError::BadKey(_))));
        assert!(matches!(store.record(&m("a/b", 1.0)), Err(ColdStartError::BadKey(_))));
    }
}
