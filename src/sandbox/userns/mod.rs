//! Rootless mode: ignite run by a normal user, each sandbox in a user namespace of its own
//! that maps the container's ids onto the user's subordinate ids (`/etc/subuid`,
//! `/etc/subgid`).
//!
//! The mapping every rootless sandbox gets:
//!
//! - container uid/gid 0 is the invoking user (size 1): the OCI runtime sets the container up
//!   as that "root", which holds capabilities only over the sandbox's own namespaces and owns
//!   nothing on the host the user does not own already; the program never runs as it (the
//!   spec's process runs as a run uid and holds no capability);
//! - container ids [`FIRST_UID`]`..FIRST_UID + n` are the first `n` subordinate ids, where `n`
//!   is the smaller of the two ranges (capped at [`UID_COUNT`]). Runs keep the per-run uids of
//!   root mode (see [`crate::sandbox::identity`]), each one a distinct host id, so the limits
//!   the kernel counts per user still separate runs; only the range is shorter when the
//!   user's subordinate range is.
//!
//! Nothing else is mapped: the host's root, the user's other ids and every other host id show
//! up inside as the overflow id (nobody) and cannot be become. Writing the mapping needs the
//! setuid helpers `newuidmap`/`newgidmap` (Debian's `uidmap` package), which the OCI runtime
//! runs; they check the ranges against the same files.

pub mod holder;

use std::path::{Path, PathBuf};

use crate::sandbox::identity::{FIRST_UID, UID_COUNT};

pub use holder::{HolderError, IdMapTools, MappedNamespaces, Mapper, chown_tree};

/// Whether this process runs rootless (its effective uid is not 0).
pub fn is_rootless() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// A feature rootless mode refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{feature} is not available rootless: {why}; run ignite as root for it")]
pub struct Unsupported {
    pub feature: &'static str,
    pub why: &'static str,
}

pub const WRITABLE_ROOT: Unsupported = Unsupported {
    feature: "a writable root filesystem (security.filesystem.readOnly: false)",
    why: "the writable layer is a size-capped overlay ignite mounts on the host, which a normal user cannot mount",
};
pub const SESSIONS: Unsupported = Unsupported {
    feature: "sessions (POST /v1/sessions, the MCP session tools)",
    why: "a session's workspace is a size-capped tmpfs ignite mounts on the host, which a normal user cannot mount",
};
pub const BUILD: Unsupported = Unsupported {
    feature: "building a runtime bundle in the build environment (ignite runtime pull of a bundle not built yet)",
    why: "the build runs chrooted into the pinned build environment, which a normal user cannot do; build it as root \
          and bring it in: `ignite runtime export RUNTIME -o FILE` as root, `ignite runtime import FILE` as the user \
          (docs/offline.md)",
};
/// What rootless mode refuses (each rests on a mount or a chroot ignite makes on the host,
/// which a normal user cannot make), for `ignite doctor`, the engine and the bundle store.
pub const ALL: &[Unsupported] = &[WRITABLE_ROOT, SESSIONS, BUILD];

/// The user's runtime directory: `$XDG_RUNTIME_DIR` when it is an absolute path, else
/// `/run/user/<uid>` (what pam_systemd creates).
pub fn user_runtime_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", nix::unistd::geteuid().as_raw())))
}

/// The OCI runtime `--oci-runtime` defaults to: runc as root; rootless, crun (runc and youki
/// cannot give a rootless sandbox the same guarantees: see [`RootlessError::KeepsGroups`]).
pub fn default_oci_runtime() -> &'static str {
    if is_rootless() { "crun" } else { "runc" }
}

/// A run of subordinate ids: `start..start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

/// One entry of a user namespace's uid or gid map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// The maps of a rootless sandbox's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    pub uids: Vec<IdMap>,
    pub gids: Vec<IdMap>,
}

impl IdMaps {
    /// The host uid a container uid maps to, if it is mapped.
    pub fn host_uid(&self, container: u32) -> Option<u32> {
        host_of(&self.uids, container)
    }

