//! What `ignite doctor` found on the host: the typed facts its checks judge, serialised as the
//! `host` part of `ignite doctor --json`.

use std::path::PathBuf;

use serde::Serialize;

use super::parse::{KernelController, KernelRelease, Semver};

/// A fact, or why it could not be read (the message names the file or command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Probed<T> {
    Found(T),
    Failed { error: String },
}

impl<T> Probed<T> {
    pub fn found(&self) -> Option<&T> {
        match self {
            Probed::Found(v) => Some(v),
            Probed::Failed { .. } => None,
        }
    }

    pub fn failed(error: impl ToString) -> Self {
        Probed::Failed { error: error.to_string() }
    }
}

impl<T, E: ToString> From<Result<T, E>> for Probed<T> {
    fn from(r: Result<T, E>) -> Self {
        match r {
            Ok(v) => Probed::Found(v),
            Err(e) => Probed::failed(e),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub kernel: Probed<KernelRelease>,
    pub privileges: Probed<Privileges>,
    pub oci: OciFacts,
    /// The in-container entrypoint (`ignite-init`) every run bind-mounts.
    pub entrypoint: Probed<PathBuf>,
    pub cgroup: CgroupFacts,
    pub seccomp: SeccompFacts,
    pub landlock: LandlockFacts,
    pub user_namespaces: UserNamespaceFacts,
    /// Whether `overlay` is in /proc/filesystems.
    pub overlayfs: Probed<bool>,
    /// slirp4netns, pasta, ip.
    pub tools: Vec<Tool>,
    /// The bundle cache and the state directory.
    pub disks: Vec<Disk>,
    pub bundles: Probed<Vec<BundleFact>>,
    /// ignite's own open-file limits (`/proc/self/limits`), which bound every sandbox's.
    pub open_files: Probed<OpenFiles>,
    /// Rootless mode's prerequisites; `None` as root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootless: Option<RootlessFacts>,
}

/// What rootless mode needs (see [`crate::sandbox::userns`]).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootlessFacts {
    /// The user and its subordinate ranges.
    pub ids: Probed<crate::sandbox::userns::Rootless>,
    /// `newuidmap` and `newgidmap` on PATH (`null` when missing).
    pub newuidmap: Option<PathBuf>,
    pub newgidmap: Option<PathBuf>,
    /// The user's systemd manager: its bus socket, and the controllers it was delegated; the
    /// error says what is missing and how to get it.
    pub user_manager: Probed<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenFiles {
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Privileges {
    pub euid: u32,
    pub cap_sys_admin: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciFacts {
    /// `--oci-runtime` (or IGNITE_OCI_RUNTIME) as given.
    pub requested: String,
    /// The runtime ignite will use, or why it cannot use the one requested.
    pub selected: Probed<OciBinary>,
    /// runc, crun and youki as found on PATH, in that order.
    pub on_path: Vec<OciBinary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciBinary {
    /// `runc`, `crun` or `youki`.
    pub kind: &'static str,
    pub path: PathBuf,
    /// From `<path> --version`.
    pub version: Probed<Semver>,
    /// Whether it was built with seccomp support (from `--version`); absent when it does not
    /// say. Without it a runtime runs containers with no filter at all (youki only warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<bool>,
}

/// How the host mounts its cgroups, in the words people use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostCgroup {
    /// v1 hierarchies only.
    V1,
    /// Controllers on v1 hierarchies plus a cgroup2 mount.
    Hybrid,
    /// cgroup2 carries the controllers.
    V2,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupFacts {
    /// `null` when no cgroup filesystem is mounted at all.
    pub mode: Probed<Option<HostCgroup>>,
    pub mounts: Vec<CgroupMountFact>,
    /// /proc/cgroups: what the kernel was built with and whether each is enabled.
    pub kernel_controllers: Probed<Vec<KernelController>>,
    /// `cgroup.controllers` of the cgroup2 mount; `null` without a cgroup2 mount.
    pub unified_controllers: Option<Probed<Vec<String>>>,
    /// Where ignite's cgroups go in each hierarchy it needs: `/ignite` (cgroupfs driver) or
    /// `ignite.slice` (systemd driver).
    pub parent: Vec<ParentDir>,
    /// The cgroup2 mount's root, when cgroup2 carries the controllers.
    pub unified_root: Option<UnifiedRoot>,
    /// Whether the memory controller accounts swap: v1 `memory.memsw.*`, v2 `memory.swap.max`.
    /// `null` when it could not be told.
    pub swap_accounting: Option<bool>,
    /// SwapTotal of /proc/meminfo.
    pub swap_total_kib: Probed<u64>,
    /// Who creates the runs' cgroups here (`--cgroup-driver` resolved on this host), or why the
    /// driver asked for cannot work here.
    pub driver: Probed<crate::sandbox::cgroup::CgroupDriver>,
    pub systemd: DriverSystemd,
}

/// What the systemd cgroup driver needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverSystemd {
    /// systemd is the init system (`/run/systemd/system` exists).
    pub booted: bool,
    /// The system bus socket exists (`/run/dbus/system_bus_socket`): the OCI runtime asks
    /// systemd for each run's scope over it.
    pub system_bus: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupMountFact {
    /// `v1` or `v2`.
    pub version: &'static str,
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentDir {
    /// The hierarchy's controllers (`memory`, `cpu,cpuacct`) or `unified`.
    pub hierarchy: String,
    pub path: PathBuf,
    pub exists: bool,
    /// Something other than a directory is in the way.
    pub not_a_directory: bool,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifiedRoot {
    pub path: PathBuf,
    /// Not the kernel's root cgroup (it has `cgroup.type`): a cgroup namespace or delegated
    /// subtree, where cgroup v2's "no internal processes" rule applies.
    pub nested: bool,
    /// Processes in the root itself.
    pub processes: usize,
    pub subtree_control: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompFacts {
    /// `Seccomp:` of /proc/self/status; `null` when the kernel has no seccomp at all.
    pub mode: Probed<Option<u8>>,
    /// /proc/sys/kernel/seccomp/actions_avail; `null` when the file does not exist.
    pub actions: Probed<Option<Vec<String>>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LandlockFacts {
    pub support: LandlockSupport,
    /// /sys/kernel/security/lsm; `null` when securityfs is not mounted.
    pub lsm: Option<Vec<String>>,
}

/// What `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)` answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum LandlockSupport {
    Available {
        abi: u32,
    },
    /// EOPNOTSUPP: built in, but not in the boot-time LSM list.
    Disabled,
    /// ENOSYS: the kernel has no Landlock.
    Unsupported,
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserNamespaceFacts {
    /// user.max_user_namespaces; `null` when the sysctl does not exist (no CONFIG_USER_NS).
    pub max_user_namespaces: Probed<Option<u64>>,
    /// kernel.unprivileged_userns_clone (Debian/Ubuntu only); `null` elsewhere.
    pub unprivileged_userns_clone: Probed<Option<u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: &'static str,
    /// `null` when not on PATH.
    pub path: Option<PathBuf>,
    /// The first line of its version output.
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    /// `cache` or `state`.
    pub role: &'static str,
    pub dir: PathBuf,
    pub exists: bool,
    /// The directory measured: `dir`, or its nearest existing ancestor when it does not exist yet.
    pub measured: PathBuf,
    pub usage: Probed<DiskUsage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskUsage {
    /// What `df` shows as available (f_bavail): the filesystem's reserve is left out, as it is
    /// meant for the system, not for bundles.
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub free_inodes: u64,
    pub total_inodes: u64,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleFact {
    pub runtime: String,
    pub default_version: String,
    pub default_present: bool,
    /// Every pinned version whose bundle is unpacked in the cache, newest first.
    pub present_versions: Vec<String>,
}
