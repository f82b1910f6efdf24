//! Pure parsers for `/proc/<pid>/cgroup`, `/proc/self/mountinfo` and cgroup interface files.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::{CgroupError, FormatError};

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controller-list:cgroup-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroupEntry {
    /// 0 for the unified (v2) hierarchy.
    pub hierarchy_id: u32,
    /// v1 controllers bound to the hierarchy (`cpu`, `cpuacct`) and named hierarchies as the
    /// kernel prints them (`name=systemd`); empty for the unified hierarchy.
    pub controllers: Vec<String>,
    /// Absolute path relative to the reader's cgroup namespace root, e.g. `/user.slice/x`.
    pub path: String,
}

impl ProcCgroupEntry {
    /// The v2 line is the only one with id 0 and no controllers.
    pub fn is_unified(&self) -> bool {
        self.hierarchy_id == 0 && self.controllers.is_empty()
    }
}

/// Parses `/proc/<pid>/cgroup` (v1, hybrid and v2 layouts).
pub fn parse_proc_cgroup(content: &str) -> Result<Vec<ProcCgroupEntry>, CgroupError> {
    let mut entries = Vec::new();
    for (idx, line) in content.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = |reason| CgroupError::ProcCgroupLine { line_no: idx + 1, line: line.to_owned(), reason };
        // The path is last and may itself contain `:`, so split at most twice.
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad("expected `hierarchy-id:controllers:path`"));
        };
        let hierarchy_id = id.parse::<u32>().map_err(|_| bad("hierarchy id is not an unsigned integer"))?;
        let controllers: Vec<String> =
            if controllers.is_empty() { Vec::new() } else { controllers.split(',').map(str::to_owned).collect() };
        if controllers.iter().any(String::is_empty) {
            return Err(bad("empty controller name"));
        }
        if !path.starts_with('/') {
            return Err(bad("cgroup path is not absolute"));
        }
        entries.push(ProcCgroupEntry { hierarchy_id, controllers, path: path.to_owned() });
    }
    Ok(entries)
}

/// One line of `/proc/<pid>/mountinfo` (see proc(5)), with escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfoEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    /// The directory of the filesystem that forms the root of this mount (for cgroupfs: the
    /// cgroup shown at the mountpoint, relative to the reader's cgroup namespace).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`/`ro`, `nosuid`, …); a read-only bind of a writable filesystem
    /// shows `ro` here and `rw` in the super options.
    pub mount_options: Vec<String>,
    pub fs_type: String,
    pub source: String,
    pub super_options: Vec<String>,
}

/// Parses every line of `/proc/<pid>/mountinfo`. Optional fields (`shared:1`, `master:2`, …)
/// are skipped up to the `-` separator.
pub fn parse_mountinfo(content: &str) -> Result<Vec<MountInfoEntry>, CgroupError> {
    let mut entries = Vec::new();
    for (idx, line) in content.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = |reason| CgroupError::MountinfoLine { line_no: idx + 1, line: line.to_owned(), reason };
        // The kernel escapes whitespace inside fields, so splitting on spaces is exact.
        let fields: Vec<&str> = line.split(' ').collect();
        let [id, parent, _dev, root, mount_point, mount_options, rest @ ..] = fields.as_slice() else {
            return Err(bad("too few fields"));
        };
        let mount_id = id.parse::<u32>().map_err(|_| bad("mount id is not an unsigned integer"))?;
        let parent_id = parent.parse::<u32>().map_err(|_| bad("parent id is not an unsigned integer"))?;
        let separator = rest
            .iter()
            .position(|f| *f == "-")
            .ok_or_else(|| bad("missing `-` separator after the optional fields"))?;
        let [fs_type, source, super_options] = rest
            .get(separator + 1..)
            .and_then(|after| <[&str; 3]>::try_from(after).ok())
            .ok_or_else(|| bad("expected `fstype source super-options` after `-`"))?;
        if !mount_point.starts_with('/') {
            return Err(bad("mount point is not absolute"));
        }
        entries.push(MountInfoEntry {
            mount_id,
            parent_id,
            root: unescape_path(root),
            mount_point: unescape_path(mount_point),
            mount_options: mount_options.split(',').filter(|o| !o.is_empty()).map(str::to_owned).collect(),
            fs_type: unescape_string(fs_type),
            source: unescape_string(source),
            super_options: unescape_string(super_options)
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
        });
    }
    Ok(entries)
}

