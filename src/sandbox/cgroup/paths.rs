//! Maps a process's cgroup membership onto cgroupfs directories, for v1/hybrid and v2 hosts.

use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CgroupError;
use super::parse::{CgroupMount, CgroupVersion, ProcCgroupEntry, parse_cgroup_mounts, parse_proc_cgroup};

/// How the host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies carry the controllers; a cgroup2 filesystem is mounted too (usually at
    /// `/sys/fs/cgroup/unified`, with few or no controllers). Accounting is read from v1.
    Hybrid,
    /// The memory controller is on cgroup2 (normally mounted at `/sys/fs/cgroup`).
    Unified,
}

/// Decides the mode from the visible cgroup mounts. The memory controller decides because the
/// limits and OOM accounting hang on it: a v2 host that also mounts a stray v1 hierarchy (e.g.
/// `name=systemd` or `net_cls` for old tooling) is still unified. `None`: no cgroupfs at all.
pub fn detect_mode(mounts: &[CgroupMount]) -> Option<CgroupMode> {
    let memory_on_v1 = mounts.iter().any(|m| m.version == CgroupVersion::V1 && m.has_controller("memory"));
    let has_v2 = mounts.iter().any(|m| m.version == CgroupVersion::V2);
    match (memory_on_v1, has_v2) {
        (true, false) => Some(CgroupMode::Legacy),
        (true, true) => Some(CgroupMode::Hybrid),
        (false, true) => Some(CgroupMode::Unified),
        (false, false) => None,
    }
}

/// The cgroupfs directories of one process (normally a container's init), as seen from the
/// host. Serializable so that a run's state file can record it for leftover cleanup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum CgroupPaths {
    /// Legacy or hybrid host: one directory per v1 hierarchy.
    V1 {
        memory: PathBuf,
        /// The `cpuacct` hierarchy, which may be a combined `cpu,cpuacct` mount.
        cpuacct: PathBuf,
        pids: PathBuf,
        /// The process's directories in every other mounted hierarchy (cpu, cpuset, devices,
        /// freezer, `name=systemd`, the hybrid cgroup2, …) where it is not at the mount root.
        /// The OCI runtime creates its cgroup in all of them, so cleanup must remove them too.
        #[serde(default)]
        other: Vec<PathBuf>,
    },
    /// Unified host: the single cgroup2 directory.
    V2 { unified: PathBuf },
}

impl CgroupPaths {
    /// Resolves the directories of the process whose `/proc/<pid>/cgroup` is `proc_pid_cgroup`,
    /// given the reader's `/proc/self/mountinfo`. Mount points are joined under `sys_root`
    /// (a real host passes `/`). The directories are not checked for existence.
    pub fn resolve(proc_pid_cgroup: &str, mountinfo: &str, sys_root: &Path) -> Result<CgroupPaths, CgroupError> {
        let entries = parse_proc_cgroup(proc_pid_cgroup)?;
        let mounts = parse_cgroup_mounts(mountinfo)?;
        match detect_mode(&mounts).ok_or(CgroupError::NoCgroupFs)? {
            CgroupMode::Unified => {
                let entry = entries.iter().find(|e| e.is_unified()).ok_or(CgroupError::NoUnifiedEntry)?;
                let v2: Vec<&CgroupMount> = mounts.iter().filter(|m| m.version == CgroupVersion::V2).collect();
                let unified = locate(&entry.path, &v2, sys_root)?.ok_or(CgroupError::NoUnifiedMount)?;
                Ok(CgroupPaths::V2 { unified })
            }
            CgroupMode::Legacy | CgroupMode::Hybrid => {
                let memory = v1_dir(&entries, &mounts, "memory", sys_root)?;
                let cpuacct = v1_dir(&entries, &mounts, "cpuacct", sys_root)?;
                let pids = v1_dir(&entries, &mounts, "pids", sys_root)?;
                let mut other: Vec<PathBuf> = Vec::new();
                for entry in &entries {
                    let candidates: Vec<&CgroupMount> = mounts.iter().filter(|m| serves(m, entry)).collect();
                    // Best effort: a hierarchy that is not mounted here, or that this process
                    // cannot be mapped into, has nothing we could remove, and must not stop
                    // accounting from working.
                    let Ok(Some(dir)) = locate(&entry.path, &candidates, sys_root) else {
                        continue;
                    };
                    let is_mount_root = candidates.iter().any(|m| dir == under(sys_root, &m.mount_point));
                    let known = [&memory, &cpuacct, &pids].contains(&&dir) || other.contains(&dir);
                    if !is_mount_root && !known {
                        other.push(dir);
                    }
                }
                Ok(CgroupPaths::V1 { memory, cpuacct, pids, other })
            }
        }
    }

