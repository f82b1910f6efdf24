//! A bounded, symlink-safe snapshot of a service directory, read once into memory: what gets
//! hashed is exactly what gets staged, whatever happens to the directory in between.
//!
//! The walk is [`crate::fsutil::walk`]'s, so a symlink (planted beforehand or swapped in during
//! the walk) is never followed on the host: it is recorded as a symlink and recreated as one, to
//! be resolved inside the container's view.

use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use crate::fsutil::walk::{self, EntryPath, Purpose, Visitor, WalkError};

use super::StageError;
use super::strip::{Kind, kind_of};

/// Caps on what a service directory may hold to be staged (`node_modules` and `.git` excluded).
pub const LIMITS: walk::Limits = walk::Limits { max_entries: 10_000, max_bytes: 64 * 1024 * 1024, max_depth: 32 };

/// Directories that are never staged: version-control data, and installed packages (the
/// top-level `node_modules` is mounted as it is, see [`Snapshot::node_modules`]).
const GIT: &[u8] = b".git";
pub const NODE_MODULES: &[u8] = b"node_modules";

/// What one path of the snapshot is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, bytes: Vec<u8> },
    Symlink { target: Vec<u8> },
}

/// One path of the snapshot, relative to the service directory, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub node: Node,
}

impl Entry {
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// The service directory as read: entries in a fixed order (depth first, names sorted, every
/// directory before its contents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Permission bits the staged root directory gets.
    pub root_mode: u32,
    pub entries: Vec<Entry>,
    /// Whether the service has a real `node_modules` directory at its top level. It is not
    /// copied (it can be large, and it is installed packages, not the service's code): the
    /// staged directory holds an empty mount point and the engine binds the service's own
    /// directory there read-only.
    pub node_modules: bool,
}

/// Permission bits of a staged copy: the source's read and execute bits, so that what the
/// sandbox user could not read before it cannot read now; never a write, setuid or sticky bit
/// (the mount is read-only anyway); the owner (who removes the cache) keeps full access.
pub fn staged_mode(source_mode: u32, is_dir: bool) -> u32 {
    (source_mode & 0o555) | if is_dir { 0o700 } else { 0o600 }
}

/// Reads the service directory `root` into memory, within `limits`.
pub fn snapshot(root: &Path, limits: &walk::Limits) -> Result<Snapshot, StageError> {
    let mut reader = Reader { entries: Vec::new(), node_modules: false };
    let root_mode = walk::walk(root, *limits, &mut reader)?;
    Ok(Snapshot { root_mode: staged_mode(root_mode, true), entries: reader.entries, node_modules: reader.node_modules })
}

/// Collects the walk into a [`Snapshot`]'s entries.
struct Reader {
    entries: Vec<Entry>,
    node_modules: bool,
}

impl Visitor for Reader {
    type Error = StageError;

    fn skip(&mut self, path: &EntryPath<'_>, kind: walk::Kind) -> bool {
        let name = path.name;
        if name == GIT {
            return true;
        }
        if kind == walk::Kind::Dir && name == NODE_MODULES {
            if path.depth == 0 {
                self.node_modules = true;
            } else {
                tracing::warn!(
                    path = %path.host().display(),
                    "a nested node_modules directory is not staged for runtimes that get stripped TypeScript; only the top-level one is mounted"
                );
            }
            return true;
        }
        kind != walk::Kind::Dir && kind_of(name) == Kind::Declaration
    }

    fn visit(&mut self, path: &EntryPath<'_>, entry: walk::Entry<'_>) -> Result<(), StageError> {
        let node = match entry {
            walk::Entry::Dir { mode } => Node::Dir { mode: staged_mode(mode, true) },
            walk::Entry::File(mut file) => {
                Node::File { mode: staged_mode(file.mode, false), bytes: file.read_to_end()? }
            }
            walk::Entry::Symlink { target } => Node::Symlink { target: target.into_vec() },
        };
        self.entries.push(Entry { path: path.rel.to_vec(), node });
        Ok(())
    }
}

/// What the stage's walk is for, in its limit errors.
const PURPOSE: Purpose = Purpose {
    entries: "files and directories",
    per_entry: "ignite copies the directory to strip TypeScript types",
    per_byte: "ignite copies the directory to strip TypeScript types",
    remedy: "remove what the service does not need, or use a runtime that runs TypeScript itself (bun, deno)",
};

