//! Who creates a sandbox's cgroup, and where: the OCI runtime itself in cgroupfs, or systemd,
//! asked by the OCI runtime for a transient scope.
//!
//! On a host where systemd is PID 1 and the tree is pure cgroup v2, systemd owns the tree: it
//! is the single writer of every cgroup outside the subtrees it delegated, and a program that
//! creates its own directories beside systemd's slices works against that rule (systemd's
//! "Control Group APIs and Delegation"). There the sandboxes' cgroups are transient scopes that
//! the OCI runtime asks systemd for (runc's, crun's and youki's `--systemd-cgroup`):
//! `ignite.slice/ignite-<run id>.scope`, each with `Delegate=yes`, with the run's limits as
//! unit properties, listed by `systemctl status ignite.slice`, and removed by systemd when the
//! scope's last process is gone. This is what container engines do on such hosts (podman,
//! containerd and the kubelet default to the systemd driver there). Everywhere else — cgroup v1
//! or hybrid trees, v2 without systemd — the OCI runtime creates `/ignite/<run id>` in cgroupfs.
//!
//! Either way ignite finds the cgroup from the container's init (`/proc/<pid>/cgroup`), so its
//! accounting and leftover cleanup do not depend on the driver.

use std::path::Path;
use std::str::FromStr;

use super::CgroupMode;

/// The systemd slice the sandboxes' scopes are created in.
pub const SLICE: &str = "ignite.slice";
/// Prefix of each scope's name: `ignite-<run id>.scope`.
pub const SCOPE_PREFIX: &str = "ignite";
/// The cgroupfs parent on hosts without the systemd driver (`/ignite/<run id>`).
pub const CGROUPFS_PARENT: &str = "ignite";
/// systemd's marker that it runs as the init system (what `sd_booted()` checks).
pub const SYSTEMD_BOOTED_MARKER: &str = "run/systemd/system";
/// The system bus, over which the OCI runtime asks systemd for scopes.
pub const SYSTEM_BUS_SOCKET: &str = "run/dbus/system_bus_socket";

/// How sandboxes' cgroups are created on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// The OCI runtime writes `/ignite/<id>` in cgroupfs itself.
    Cgroupfs,
    /// The OCI runtime asks systemd for `ignite.slice/ignite-<id>.scope` (`--systemd-cgroup`).
    Systemd,
}

/// What the operator asked for (`--cgroup-driver`, `IGNITE_CGROUP_DRIVER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverChoice {
    /// systemd on a pure cgroup v2 host booted with systemd, cgroupfs otherwise.
    #[default]
    Auto,
    Fixed(CgroupDriver),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("unknown cgroup driver {0:?}: expected auto, systemd or cgroupfs")]
    Unknown(String),
    #[error(
        "the systemd cgroup driver needs a pure cgroup v2 host booted with systemd; this host {0}; \
         use --cgroup-driver cgroupfs (or auto)"
    )]
    SystemdUnavailable(&'static str),
    #[error(
        "rootless mode takes its memory, CPU and process limits from systemd's delegation to the user's \
         manager, which needs a pure cgroup v2 host booted with systemd; this host {0}. Run ignite as root here"
    )]
    RootlessUnavailable(&'static str),
    #[error(
        "--cgroup-driver cgroupfs cannot limit rootless sandboxes (a normal user cannot create cgroups; the \
         OCI runtime would run them without limits); use --cgroup-driver systemd or auto"
    )]
    RootlessCgroupfs,
    #[error(
        "rootless mode needs the systemd user manager of uid {uid}, and its bus {bus} is not there: log in \
         through a PAM session (ssh, `machinectl shell USER@`), or have root run `loginctl enable-linger USER`; \
         set XDG_RUNTIME_DIR if it is not /run/user/{uid}"
    )]
    NoUserManager { uid: u32, bus: String },
    #[error(
        "rootless mode needs the {missing} controller(s) delegated to the user's systemd manager, and {file} \
         lists only \"{found}\"; as root: `mkdir -p /etc/systemd/system/user@.service.d && printf \
         '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf \
         && systemctl daemon-reload`, then log in again"
    )]
    NotDelegated { missing: String, file: String, found: String },
}

