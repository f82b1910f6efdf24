//! Cgroup accounting for one container: where its cgroup lives (v1 or v2), what it used, cleanup.
//!
//! The supervisor resolves a container's cgroup directories once the container's init exists (before
//! any user code has run, so nothing the sandbox did can influence the answer), reads the
//! counters after the container's init exited but before the container (and with it the cgroup) is removed, and
//! records the directories in the run's state file so leftovers of a crashed run can be removed.
//!
//! Everything that parses takes `&str`; everything that touches the filesystem takes its root
//! (`sys_root`, `proc_root`) or explicit directories, so tests run against a fake cgroupfs.

mod driver;
mod mounts;
mod parse;
mod paths;
mod remove;
mod stats;

use std::io;
use std::path::PathBuf;

pub use driver::{
    CgroupDriver, DriverChoice, DriverError, DriverFacts, check_rootless, rootless_driver, user_manager_dir,
};
pub use parse::{
    CgroupMount, CgroupVersion, MountInfoEntry, ProcCgroupEntry, flat_keyed_value, parse_cgroup_mounts, parse_limit,
    parse_mountinfo, parse_proc_cgroup, parse_u64,
};
/// The names the drivers use: the slice, the scope prefix, the cgroupfs parent, the markers.
pub mod driver_names {
    pub use super::driver::{CGROUPFS_PARENT, SCOPE_PREFIX, SLICE, SYSTEM_BUS_SOCKET, SYSTEMD_BOOTED_MARKER};
}
pub use mounts::self_mountinfo;
pub use paths::{CgroupMode, CgroupPaths, detect_mode};
pub use remove::remove_cgroup_dirs;
pub use stats::{CgroupStats, read_stats};

/// Longest excerpt of a malformed file quoted in an error; cgroup files are tiny, but a fake or
/// corrupted one should not blow up a log line.
const MAX_QUOTED_CONTENT: usize = 200;

/// Everything that can go wrong while locating, reading or removing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("failed to parse cgroup membership line {line_no} {line:?}: {reason}")]
    ProcCgroupLine { line_no: usize, line: String, reason: &'static str },

    #[error("failed to parse mountinfo line {line_no} {line:?}: {reason}")]
    MountinfoLine { line_no: usize, line: String, reason: &'static str },

    #[error("failed to find a mounted cgroup filesystem (neither a v1 memory hierarchy nor cgroup2)")]
    NoCgroupFs,

    #[error(
        "failed to find the {controller} controller in the process's cgroup membership \
         (is the controller enabled in the kernel?)"
    )]
    ControllerNotInProcCgroup { controller: &'static str },

    #[error(
        "failed to find a mounted cgroup v1 hierarchy for the {controller} controller \
         (mount it, e.g. at /sys/fs/cgroup/{controller})"
    )]
    ControllerNotMounted { controller: &'static str },

    #[error("failed to find the unified (`0::`) entry in the process's cgroup membership")]
    NoUnifiedEntry,

    #[error("failed to find a mounted cgroup2 filesystem")]
    NoUnifiedMount,

    #[error(
        "failed to map cgroup {cgroup:?} onto a mount: it is outside every mount's root \
         (e.g. {mount_root:?} mounted at {mount_point:?}); is the process in another cgroup namespace?"
    )]
    OutsideMount { cgroup: String, mount_root: PathBuf, mount_point: PathBuf },

    #[error("failed to accept cgroup path {cgroup:?}: it has a `.`, `..` or empty component")]
    BadCgroupPath { cgroup: String },

    #[error("failed to use cgroup {cgroup:?}: it has been deleted (the process exited?)")]
    Deleted { cgroup: String },

    #[error(
        "failed to read cgroup counters: directory {path:?} does not exist \
         (was the cgroup deleted before its stats were read?)"
    )]
    MissingDir { path: PathBuf },

    #[error("failed to read {path:?}: {source}")]
    Read { path: PathBuf, source: io::Error },

    #[error("failed to parse {path:?}: {source}; content: {content:?}")]
    Malformed { path: PathBuf, content: String, source: FormatError },

    #[error("failed to remove cgroup directory {path:?}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