    pub fn host_gid(&self, container: u32) -> Option<u32> {
        host_of(&self.gids, container)
    }
}

fn host_of(maps: &[IdMap], id: u32) -> Option<u32> {
    maps.iter()
        .find(|m| id >= m.container && u64::from(id) < u64::from(m.container) + u64::from(m.size))
        .map(|m| m.host + (id - m.container))
}

/// The files that grant subordinate ids.
pub const SUBUID_FILE: &str = "etc/subuid";
pub const SUBGID_FILE: &str = "etc/subgid";
/// The setuid helpers that write a user namespace's maps for an unprivileged caller.
pub const NEWUIDMAP: &str = "newuidmap";
pub const NEWGIDMAP: &str = "newgidmap";

/// The one-time host set-up of a user, said wherever something of it is missing.
pub fn setup_remedy(user: &str) -> String {
    format!(
        "as root: `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}` (any free range of 65536 ids), \
         `apt-get install uidmap` for newuidmap/newgidmap, and `loginctl enable-linger {user}` for a systemd user manager \
         that outlives logins; see README, \"Rootless\""
    )
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootlessError {
    #[error("rootless mode: {file} grants user {user} (uid {uid}) no subordinate ids; {remedy}", remedy = setup_remedy(user))]
    NoRange { file: String, user: String, uid: u32 },
    #[error("rootless mode: cannot read {file}: {error}; {remedy}", remedy = setup_remedy(user))]
    Unreadable { file: String, user: String, error: String },
    #[error("rootless mode: uid {0} has no user name (no entry in the password database)")]
    NoUserName(u32),
    #[error(
        "rootless mode: {0} leaves the invoking user's supplementary groups on the sandboxed program (run by a normal \
         user it cannot call setgroups), which would give the program the user's group access to files; use crun \
         (--oci-runtime crun or IGNITE_OCI_RUNTIME=crun, the rootless default)"
    )]
    KeepsGroups(&'static str),
    #[error(
        "rootless mode: `{0}` is not in PATH; the OCI runtime needs newuidmap and newgidmap to give a sandbox's user \
         namespace the user's subordinate ids (Debian/Ubuntu: apt-get install uidmap)"
    )]
    NoIdMapTool(&'static str),
}

/// The subordinate range `text` (an `/etc/subuid`-format file) grants to `user` or `id`: its
/// first entry of at least one id. Lines are `name:start:count` or `id:start:count`; comments
/// and malformed lines are skipped, as shadow's own tools do.
pub fn parse_subids(text: &str, user: &str, id: u32) -> Option<IdRange> {
    let id = id.to_string();
    text.lines().find_map(|line| {
        let line = line.trim();
        if line.starts_with('#') {
            return None;
        }
        let mut parts = line.split(':');
        let (owner, start, count) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || (owner != user && owner != id) {
            return None;
        }
        let (start, count) = (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?);
        // A range reaching past the id space is not one the kernel could map.
        (count > 0 && start.checked_add(count - 1).is_some()).then_some(IdRange { start, count })
    })
}

/// Who runs ignite rootless, and the ids granted to them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rootless {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub subuid: IdRange,
    pub subgid: IdRange,
}