/// The controllers a rootless sandbox's limits need in the user's delegated subtree.
pub const DELEGATED_CONTROLLERS: &[&str] = &["cpu", "memory", "pids"];

/// The cgroup (relative to the cgroup2 root) of uid's systemd user manager, under which its
/// transient scopes are created.
pub fn user_manager_dir(uid: u32) -> String {
    format!("user.slice/user-{uid}.slice/user@{uid}.service")
}

/// What rootless mode needs from the host: a unified tree run by systemd, the user's manager
/// reachable on `bus` (a socket path), and the limit controllers delegated to it. `root` is
/// `/` on a real host.
pub fn check_rootless(
    facts: &DriverFacts,
    driver: CgroupDriver,
    root: &Path,
    uid: u32,
    bus: &Path,
) -> Result<(), DriverError> {
    if let Some(why) = facts.systemd_unavailable() {
        return Err(DriverError::RootlessUnavailable(why));
    }
    if driver != CgroupDriver::Systemd {
        return Err(DriverError::RootlessCgroupfs);
    }
    if !root.join(bus.strip_prefix("/").unwrap_or(bus)).exists() {
        return Err(DriverError::NoUserManager { uid, bus: bus.display().to_string() });
    }
    let file = root.join("sys/fs/cgroup").join(user_manager_dir(uid)).join("cgroup.controllers");
    let found = std::fs::read_to_string(&file).unwrap_or_default();
    let have: Vec<&str> = found.split_whitespace().collect();
    let missing: Vec<&str> = DELEGATED_CONTROLLERS.iter().copied().filter(|c| !have.contains(c)).collect();
    if !missing.is_empty() {
        return Err(DriverError::NotDelegated {
            missing: missing.join(", "),
            file: format!("/sys/fs/cgroup/{}/cgroup.controllers", user_manager_dir(uid)),
            found: found.trim().to_string(),
        });
    }
    Ok(())
}

/// The driver a rootless ignite uses for `choice`, checked with [`check_rootless`] against the
/// user manager on `bus`: rootless limits come only from systemd, so `auto` resolves to it even
/// where it would not resolve at all (and the check then says why the host cannot give it).
pub fn rootless_driver(
    choice: DriverChoice,
    facts: &DriverFacts,
    root: &Path,
    uid: u32,
    bus: &Path,
) -> Result<CgroupDriver, DriverError> {
    let driver = choice.resolve(facts).unwrap_or(CgroupDriver::Systemd);
    check_rootless(facts, driver, root, uid, bus)?;
    Ok(driver)
}

impl FromStr for DriverChoice {
    type Err = DriverError;

    fn from_str(s: &str) -> Result<DriverChoice, DriverError> {
        match s.trim() {
            "" | "auto" => Ok(DriverChoice::Auto),
            "systemd" => Ok(DriverChoice::Fixed(CgroupDriver::Systemd)),
            "cgroupfs" => Ok(DriverChoice::Fixed(CgroupDriver::Cgroupfs)),
            other => Err(DriverError::Unknown(other.to_string())),
        }
    }
}

/// What decides the driver, read from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverFacts {
    pub mode: Option<CgroupMode>,
    /// `/run/systemd/system` is a directory: systemd is the init system.
    pub systemd_booted: bool,
}

impl DriverFacts {
    /// Reads the facts under `root` (a real host passes `/`): the cgroup mounts from
    /// `/proc/self/mountinfo` and systemd's marker directory.
    pub fn read(root: &Path) -> DriverFacts {
        let mode = super::self_mountinfo(&root.join("proc"))
            .ok()
            .and_then(|m| super::parse_cgroup_mounts(&m).ok())
            .and_then(|mounts| super::detect_mode(&mounts));
        DriverFacts { mode, systemd_booted: root.join(SYSTEMD_BOOTED_MARKER).is_dir() }
    }