/// Why the content of a cgroup interface file was rejected; the reader adds the file's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("expected a single unsigned integer")]
    NotUnsignedInteger,

    #[error("expected an unsigned integer or `max`")]
    NotLimit,

    #[error("expected lines of `<key> <unsigned integer>`, got {line:?}")]
    NotKeyValue { line: String },

    #[error("key `{key}` is missing")]
    MissingKey { key: &'static str },
}

impl CgroupError {
    fn malformed(path: PathBuf, content: &str, source: FormatError) -> Self {
        let content = match content.char_indices().nth(MAX_QUOTED_CONTENT) {
            Some((cut, _)) => format!("{}…", &content[..cut]),
            None => content.to_owned(),
        };
        CgroupError::Malformed { path, content, source }
    }
}

#[cfg(test)]
mod fixtures;

/// Exercises the real cgroupfs of this host: a child cgroup of the test process's own cgroups.
#[cfg(test)]
mod host_tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::thread;
    use std::time::Duration;

    /// Removes the test cgroups even when an assertion fails.
    struct Cleanup(CgroupPaths);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = remove_cgroup_dirs(&self.0);
        }
    }

    fn child_of(own: &CgroupPaths, name: &str) -> CgroupPaths {
        match own {
            CgroupPaths::V1 { memory, cpuacct, pids, .. } => CgroupPaths::V1 {
                memory: memory.join(name),
                cpuacct: cpuacct.join(name),
                pids: pids.join(name),
                other: vec![],
            },
            CgroupPaths::V2 { unified } => CgroupPaths::V2 { unified: unified.join(name) },
        }
    }

    fn enter(cgroup: &CgroupPaths, pid: u32) {
        for dir in cgroup.dirs() {
            fs::write(dir.join("cgroup.procs"), pid.to_string())
                .unwrap_or_else(|e| panic!("failed to move {pid} into {dir:?}: {e}"));
        }
    }

    #[test]
    fn real_child_cgroup_stats_and_removal() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping the real cgroup test: not root (cannot create cgroups)");
            return;
        }
        let own = match CgroupPaths::for_pid(std::process::id(), Path::new("/proc")) {
            Ok(own) => own,
            Err(e) => {
                eprintln!("skipping the real cgroup test: no usable cgroupfs: {e}");
                return;
            }
        };
        let child = child_of(&own, &format!("ignite-cgroup-test-{}", std::process::id()));
        let _cleanup = Cleanup(child.clone());
        for dir in child.dirs() {
            if let Err(e) = fs::create_dir(dir) {
                eprintln!("skipping the real cgroup test: failed to create {dir:?}: {e}");
                return;
            }
        }

        // The shell waits on stdin so that all its work after the move is charged to the child.
        let mut worker = Command::new("sh")
            .args(["-c", "read _; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; /bin/true"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        enter(&child, worker.id());
        worker.stdin.take().unwrap().write_all(b"go\n").unwrap();
        assert!(worker.wait().unwrap().success());

        let stats = read_stats(&child).unwrap();
        eprintln!("real cgroup {child:?}: {stats:?}");
        assert!(stats.cpu_usage_ns.unwrap() > 0, "{stats:?}");
        if let Some(peak) = stats.pids_peak {
            assert!(peak >= 2, "shell + /bin/true: {stats:?}");
        }
        if let Some(peak) = stats.memory_peak_bytes {
            assert!(peak > 0, "{stats:?}");
        }
        assert_eq!(stats.oom_kills, 0);
        assert_eq!(stats.pids_limit_hits, 0);

        // A cgroup whose last task is still exiting is busy for a moment: removal must wait.
        let mut sleeper = Command::new("sleep").arg("10").spawn().unwrap();
        enter(&child, sleeper.id());
        let killer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            sleeper.kill().unwrap();
            sleeper.wait().unwrap();
        });
        remove_cgroup_dirs(&child).unwrap();
        killer.join().unwrap();
        for dir in child.dirs() {
            assert!(!dir.exists(), "{dir:?} still exists");
        }
    }
}