impl From<WalkError> for StageError {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::Io(e) => StageError::Io(e),
            e => e.into_limit(&PURPOSE).map_or_else(StageError::Walk, StageError::Limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::walk::LimitError;
    use nix::sys::stat::Mode;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn paths(s: &Snapshot) -> Vec<String> {
        s.entries.iter().map(Entry::display).collect()
    }

    #[test]
    fn walks_in_a_fixed_order_and_skips_what_is_not_staged() {
        let t = tempfile::tempdir().expect("tempdir");
        write(t.path(), "b.ts", "b");
        write(t.path(), "a/z.ts", "z");
        write(t.path(), "a/types.d.ts", "declare const x: number;");
        write(t.path(), ".git/HEAD", "ref");
        write(t.path(), "node_modules/lodash/index.js", "x");
        write(t.path(), "lib/node_modules/x/index.js", "x");
        write(t.path(), "c.json", "{}");
        let s = snapshot(t.path(), &LIMITS).expect("snapshot");
        assert_eq!(paths(&s), ["a", "a/z.ts", "b.ts", "c.json", "lib"]);
        assert!(s.node_modules);
        assert_eq!(s.entries[1].node, Node::File { mode: 0o644, bytes: b"z".to_vec() });
    }

    #[test]
    fn symlinks_are_recorded_never_followed() {
        let t = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        write(outside.path(), "secret.txt", "secret");
        symlink(outside.path().join("secret.txt"), t.path().join("leak.txt")).expect("symlink");
        symlink(outside.path(), t.path().join("leakdir")).expect("symlink");
        let s = snapshot(t.path(), &LIMITS).expect("snapshot");
        let target = outside.path().join("secret.txt");
        assert_eq!(s.entries[0].node, Node::Symlink { target: target.as_os_str().as_bytes().to_vec() });
        assert!(matches!(s.entries[1].node, Node::Symlink { .. }));
        assert_eq!(s.entries.len(), 2, "nothing behind the links was read");
        // A service directory that is itself a symlink is refused (it was canonicalised before).
        let link = outside.path().join("svc");
        symlink(t.path(), &link).expect("symlink");
        assert!(matches!(snapshot(&link, &LIMITS), Err(StageError::Io { .. })));
    }

    #[test]
    fn special_files_are_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        nix::unistd::mkfifo(&t.path().join("pipe"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
        let err = snapshot(t.path(), &LIMITS).expect_err("fifo");
        assert!(err.to_string().contains("named pipe"), "{err}");
        assert!(err.to_string().contains("pipe"), "{err}");
    }

    #[test]
    fn limits_are_enforced_with_clear_errors() {
        let t = tempfile::tempdir().expect("tempdir");
        for i in 0..5 {
            write(t.path(), &format!("f{i}.js"), "0123456789");
        }
        let limits = walk::Limits { max_entries: 4, ..LIMITS };
        let err = snapshot(t.path(), &limits).expect_err("too many");
        assert!(matches!(err, StageError::Limit(LimitError::TooManyFiles { limit: 4, .. })), "{err}");
        let dir = t.path().display();
        assert_eq!(
            err.to_string(),
            format!(
                "{dir} holds more than 4 files and directories (node_modules and .git not counted); ignite copies the directory to strip TypeScript types: remove what the service does not need, or use a runtime that runs TypeScript itself (bun, deno)"
            )
        );
        let limits = walk::Limits { max_bytes: 45, ..LIMITS };
        let err = snapshot(t.path(), &limits).expect_err("too large");
        assert!(matches!(err, StageError::Limit(LimitError::TooLarge { limit: 45, .. })), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{dir} holds more than 0 MiB of files (node_modules and .git not counted); ignite copies the directory to strip TypeScript types: remove what the service does not need, or use a runtime that runs TypeScript itself (bun, deno)"
            )
        );
        let limits = walk::Limits { max_bytes: 50, ..LIMITS };
        snapshot(t.path(), &limits).expect("exactly at the byte limit");
        write(t.path(), "a/b/c/d.js", "");
        let limits = walk::Limits { max_depth: 2, ..LIMITS };
        let err = snapshot(t.path(), &limits).expect_err("too deep");
        assert!(matches!(err, StageError::Limit(LimitError::TooDeep { limit: 2, .. })), "{err}");
    }

    #[test]
    fn modes_keep_read_and_execute_bits_only() {
        assert_eq!(staged_mode(0o100644, false), 0o644);
        assert_eq!(staged_mode(0o100755, false), 0o755);
        assert_eq!(staged_mode(0o104777, false), 0o755);
        assert_eq!(staged_mode(0o100600, false), 0o600);
        assert_eq!(staged_mode(0o40755, true), 0o755);
        assert_eq!(staged_mode(0o41777, true), 0o755);
        assert_eq!(staged_mode(0o40700, true), 0o700);
        let t = tempfile::tempdir().expect("tempdir");
        write(t.path(), "run.sh", "#!/bin/sh");
        std::fs::set_permissions(t.path().join("run.sh"), std::fs::Permissions::from_mode(0o4775)).expect("chmod");
        let s = snapshot(t.path(), &LIMITS).expect("snapshot");
        assert_eq!(s.entries[0].node, Node::File { mode: 0o755, bytes: b"#!/bin/sh".to_vec() });
    }
}
