//! Pure parsers for the kernel files and tool outputs `ignite doctor` reads; no I/O here.

use std::fmt;

use serde::Serialize;

/// Why a line of a kernel file was rejected; the reader adds the file's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line_no} {line:?}: {reason}")]
pub struct ParseError {
    pub line_no: usize,
    pub line: String,
    pub reason: &'static str,
}

impl ParseError {
    fn at(line_no: usize, line: &str, reason: &'static str) -> Self {
        // A corrupted or fake file must not blow up a log line.
        let line: String = line.chars().take(200).collect();
        ParseError { line_no, line, reason }
    }
}

/// One row of `/proc/cgroups`: a controller the kernel was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelController {
    pub name: String,
    /// The v1 hierarchy it is mounted in; 0 when it is on cgroup2 or not mounted at all.
    pub hierarchy: u32,
    /// `false` when switched off on the kernel command line (`cgroup_disable=NAME`).
    pub enabled: bool,
}

/// Soft and hard open-file limits from `/proc/<pid>/limits` (`unlimited` is `u64::MAX`).
pub fn parse_nofile_limits(content: &str) -> Result<(u64, u64), ParseError> {
    for (idx, line) in content.lines().enumerate() {
        let Some(rest) = line.strip_prefix("Max open files") else { continue };
        let bad = || ParseError::at(idx + 1, line, "expected `Max open files SOFT HARD files`");
        let value = |w: &str| if w == "unlimited" { Some(u64::MAX) } else { w.parse().ok() };
        let mut words = rest.split_whitespace();
        let soft = words.next().and_then(value).ok_or_else(bad)?;
        let hard = words.next().and_then(value).ok_or_else(bad)?;
        return Ok((soft, hard));
    }
    Err(ParseError::at(0, "", "no `Max open files` line"))
}

/// Parses `/proc/cgroups` (`#subsys_name hierarchy num_cgroups enabled`).
pub fn parse_proc_cgroups(content: &str) -> Result<Vec<KernelController>, ParseError> {
    let mut controllers = Vec::new();
    for (idx, line) in content.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason| ParseError::at(idx + 1, line, reason);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, hierarchy, num_cgroups, enabled] = fields.as_slice() else {
            return Err(bad("expected `name hierarchy num_cgroups enabled`"));
        };
        let hierarchy = hierarchy.parse::<u32>().map_err(|_| bad("hierarchy is not an unsigned integer"))?;
        num_cgroups.parse::<u64>().map_err(|_| bad("num_cgroups is not an unsigned integer"))?;
        let enabled = match *enabled {
            "1" => true,
            "0" => false,
            _ => return Err(bad("enabled is neither 0 nor 1")),
        };
        controllers.push(KernelController { name: (*name).to_owned(), hierarchy, enabled });
    }
    Ok(controllers)
}

/// What `/proc/self/status` says about the reader's identity and confinement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcStatus {
    /// Effective uid (the second `Uid:` field).
    pub euid: u32,
    /// Effective capability set, one bit per capability number.
    pub cap_eff: u64,
    /// `Seccomp:` 0 (none), 1 (strict), 2 (filter); `None` when the kernel has no seccomp at all
    /// (the field only exists with CONFIG_SECCOMP).
    pub seccomp_mode: Option<u8>,
}

/// CAP_SYS_ADMIN's bit number (linux/capability.h).
pub const CAP_SYS_ADMIN: u32 = 21;

impl ProcStatus {
    pub fn has_cap(&self, cap: u32) -> bool {
        cap < 64 && self.cap_eff & (1u64 << cap) != 0
    }
}

/// Parses the fields of `/proc/<pid>/status` that `doctor` needs; `Uid:` and `CapEff:` are required.
pub fn parse_status(content: &str) -> Result<ProcStatus, ParseError> {
    let (mut euid, mut cap_eff, mut seccomp_mode) = (None, None, None);
    for (idx, line) in content.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        let bad = |reason| ParseError::at(idx + 1, line, reason);
        match key {
            "Uid" => {
                let ids: Vec<&str> = value.split_whitespace().collect();
                let [_real, effective, _saved, _fs] = ids.as_slice() else {
                    return Err(bad("expected four uids (real, effective, saved, filesystem)"));
                };
                euid = Some(effective.parse::<u32>().map_err(|_| bad("effective uid is not an unsigned integer"))?);
            }
            "CapEff" => {
                cap_eff = Some(u64::from_str_radix(value, 16).map_err(|_| bad("CapEff is not a hexadecimal mask"))?);
            }
            "Seccomp" => {
                let mode =
                    value.parse::<u8>().ok().filter(|m| *m <= 2).ok_or_else(|| bad("Seccomp is not 0, 1 or 2"))?;
                seccomp_mode = Some(mode);
            }
            _ => {}
        }
    }
    let missing = |field| ParseError::at(0, "", field);
    Ok(ProcStatus {
        euid: euid.ok_or_else(|| missing("no `Uid:` line"))?,
        cap_eff: cap_eff.ok_or_else(|| missing("no `CapEff:` line"))?,
        seccomp_mode,
    })
}

