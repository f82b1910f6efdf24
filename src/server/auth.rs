//! API keys: where they come from, constant-time checking, and the short id logs use instead.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use subtle::ConstantTimeEq;

use crate::engine::{OperatorFileError, read_operator_text, take_env_var};

/// Shorter keys are guessable; this catches placeholders like `changeme`.
pub const MIN_KEY_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    // Not a `source`: the CLI prints the chain and would repeat it.
    #[error("failed to read API key file {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    File(OperatorFileError),
    #[error("failed to remove {KEYS_ENV} from the environment: {0}")]
    Scrub(std::io::Error),
    #[error("{origin}: API key {what}")]
    Invalid { origin: String, what: String },
    #[error("{0} holds no API key (one key per line; lines starting with # are comments)")]
    Empty(String),
}

/// The accepted keys, kept only as SHA-256 digests.
#[derive(Clone, Default)]
pub struct Keys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} configured)", self.digests.len())
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Who a key is to the server: the full SHA-256 digest in hex. Sessions belong to it and
/// rate-limit buckets are named by it; a shortened digest would let two keys collide.
pub fn key_digest(key: &str) -> String {
    hex::encode(digest(key))
}

/// How a key is named in logs: 8 hex digits of its digest, never the key. Only for people
/// reading logs: two keys may share it, so nothing is keyed by it.
pub fn key_id(key: &str) -> String {
    hex::encode(&digest(key)[..4])
}

fn check(origin: String, key: &str) -> Result<(), KeyError> {
    let what = if key.len() < MIN_KEY_LEN {
        format!("is shorter than {MIN_KEY_LEN} characters")
    } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
        "contains whitespace or non-printable characters".to_string()
    } else {
        return Ok(());
    };
    Err(KeyError::Invalid { origin, what })
}

/// Where keys may also come from: comma-separated, read once by [`Keys::take_env`].
pub const KEYS_ENV: &str = "IGNITE_API_KEYS";

impl Keys {
    /// The value of `KEYS_ENV` (`None` when unset or blank), which is then overwritten and
    /// removed from this process's environment: no child process (the OCI runtime, hooks,
    /// slirp4netns, the install step) inherits the tenants' keys. Call it before any thread
    /// starts.
    pub fn take_env() -> Result<Option<String>, KeyError> {
        let value = take_env_var(KEYS_ENV).map_err(KeyError::Scrub)?;
        Ok(value.filter(|v| !v.trim().is_empty()))
    }

    /// Keys from `--api-key-file` (one a line, `#` comments) and `IGNITE_API_KEYS`
    /// (comma-separated); both sources add up.
    pub fn load(file: Option<&Path>, env: Option<&str>) -> Result<Keys, KeyError> {
        let mut keys = Keys::default();
        if let Some(path) = file {
            // Regular file, opened without blocking, at most 1 MiB: a pipe or /dev/zero named
            // by mistake fails at once instead of hanging or filling memory.
            let text = read_operator_text(path, "API key file", 1024 * 1024).map_err(KeyError::File)?;
            let before = keys.digests.len();
            for (i, line) in text.lines().enumerate() {
                let key = line.trim();
                if key.is_empty() || key.starts_with('#') {
                    continue;
                }
                check(format!("{} line {}", path.display(), i + 1), key)?;
                keys.digests.push(digest(key));
            }
            if keys.digests.len() == before {
                return Err(KeyError::Empty(path.display().to_string()));
            }
        }
        if let Some(list) = env {
            for (i, key) in list.split(',').map(str::trim).enumerate() {
                check(format!("IGNITE_API_KEYS entry {}", i + 1), key)?;
                keys.digests.push(digest(key));
            }
        }
        Ok(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Compares digests, so neither the length nor the content of a key leaks through timing,
    /// and looks at every key whatever matched.
    pub fn accepts(&self, presented: &str) -> bool {
        let d = digest(presented);
        let mut found = subtle::Choice::from(0);
        for k in &self.digests {
            found |= k.ct_eq(&d);
        }
        found.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_env_keys_add_up_and_comments_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "# ops\n\nfirst-key-0123456789\n  second-key-0123456789  \n").unwrap();
        let keys = Keys::load(Some(&file), Some("third-key-0123456789")).unwrap();
        assert!(keys.accepts("first-key-0123456789"));
        assert!(keys.accepts("second-key-0123456789"));
        assert!(keys.accepts("third-key-0123456789"));
        assert!(!keys.accepts("first-key-012345678"));
        assert!(!keys.accepts(""));
    }

    #[test]
    fn bad_keys_are_refused_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "# c\nshort\n").unwrap();
        let err = Keys::load(Some(&file), None).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("shorter"), "{err}");
        std::fs::write(&file, "# only a comment\n").unwrap();
        assert!(Keys::load(Some(&file), None).unwrap_err().to_string().contains("holds no API key"));
        assert!(Keys::load(None, Some("good-key-0123456789,")).unwrap_err().to_string().contains("entry 2"));
    }

    #[test]
    fn key_digest_is_the_whole_digest() {
        let d = key_digest("first-key-0123456789");
        assert_eq!(d.len(), 64);
        assert!(d.starts_with(&key_id("first-key-0123456789")));
    }

    #[test]
    fn key_id_is_short_and_not_the_key() {
        let id = key_id("first-key-0123456789");
        assert_eq!(id.len(), 8);
        assert!(!"first-key-0123456789".contains(&id));
    }
}