impl Rootless {
    /// Reads this process's user and its ranges under `root` (a real host passes `/`).
    pub fn detect(root: &Path) -> Result<Rootless, RootlessError> {
        Rootless::for_ids(root, nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    }

    /// [`Rootless::detect`] for the user `uid` (its name from the password database).
    pub fn for_ids(root: &Path, uid: u32, gid: u32) -> Result<Rootless, RootlessError> {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .ok_or(RootlessError::NoUserName(uid))?;
        Rootless::from_files(root, uid, gid, &user)
    }

    fn from_files(root: &Path, uid: u32, gid: u32, user: &str) -> Result<Rootless, RootlessError> {
        let range = |file: &str, id: u32| {
            let path = root.join(file);
            let shown = format!("/{file}");
            match std::fs::read_to_string(&path) {
                Ok(text) => parse_subids(&text, user, id).ok_or_else(|| RootlessError::NoRange {
                    file: shown,
                    user: user.to_string(),
                    uid,
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(RootlessError::NoRange { file: shown, user: user.to_string(), uid })
                }
                Err(e) => Err(RootlessError::Unreadable { file: shown, user: user.to_string(), error: e.to_string() }),
            }
        };
        Ok(Rootless {
            uid,
            gid,
            user: user.to_string(),
            subuid: range(SUBUID_FILE, uid)?,
            subgid: range(SUBGID_FILE, gid)?,
        })
    }

    /// How many run uids this user's ranges give: the shorter range, at most [`UID_COUNT`].
    pub fn run_ids(&self) -> u32 {
        self.subuid.count.min(self.subgid.count).min(UID_COUNT)
    }

    /// The sandbox's user namespace maps (see the module's documentation).
    pub fn maps(&self) -> IdMaps {
        let n = self.run_ids();
        IdMaps {
            uids: vec![
                IdMap { container: 0, host: self.uid, size: 1 },
                IdMap { container: FIRST_UID, host: self.subuid.start, size: n },
            ],
            gids: vec![
                IdMap { container: 0, host: self.gid, size: 1 },
                IdMap { container: FIRST_UID, host: self.subgid.start, size: n },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_range_of_the_user_by_name_or_id_is_taken() {
        let text = "# comment\nalice:100000:65536\nbob:165536:0\nbob:x:1\n1001:231072:4096\nbob:300000:65536\n";
        assert_eq!(parse_subids(text, "alice", 1000), Some(IdRange { start: 100_000, count: 65_536 }));
        // An empty and a malformed entry are skipped; the id form counts too.
        assert_eq!(parse_subids(text, "bob", 1001), Some(IdRange { start: 231_072, count: 4096 }));
        assert_eq!(parse_subids(text, "bob", 1002), Some(IdRange { start: 300_000, count: 65_536 }));
        assert_eq!(parse_subids(text, "carol", 1003), None);
        assert_eq!(parse_subids("dave:4294967295:2\n", "dave", 1), None, "a range past the id space");
        assert_eq!(parse_subids("eve:1:2:3\n", "eve", 1), None, "four fields");
    }

    #[test]
    fn the_maps_give_root_to_the_user_and_the_run_uids_to_the_subordinate_range() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join(SUBUID_FILE), "tester:100000:65536\n").unwrap();
        std::fs::write(dir.path().join(SUBGID_FILE), "tester:300000:1000\n").unwrap();
        let r = Rootless::from_files(dir.path(), 1000, 1000, "tester").unwrap();
        assert_eq!(r.run_ids(), 1000, "the shorter range bounds both");
        let maps = r.maps();
        assert_eq!(maps.host_uid(0), Some(1000));
        assert_eq!(maps.host_uid(FIRST_UID), Some(100_000));
        assert_eq!(maps.host_gid(FIRST_UID + 999), Some(300_999));
        assert_eq!(maps.host_uid(FIRST_UID + 1000), None);
        assert_eq!(maps.host_uid(1), None);
        assert_eq!(maps.host_uid(65_534), None, "nobody is not mapped");
    }

    #[test]
    fn a_user_without_a_range_is_told_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join(SUBUID_FILE), "other:100000:65536\n").unwrap();
        let e = Rootless::from_files(dir.path(), 1000, 1000, "tester").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/etc/subuid grants user tester (uid 1000) no subordinate ids"), "{text}");
        assert!(text.contains("usermod --add-subuids"), "{text}");
        // No /etc/subgid at all: the same error, for that file.
        std::fs::write(dir.path().join(SUBUID_FILE), "tester:100000:65536\n").unwrap();
        let e = Rootless::from_files(dir.path(), 1000, 1000, "tester").unwrap_err();
        assert!(matches!(&e, RootlessError::NoRange { file, .. } if file == "/etc/subgid"), "{e}");
    }
}
