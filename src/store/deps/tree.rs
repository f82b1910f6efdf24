//! Turns what an install wrote (as the sandbox user, into a scratch directory) into a tree runs
//! can share: a fresh copy owned by the copying user (root), directories 0755, files 0644 or
//! 0755, no setuid/setgid/sticky bits, symlinks only to places inside the tree, and nothing
//! else — no devices, FIFOs or sockets.
//!
//! The source is walked without following any symlink. It cannot change under the walk: the
//! sandbox that wrote it is gone, and its parent directory is reachable only by root.

use crate::fsutil::{At, IoError};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("the install produced {kind} at {path}; only files, directories and symlinks are kept")]
    Special { path: PathBuf, kind: &'static str },
    #[error("the install produced a symlink {path} -> {target} that leaves node_modules")]
    EscapingLink { path: PathBuf, target: PathBuf },
    #[error("the installed tree exceeds {limit} {what}")]
    TooLarge { what: &'static str, limit: u64 },
}

/// Bounds on what is copied; the scratch filesystem's size already bounds the bytes, these
/// keep the copy bounded on its own.
#[derive(Debug, Clone, Copy)]
pub struct TreeLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
    pub max_depth: usize,
}

impl Default for TreeLimits {
    fn default() -> Self {
        TreeLimits { max_bytes: 4 << 30, max_entries: 2_000_000, max_depth: 256 }
    }
}

/// What was copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Package directories: `node_modules/<name>` and `node_modules/@scope/<name>`, at any depth.
    pub packages: u64,
}

/// Whether `path` is a directory — itself, not through a symlink. `Ok(false)` if it does not
/// exist; an error if it is anything else (the sandbox may have replaced it with a link).
pub fn real_dir(path: &Path) -> Result<bool, TreeError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(TreeError::Special { path: path.to_path_buf(), kind: "something other than a directory" }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(TreeError::from(IoError::new("stat", path, e))),
    }
}

/// Copies the tree at `src` (a directory named `node_modules`) to `dst`, which must not exist.
/// The caller has checked `src` and its parents with [`real_dir`].
pub fn copy_tree(src: &Path, dst: &Path, limits: &TreeLimits) -> Result<TreeStats, TreeError> {
    let mut stats = TreeStats::default();
    make_dir(dst)?;
    stats.dirs += 1;
    // (relative path inside the tree, depth)
    let mut stack: Vec<(PathBuf, usize)> = vec![(PathBuf::new(), 0)];
    let mut entries_seen = 0u64;
    while let Some((rel, depth)) = stack.pop() {
        let from_dir = src.join(&rel);
        let mut names: Vec<_> = fs::read_dir(&from_dir)
            .at("read directory", &from_dir)?
            .collect::<Result<Vec<_>, _>>()
            .at("read directory", &from_dir)?;
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            entries_seen += 1;
            if entries_seen > limits.max_entries {
                return Err(TreeError::TooLarge { what: "entries", limit: limits.max_entries });
            }
            let rel_child = rel.join(entry.file_name());
            let from = src.join(&rel_child);
            let to = dst.join(&rel_child);
            // DirEntry::file_type does not follow symlinks.
            let ft = entry.file_type().at("stat", &from)?;
            if ft.is_dir() {
                if depth + 1 > limits.max_depth {
                    return Err(TreeError::TooLarge { what: "levels of directories", limit: limits.max_depth as u64 });
                }
                make_dir(&to)?;
                stats.dirs += 1;
                if is_package_dir(&rel_child) {
                    stats.packages += 1;
                }
                stack.push((rel_child, depth + 1));
            } else if ft.is_file() {
                stats.bytes += copy_file(&from, &to)?;
                stats.files += 1;
                if stats.bytes > limits.max_bytes {
                    return Err(TreeError::TooLarge { what: "bytes", limit: limits.max_bytes });
                }
            } else if ft.is_symlink() {
                let target = fs::read_link(&from).at("read link", &from)?;
                if !stays_inside(&rel_child, &target) {
                    return Err(TreeError::EscapingLink { path: from, target });
                }
                std::os::unix::fs::symlink(&target, &to).at("create symlink", &to)?;
                stats.symlinks += 1;
            } else {
                let kind = if ft.is_block_device() || ft.is_char_device() {
                    "a device node"
                } else if ft.is_fifo() {
                    "a FIFO"
                } else if ft.is_socket() {
                    "a socket"
                } else {
                    "a special file"
                };
                return Err(TreeError::Special { path: from, kind });
            }
        }
    }
    Ok(stats)
}

fn make_dir(path: &Path) -> Result<(), TreeError> {
    fs::DirBuilder::new().mode(0o755).create(path).at("create", path)?;
    // The umask may have narrowed the mode; the sandbox user must be able to traverse.
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).at("set mode of", path)?;
    Ok(())
}

/// Copies the bytes of a regular file into a new file with a normalised mode: 0755 if the
/// source had any execute bit, else 0644. Returns the bytes copied.
fn copy_file(from: &Path, to: &Path) -> Result<u64, TreeError> {
    let mut src =
        OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(from).at("open", from)?;
    let meta = src.metadata().at("stat", from)?;
    if !meta.is_file() {
        return Err(TreeError::Special { path: from.to_path_buf(), kind: "a special file" });
    }
    let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
    let mut dst: File = OpenOptions::new().write(true).create_new(true).mode(mode).open(to).at("create", to)?;
    let n = io::copy(&mut src, &mut dst).at("copy", from)?;
    dst.set_permissions(fs::Permissions::from_mode(mode)).at("set mode of", to)?;
    Ok(n)
}