    /// Reads `<proc_root>/<pid>/cgroup` and `<proc_root>/self/mountinfo` (the reader's mounts,
    /// not the container's) and resolves them with mount points taken as host paths (`/`).
    pub fn for_pid(pid: u32, proc_root: &Path) -> Result<CgroupPaths, CgroupError> {
        let read = |path: PathBuf| fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source });
        let proc_pid_cgroup = read(proc_root.join(pid.to_string()).join("cgroup"))?;
        let mountinfo = super::self_mountinfo(proc_root)
            .map_err(|source| CgroupError::Read { path: proc_root.join("self/mountinfo"), source })?;
        CgroupPaths::resolve(&proc_pid_cgroup, &mountinfo, Path::new("/"))
    }

    /// The directories `read_stats` reads counters from.
    pub fn accounting_dirs(&self) -> Vec<&Path> {
        match self {
            CgroupPaths::V1 { memory, cpuacct, pids, .. } => vec![memory, cpuacct, pids],
            CgroupPaths::V2 { unified } => vec![unified],
        }
    }

    /// Every directory, accounting ones first, without duplicates.
    pub fn dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = Vec::new();
        let all: Vec<&PathBuf> = match self {
            CgroupPaths::V1 { memory, cpuacct, pids, other } => {
                [memory, cpuacct, pids].into_iter().chain(other).collect()
            }
            CgroupPaths::V2 { unified } => vec![unified],
        };
        for dir in all {
            if !dirs.contains(&dir.as_path()) {
                dirs.push(dir);
            }
        }
        dirs
    }
}

/// Whether `mount` is the hierarchy that `entry` of `/proc/<pid>/cgroup` refers to. A v1
/// controller is bound to exactly one hierarchy, so containing the entry's controllers suffices.
fn serves(mount: &CgroupMount, entry: &ProcCgroupEntry) -> bool {
    match mount.version {
        CgroupVersion::V2 => entry.is_unified(),
        CgroupVersion::V1 => !entry.controllers.is_empty() && entry.controllers.iter().all(|c| mount.has_controller(c)),
    }
}

fn v1_dir(
    entries: &[ProcCgroupEntry],
    mounts: &[CgroupMount],
    controller: &'static str,
    sys_root: &Path,
) -> Result<PathBuf, CgroupError> {
    let entry = entries
        .iter()
        .find(|e| e.hierarchy_id != 0 && e.controllers.iter().any(|c| c == controller))
        .ok_or(CgroupError::ControllerNotInProcCgroup { controller })?;
    let candidates: Vec<&CgroupMount> =
        mounts.iter().filter(|m| m.version == CgroupVersion::V1 && m.has_controller(controller)).collect();
    locate(&entry.path, &candidates, sys_root)?.ok_or(CgroupError::ControllerNotMounted { controller })
}

/// Directory of `cgroup` in the first candidate mount whose root contains it:
/// mount point + (cgroup path relative to the mount root). `Ok(None)` when there is no
/// candidate at all; an error when candidates exist but none contains the cgroup.
fn locate(cgroup: &str, candidates: &[&CgroupMount], sys_root: &Path) -> Result<Option<PathBuf>, CgroupError> {
    if cgroup.ends_with(" (deleted)") {
        return Err(CgroupError::Deleted { cgroup: cgroup.to_owned() });
    }
    let Some(first) = candidates.first() else {
        return Ok(None);
    };
    let cgroup_path = Path::new(cgroup);
    for mount in candidates {
        let Ok(relative) = cgroup_path.strip_prefix(&mount.root) else {
            continue;
        };
        // Cgroup names cannot be `.` or `..`, but a path that escapes its mount must never be
        // joined onto a host directory, whatever produced it.
        if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(CgroupError::BadCgroupPath { cgroup: cgroup.to_owned() });
        }
        return Ok(Some(under(sys_root, &mount.mount_point).join(relative)));
    }
    Err(CgroupError::OutsideMount {
        cgroup: cgroup.to_owned(),
        mount_root: first.root.clone(),
        mount_point: first.mount_point.clone(),
    })
}

