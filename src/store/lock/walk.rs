//! The bounded, symlink-safe walk that fingerprints a service directory for its lock file: the
//! sha256 of every regular file and the target of every symlink, streamed (nothing is held in
//! memory but the digests).
//!
//! The walk is [`crate::fsutil::walk`]'s, as for the staging snapshot: a symlink is recorded as
//! a link and never followed, so a link to `/etc/shadow` or out of the service directory costs
//! nothing and reads nothing.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::fsutil::walk::{self, EntryPath, Purpose, Visitor, WalkError};

use super::{Digest, LOCK_FILE, LockError, TEMP_PREFIX};

/// Caps on what a lock file fingerprints (`node_modules` and `.git` excluded): the entry and
/// depth caps of staging; bytes are hashed as they stream by rather than held, so the byte cap
/// only bounds the time a check takes (about 2 s per GiB here).
pub const LIMITS: walk::Limits = walk::Limits { max_entries: 10_000, max_bytes: 1024 * 1024 * 1024, max_depth: 32 };

/// Names skipped wherever they appear: installed packages and version-control data are not
/// the service's sources.
const SKIPPED: &[&[u8]] = &[b"node_modules", b".git"];

/// What the walk found, by `/`-separated path relative to the service directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub files: BTreeMap<String, Digest>,
    pub symlinks: BTreeMap<String, String>,
}

/// Fingerprints the directory `root` (which must not itself be a symlink), within `limits`.
pub fn walk(root: &Path, limits: &walk::Limits) -> Result<Tree, LockError> {
    let mut fingerprint = Fingerprint(Tree::default());
    walk::walk(root, *limits, &mut fingerprint)?;
    Ok(fingerprint.0)
}

/// Fills a [`Tree`] from the walk.
struct Fingerprint(Tree);

impl Visitor for Fingerprint {
    type Error = LockError;

    fn skip_name(&mut self, name: &[u8], depth: usize) -> bool {
        // The lock file does not fingerprint itself, nor a half-written replacement of it.
        SKIPPED.contains(&name)
            || (depth == 0 && (name == LOCK_FILE.as_bytes() || name.starts_with(TEMP_PREFIX.as_bytes())))
    }

    fn visit(&mut self, path: &EntryPath<'_>, entry: walk::Entry<'_>) -> Result<(), LockError> {
        match entry {
            walk::Entry::Dir { .. } => {}
            walk::Entry::File(mut file) => {
                let text = text(path)?;
                let mut hasher = Sha256::new();
                file.read_chunks(|chunk| hasher.update(chunk))?;
                self.0.files.insert(text, Digest::from_sha256(hasher.finalize().into()));
            }
            walk::Entry::Symlink { target } => {
                let text = text(path)?;
                let target = target
                    .into_string()
                    .map_err(|_| LockError::NotUtf8 { path: path.host(), what: "symlink target" })?;
                self.0.symlinks.insert(text, target);
            }
        }
        Ok(())
    }
}

/// The path as the lock file spells it; names that are not UTF-8 cannot be written there.
fn text(path: &EntryPath<'_>) -> Result<String, LockError> {
    String::from_utf8(path.rel.to_vec()).map_err(|_| LockError::NotUtf8 { path: path.host(), what: "name" })
}

/// What the lock's walk is for, in its limit errors.
const PURPOSE: Purpose = Purpose {
    entries: "files, directories and symlinks",
    per_entry: "a lock file records each of them",
    per_byte: "a lock file hashes all of them",
    remedy: "remove what the service does not need",
};

