//! Reads a cgroup's accounting counters (memory peak, OOM kills, CPU time, pids) on v1 and v2.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::parse::{flat_keyed_value, parse_limit, parse_u64};
use super::{CgroupError, CgroupPaths, FormatError};

/// cgroup interface files are a few hundred bytes; anything larger is not one.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// v1 reports "no limit" as `PAGE_COUNTER_MAX * PAGE_SIZE` (0x7FFFFFFFFFFFF000 with 4 KiB pages,
/// a different value with larger pages); no real limit comes anywhere near 2^62 bytes.
const V1_UNLIMITED_FLOOR: u64 = 1 << 62;

/// What a container's cgroup used. `None` means the kernel does not provide the counter (older
/// kernels, or the controller is not enabled for the cgroup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// High-water mark of memory charged to the cgroup, page cache included
    /// (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    pub memory_peak_bytes: Option<u64>,
    /// The cgroup's own memory limit; `None` also when it is unlimited
    /// (v1 `memory.limit_in_bytes`, v2 `memory.max`).
    pub memory_limit_bytes: Option<u64>,
    /// Processes killed by the OOM killer (v1 `memory.oom_control`, v2 `memory.events`
    /// `oom_kill`); 0 when the kernel does not count them.
    pub oom_kills: u64,
    /// CPU time in nanoseconds (v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec` × 1000).
    pub cpu_usage_ns: Option<u64>,
    /// Highest number of tasks at once (`pids.peak`, kernel ≥ 6.1 on both versions).
    pub pids_peak: Option<u64>,
    /// Forks refused because `pids.max` was reached (`pids.events` `max`).
    pub pids_limit_hits: u64,
}

/// Reads the counters. Call it after the container's processes exited and before the OCI
/// runtime deletes the cgroup. A missing optional file yields `None`/0; a file that exists but
/// does not parse is an error naming the file and its content.
pub fn read_stats(paths: &CgroupPaths) -> Result<CgroupStats, CgroupError> {
    // Without this, reading after the container is removed would quietly report "no counters at all".
    for dir in paths.accounting_dirs() {
        if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            return Err(CgroupError::MissingDir { path: dir.to_owned() });
        }
    }
    match paths {
        CgroupPaths::V1 { memory, cpuacct, pids, .. } => Ok(CgroupStats {
            memory_peak_bytes: read_parsed(memory, "memory.max_usage_in_bytes", parse_u64)?,
            memory_limit_bytes: read_parsed(memory, "memory.limit_in_bytes", parse_u64)?
                .filter(|limit| *limit < V1_UNLIMITED_FLOOR),
            // Not memory.failcnt: with memsw limit = memory limit it stays 0 on an OOM kill.
            // Kernels before 4.13 have no oom_kill line, hence 0 rather than an error.
            oom_kills: read_parsed(memory, "memory.oom_control", |c| flat_keyed_value(c, "oom_kill"))?
                .flatten()
                .unwrap_or(0),
            cpu_usage_ns: read_parsed(cpuacct, "cpuacct.usage", parse_u64)?,
            pids_peak: read_parsed(pids, "pids.peak", parse_u64)?,
            pids_limit_hits: read_pids_limit_hits(pids)?,
        }),
        CgroupPaths::V2 { unified } => Ok(CgroupStats {
            memory_peak_bytes: read_parsed(unified, "memory.peak", parse_u64)?,
            memory_limit_bytes: read_parsed(unified, "memory.max", parse_limit)?.flatten(),
            oom_kills: read_parsed(unified, "memory.events", |c| flat_keyed_value(c, "oom_kill"))?
                .flatten()
                .unwrap_or(0),
            cpu_usage_ns: read_parsed(unified, "cpu.stat", |c| {
                flat_keyed_value(c, "usage_usec")?
                    .map(|usec| usec.saturating_mul(1000))
                    .ok_or(FormatError::MissingKey { key: "usage_usec" })
            })?,
            pids_peak: read_parsed(unified, "pids.peak", parse_u64)?,
            pids_limit_hits: read_pids_limit_hits(unified)?,
        }),
    }
}

/// `pids.events` has had its `max` line since the file appeared, so a missing key is an error.
fn read_pids_limit_hits(dir: &Path) -> Result<u64, CgroupError> {
    Ok(read_parsed(dir, "pids.events", |c| flat_keyed_value(c, "max")?.ok_or(FormatError::MissingKey { key: "max" }))?
        .unwrap_or(0))
}

/// Reads and parses `dir/name`; `Ok(None)` when the file does not exist.
fn read_parsed<T>(
    dir: &Path,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, FormatError>,
) -> Result<Option<T>, CgroupError> {
    let path = dir.join(name);
    let Some(content) = read_optional(&path)? else {
        return Ok(None);
    };
    parse(&content).map(Some).map_err(|source| CgroupError::malformed(path, &content, source))
}

fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    // cgroupfs has no symlinks, so one here means the directory is not what it claims to be;
    // O_NOFOLLOW refuses it (ELOOP) instead of reading wherever it points.
    let file = match File::options().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CgroupError::Read { path: path.to_owned(), source });
        }
    };
    let mut content = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut content)
        .map_err(|source| CgroupError::Read { path: path.to_owned(), source })?;
    Ok(Some(content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::cgroup::fixtures::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        fs::create_dir_all(dir).unwrap();
        for (name, content) in files {
            fs::write(dir.join(name), content).unwrap();
        }
    }

    /// A fake host: `<tmp>/sys/fs/cgroup/...` laid out like this machine.
    fn hybrid_host(cgroup: &str) -> (tempfile::TempDir, CgroupPaths) {
        let root = tempfile::tempdir().unwrap();
        let proc = HYBRID_PROC_CGROUP
            .lines()
            .map(|l| match l.rsplit_once(':') {
                Some((head, _)) if !head.starts_with("0:") => format!("{head}:{cgroup}\n"),
                _ => format!("{l}\n"),
            })
            .collect::<String>();
        let paths = CgroupPaths::resolve(&proc, HYBRID_MOUNTINFO, root.path()).unwrap();
        (root, paths)
    }

    #[test]
    fn v1_stats_from_a_nested_cgroup() {
        let (root, paths) = hybrid_host("/ignite/runs/r1");
        let CgroupPaths::V1 { memory, cpuacct, pids, .. } = &paths else {
            panic!("expected v1, got {paths:?}");
        };
        assert_eq!(memory, &root.path().join("sys/fs/cgroup/memory/ignite/runs/r1"));
        write(
            memory,
            &[
                ("memory.max_usage_in_bytes", "52428800\n"),
                ("memory.limit_in_bytes", "67108864\n"),
                ("memory.failcnt", "0\n"),
                ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"),
            ],
        );
        write(cpuacct, &[("cpuacct.usage", "123456789\n")]);
        write(pids, &[("pids.peak", "17\n"), ("pids.events", "max 2\n"), ("pids.max", "64\n")]);
        assert_eq!(
            read_stats(&paths).unwrap(),
            CgroupStats {
                memory_peak_bytes: Some(52_428_800),
                memory_limit_bytes: Some(67_108_864),
                oom_kills: 1,
                cpu_usage_ns: Some(123_456_789),
                pids_peak: Some(17),
                pids_limit_hits: 2,
            }
        );
    }

    #[test]
    fn v1_unlimited_and_fresh_cgroup() {
        // Exactly what a fresh child cgroup on this machine contains.
        let (_root, paths) = hybrid_host("/fresh");
        let CgroupPaths::V1 { memory, cpuacct, pids, .. } = &paths else {
            panic!("expected v1");
        };
        write(
            memory,
            &[
                ("memory.max_usage_in_bytes", "0\n"),
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"),
            ],
        );
        write(cpuacct, &[("cpuacct.usage", "0\n")]);
        write(pids, &[("pids.peak", "0\n"), ("pids.events", "max 0\n"), ("pids.max", "max\n")]);
        assert_eq!(
            read_stats(&paths).unwrap(),
            CgroupStats {
                memory_peak_bytes: Some(0),
                memory_limit_bytes: None,
                oom_kills: 0,
                cpu_usage_ns: Some(0),
                pids_peak: Some(0),
                pids_limit_hits: 0,
            }
        );
    }

    #[test]
    fn v1_old_kernel_missing_optional_files() {
        let (_root, paths) = hybrid_host("/old");
        let CgroupPaths::V1 { memory, cpuacct, pids, .. } = &paths else {
            panic!("expected v1");
        };
        // Pre-4.13 oom_control, no pids.peak (pre-6.1), no max_usage.
        write(memory, &[("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")]);
        write(cpuacct, &[("cpuacct.usage", "42\n")]);
        write(pids, &[("pids.events", "max 0\n")]);
        assert_eq!(read_stats(&paths).unwrap(), CgroupStats { cpu_usage_ns: Some(42), ..CgroupStats::default() });
    }

    fn v2_host(files: &[(&str, &str)]) -> (tempfile::TempDir, CgroupPaths) {
        let root = tempfile::tempdir().unwrap();
        let paths = CgroupPaths::resolve(V2_PROC_CGROUP, V2_MOUNTINFO, root.path()).unwrap();
        let CgroupPaths::V2 { unified } = &paths else {
            panic!("expected v2, got {paths:?}");
        };
        assert_eq!(unified, &root.path().join("sys/fs/cgroup/system.slice/ignite.service"));
        write(unified, files);
        (root, paths)
    }

    #[test]
    fn v2_stats_from_a_nested_cgroup() {
        let (_root, paths) = v2_host(&[
            ("memory.peak", "104857600\n"),
            ("memory.max", "134217728\n"),
            ("memory.events", "low 0\nhigh 0\nmax 31\noom 1\noom_kill 1\noom_group_kill 0\n"),
            (
                "cpu.stat",
                "usage_usec 250000\nuser_usec 200000\nsystem_usec 50000\nnr_periods 0\n\
                 nr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n",
            ),
            ("pids.peak", "9\n"),
            ("pids.events", "max 4\n"),
        ]);
        assert_eq!(
            read_stats(&paths).unwrap(),
            CgroupStats {
                memory_peak_bytes: Some(104_857_600),
                memory_limit_bytes: Some(134_217_728),
                oom_kills: 1,
                cpu_usage_ns: Some(250_000_000),
                pids_peak: Some(9),
                pids_limit_hits: 4,
            }
        );
    }

    #[test]
    fn v2_controllers_not_enabled() {
        // Only the core files: no memory or pids controller in the cgroup, and no limit.
        let (_root, paths) = v2_host(&[("cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\n")]);
        assert_eq!(read_stats(&paths).unwrap(), CgroupStats { cpu_usage_ns: Some(7000), ..CgroupStats::default() });
        let (_root, paths) = v2_host(&[("memory.max", "max\n")]);
        assert_eq!(read_stats(&paths).unwrap(), CgroupStats::default());
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        for (name, content) in [
            ("memory.peak", "lots\n"),
            ("memory.max", "-1\n"),
            ("memory.events", "oom_kill\n"),
            ("cpu.stat", "user_usec 5\n"),
            ("pids.peak", "\n"),
            ("pids.events", "max x\n"),
        ] {
            let (_root, paths) = v2_host(&[(name, content)]);
            let err = read_stats(&paths).unwrap_err();
            let CgroupError::Malformed { path, content: quoted, .. } = &err else {
                panic!("{name}: expected Malformed, got {err:?}");
            };
            assert!(path.ends_with(name), "{name}: {path:?}");
            assert_eq!(quoted, content);
            let message = err.to_string();
            assert!(message.starts_with("failed to parse "), "{message}");
            assert!(message.contains(name), "{message}");
        }
        let (_root, paths) = hybrid_host("/bad");
        let CgroupPaths::V1 { memory, cpuacct, pids, .. } = &paths else {
            panic!("expected v1");
        };
        write(memory, &[("memory.oom_control", "oom_kill_disable 0\noom_kill many\n")]);
        write(cpuacct, &[]);
        write(pids, &[]);
        let err = read_stats(&paths).unwrap_err();
        assert!(err.to_string().contains("memory.oom_control"), "{err}");
        assert!(err.to_string().contains("oom_kill many"), "{err}");
    }

    #[test]
    fn deleted_cgroup_is_an_error_not_empty_stats() {
        let (root, paths) = v2_host(&[("memory.peak", "1\n")]);
        let CgroupPaths::V2 { unified } = &paths else {
            panic!("expected v2");
        };
        fs::remove_dir_all(unified).unwrap();
        let err = read_stats(&paths).unwrap_err();
        assert!(matches!(&err, CgroupError::MissingDir { path } if path == unified), "{err:?}");
        drop(root);

        let (_root, paths) = hybrid_host("/half");
        let CgroupPaths::V1 { memory, cpuacct, .. } = &paths else {
            panic!("expected v1");
        };
        write(memory, &[]);
        write(cpuacct, &[]);
        assert!(
            matches!(read_stats(&paths), Err(CgroupError::MissingDir { path }) if path.starts_with(_root.path().join("sys/fs/cgroup/pids")))
        );
    }

    #[test]
    fn huge_garbage_is_quoted_truncated() {
        let garbage = "x".repeat(10_000);
        let (_root, paths) = v2_host(&[("memory.peak", &garbage)]);
        let Err(CgroupError::Malformed { content, .. }) = read_stats(&paths) else {
            panic!("expected Malformed");
        };
        assert!(content.chars().count() <= 201, "{}", content.len());
    }

    #[test]
    fn symlinked_counter_is_refused() {
        let (root, paths) = v2_host(&[]);
        let CgroupPaths::V2 { unified } = &paths else {
            panic!("expected v2");
        };
        fs::write(root.path().join("planted"), "1\n").unwrap();
        std::os::unix::fs::symlink(root.path().join("planted"), unified.join("memory.peak")).unwrap();
        assert!(matches!(read_stats(&paths), Err(CgroupError::Read { .. })));
    }
}