/// `sys_root` + an absolute mount point.
fn under(sys_root: &Path, mount_point: &Path) -> PathBuf {
    sys_root.join(mount_point.strip_prefix("/").unwrap_or(mount_point))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::cgroup::fixtures::*;

    #[test]
    fn mode_of_hybrid_and_v2_hosts() {
        let hybrid = parse_cgroup_mounts(HYBRID_MOUNTINFO).unwrap();
        assert_eq!(detect_mode(&hybrid), Some(CgroupMode::Hybrid));
        let legacy: Vec<_> = hybrid.into_iter().filter(|m| m.version == CgroupVersion::V1).collect();
        assert_eq!(detect_mode(&legacy), Some(CgroupMode::Legacy));
        let v2 = parse_cgroup_mounts(V2_MOUNTINFO).unwrap();
        assert_eq!(detect_mode(&v2), Some(CgroupMode::Unified));
        assert_eq!(detect_mode(&[]), None);
    }

    #[test]
    fn v2_host_with_a_stray_v1_hierarchy_is_unified() {
        let info = format!(
            "{V2_MOUNTINFO}60 26 0:40 / /sys/fs/cgroup/net_cls rw - cgroup cgroup rw,net_cls\n\
             61 26 0:41 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
        );
        let mounts = parse_cgroup_mounts(&info).unwrap();
        assert_eq!(detect_mode(&mounts), Some(CgroupMode::Unified));
        let paths = CgroupPaths::resolve("2:net_cls:/\n1:name=systemd:/x\n0::/system.slice/x\n", &info, Path::new("/"))
            .unwrap();
        assert_eq!(paths, CgroupPaths::V2 { unified: "/sys/fs/cgroup/system.slice/x".into() });
    }

    #[test]
    fn resolve_this_machines_hybrid_layout() {
        let paths = CgroupPaths::resolve(HYBRID_PROC_CGROUP, HYBRID_MOUNTINFO, Path::new("/host")).unwrap();
        assert_eq!(
            paths,
            CgroupPaths::V1 {
                memory: "/host/sys/fs/cgroup/memory/process_api/073fe650afa758d603bd93f97c931747".into(),
                cpuacct: "/host/sys/fs/cgroup/cpuacct".into(),
                pids: "/host/sys/fs/cgroup/pids".into(),
                other: vec![],
            }
        );
    }

    #[test]
    fn resolve_runc_container_on_hybrid_host() {
        // /proc/<init>/cgroup of a container that runc 1.1.5 created on this machine with
        // cgroupsPath `/ignite/run1` (runc joins the hybrid cgroup2 too).
        let proc = "\
9:name=systemd:/ignite/run1
8:pids:/ignite/run1
7:blkio:/ignite/run1
6:freezer:/ignite/run1
5:devices:/ignite/run1
4:memory:/ignite/run1
3:cpuset:/ignite/run1
2:cpuacct:/ignite/run1
1:cpu:/ignite/run1
0::/ignite/run1
";
        let paths = CgroupPaths::resolve(proc, HYBRID_MOUNTINFO, Path::new("/")).unwrap();
        let CgroupPaths::V1 { memory, cpuacct, pids, other } = &paths else {
            panic!("expected v1, got {paths:?}");
        };
        assert_eq!(memory, Path::new("/sys/fs/cgroup/memory/ignite/run1"));
        assert_eq!(cpuacct, Path::new("/sys/fs/cgroup/cpuacct/ignite/run1"));
        assert_eq!(pids, Path::new("/sys/fs/cgroup/pids/ignite/run1"));
        let other: Vec<&str> = other.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            other,
            [
                "/sys/fs/cgroup/systemd/ignite/run1",
                "/sys/fs/cgroup/blkio/ignite/run1",
                "/sys/fs/cgroup/freezer/ignite/run1",
                "/sys/fs/cgroup/devices/ignite/run1",
                "/sys/fs/cgroup/cpuset/ignite/run1",
                "/sys/fs/cgroup/cpu/ignite/run1",
                "/sys/fs/cgroup/unified/ignite/run1",
            ]
        );
        assert_eq!(paths.dirs().len(), 10);
        // A hierarchy where the process sits at the mount root is never listed for removal.
        let at_root = proc.replace("0::/ignite/run1", "0::/").replace("5:devices:/ignite/run1", "5:devices:/");
        let CgroupPaths::V1 { other, .. } = CgroupPaths::resolve(&at_root, HYBRID_MOUNTINFO, Path::new("/")).unwrap()
        else {
            panic!("expected v1");
        };
        assert_eq!(other.len(), 5, "{other:?}");
        assert!(
            !other.iter().any(|p| p.starts_with("/sys/fs/cgroup/unified") || p.starts_with("/sys/fs/cgroup/devices"))
        );
    }

    #[test]
    fn resolve_combined_cpu_cpuacct_mount() {
        let info = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:11 - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw shared:12 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/pids rw shared:13 - cgroup cgroup rw,pids
";
        let proc = "5:pids:/a\n4:memory:/a\n2:cpu,cpuacct:/a\n";
        let paths = CgroupPaths::resolve(proc, info, Path::new("/")).unwrap();
        assert_eq!(
            paths,
            CgroupPaths::V1 {
                memory: "/sys/fs/cgroup/memory/a".into(),
                cpuacct: "/sys/fs/cgroup/cpu,cpuacct/a".into(),
                pids: "/sys/fs/cgroup/pids/a".into(),
                other: vec![],
            },
            "the combined cpu,cpuacct directory is listed once"
        );
    }

    #[test]
    fn resolve_pure_v2_nested() {
        let paths = CgroupPaths::resolve(V2_PROC_CGROUP, V2_MOUNTINFO, Path::new("/tmp/fake")).unwrap();
        assert_eq!(paths, CgroupPaths::V2 { unified: "/tmp/fake/sys/fs/cgroup/system.slice/ignite.service".into() });
        assert_eq!(paths.dirs(), vec![Path::new("/tmp/fake/sys/fs/cgroup/system.slice/ignite.service")]);
    }

    #[test]
    fn resolve_mount_root_below_namespace_root() {
        // Inside a container whose cgroupfs was bind-mounted from the host's
        // /sys/fs/cgroup/kubepods/pod1: the mount's root is that cgroup, not `/`.
        let info = "40 30 0:30 /kubepods/pod1 /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n";
        let paths = CgroupPaths::resolve("0::/kubepods/pod1/ctr/job\n", info, Path::new("/")).unwrap();
        assert_eq!(paths, CgroupPaths::V2 { unified: "/sys/fs/cgroup/ctr/job".into() });
        // Same thing on v1; `/kubepods/pod10` must not match the root `/kubepods/pod1`.
        let info = "\
41 30 0:31 /kubepods/pod1 /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
42 30 0:32 /kubepods/pod1 /sys/fs/cgroup/cpuacct ro - cgroup cgroup rw,cpuacct
43 30 0:33 /kubepods/pod1 /sys/fs/cgroup/pids ro - cgroup cgroup rw,pids
";
        let paths = CgroupPaths::resolve(
            "3:pids:/kubepods/pod1\n2:cpuacct:/kubepods/pod1/c\n1:memory:/kubepods/pod1/c/d\n",
            info,
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(
            paths,
            CgroupPaths::V1 {
                memory: "/sys/fs/cgroup/memory/c/d".into(),
                cpuacct: "/sys/fs/cgroup/cpuacct/c".into(),
                pids: "/sys/fs/cgroup/pids".into(),
                other: vec![],
            }
        );
        match CgroupPaths::resolve(
            "3:pids:/kubepods/pod10\n2:cpuacct:/kubepods/pod1\n1:memory:/kubepods/pod1\n",
            info,
            Path::new("/"),
        ) {
            Err(CgroupError::OutsideMount { cgroup, .. }) => assert_eq!(cgroup, "/kubepods/pod10"),
            other => panic!("expected OutsideMount, got {other:?}"),
        }
    }

    #[test]
    fn resolve_picks_the_mount_that_contains_the_cgroup() {
        // The same hierarchy visible twice: once with a narrow root, once whole.
        let info = "\
40 30 0:30 /other /mnt/narrow rw - cgroup2 cgroup2 rw
41 30 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        let paths = CgroupPaths::resolve("0::/mine/x\n", info, Path::new("/")).unwrap();
        assert_eq!(paths, CgroupPaths::V2 { unified: "/sys/fs/cgroup/mine/x".into() });
    }

    #[test]
    fn resolve_errors() {
        let err = CgroupPaths::resolve("0::/x\n", "1 0 0:1 / / rw - ext4 /dev/sda rw\n", Path::new("/"));
        assert!(matches!(err, Err(CgroupError::NoCgroupFs)), "{err:?}");

        let err = CgroupPaths::resolve("4:memory:/x\n", V2_MOUNTINFO, Path::new("/"));
        assert!(matches!(err, Err(CgroupError::NoUnifiedEntry)), "{err:?}");

        let err = CgroupPaths::resolve("0::/x (deleted)\n", V2_MOUNTINFO, Path::new("/"));
        assert!(matches!(err, Err(CgroupError::Deleted { .. })), "{err:?}");

        let err = CgroupPaths::resolve("0::/a/../../etc\n", V2_MOUNTINFO, Path::new("/"));
        assert!(matches!(err, Err(CgroupError::BadCgroupPath { .. })), "{err:?}");

        let no_pids = HYBRID_PROC_CGROUP.replace("8:pids:/\n", "");
        let err = CgroupPaths::resolve(&no_pids, HYBRID_MOUNTINFO, Path::new("/"));
        assert!(matches!(err, Err(CgroupError::ControllerNotInProcCgroup { controller: "pids" })), "{err:?}");

        let unmounted =
            HYBRID_MOUNTINFO.replace("39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n", "");
        let err = CgroupPaths::resolve(HYBRID_PROC_CGROUP, &unmounted, Path::new("/"));
        let Err(err @ CgroupError::ControllerNotMounted { controller: "pids" }) = err else {
            panic!("expected ControllerNotMounted, got {err:?}");
        };
        assert!(err.to_string().starts_with("failed to find a mounted cgroup v1 hierarchy for the pids controller"));

        let err = CgroupPaths::resolve("garbage\n", HYBRID_MOUNTINFO, Path::new("/"));
        assert!(matches!(err, Err(CgroupError::ProcCgroupLine { line_no: 1, .. })), "{err:?}");
    }

    #[test]
    fn for_pid_reads_a_fake_proc() {
        let proc = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(proc.path().join("4242")).unwrap();
        std::fs::create_dir_all(proc.path().join("self")).unwrap();
        std::fs::write(proc.path().join("4242/cgroup"), "0::/ignite/run7\n").unwrap();
        std::fs::write(proc.path().join("self/mountinfo"), V2_MOUNTINFO).unwrap();
        let paths = CgroupPaths::for_pid(4242, proc.path()).unwrap();
        assert_eq!(paths, CgroupPaths::V2 { unified: "/sys/fs/cgroup/ignite/run7".into() });
        match CgroupPaths::for_pid(4243, proc.path()) {
            Err(CgroupError::Read { path, .. }) => {
                assert_eq!(path, proc.path().join("4243/cgroup"))
            }
            other => panic!("expected a read error, got {other:?}"),
        }
    }

    #[test]
    fn serde_round_trip() {
        let v1 = CgroupPaths::V1 {
            memory: "/sys/fs/cgroup/memory/ignite/r".into(),
            cpuacct: "/sys/fs/cgroup/cpuacct/ignite/r".into(),
            pids: "/sys/fs/cgroup/pids/ignite/r".into(),
            other: vec!["/sys/fs/cgroup/cpu/ignite/r".into()],
        };
        let json = serde_json::to_string(&v1).unwrap();
        assert!(json.contains(r#""version":"v1""#), "{json}");
        assert_eq!(serde_json::from_str::<CgroupPaths>(&json).unwrap(), v1);
        let v2 = CgroupPaths::V2 { unified: "/sys/fs/cgroup/ignite/r".into() };
        let json = serde_json::to_string(&v2).unwrap();
        assert_eq!(json, r#"{"version":"v2","unified":"/sys/fs/cgroup/ignite/r"}"#);
        assert_eq!(serde_json::from_str::<CgroupPaths>(&json).unwrap(), v2);
    }
}