impl From<WalkError> for LockError {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::Io(e) => LockError::Io(e),
            e => e.into_limit(&PURPOSE).map_or_else(LockError::Walk, LockError::Limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::walk::LimitError;
    use nix::sys::stat::Mode;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn sha(text: &str) -> Digest {
        Digest::from_sha256(Sha256::digest(text.as_bytes()).into())
    }

    #[test]
    fn fingerprints_files_and_links_and_skips_what_is_not_source() {
        let t = tempfile::tempdir().expect("tempdir");
        write(t.path(), "index.ts", "a");
        write(t.path(), "lib/types.d.ts", "declare const x: number;");
        write(t.path(), ".git/HEAD", "ref");
        write(t.path(), "node_modules/lodash/index.js", "x");
        write(t.path(), "lib/node_modules/x/index.js", "x");
        write(t.path(), "ignite.lock", "version: 1");
        write(t.path(), ".ignite.lock.tmp-1-2-3", "half");
        write(t.path(), "lib/ignite.lock", "a file like any other below the top");
        write(t.path(), ".env.example", "");
        std::fs::create_dir(t.path().join("empty")).expect("mkdir");
        symlink("../index.ts", t.path().join("lib/alias.ts")).expect("symlink");
        let tree = walk(t.path(), &LIMITS).expect("walk");
        let files: Vec<&str> = tree.files.keys().map(String::as_str).collect();
        assert_eq!(files, [".env.example", "index.ts", "lib/ignite.lock", "lib/types.d.ts"]);
        assert_eq!(tree.files["index.ts"], sha("a"));
        assert_eq!(tree.symlinks.into_iter().collect::<Vec<_>>(), [("lib/alias.ts".into(), "../index.ts".into())]);
    }

    #[test]
    fn symlinks_are_recorded_never_followed() {
        let t = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        write(outside.path(), "secret/a.txt", "secret");
        symlink(outside.path().join("secret"), t.path().join("leak")).expect("symlink");
        let tree = walk(t.path(), &LIMITS).expect("walk");
        assert!(tree.files.is_empty(), "nothing behind the link was read: {tree:?}");
        assert_eq!(tree.symlinks["leak"], outside.path().join("secret").display().to_string());
        // A directory that is itself a symlink is refused (callers canonicalise first).
        let link = outside.path().join("svc");
        symlink(t.path(), &link).expect("symlink");
        assert!(matches!(walk(&link, &LIMITS), Err(LockError::Io { .. })));
    }

    #[test]
    fn special_files_and_non_utf8_names_are_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        nix::unistd::mkfifo(&t.path().join("pipe"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
        let err = walk(t.path(), &LIMITS).expect_err("fifo");
        assert!(err.to_string().contains("named pipe") && err.to_string().contains("pipe"), "{err}");
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join(OsStr::from_bytes(b"bad\xff.ts")), "x").expect("write");
        let err = walk(t.path(), &LIMITS).expect_err("not utf-8");
        assert!(matches!(err, LockError::NotUtf8 { what: "name", .. }), "{err}");
    }

    #[test]
    fn limits_are_enforced() {
        let t = tempfile::tempdir().expect("tempdir");
        for i in 0..5 {
            write(t.path(), &format!("f{i}.js"), "0123456789");
        }
        let err = walk(t.path(), &walk::Limits { max_entries: 4, ..LIMITS }).expect_err("too many");
        assert!(matches!(err, LockError::Limit(LimitError::TooManyFiles { limit: 4, .. })), "{err}");
        let dir = t.path().display();
        assert_eq!(
            err.to_string(),
            format!(
                "{dir} holds more than 4 files, directories and symlinks (node_modules and .git not counted); a lock file records each of them: remove what the service does not need"
            )
        );
        walk(t.path(), &walk::Limits { max_entries: 5, ..LIMITS }).expect("exactly at the limit");
        let err = walk(t.path(), &walk::Limits { max_bytes: 49, ..LIMITS }).expect_err("too large");
        assert!(matches!(err, LockError::Limit(LimitError::TooLarge { limit: 49, .. })), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{dir} holds more than 0 MiB of files (node_modules and .git not counted); a lock file hashes all of them: remove what the service does not need"
            )
        );
        walk(t.path(), &walk::Limits { max_bytes: 50, ..LIMITS }).expect("exactly at the byte limit");
        write(t.path(), "a/b/c/d.js", "");
        let err = walk(t.path(), &walk::Limits { max_depth: 2, ..LIMITS }).expect_err("too deep");
        assert!(matches!(err, LockError::Limit(LimitError::TooDeep { limit: 2, .. })), "{err}");
    }
}