/// Decodes the kernel's `\NNN` octal escapes (`\040` space, `\011` tab, `\012` newline,
/// `\134` backslash). A backslash not followed by three octal digits is kept literally: the
/// kernel never produces one, and being lenient here costs nothing.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'\\'
            && let Some(code) = bytes.get(i + 1..i + 4).and_then(octal_byte)
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(byte);
        i += 1;
    }
    out
}

fn octal_byte(digits: &[u8]) -> Option<u8> {
    digits
        .iter()
        .try_fold(0u16, |acc, d| match d {
            b'0'..=b'7' => Some(acc * 8 + u16::from(d - b'0')),
            _ => None,
        })
        .and_then(|v| u8::try_from(v).ok())
}

fn unescape_path(field: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

fn unescape_string(field: &str) -> String {
    String::from_utf8_lossy(&unescape(field)).into_owned()
}

/// Which cgroup filesystem a mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// A visible cgroup mount: a v1 hierarchy (with its controllers) or the cgroup2 filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub version: CgroupVersion,
    /// v1: controllers and `name=…` taken from the super options; v2: always empty (v2
    /// controllers are listed in `cgroup.controllers`, not in the mount options).
    pub controllers: Vec<String>,
    /// The cgroup shown at the mount point (not `/` inside cgroup namespaces or bind mounts).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Mounted read-only (per mount or per superblock): nothing can create cgroups here.
    pub read_only: bool,
}