/// Parses a whitespace-separated word list such as `/proc/sys/kernel/seccomp/actions_avail`.
pub fn parse_words(content: &str) -> Vec<String> {
    content.split_whitespace().map(str::to_owned).collect()
}

/// Parses `/sys/kernel/security/lsm`: the active Linux security modules, comma-separated.
pub fn parse_lsm_list(content: &str) -> Vec<String> {
    content.trim().split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Parses `/proc/filesystems` into the filesystem names the kernel can mount now (built in or
/// already loaded as a module), e.g. `overlay`.
pub fn parse_filesystems(content: &str) -> Result<Vec<String>, ParseError> {
    let mut names = Vec::new();
    for (idx, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // `nodev\tproc` or `\text4`: an optional flag column, then the name.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let name = match fields.as_slice() {
            [name] => name,
            ["nodev", name] => name,
            _ => return Err(ParseError::at(idx + 1, line, "expected `[nodev] NAME`")),
        };
        names.push((*name).to_owned());
    }
    Ok(names)
}

/// Parses a sysctl holding one integer (`/proc/sys/user/max_user_namespaces`).
pub fn parse_sysctl_u64(content: &str) -> Result<u64, ParseError> {
    let text = content.trim();
    text.parse::<u64>().map_err(|_| ParseError::at(1, text, "expected one unsigned integer"))
}

/// The `SwapTotal:` of `/proc/meminfo`, in KiB.
pub fn parse_swap_total_kib(meminfo: &str) -> Result<u64, ParseError> {
    for (idx, line) in meminfo.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("SwapTotal:") {
            let bad = || ParseError::at(idx + 1, line, "expected `SwapTotal: N kB`");
            let mut fields = rest.split_whitespace();
            let value = fields.next().and_then(|v| v.parse::<u64>().ok()).ok_or_else(bad)?;
            return match (fields.next(), fields.next()) {
                (Some("kB"), None) => Ok(value),
                _ => Err(bad()),
            };
        }
    }
    Err(ParseError::at(0, "", "no `SwapTotal:` line"))
}

/// A `MAJOR.MINOR.PATCH` version; missing parts are 0. Serialised as `"1.1.5"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Semver {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Semver {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Semver { major, minor, patch }
    }

    /// Reads the leading `N[.N[.N]]` of `text` (`1.1.5+ds1`, `6.18.44-fc-v445`, `1.0.0-rc93`).
    pub fn leading(text: &str) -> Option<Semver> {
        let mut parts = [0u64; 3];
        let mut count = 0;
        for (i, piece) in text.split('.').take(3).enumerate() {
            let digits: String = piece.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            parts[i] = digits.parse().ok()?;
            count = i + 1;
            if digits.len() != piece.len() {
                break;
            }
        }
        (count > 0).then_some(Semver { major: parts[0], minor: parts[1], patch: parts[2] })
    }
}

impl Serialize for Semver {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Semver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The kernel release (`/proc/sys/kernel/osrelease`, what `uname -r` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelRelease {
    pub release: String,
    #[serde(skip)]
    pub version: Semver,
}

pub fn parse_kernel_release(content: &str) -> Result<KernelRelease, ParseError> {
    let release = content.trim();
    let version =
        Semver::leading(release).ok_or_else(|| ParseError::at(1, release, "expected a release like 6.1.0-13-amd64"))?;
    Ok(KernelRelease { release: release.to_owned(), version })
}

/// The version an OCI runtime prints for `--version`: `runc version 1.1.5+ds1`,
/// `crun version 1.8.1`, `youki version: 0.5.7` (the first line that names a version).
pub fn parse_oci_version(output: &str) -> Option<Semver> {
    output.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        words.by_ref().find(|w| w.trim_end_matches(':') == "version")?;
        Semver::leading(words.next()?.trim_start_matches('v'))
    })
}

/// Whether an OCI runtime was built with seccomp support, from its `--version`: runc and youki
/// print a `libseccomp:` line only when built with it (youki's `seccomp` feature), crun lists
/// `+SECCOMP` or `-SECCOMP` among its features. `None` when the output does not say.
pub fn parse_oci_seccomp(kind: &str, output: &str) -> Option<bool> {
    match kind {
        "runc" | "youki" => Some(output.lines().any(|l| l.trim_start().starts_with("libseccomp:"))),
        "crun" => output.split_whitespace().find_map(|w| match w {
            "+SECCOMP" => Some(true),
            "-SECCOMP" => Some(false),
            _ => None,
        }),
        _ => None,
    }
}