    /// Why the systemd driver cannot work here, if it cannot.
    fn systemd_unavailable(&self) -> Option<&'static str> {
        match (self.mode, self.systemd_booted) {
            (Some(CgroupMode::Unified), true) => None,
            (Some(CgroupMode::Unified), false) => Some("was not booted with systemd"),
            (None, _) => Some("has no cgroup filesystem"),
            (Some(_), _) => Some("keeps its controllers on cgroup v1"),
        }
    }
}

impl DriverChoice {
    /// The driver for a host with `facts`. Asking for systemd where it cannot work is an error
    /// now rather than a failure of every run.
    pub fn resolve(self, facts: &DriverFacts) -> Result<CgroupDriver, DriverError> {
        match self {
            DriverChoice::Auto if facts.systemd_unavailable().is_none() => Ok(CgroupDriver::Systemd),
            DriverChoice::Auto => Ok(CgroupDriver::Cgroupfs),
            DriverChoice::Fixed(CgroupDriver::Systemd) => match facts.systemd_unavailable() {
                None => Ok(CgroupDriver::Systemd),
                Some(why) => Err(DriverError::SystemdUnavailable(why)),
            },
            DriverChoice::Fixed(d) => Ok(d),
        }
    }
}

impl CgroupDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }

    /// The spec's `linux.cgroupsPath` for run `id`: a path for cgroupfs, `slice:prefix:name`
    /// for the OCI runtimes' systemd drivers.
    pub fn cgroups_path(self, id: &str) -> String {
        match self {
            CgroupDriver::Cgroupfs => format!("/{CGROUPFS_PARENT}/{id}"),
            CgroupDriver::Systemd => format!("{SLICE}:{SCOPE_PREFIX}:{id}"),
        }
    }

    /// Where run `id`'s cgroup lives, relative to the cgroup2 root (unified hosts).
    pub fn unified_dir(self, id: &str) -> String {
        match self {
            CgroupDriver::Cgroupfs => format!("{CGROUPFS_PARENT}/{id}"),
            CgroupDriver::Systemd => format!("{SLICE}/{SCOPE_PREFIX}-{id}.scope"),
        }
    }

    /// Whether the OCI runtime is run with `--systemd-cgroup`.
    pub fn systemd(self) -> bool {
        self == CgroupDriver::Systemd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(mode: Option<CgroupMode>, systemd_booted: bool) -> DriverFacts {
        DriverFacts { mode, systemd_booted }
    }

    #[test]
    fn auto_is_systemd_only_on_pure_v2_hosts_booted_with_systemd() {
        let auto = DriverChoice::Auto;
        assert_eq!(auto.resolve(&facts(Some(CgroupMode::Unified), true)), Ok(CgroupDriver::Systemd));
        for (mode, booted) in [
            (Some(CgroupMode::Unified), false),
            (Some(CgroupMode::Hybrid), true),
            (Some(CgroupMode::Legacy), true),
            (None, true),
        ] {
            assert_eq!(auto.resolve(&facts(mode, booted)), Ok(CgroupDriver::Cgroupfs), "{mode:?} {booted}");
        }
    }

    #[test]
    fn systemd_where_it_cannot_work_is_refused_with_the_reason_and_cgroupfs_always_goes() {
        let systemd: DriverChoice = "systemd".parse().unwrap();
        let err = systemd.resolve(&facts(Some(CgroupMode::Hybrid), true)).unwrap_err();
        assert!(err.to_string().contains("cgroup v1") && err.to_string().contains("--cgroup-driver cgroupfs"), "{err}");
        let err = systemd.resolve(&facts(Some(CgroupMode::Unified), false)).unwrap_err();
        assert!(err.to_string().contains("not booted with systemd"), "{err}");
        let fs: DriverChoice = "cgroupfs".parse().unwrap();
        assert_eq!(fs.resolve(&facts(Some(CgroupMode::Unified), true)), Ok(CgroupDriver::Cgroupfs));
    }

    #[test]
    fn choices_parse_and_unknown_ones_are_named() {
        assert_eq!("".parse::<DriverChoice>(), Ok(DriverChoice::Auto));
        assert_eq!("auto".parse::<DriverChoice>(), Ok(DriverChoice::Auto));
        let err = "systemd-cgroup".parse::<DriverChoice>().unwrap_err();
        assert_eq!(err.to_string(), "unknown cgroup driver \"systemd-cgroup\": expected auto, systemd or cgroupfs");
    }

    #[test]
    fn rootless_needs_systemd_its_user_manager_and_the_limit_controllers() {
        let root = tempfile::tempdir().unwrap();
        let bus = Path::new("/run/user/1000/bus");
        let v2 = facts(Some(CgroupMode::Unified), true);
        let check = |f: &DriverFacts, d| check_rootless(f, d, root.path(), 1000, bus);
        let e = check(&facts(Some(CgroupMode::Hybrid), true), CgroupDriver::Systemd).unwrap_err();
        assert!(e.to_string().contains("keeps its controllers on cgroup v1"), "{e}");
        // The trap: cgroupfs rootless would run without limits. Refused, with the way out.
        let e = check(&v2, CgroupDriver::Cgroupfs).unwrap_err();
        assert_eq!(e, DriverError::RootlessCgroupfs);
        let e = check(&v2, CgroupDriver::Systemd).unwrap_err();
        assert!(e.to_string().contains("enable-linger"), "{e}");
        std::fs::create_dir_all(root.path().join("run/user/1000")).unwrap();
        std::fs::write(root.path().join("run/user/1000/bus"), "").unwrap();
        let dir = root.path().join("sys/fs/cgroup").join(user_manager_dir(1000));
        std::fs::create_dir_all(&dir).unwrap();
        // Debian's default delegation: memory and pids, not cpu.
        std::fs::write(dir.join("cgroup.controllers"), "memory pids\n").unwrap();
        let e = check(&v2, CgroupDriver::Systemd).unwrap_err();
        assert!(
            matches!(&e, DriverError::NotDelegated { missing, found, .. } if missing == "cpu" && found == "memory pids"),
            "{e}"
        );
        assert!(e.to_string().contains("Delegate=cpu cpuset io memory pids"), "{e}");
        std::fs::write(dir.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        check(&v2, CgroupDriver::Systemd).unwrap();
    }

    #[test]
    fn paths_for_each_driver() {
        assert_eq!(CgroupDriver::Cgroupfs.cgroups_path("ig-1"), "/ignite/ig-1");
        assert_eq!(CgroupDriver::Systemd.cgroups_path("ig-1"), "ignite.slice:ignite:ig-1");
        assert_eq!(CgroupDriver::Systemd.unified_dir("ig-1"), "ignite.slice/ignite-ig-1.scope");
        assert_eq!(CgroupDriver::Cgroupfs.unified_dir("ig-1"), "ignite/ig-1");
    }

    #[test]
    fn facts_come_from_mountinfo_and_systemds_marker() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("proc/self")).unwrap();
        std::fs::write(root.path().join("proc/self/mountinfo"), crate::sandbox::cgroup::fixtures::V2_MOUNTINFO)
            .unwrap();
        assert_eq!(DriverFacts::read(root.path()), facts(Some(CgroupMode::Unified), false));
        std::fs::create_dir_all(root.path().join(SYSTEMD_BOOTED_MARKER)).unwrap();
        assert_eq!(DriverFacts::read(root.path()), facts(Some(CgroupMode::Unified), true));
    }
}
