//! What a spec needs to join a user-mode network ignite set up (see `crate::sandbox::netns`): the
//! namespace, identified so that it can be told apart from the host's, and the resolver
//! configuration bound at `/etc/resolv.conf`.

use std::path::PathBuf;

use crate::sandbox::userns::IdMaps;

/// Where the generated resolver configuration is bound (an empty file in every rootfs).
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// A namespace's identity: the device and inode of its nsfs file (what `stat` on
/// `/proc/<pid>/ns/net` reports). Two paths name the same namespace iff these are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

/// Permission for one spec to join one network namespace: the one at `path`, which ignite
/// created and identified as `id` when it did, and which is none of the `host` namespaces
/// (ignite's own and, when readable, that of the host's pid 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsGrant {
    pub path: PathBuf,
    pub id: NsId,
    pub host: Vec<NsId>,
    /// Rootless: the user namespace that owns the network namespace, which the spec joins too
    /// (a process can only join a network namespace from within the user namespace that owns
    /// it). `None` as root, where the network namespace is the host user namespace's.
    pub userns: Option<UsernsGrant>,
}

/// Permission for one spec to join one user namespace: the one at `path`, which ignite
/// created as `id` and gave exactly `maps` (the same maps a rootless sandbox's own user
/// namespace gets; the spec validator checks them as it checks those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernsGrant {
    pub path: PathBuf,
    pub id: NsId,
    pub maps: IdMaps,
}

/// A network for a sandbox: the namespace its spec joins and the resolv.conf bound read-only
/// at [`RESOLV_CONF`] (naming the user-mode network's DNS forwarder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAttach {
    pub netns: NetnsGrant,
    pub resolv_conf: PathBuf,
}