/// Whether a symlink at `link` (relative to the tree root) pointing at `target` resolves
/// inside the tree. Sound without looking at the disk because targets are restricted to
/// relative paths whose `..` components all come first: they climb only through the real
/// directories above the link (never past the root), then descend by name, and every link met
/// on the way down obeys the same rule. (`x/../..` after a link to the root could climb out.)
fn stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth: usize = link.parent().map_or(0, |p| p.components().count());
    let mut descending = false;
    for c in target.components() {
        match c {
            Component::Normal(_) => descending = true,
            Component::CurDir => {}
            Component::ParentDir if !descending => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// `lodash`, `@scope/name`, `a/node_modules/b` (relative to the top `node_modules`).
fn is_package_dir(rel: &Path) -> bool {
    let parts: Vec<&str> = rel.iter().map(|s| s.to_str().unwrap_or("")).collect();
    let Some((name, parents)) = parts.split_last() else {
        return false;
    };
    if name.starts_with('.') || name.starts_with('@') || name.is_empty() {
        return false;
    }
    // Parent "node_modules" (or the top), or a scope directory whose parent is.
    let under_modules = |p: &[&str]| p.is_empty() || p.last() == Some(&"node_modules");
    match parents.split_last() {
        None => true,
        Some((last, rest)) if last.starts_with('@') => under_modules(rest),
        Some(_) => under_modules(parents),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn write(p: &Path, text: &str, mode: u32) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn copies_a_normalised_tree() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("node_modules");
        write(&src.join("lodash/package.json"), "{}", 0o600);
        write(&src.join("lodash/cli.js"), "#!", 0o4777);
        write(&src.join("@types/node/index.d.ts"), "", 0o664);
        write(&src.join("a/node_modules/b/index.js"), "", 0o644);
        fs::create_dir_all(src.join(".bin")).unwrap();
        std::os::unix::fs::symlink("../lodash/cli.js", src.join(".bin/lodash")).unwrap();
        fs::set_permissions(src.join("lodash"), fs::Permissions::from_mode(0o3777)).unwrap();

        let dst = d.path().join("out");
        let s = copy_tree(&src, &dst, &TreeLimits::default()).unwrap();
        assert_eq!(s.packages, 4, "{s:?}"); // lodash, @types/node, a, a/node_modules/b
        assert_eq!((s.files, s.symlinks), (4, 1));
        assert_eq!(fs::read_link(dst.join(".bin/lodash")).unwrap(), Path::new("../lodash/cli.js"));
        let mode = |p: &str| fs::symlink_metadata(dst.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("lodash"), 0o755);
        assert_eq!(mode("lodash/cli.js"), 0o755);
        assert_eq!(mode("lodash/package.json"), 0o644);
        assert_eq!(mode("@types/node/index.d.ts"), 0o644);
        let me = nix::unistd::geteuid().as_raw();
        for entry in ["", "lodash", "lodash/cli.js", "@types/node/index.d.ts"] {
            assert_eq!(fs::symlink_metadata(dst.join(entry)).unwrap().uid(), me);
        }
    }

    #[test]
    fn refuses_escaping_links_and_special_files() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("node_modules");
        fs::create_dir_all(src.join("x")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("x/abs")).unwrap();
        let e = copy_tree(&src, &d.path().join("o1"), &TreeLimits::default()).unwrap_err().to_string();
        assert!(e.contains("leaves node_modules") && e.contains("/etc/shadow"), "{e}");

        fs::remove_file(src.join("x/abs")).unwrap();
        std::os::unix::fs::symlink("../../../etc", src.join("x/up")).unwrap();
        let e = copy_tree(&src, &d.path().join("o2"), &TreeLimits::default()).unwrap_err().to_string();
        assert!(e.contains("leaves node_modules"), "{e}");

        fs::remove_file(src.join("x/up")).unwrap();
        nix::unistd::mkfifo(&src.join("x/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = copy_tree(&src, &d.path().join("o3"), &TreeLimits::default()).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
    }

    #[test]
    fn real_dir_does_not_follow_links() {
        let d = tempfile::tempdir().unwrap();
        assert!(real_dir(d.path()).unwrap());
        assert!(!real_dir(&d.path().join("missing")).unwrap());
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        assert!(real_dir(&d.path().join("link")).is_err());
        fs::write(d.path().join("file"), "").unwrap();
        assert!(real_dir(&d.path().join("file")).is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("node_modules");
        write(&src.join("a/big"), &"x".repeat(1000), 0o644);
        let small = TreeLimits { max_bytes: 999, ..TreeLimits::default() };
        assert!(matches!(copy_tree(&src, &d.path().join("o1"), &small), Err(TreeError::TooLarge { .. })));
        let shallow = TreeLimits { max_depth: 0, ..TreeLimits::default() };
        assert!(matches!(copy_tree(&src, &d.path().join("o2"), &shallow), Err(TreeError::TooLarge { .. })));
    }

    #[test]
    fn link_containment() {
        assert!(stays_inside(Path::new(".bin/x"), Path::new("../lodash/cli.js")));
        assert!(stays_inside(Path::new("a/b/c"), Path::new("../../d")));
        assert!(!stays_inside(Path::new("a"), Path::new("../x")));
        assert!(!stays_inside(Path::new("a/b"), Path::new("../../x")));
        assert!(!stays_inside(Path::new("a/b"), Path::new("/x")));
        // Climbing after descending could go through a link to the root and out of the tree.
        assert!(!stays_inside(Path::new("x/y"), Path::new("../r/..")));
        assert!(stays_inside(Path::new("x/y"), Path::new("./z")));
    }
}