impl CgroupMount {
    pub fn has_controller(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// cgroup v1 super options that are flags, not controllers (see kernel/cgroup/cgroup-v1.c).
const V1_NON_CONTROLLER_OPTIONS: &[&str] =
    &["rw", "ro", "none", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods", "xattr"];

/// The cgroup mounts visible in `mountinfo`. Over-mounting leaves the old entries in mountinfo
/// but unreachable: a mount stacked on the very same mount point hides the one below, and a
/// mount on a directory above hides everything mounted below that directory before it (a
/// container's read-only cgroupfs over the host's); see `Visibility`.
pub fn parse_cgroup_mounts(mountinfo: &str) -> Result<Vec<CgroupMount>, CgroupError> {
    let entries = parse_mountinfo(mountinfo)?;
    let visibility = Visibility::new(&entries);
    let shadowed = |m: &MountInfoEntry| !visibility.is_visible(m);
    let mut mounts = Vec::new();
    for entry in entries.iter().filter(|e| !shadowed(e)) {
        let (version, controllers) = match entry.fs_type.as_str() {
            "cgroup" => (
                CgroupVersion::V1,
                entry
                    .super_options
                    .iter()
                    .filter(|o| !V1_NON_CONTROLLER_OPTIONS.contains(&o.as_str()) && !o.starts_with("release_agent="))
                    .cloned()
                    .collect(),
            ),
            "cgroup2" => (CgroupVersion::V2, Vec::new()),
            _ => continue,
        };
        mounts.push(CgroupMount {
            version,
            controllers,
            root: entry.root.clone(),
            mount_point: entry.mount_point.clone(),
            read_only: entry.mount_options.iter().chain(&entry.super_options).any(|o| o == "ro"),
        });
    }
    Ok(mounts)
}

/// Whether a path lookup from this process's root reaches `m`: its mount point is resolved
/// from the root mount one directory at a time, stepping onto the topmost mount stacked on
/// each directory it passes, as the kernel does; `m` is visible when resolving its own mount
/// point ends on it. Without a root entry (a reader chrooted into a directory that is not a
/// mount point sees none) only a mount stacked on the same mount point hides another.
pub struct Visibility<'a> {
    /// Mounts by (parent mount, mount point).
    children: std::collections::HashMap<(u32, &'a Path), &'a MountInfoEntry>,
    root: Option<&'a MountInfoEntry>,
}

impl<'a> Visibility<'a> {
    pub fn new(entries: &'a [MountInfoEntry]) -> Visibility<'a> {
        let ids: std::collections::HashSet<u32> = entries.iter().map(|e| e.mount_id).collect();
        let children = entries.iter().map(|e| ((e.parent_id, e.mount_point.as_path()), e)).collect();
        let root = entries.iter().find(|e| e.mount_point == Path::new("/") && !ids.contains(&e.parent_id));
        let mut v = Visibility { children, root: None };
        v.root = root.map(|r| v.top(r));
        v
    }

    /// The mount stacked last on `m`'s mount point (a mount over a mount point has the mount
    /// below as its parent and the same mount point).
    fn top(&self, mut m: &'a MountInfoEntry) -> &'a MountInfoEntry {
        for _ in 0..self.children.len() {
            match self.children.get(&(m.mount_id, m.mount_point.as_path())) {
                Some(above) if above.mount_id != m.mount_id => m = above,
                _ => break,
            }
        }
        m
    }

    pub fn is_visible(&self, m: &MountInfoEntry) -> bool {
        let Some(mut here) = self.root else {
            // No root to resolve from: only what is stacked on the same mount point is known
            // to hide a mount.
            return self.top(m).mount_id == m.mount_id;
        };
        let mut path = PathBuf::from("/");
        for component in m.mount_point.components().skip(1) {
            path.push(component);
            if let Some(child) = self.children.get(&(here.mount_id, path.as_path())) {
                here = self.top(child);
            }
        }
        here.mount_id == m.mount_id
    }
}

/// Parses a file holding one unsigned integer (`memory.peak`, `cpuacct.usage`, `pids.peak`,
/// `memory.max_usage_in_bytes`, `memory.limit_in_bytes`).
pub fn parse_u64(content: &str) -> Result<u64, FormatError> {
    content.trim().parse::<u64>().map_err(|_| FormatError::NotUnsignedInteger)
}

/// Parses a v2 limit file (`memory.max`, `pids.max`): `max` means no limit (`None`).
pub fn parse_limit(content: &str) -> Result<Option<u64>, FormatError> {
    match content.trim() {
        "max" => Ok(None),
        value => value.parse::<u64>().map(Some).map_err(|_| FormatError::NotLimit),
    }
}

/// Finds `key` in a flat-keyed file (`memory.events`, `memory.oom_control`, `cpu.stat`,
/// `pids.events`). Every line must be `<key> <u64>` so that garbage is reported rather than
/// read as "key absent".
pub fn flat_keyed_value(content: &str, key: &str) -> Result<Option<u64>, FormatError> {
    let mut found = None;
    for line in content.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let (Some(k), Some(v), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(FormatError::NotKeyValue { line: line.to_owned() });
        };
        let value = v.parse::<u64>().map_err(|_| FormatError::NotKeyValue { line: line.to_owned() })?;
        if k == key && found.is_none() {
            found = Some(value);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::cgroup::fixtures::*;
    use std::path::Path;

    #[test]
    fn proc_cgroup_hybrid() {
        let entries = parse_proc_cgroup(HYBRID_PROC_CGROUP).unwrap();
        assert_eq!(entries.len(), 10);
        assert_eq!(
            entries[0],
            ProcCgroupEntry { hierarchy_id: 9, controllers: vec!["name=systemd".into()], path: "/".into() }
        );
        assert_eq!(entries[5].controllers, vec!["memory".to_owned()]);
        assert_eq!(entries[5].path, "/process_api/073fe650afa758d603bd93f97c931747");
        assert!(entries[9].is_unified());
        assert!(!entries[8].is_unified());
    }

    #[test]
    fn proc_cgroup_combined_controllers_and_colon_in_path() {
        let entries = parse_proc_cgroup("2:cpu,cpuacct:/x:y\n4:memory:/a/b\n").unwrap();
        assert_eq!(entries[0].controllers, vec!["cpu".to_owned(), "cpuacct".to_owned()]);
        assert_eq!(entries[0].path, "/x:y");
        assert_eq!(entries[1].path, "/a/b");
    }

    #[test]
    fn proc_cgroup_v2() {
        let entries = parse_proc_cgroup(V2_PROC_CGROUP).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].is_unified());
        assert_eq!(entries[0].path, "/system.slice/ignite.service");
    }

    #[test]
    fn proc_cgroup_rejects_garbage() {
        for (content, line_no) in
            [("4:memory\n", 1), ("0::/\nx:memory:/\n", 2), ("4:memory:relative\n", 1), ("2:cpu,,cpuacct:/\n", 1)]
        {
            match parse_proc_cgroup(content) {
                Err(CgroupError::ProcCgroupLine { line_no: got, .. }) => assert_eq!(got, line_no),
                other => panic!("{content:?}: expected a line error, got {other:?}"),
            }
        }
    }

    #[test]
    fn mountinfo_hybrid_cgroup_mounts() {
        let mounts = parse_cgroup_mounts(HYBRID_MOUNTINFO).unwrap();
        assert_eq!(mounts.len(), 10, "tmpfs is not a cgroup mount");
        let memory = mounts.iter().find(|m| m.has_controller("memory")).unwrap();
        assert_eq!(memory.version, CgroupVersion::V1);
        assert_eq!(memory.controllers, vec!["memory".to_owned()]);
        assert_eq!(memory.root, Path::new("/"));
        assert_eq!(memory.mount_point, Path::new("/sys/fs/cgroup/memory"));
        let systemd = mounts.iter().find(|m| m.has_controller("name=systemd")).unwrap();
        assert_eq!(systemd.mount_point, Path::new("/sys/fs/cgroup/systemd"));
        let unified: Vec<_> = mounts.iter().filter(|m| m.version == CgroupVersion::V2).collect();
        assert_eq!(unified.len(), 1);
        assert_eq!(unified[0].mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert!(unified[0].controllers.is_empty());
    }

    #[test]
    fn mountinfo_v2_with_optional_fields() {
        let all = parse_mountinfo(V2_MOUNTINFO).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[2].fs_type, "cgroup2");
        assert_eq!(all[2].source, "cgroup2");
        assert_eq!(all[2].super_options, vec!["rw", "nsdelegate", "memory_recursiveprot"]);
        let mounts = parse_cgroup_mounts(V2_MOUNTINFO).unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].version, CgroupVersion::V2);
        assert_eq!(mounts[0].mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn mountinfo_v1_combined_and_flag_options() {
        let info = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 master:3 - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
32 25 0:28 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,noprefix,clone_children,cpuset
";
        let mounts = parse_cgroup_mounts(info).unwrap();
        assert_eq!(mounts[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(mounts[0].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(mounts[1].controllers, vec!["name=systemd"]);
        assert_eq!(mounts[2].controllers, vec!["cpuset"]);
    }

    #[test]
    fn mountinfo_escapes_and_cgroup_namespace_root() {
        let info = "\
50 40 0:30 /docker/abc\\040def /mnt/my\\040cg\\011x\\134y\\012 ro - cgroup2 cgroup\\040two rw
";
        let all = parse_mountinfo(info).unwrap();
        assert_eq!(all[0].root, Path::new("/docker/abc def"));
        assert_eq!(all[0].mount_point, Path::new("/mnt/my cg\tx\\y\n"));
        assert_eq!(all[0].source, "cgroup two");
        // A backslash that is not an octal escape stays as it is.
        assert_eq!(unescape("a\\9b\\04"), b"a\\9b\\04");
    }

    #[test]
    fn mountinfo_over_mounted_cgroup_is_hidden() {
        let info = "\
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
90 35 0:50 / /sys/fs/cgroup/memory rw - tmpfs tmpfs rw
";
        assert!(parse_cgroup_mounts(info).unwrap().is_empty());
    }

    #[test]
    fn a_mount_over_a_parent_directory_hides_what_was_mounted_below_it() {
        // The host's writable hierarchies, then (as a container runtime does) a tmpfs over
        // /sys/fs/cgroup and read-only hierarchies inside it: only the second set is reachable.
        let info = "\
20 1 8:1 / / rw - ext4 /dev/vda rw
31 20 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
100 20 0:60 / /sys/fs/cgroup rw - tmpfs tmpfs rw
101 100 0:32 / /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
102 100 0:33 / /sys/fs/cgroup/cpuset ro - cgroup cgroup rw,cpuset
";
        let mounts = parse_cgroup_mounts(info).unwrap();
        assert_eq!(mounts.len(), 2, "{mounts:?}");
        assert!(mounts.iter().all(|m| m.read_only), "{mounts:?}");
        // Stacked on the root itself, and on the directory of a mount that stays visible.
        let stacked = "\
20 1 8:1 / / rw - ext4 /dev/vda rw
21 20 8:2 / / rw - ext4 /dev/vdb rw
35 20 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
36 21 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let mounts = parse_cgroup_mounts(stacked).unwrap();
        let controllers: Vec<&str> = mounts.iter().map(|m| m.controllers[0].as_str()).collect();
        assert_eq!(controllers, ["pids"], "what was mounted on the lower root is hidden");
        // The hosts' real tables lose nothing.
        for fixture in [HYBRID_MOUNTINFO, V2_MOUNTINFO] {
            let entries = parse_mountinfo(fixture).unwrap();
            let all = entries.iter().filter(|e| e.fs_type.starts_with("cgroup")).count();
            assert_eq!(parse_cgroup_mounts(fixture).unwrap().len(), all);
        }
    }

    #[test]
    fn mountinfo_rejects_garbage() {
        for (content, line_no) in [
            ("31 23 0:28 / /sys/fs/cgroup rw,relatime tmpfs tmpfs rw,mode=755\n", 1),
            ("x 23 0:28 / /sys rw - sysfs sysfs rw\n", 1),
            ("26 23 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2\n", 1),
            ("26 23 0:24 / relative rw - cgroup2 cgroup2 rw\n", 1),
            ("1 0 0:1 / / rw - ext4 /dev/sda rw\nshort line\n", 2),
        ] {
            match parse_mountinfo(content) {
                Err(CgroupError::MountinfoLine { line_no: got, .. }) => assert_eq!(got, line_no),
                other => panic!("{content:?}: expected a line error, got {other:?}"),
            }
        }
    }

    #[test]
    fn single_values() {
        assert_eq!(parse_u64("123456\n"), Ok(123_456));
        assert_eq!(parse_u64("9223372036854771712\n"), Ok(9_223_372_036_854_771_712));
        assert_eq!(parse_u64(""), Err(FormatError::NotUnsignedInteger));
        assert_eq!(parse_u64("-1\n"), Err(FormatError::NotUnsignedInteger));
        assert_eq!(parse_u64("12 34\n"), Err(FormatError::NotUnsignedInteger));
        assert_eq!(parse_limit("max\n"), Ok(None));
        assert_eq!(parse_limit("268435456\n"), Ok(Some(268_435_456)));
        assert_eq!(parse_limit("lots\n"), Err(FormatError::NotLimit));
    }

    #[test]
    fn flat_keyed_files() {
        // Real v1 memory.oom_control and pids.events from the development machine.
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(flat_keyed_value(oom_control, "oom_kill"), Ok(Some(3)));
        assert_eq!(flat_keyed_value(oom_control, "oom_kill_disable"), Ok(Some(0)));
        assert_eq!(flat_keyed_value("max 7\n", "max"), Ok(Some(7)));
        // Kernels before 4.13 had no oom_kill line.
        assert_eq!(flat_keyed_value("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"), Ok(None));
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(flat_keyed_value(events, "oom_kill"), Ok(Some(1)));
        assert_eq!(flat_keyed_value(events, "oom"), Ok(Some(1)));
        let cpu_stat = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n";
        assert_eq!(flat_keyed_value(cpu_stat, "usage_usec"), Ok(Some(1500)));
        assert_eq!(
            flat_keyed_value("oom_kill one\n", "oom_kill"),
            Err(FormatError::NotKeyValue { line: "oom_kill one".into() })
        );
        assert_eq!(flat_keyed_value("hello\n", "oom_kill"), Err(FormatError::NotKeyValue { line: "hello".into() }));
    }
}