/// The first non-empty line of a tool's version output, bounded, for display.
pub fn first_line(output: &str) -> Option<String> {
    let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(120).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> String {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/host/doctor/fixtures").join(path);
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
    }

    #[test]
    fn proc_cgroups_of_each_host_kind() {
        let hybrid = parse_proc_cgroups(&fixture("hybrid-debian12/proc/cgroups")).unwrap();
        let pids = hybrid.iter().find(|c| c.name == "pids").unwrap();
        assert_eq!((pids.hierarchy, pids.enabled), (8, true));
        assert_eq!(hybrid.len(), 12);

        // On a cgroup2-only host every controller shows hierarchy 0.
        let v2 = parse_proc_cgroups(&fixture("v2-ubuntu2404/proc/cgroups")).unwrap();
        assert!(v2.iter().all(|c| c.hierarchy == 0), "{v2:?}");
        assert!(v2.iter().any(|c| c.name == "memory" && c.enabled));

        // The old v1 host has pids compiled in and enabled, but mounted nowhere.
        let old = parse_proc_cgroups(&fixture("v1-old/proc/cgroups")).unwrap();
        let pids = old.iter().find(|c| c.name == "pids").unwrap();
        assert_eq!((pids.hierarchy, pids.enabled), (0, true));
    }

    #[test]
    fn proc_cgroups_errors_name_the_line() {
        let err = parse_proc_cgroups("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t2\n").unwrap_err();
        assert_eq!(err.line_no, 2);
        assert!(err.to_string().contains("expected `name hierarchy num_cgroups enabled`"), "{err}");
        let err = parse_proc_cgroups("memory 4 40 yes\n").unwrap_err();
        assert_eq!(err.reason, "enabled is neither 0 nor 1");
    }

    #[test]
    fn status_of_root_and_of_a_rootless_container() {
        let root = parse_status(&fixture("hybrid-debian12/proc/self/status")).unwrap();
        assert_eq!(root.euid, 0);
        assert!(root.has_cap(CAP_SYS_ADMIN));
        assert_eq!(root.seccomp_mode, Some(0));

        let rootless = parse_status(&fixture("rootless-container/proc/self/status")).unwrap();
        assert_eq!(rootless.euid, 1000);
        assert!(!rootless.has_cap(CAP_SYS_ADMIN));
        assert_eq!(rootless.cap_eff, 0);
        assert_eq!(rootless.seccomp_mode, Some(2), "a container runs under its engine's filter");
    }

    #[test]
    fn status_without_seccomp_support_or_required_fields() {
        let no_seccomp = "Name:\tx\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_status(no_seccomp).unwrap().seccomp_mode, None);
        let err = parse_status("Uid:\t0\t0\t0\t0\n").unwrap_err();
        assert_eq!(err.reason, "no `CapEff:` line");
        let err = parse_status("Uid:\t0\t0\nCapEff:\t0\n").unwrap_err();
        assert_eq!((err.line_no, err.reason), (1, "expected four uids (real, effective, saved, filesystem)"));
        let err = parse_status("Uid:\t0\t0\t0\t0\nCapEff:\tzz\n").unwrap_err();
        assert_eq!(err.reason, "CapEff is not a hexadecimal mask");
        let err = parse_status("Uid:\t0\t0\t0\t0\nCapEff:\t0\nSeccomp:\t7\n").unwrap_err();
        assert_eq!(err.reason, "Seccomp is not 0, 1 or 2");
    }

    #[test]
    fn seccomp_actions_with_and_without_user_notif() {
        let new = parse_words(&fixture("hybrid-debian12/proc/sys/kernel/seccomp/actions_avail"));
        assert!(new.iter().any(|a| a == "user_notif"));
        assert!(new.iter().any(|a| a == "errno"));
        // Linux 4.19: filter mode, but user notification only arrived in 5.0.
        let old = parse_words(&fixture("v1-old/proc/sys/kernel/seccomp/actions_avail"));
        assert!(old.iter().any(|a| a == "errno"));
        assert!(!old.iter().any(|a| a == "user_notif"), "{old:?}");
    }

    #[test]
    fn lsm_lists() {
        let ubuntu = parse_lsm_list(&fixture("v2-ubuntu2404/sys/kernel/security/lsm"));
        assert_eq!(ubuntu, ["lockdown", "capability", "landlock", "yama", "apparmor"]);
        let container = parse_lsm_list(&fixture("rootless-container/sys/kernel/security/lsm"));
        assert!(!container.iter().any(|m| m == "landlock"), "{container:?}");
        assert!(parse_lsm_list("\n").is_empty());
    }

    #[test]
    fn filesystems_with_and_without_overlay() {
        let with = parse_filesystems(&fixture("hybrid-debian12/proc/filesystems")).unwrap();
        assert!(with.iter().any(|f| f == "overlay"));
        assert!(with.iter().any(|f| f == "ext4"), "block filesystems have no nodev column");
        let without = parse_filesystems(&fixture("rootless-container/proc/filesystems")).unwrap();
        assert!(!without.iter().any(|f| f == "overlay"), "{without:?}");
        let err = parse_filesystems("nodev\tproc\nnodev x y\n").unwrap_err();
        assert_eq!(err.line_no, 2);
    }

    #[test]
    fn user_namespace_sysctls() {
        assert_eq!(parse_sysctl_u64(&fixture("hybrid-debian12/proc/sys/user/max_user_namespaces")).unwrap(), 96343);
        assert_eq!(parse_sysctl_u64(&fixture("rootless-container/proc/sys/user/max_user_namespaces")).unwrap(), 0);
        assert_eq!(parse_sysctl_u64(&fixture("v2-ubuntu2404/proc/sys/kernel/unprivileged_userns_clone")).unwrap(), 1);
        assert!(parse_sysctl_u64("-1\n").is_err());
        assert!(parse_sysctl_u64("").is_err());
    }

    #[test]
    fn swap_total() {
        assert_eq!(parse_swap_total_kib(&fixture("hybrid-debian12/proc/meminfo")).unwrap(), 0);
        assert_eq!(parse_swap_total_kib(&fixture("v1-old/proc/meminfo")).unwrap(), 2097148);
        assert_eq!(parse_swap_total_kib("MemTotal: 1 kB\n").unwrap_err().reason, "no `SwapTotal:` line");
        assert!(parse_swap_total_kib("SwapTotal: 12 MB\n").is_err());
    }

    #[test]
    fn kernel_releases() {
        let dev = parse_kernel_release(&fixture("hybrid-debian12/proc/sys/kernel/osrelease")).unwrap();
        assert_eq!(dev.release, "6.18.44-fc-v445");
        assert_eq!(dev.version, Semver::new(6, 18, 44));
        let el = parse_kernel_release(&fixture("v1-old/proc/sys/kernel/osrelease")).unwrap();
        assert_eq!(el.version, Semver::new(4, 19, 0));
        assert!(parse_kernel_release("linux\n").is_err());
    }

    #[test]
    fn oci_runtime_versions() {
        let v = |name: &str| parse_oci_version(&fixture(&format!("versions/{name}")));
        assert_eq!(v("runc-1.1.5"), Some(Semver::new(1, 1, 5)));
        assert_eq!(v("runc-1.0.0-rc93"), Some(Semver::new(1, 0, 0)));
        assert_eq!(v("crun-1.8.1"), Some(Semver::new(1, 8, 1)));
        assert_eq!(v("youki-0.5.7"), Some(Semver::new(0, 5, 7)));
        assert_eq!(parse_oci_version("usage: runc [options]\n"), None);
        let fixture = |name: &str| fixture(&format!("versions/{name}"));
        assert_eq!(parse_oci_seccomp("runc", &fixture("runc-1.1.5")), Some(true));
        assert_eq!(parse_oci_seccomp("youki", &fixture("youki-0.5.7")), Some(true));
        assert_eq!(parse_oci_seccomp("crun", &fixture("crun-1.8.1")), Some(true));
        // youki built without its `seccomp` feature prints no libseccomp line.
        assert_eq!(
            parse_oci_seccomp("youki", "youki version: 0.7.0\ncommit: x\nspec: 1.1.0\nrustc: 1.95.0\n"),
            Some(false)
        );
        assert_eq!(parse_oci_seccomp("crun", "crun version 1.8.1\n+SYSTEMD -SECCOMP +CAP\n"), Some(false));
        assert_eq!(parse_oci_seccomp("crun", "crun version 1.8.1\n"), None);
        assert_eq!(parse_oci_version(""), None);
    }

    #[test]
    fn tool_version_lines() {
        assert_eq!(first_line(&fixture("versions/slirp4netns-1.2.0")).as_deref(), Some("slirp4netns version 1.2.0"));
        assert_eq!(first_line(&fixture("versions/pasta-debian12")).as_deref(), Some("pasta unknown version"));
        assert_eq!(
            first_line(&fixture("versions/ip-6.1.0")).as_deref(),
            Some("ip utility, iproute2-6.1.0, libbpf 1.1.2")
        );
        assert_eq!(first_line("\n\n"), None);
    }

    #[test]
    fn leading_semver() {
        assert_eq!(Semver::leading("1.1.5+ds1"), Some(Semver::new(1, 1, 5)));
        assert_eq!(Semver::leading("1.8"), Some(Semver::new(1, 8, 0)));
        assert_eq!(Semver::leading("5.15.0-91-generic"), Some(Semver::new(5, 15, 0)));
        assert_eq!(Semver::leading("unknown"), None);
        assert!(Semver::new(1, 0, 9) < Semver::new(1, 1, 0));
    }
}
