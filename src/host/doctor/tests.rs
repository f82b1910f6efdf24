//! Scenario tests: fixture hosts through the real probe and checks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::facts::*;
use super::*;
use crate::sandbox::cgroup::CgroupDriver;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/host/doctor/fixtures")
}

/// A directory of stand-in programs: each prints a fixture file as its version.
struct FakeBin {
    dir: tempfile::TempDir,
}

impl FakeBin {
    fn new() -> Self {
        FakeBin { dir: tempfile::tempdir().unwrap() }
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn printing(&self, name: &str, fixture: &str) -> PathBuf {
        let file = fixtures().join("versions").join(fixture);
        self.script(name, &format!("cat '{}'", file.display()))
    }

    fn path_env(&self) -> Option<std::ffi::OsString> {
        Some(self.dir.path().as_os_str().to_owned())
    }
}

struct Scenario {
    opts: DoctorOptions,
    _bin: FakeBin,
    _scratch: tempfile::TempDir,
}

/// The fixture host `name` with runc 1.1.5, slirp4netns and ip on PATH, an empty bundle cache
/// and the given Landlock answer.
fn scenario(name: &str, landlock: LandlockSupport) -> Scenario {
    let bin = FakeBin::new();
    let runc = bin.printing("runc", "runc-1.1.5");
    bin.printing("slirp4netns", "slirp4netns-1.2.0");
    bin.printing("ip", "ip-6.1.0");
    let scratch = tempfile::tempdir().unwrap();
    let opts = DoctorOptions {
        root: fixtures().join(name),
        cache_dir: scratch.path().join("cache"),
        state_dir: scratch.path().join("state"),
        oci_requested: "runc".into(),
        oci_selected: Ok((OciKind::Runc, runc)),
        entrypoint: Ok(PathBuf::from("/usr/local/bin/ignite-init")),
        path_env: bin.path_env(),
        landlock,
        cgroup_driver: DriverChoice::Auto,
    };
    Scenario { opts, _bin: bin, _scratch: scratch }
}

#[test]
fn open_file_limits_bound_the_sandboxes_and_say_what_to_do() {
    let s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let facts = probe::gather(&s.opts);
    assert_eq!(facts.open_files, Probed::Found(OpenFiles { soft: 20000, hard: 20000 }));
    let d = judge(facts.clone());
    let c = assert_status(&d, "open-files", Status::Ok);
    assert_eq!(c.value, "soft 20000, hard 20000: sandboxes get 4096");

    let with = |soft, hard| judge(Facts { open_files: Probed::Found(OpenFiles { soft, hard }), ..facts.clone() });
    let d = with(1024, 1024);
    let c = assert_status(&d, "open-files", Status::Warn);
    assert_eq!(c.value, "soft 1024, hard 1024: sandboxes get 1024 open files instead of 4096");
    assert!(c.remedy.as_deref().unwrap().contains("ulimit -Hn 4096"), "{c:#?}");
    assert!(d.ok, "a lower limit still runs sandboxes");

    let d = with(128, 128);
    let c = assert_status(&d, "open-files", Status::Fail);
    assert!(c.value.contains("hard 128") && c.value.contains("256"), "{c:#?}");
    assert!(c.remedy.as_deref().unwrap().contains("LimitNOFILE"), "{c:#?}");
    assert!(!d.ok);

    let d = with(u64::MAX, u64::MAX);
    let c = assert_status(&d, "open-files", Status::Ok);
    assert_eq!(c.value, "soft unlimited, hard unlimited: sandboxes get 4096");

    // The container fixture: its hard limit is 1024.
    let s = scenario("rootless-container", LandlockSupport::Disabled);
    assert_status(&run(&s.opts), "open-files", Status::Warn);
}

#[test]
fn nofile_limits_parse_from_proc_limits() {
    let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                Max processes             96367                96367                processes \n\
                Max open files            1024                 unlimited            files     \n";
    assert_eq!(parse::parse_nofile_limits(text), Ok((1024, u64::MAX)));
    assert!(parse::parse_nofile_limits("Max open files  x  1 files\n").is_err());
    assert!(parse::parse_nofile_limits("Max processes 1 1 processes\n").is_err());
}

fn check<'a>(d: &'a Doctor, name: &str) -> &'a Check {
    d.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name}: {:#?}", d.checks))
}

fn assert_status<'a>(d: &'a Doctor, name: &str, status: Status) -> &'a Check {
    let c = check(d, name);
    assert_eq!(c.status, status, "{c:#?}");
    assert_eq!(c.remedy.is_some(), status != Status::Ok, "a remedy exactly when not ok: {c:#?}");
    c
}

#[test]
fn the_development_machine_can_run_sandboxes() {
    let s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let d = run(&s.opts);
    assert!(d.ok, "{}", d.table());
    assert_eq!(d.exit_code(), 0);
    assert_eq!(d.host.cgroup.mode, Probed::Found(Some(HostCgroup::Hybrid)));
    assert!(assert_status(&d, "cgroup-version", Status::Ok).value.contains("hybrid"), "{}", d.table());
    assert!(check(&d, "cgroup-version").value.contains("/sys/fs/cgroup/unified (controllers: hugetlb)"));
    assert_eq!(
        assert_status(&d, "cgroup-controllers", Status::Ok).value,
        "memory, cpu, pids, cpuacct on v1 hierarchies"
    );
    let parent = assert_status(&d, "cgroup-parent", Status::Ok);
    assert_eq!(parent.value, "/ignite in memory, cpu, cpuacct, pids, unified: exists");
    assert!(assert_status(&d, "memory-swap", Status::Ok).value.contains("memsw"));
    let seccomp = assert_status(&d, "seccomp", Status::Ok);
    assert!(seccomp.value.starts_with("filter mode"), "{seccomp:?}");
    assert!(!seccomp.value.contains("already runs under"), "{seccomp:?}");
    assert_status(&d, "seccomp-notify", Status::Ok);
    let landlock = assert_status(&d, "landlock", Status::Ok);
    assert!(landlock.value.contains("ABI 7") && landlock.value.contains("securityfs is not mounted"), "{landlock:?}");
    assert_status(&d, "user-namespaces", Status::Ok);
    assert_status(&d, "overlayfs", Status::Ok);
    assert_status(&d, "privileges", Status::Ok);
    assert_eq!(assert_status(&d, "kernel", Status::Ok).value, "Linux 6.18.44-fc-v445");
    let oci = assert_status(&d, "oci-runtime", Status::Ok);
    assert!(oci.value.starts_with("runc 1.1.5 at "), "{oci:?}");
    let net = assert_status(&d, "user-network", Status::Ok);
    assert!(
        net.value.starts_with("slirp4netns version 1.2.0 at ") && net.value.ends_with("pasta not on PATH"),
        "{net:?}"
    );
    assert!(assert_status(&d, "iproute2", Status::Ok).value.starts_with("ip utility, iproute2-6.1.0"));
    // The scratch cache is empty: the default runtime would be downloaded on the first run.
    let bundles = assert_status(&d, "bundles", Status::Warn);
    assert!(bundles.value.contains("bun 1.4.5 not pulled"), "{bundles:?}");
    assert_eq!(bundles.remedy.as_deref(), Some("ignite runtime pull bun (downloads from registry.npmjs.org)"));
}

#[test]
fn a_cgroup_v2_only_host() {
    let s = scenario("v2-ubuntu2404", LandlockSupport::Available { abi: 4 });
    let d = run(&s.opts);
    assert!(d.ok, "{}", d.table());
    assert_eq!(d.host.cgroup.mode, Probed::Found(Some(HostCgroup::V2)));
    assert_eq!(assert_status(&d, "cgroup-version", Status::Ok).value, "v2 (unified) at /sys/fs/cgroup");
    assert_eq!(assert_status(&d, "cgroup-controllers", Status::Ok).value, "memory, cpu, pids on cgroup2");
    assert_eq!(
        assert_status(&d, "cgroup-parent", Status::Ok).value,
        "/ignite in unified: created by the OCI runtime on the first run"
    );
    let root = d.host.cgroup.unified_root.as_ref().unwrap();
    assert!(!root.nested, "the kernel's root cgroup has no cgroup.type");
    assert_eq!(d.host.cgroup.swap_accounting, Some(true));
    assert!(assert_status(&d, "memory-swap", Status::Ok).value.contains("memory.swap.max"));
    let landlock = assert_status(&d, "landlock", Status::Ok);
    assert!(landlock.value.contains("ABI 4") && landlock.value.contains("landlock,yama"), "{landlock:?}");
    assert!(landlock.value.contains("TCP bind/connect") && !landlock.value.contains("device ioctl"), "{landlock:?}");
    let userns = assert_status(&d, "user-namespaces", Status::Ok);
    assert!(!userns.value.contains("root only"), "{userns:?}");
    // crun is fine on a pure v2 host.
    let crun = OciBinary {
        kind: "crun",
        path: "/usr/bin/crun".into(),
        version: Probed::Found(parse::Semver::new(1, 8, 1)),
        seccomp: Some(true),
    };
    assert!(checks::oci_incompatibilities(&crun, &d.host.cgroup).is_empty());
}

#[test]
fn a_v1_host_without_the_pids_controller_or_swap_accounting() {
    let s = scenario("v1-old", LandlockSupport::Unsupported);
    let d = run(&s.opts);
    assert!(!d.ok);
    assert_eq!(d.exit_code(), 1);
    assert_eq!(d.host.cgroup.mode, Probed::Found(Some(HostCgroup::V1)));
    let controllers = assert_status(&d, "cgroup-controllers", Status::Fail);
    assert!(
        controllers
            .value
            .starts_with("memory, cpu, cpuacct on v1 hierarchies; missing pids: in the kernel, not mounted"),
        "{controllers:?}"
    );
    assert_eq!(
        controllers.remedy.as_deref(),
        Some("mount its hierarchy: mkdir -p /sys/fs/cgroup/pids && mount -t cgroup -o pids cgroup /sys/fs/cgroup/pids")
    );
    assert_eq!(
        assert_status(&d, "cgroup-parent", Status::Ok).value,
        "/ignite in memory, cpu,cpuacct: created by the OCI runtime on the first run"
    );
    let swap = assert_status(&d, "memory-swap", Status::Fail);
    assert!(swap.value.contains("no memory.memsw.limit_in_bytes"), "{swap:?}");
    assert!(swap.remedy.as_deref().unwrap().contains("swapaccount=1"));
    assert_status(&d, "seccomp", Status::Ok);
    let notify = assert_status(&d, "seccomp-notify", Status::Warn);
    assert_eq!(notify.needed_for, "audit mode");
    let landlock = assert_status(&d, "landlock", Status::Warn);
    assert_eq!(landlock.value, "the kernel has no Landlock");
    assert!(landlock.remedy.as_deref().unwrap().contains("5.13"));
    let userns = assert_status(&d, "user-namespaces", Status::Ok);
    assert!(userns.value.contains("root only"), "{userns:?}");
    assert_eq!(check(&d, "kernel").value, "Linux 4.19.0-27-amd64");
}

#[test]
fn a_pids_controller_disabled_at_boot_or_missing_from_the_kernel() {
    let s = scenario("v1-old", LandlockSupport::Unsupported);
    let mut facts = probe::gather(&s.opts);
    let Probed::Found(list) = &mut facts.cgroup.kernel_controllers else { panic!() };
    list.iter_mut().find(|c| c.name == "pids").unwrap().enabled = false;
    let d = judge(facts.clone());
    let c = assert_status(&d, "cgroup-controllers", Status::Fail);
    assert!(c.value.contains("pids: disabled at boot"), "{c:?}");
    assert_eq!(c.remedy.as_deref(), Some("remove cgroup_disable=pids from the kernel command line and reboot"));

    let Probed::Found(list) = &mut facts.cgroup.kernel_controllers else { panic!() };
    list.retain(|c| c.name != "pids");
    let d = judge(facts);
    let c = assert_status(&d, "cgroup-controllers", Status::Fail);
    assert!(c.value.contains("pids: not in the kernel"), "{c:?}");
    assert_eq!(c.remedy.as_deref(), Some("use a kernel built with CONFIG_CGROUP_PIDS"));
}

#[test]
fn only_cpuacct_missing_is_a_warning() {
    let s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let mut facts = probe::gather(&s.opts);
    facts.cgroup.mounts.retain(|m| !m.controllers.iter().any(|c| c == "cpuacct"));
    let d = judge(facts);
    let c = assert_status(&d, "cgroup-controllers", Status::Warn);
    assert!(c.value.contains("CPU time is not reported"), "{c:?}");
}

#[test]
fn a_rootless_container() {
    let s = scenario("rootless-container", LandlockSupport::Disabled);
    let d = run(&s.opts);
    assert!(!d.ok);
    let privileges = assert_status(&d, "privileges", Status::Ok);
    assert!(privileges.value.starts_with("uid 1000: rootless"), "{privileges:?}");
    // Rootless: the user has no subordinate ids here, and no systemd user manager (the
    // container has no systemd): each says what to do.
    let ids = assert_status(&d, "subordinate-ids", Status::Fail);
    assert!(ids.remedy.as_deref().unwrap_or("").contains("usermod --add-subuids"), "{ids:?}");
    let manager = assert_status(&d, "user-manager", Status::Fail);
    assert!(manager.remedy.as_deref().unwrap_or("").contains("systemd"), "{manager:?}");
    let refused = assert_status(&d, "rootless-limits", Status::Warn);
    // A network is given rootless: not among them.
    assert!(refused.value.contains("sessions") && !refused.value.contains("network"), "{refused:?}");
    // Dependency installs and output files are given rootless too; bundle builds are not.
    assert_eq!(refused.needed_for, "writable roots, sessions, bundle builds");
    let parent = assert_status(&d, "cgroup-parent", Status::Fail);
    assert!(parent.value.contains("mounted read-only"), "{parent:?}");
    let seccomp = assert_status(&d, "seccomp", Status::Ok);
    assert!(seccomp.value.ends_with("ignite itself already runs under a seccomp filter"), "{seccomp:?}");
    // Every rootless sandbox is in a user namespace: disabled ones fail every run.
    let userns = assert_status(&d, "user-namespaces", Status::Fail);
    assert_eq!(userns.value, "disabled (user.max_user_namespaces = 0)");
    assert_eq!(userns.needed_for, "every run");
    assert_eq!(check(&d, "overlayfs").needed_for, "writable-root policies");
    assert_status(&d, "overlayfs", Status::Warn);
    let landlock = assert_status(&d, "landlock", Status::Warn);
    assert!(landlock.value.starts_with("built into the kernel but not enabled"), "{landlock:?}");
    assert_eq!(
        landlock.remedy.as_deref(),
        Some(
            "add landlock to the lsm= kernel parameter (e.g. lsm=landlock,lockdown,capability,yama,apparmor) and reboot"
        )
    );
    // No swap on this host, so the missing swap accounting costs nothing.
    assert_eq!(d.host.cgroup.swap_accounting, None);
    assert_eq!(assert_status(&d, "memory-swap", Status::Ok).value, "the host has no swap: the memory limit is exact");

    // Given a writable cgroupfs, the processes in the namespace root still block delegation.
    let mut facts = d.host.clone();
    facts.cgroup.parent.iter_mut().for_each(|p| p.read_only = false);
    let d = judge(facts);
    let parent = assert_status(&d, "cgroup-parent", Status::Fail);
    assert!(parent.value.starts_with("2 process(es) live in"), "{parent:?}");
    assert!(parent.value.contains("cannot enable memory, cpu, pids"), "{parent:?}");
    assert!(parent.remedy.as_deref().unwrap().contains("/init/cgroup.procs"), "{parent:?}");
}

/// Copies a fixture root, so that a test can change one file of it.
fn copy_fixture(name: &str, to: &Path) {
    fn walk(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let dest = to.join(entry.file_name());
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(&entry.path(), &dest);
            } else if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
            } else {
                std::fs::copy(entry.path(), &dest).unwrap();
            }
        }
    }
    walk(&fixtures().join(name), to);
}

#[test]
fn a_read_only_hierarchy_that_ignite_does_not_limit_with_still_fails_every_run() {
    // runc creates each run's cgroup in every v1 hierarchy: a read-only cpuset mount (as in a
    // container whose cgroupfs is read-only) fails every run even though memory, cpu and pids
    // are writable.
    let mut s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let root = s._scratch.path().join("root");
    copy_fixture("hybrid-debian12", &root);
    let mountinfo = root.join("proc/self/mountinfo");
    let text = std::fs::read_to_string(&mountinfo).unwrap();
    let changed = text.replace("/sys/fs/cgroup/cpuset rw,relatime", "/sys/fs/cgroup/cpuset ro,relatime");
    assert_ne!(changed, text);
    std::fs::write(&mountinfo, changed).unwrap();
    s.opts.root = root;
    let d = run(&s.opts);
    let parent = assert_status(&d, "cgroup-parent", Status::Fail);
    assert!(parent.value.starts_with("the cpuset hierarchy is mounted read-only"), "{parent:?}");
    // A writable one stays out of the list, as before.
    let d = run(&scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 }).opts);
    assert_eq!(check(&d, "cgroup-parent").value, "/ignite in memory, cpu, cpuacct, pids, unified: exists");
}

#[test]
fn landlock_abi_one_to_six_and_absent() {
    let s = scenario("v2-ubuntu2404", LandlockSupport::Unsupported);
    let facts = probe::gather(&s.opts);
    for abi in 1..=6u32 {
        let mut f = facts.clone();
        f.landlock.support = LandlockSupport::Available { abi };
        let d = judge(f);
        // allowedCommands needs the refer right (ABI 2): under ABI 1 every rename across
        // directories would fail with EXDEV.
        let want = if abi == 1 { Status::Warn } else { Status::Ok };
        let c = assert_status(&d, "landlock", want);
        assert!(c.value.starts_with(&format!("ABI {abi}: filesystem rules (execute, read, write)")), "{c:?}");
        if abi == 1 {
            assert!(c.value.contains("allowedCommands needs ABI 2"), "{c:?}");
            assert_eq!(c.remedy.as_deref(), Some("use a kernel ≥ 5.19"));
        }
        assert_eq!(checks::landlock_features(abi).len(), abi as usize);
    }
    assert_eq!(checks::landlock_features(9).len(), 7, "newer ABIs show what is known");
    let mut f = facts.clone();
    f.landlock = LandlockFacts { support: LandlockSupport::Disabled, lsm: None };
    let d = judge(f);
    assert_eq!(
        assert_status(&d, "landlock", Status::Warn).remedy.as_deref(),
        Some("add landlock to the lsm= kernel parameter and reboot")
    );
    let mut f = facts;
    f.landlock.support = LandlockSupport::Failed { error: "landlock_create_ruleset failed: EPERM".into() };
    assert_status(&judge(f), "landlock", Status::Warn);
}

#[test]
fn seccomp_without_user_notif_or_without_seccomp() {
    let s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let facts = probe::gather(&s.opts);
    let mut f = facts.clone();
    f.seccomp.actions = Probed::Found(Some(parse::parse_words("kill_process kill_thread trap errno trace log allow")));
    let d = judge(f);
    assert_status(&d, "seccomp", Status::Ok);
    assert_status(&d, "seccomp-notify", Status::Warn);
    assert!(d.ok, "audit mode is not needed for a default run");

    let mut f = facts.clone();
    f.seccomp.mode = Probed::Found(None);
    f.seccomp.actions = Probed::Found(None);
    let d = judge(f);
    assert_eq!(
        assert_status(&d, "seccomp", Status::Fail).remedy.as_deref(),
        Some("use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER")
    );
    assert!(!d.ok);

    let mut f = facts;
    f.seccomp.actions = Probed::Found(Some(vec!["kill_process".into(), "allow".into()]));
    let c = judge(f).checks.into_iter().find(|c| c.name == "seccomp").unwrap();
    assert_eq!(c.status, Status::Fail);
    assert!(c.value.contains("lacks the errno action"), "{c:?}");
}

fn disk_facts(role: &'static str, free_bytes: u64, free_inodes: u64) -> Disk {
    Disk {
        role,
        dir: PathBuf::from("/var/lib/ignite"),
        exists: true,
        measured: PathBuf::from("/var/lib/ignite"),
        usage: Probed::Found(DiskUsage {
            free_bytes,
            total_bytes: 100_000_000_000,
            free_inodes,
            total_inodes: 6_000_000,
            read_only: false,
        }),
    }
}

#[test]
fn low_disk_space_and_inodes() {
    let s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let facts = probe::gather(&s.opts);
    let judge_disks = |cache: Disk, state: Disk| {
        let mut f = facts.clone();
        f.disks = vec![cache, state];
        judge(f)
    };
    let plenty = || disk_facts("state", 10 << 30, 1_000_000);
    let d = judge_disks(disk_facts("cache", 30 << 30, 5_000_000), plenty());
    assert!(assert_status(&d, "cache-space", Status::Ok).value.contains("32.2 GB free of 100.0 GB, 5.0M inodes free"));
    assert_status(&d, "state-space", Status::Ok);

    let d = judge_disks(disk_facts("cache", 100 << 20, 5_000_000), plenty());
    let c = assert_status(&d, "cache-space", Status::Fail);
    assert!(c.value.contains("needs at least 268.4 MB"), "{c:?}");
    assert!(c.remedy.as_deref().unwrap().contains("--cache-dir / IGNITE_CACHE_DIR"));
    assert!(!d.ok);

    let d = judge_disks(disk_facts("cache", 1 << 30, 5_000_000), plenty());
    assert_status(&d, "cache-space", Status::Warn);
    assert!(d.ok, "a warning does not fail the doctor");

    let d = judge_disks(disk_facts("cache", 30 << 30, 1_500), plenty());
    assert_status(&d, "cache-space", Status::Fail);
    let d = judge_disks(disk_facts("cache", 30 << 30, 15_000), plenty());
    assert_status(&d, "cache-space", Status::Warn);

    let mut uncounted = disk_facts("cache", 30 << 30, 0);
    if let Probed::Found(u) = &mut uncounted.usage {
        u.total_inodes = 0;
    }
    let d = judge_disks(uncounted, plenty());
    assert!(assert_status(&d, "cache-space", Status::Ok).value.ends_with("uncounted inodes free"));

    let d = judge_disks(disk_facts("cache", 30 << 30, 5_000_000), disk_facts("state", 512 << 10, 1_000_000));
    assert!(assert_status(&d, "state-space", Status::Fail).remedy.as_deref().unwrap().contains("--state-dir"));
    let d = judge_disks(disk_facts("cache", 30 << 30, 5_000_000), disk_facts("state", 8 << 20, 1_000_000));
    assert_status(&d, "state-space", Status::Warn);

    let mut ro = plenty();
    if let Probed::Found(u) = &mut ro.usage {
        u.read_only = true;
    }
    let d = judge_disks(disk_facts("cache", 30 << 30, 5_000_000), ro);
    assert!(assert_status(&d, "state-space", Status::Fail).value.ends_with("the filesystem is read-only"));
}

#[test]
fn directories_that_do_not_exist_are_measured_at_their_parent_and_not_created() {
    let s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let d = run(&s.opts);
    assert!(!s.opts.cache_dir.exists() && !s.opts.state_dir.exists(), "doctor created a directory");
    let cache = d.host.disks.iter().find(|d| d.role == "cache").unwrap();
    assert!(!cache.exists);
    assert_eq!(cache.measured, s.opts.cache_dir.parent().unwrap());
    assert!(cache.usage.found().is_some_and(|u| u.total_bytes > 0), "{cache:?}");
    assert!(check(&d, "cache-space").value.contains("(not created yet; measured at "));
}

#[test]
fn oci_runtime_missing_broken_old_or_incompatible() {
    let s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let bin = FakeBin::new();

    let mut opts = s.opts.clone();
    opts.oci_selected = Err("OCI runtime `runc` not found in PATH; install it".into());
    opts.path_env = bin.path_env();
    let d = run(&opts);
    let c = assert_status(&d, "oci-runtime", Status::Fail);
    assert_eq!(c.value, "OCI runtime `runc` not found in PATH; install it");
    let listed = assert_status(&d, "oci-runtimes", Status::Warn);
    assert_eq!(listed.value, "not on PATH: runc, crun, youki");
    assert!(!d.ok);

    let broken = bin.script("runc", "echo 'runc: cannot load libseccomp' >&2; exit 127");
    opts.oci_selected = Ok((OciKind::Runc, broken));
    let d = run(&opts);
    let c = assert_status(&d, "oci-runtime", Status::Fail);
    assert!(c.value.contains("does not work: `") && c.value.contains("exited with exit status: 127"), "{c:?}");

    let old = bin.printing("runc", "runc-1.0.0-rc93");
    opts.oci_selected = Ok((OciKind::Runc, old));
    let d = run(&opts);
    let c = assert_status(&d, "oci-runtime", Status::Warn);
    assert!(c.value.contains("runc 1.0.0 has no seccomp listenerPath"), "{c:?}");
    assert_eq!(c.remedy.as_deref(), Some("install runc 1.1.0 or newer"));
    assert!(d.ok, "an old runc still runs a default sandbox");

    // crun and youki on PATH beside runc: listed with versions; crun's refusal of this hybrid
    // host (cgroup2 holds hugetlb) is said, and is fatal once crun is the one in use.
    bin.printing("runc", "runc-1.1.5");
    let crun = bin.printing("crun", "crun-1.8.1");
    bin.printing("youki", "youki-0.5.7");
    opts.oci_selected = Ok((OciKind::Runc, bin.dir.path().join("runc")));
    let d = run(&opts);
    let listed = assert_status(&d, "oci-runtimes", Status::Ok);
    assert!(listed.value.starts_with("runc 1.1.5 at ") && listed.value.contains("(in use)"), "{listed:?}");
    assert!(
        listed.value.contains("crun 1.8.1 at ") && listed.value.contains("crun refuses hybrid cgroup hosts"),
        "{listed:?}"
    );
    assert!(listed.value.contains("(here: hugetlb)"), "{listed:?}");
    assert!(
        listed.value.ends_with(&format!("youki 0.5.7 at {}", bin.dir.path().join("youki").display())),
        "{listed:?}"
    );
    assert_status(&d, "oci-runtime", Status::Ok);
    opts.oci_selected = Ok((OciKind::Crun, crun));
    let d = run(&opts);
    let c = assert_status(&d, "oci-runtime", Status::Fail);
    assert!(c.remedy.as_deref().unwrap().starts_with("use runc on this host"), "{c:?}");

    let silent = bin.script("runc", "echo 'usage: runc'");
    opts.oci_selected = Ok((OciKind::Runc, silent));
    let c = run(&opts).checks.into_iter().find(|c| c.name == "oci-runtime").unwrap();
    assert_eq!(c.status, Status::Fail);
    assert!(c.value.contains("printed no version (first line: \"usage: runc\")"), "{c:?}");
}

#[test]
fn a_version_command_that_hangs_is_killed() {
    let bin = FakeBin::new();
    let hang = bin.script("runc", "exec sleep 30");
    let err = probe::run_version_within(&hang, &["--version"], std::time::Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, DoctorError::Hung { .. }), "{err}");
    assert!(err.to_string().contains("did not finish within"), "{err}");
}

#[test]
fn missing_network_tools_are_warnings() {
    let s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let mut opts = s.opts.clone();
    let bin = FakeBin::new();
    bin.printing("pasta", "pasta-debian12");
    opts.path_env = bin.path_env();
    let d = run(&opts);
    let net = assert_status(&d, "user-network", Status::Warn);
    assert!(
        net.value.contains("pasta unknown version at")
            && net.value.contains("ignite's user-mode network is slirp4netns"),
        "{net:?}"
    );
    assert_eq!(net.remedy.as_deref(), Some("apt-get install slirp4netns"));
    assert_eq!(assert_status(&d, "iproute2", Status::Warn).remedy.as_deref(), Some("apt-get install iproute2"));
}

#[test]
fn a_host_without_proc_is_reported_not_a_panic() {
    let empty = tempfile::tempdir().unwrap();
    let s = scenario("hybrid-debian12", LandlockSupport::Unsupported);
    let mut opts = s.opts.clone();
    opts.root = empty.path().to_path_buf();
    opts.entrypoint = Err("the sandbox entrypoint /x/ignite-init is missing".into());
    let d = run(&opts);
    assert!(!d.ok);
    let status_file = empty.path().join("proc/self/status");
    let privileges = assert_status(&d, "privileges", Status::Fail);
    assert!(privileges.value.starts_with(&format!("failed to read {}", status_file.display())), "{privileges:?}");
    let version = assert_status(&d, "cgroup-version", Status::Fail);
    assert!(version.value.contains("proc/self/mountinfo"), "{version:?}");
    assert_status(&d, "cgroup-controllers", Status::Fail);
    assert_status(&d, "seccomp", Status::Fail);
    assert_status(&d, "entrypoint", Status::Fail);
    assert_status(&d, "user-namespaces", Status::Warn);
}

#[test]
fn malformed_kernel_files_name_the_file_and_line() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("proc/self")).unwrap();
    std::fs::write(root.path().join("proc/cgroups"), "#subsys_name hierarchy num_cgroups enabled\nmemory x 1 1\n")
        .unwrap();
    std::fs::write(root.path().join("proc/self/mountinfo"), "garbage\n").unwrap();
    let facts = probe::cgroup_facts(root.path());
    let Probed::Failed { error } = &facts.kernel_controllers else { panic!("{facts:?}") };
    assert_eq!(
        error,
        &format!(
            "failed to parse {}: line 2 \"memory x 1 1\": hierarchy is not an unsigned integer",
            root.path().join("proc/cgroups").display()
        )
    );
    let Probed::Failed { error } = &facts.mode else { panic!("{facts:?}") };
    assert!(error.contains("mountinfo line 1"), "{error}");
}

#[test]
fn json_shape() {
    let s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    let d = run(&s.opts);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["summary"]["fail"], 0);
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), d.checks.len());
    for c in checks {
        assert!(c["name"].is_string() && c["value"].is_string() && c["neededFor"].is_string(), "{c}");
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail"].contains(&status), "{c}");
        assert_eq!(c.get("remedy").is_some(), status != "ok", "{c}");
    }
    let host = &v["host"];
    assert_eq!(host["cgroup"]["mode"], "hybrid");
    assert_eq!(host["landlock"]["support"], serde_json::json!({"status": "available", "abi": 7}));
    assert_eq!(host["landlock"]["lsm"], serde_json::Value::Null);
    assert_eq!(host["oci"]["selected"]["kind"], "runc");
    assert_eq!(host["oci"]["selected"]["version"], "1.1.5");
    assert_eq!(host["seccomp"]["mode"], 0);
    assert!(host["seccomp"]["actions"].as_array().unwrap().iter().any(|a| a == "user_notif"));
    assert_eq!(host["kernel"]["release"], "6.18.44-fc-v445");
    assert_eq!(host["privileges"], serde_json::json!({"euid": 0, "capSysAdmin": true}));
    assert_eq!(host["userNamespaces"]["maxUserNamespaces"], 96343);
    assert_eq!(host["userNamespaces"]["unprivilegedUsernsClone"], serde_json::Value::Null);
    assert_eq!(host["cgroup"]["swapAccounting"], true);
    assert_eq!(host["disks"][0]["role"], "cache");
    assert_eq!(host["bundles"][0]["runtime"], "bun");
    assert_eq!(host["bundles"][0]["defaultPresent"], false);
    // A fact that could not be read carries its error in place of the value.
    let mut f = d.host.clone();
    f.kernel = Probed::failed("failed to read /proc/sys/kernel/osrelease: denied");
    let v = serde_json::to_value(judge(f)).unwrap();
    assert_eq!(v["host"]["kernel"], serde_json::json!({"error": "failed to read /proc/sys/kernel/osrelease: denied"}));
}

#[test]
fn table_lists_checks_remedies_and_verdict() {
    let s = scenario("v1-old", LandlockSupport::Unsupported);
    let text = run(&s.opts).table();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("CHECK")
            && first.contains("STATUS")
            && first.contains("NEEDED FOR")
            && first.ends_with("FOUND"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("cgroup-controllers") && l.contains(" fail ")), "{text}");
    assert!(text.contains("\nto fix:\n  cgroup-controllers (fail): mount its hierarchy"), "{text}");
    assert!(text.trim_end().ends_with("runs will fail on this host until the failures are fixed"), "{text}");
}

#[test]
fn cgroup_mode_alone_agrees_with_the_facts() {
    for (name, mode) in
        [("hybrid-debian12", HostCgroup::Hybrid), ("v1-old", HostCgroup::V1), ("v2-ubuntu2404", HostCgroup::V2)]
    {
        let root = fixtures().join(name);
        assert_eq!(probe::cgroup_mode(&root), Some(mode), "{name}");
        assert_eq!(probe::cgroup_facts(&root).mode, Probed::Found(Some(mode)), "{name}");
    }
    assert_eq!(probe::cgroup_mode(Path::new("/nonexistent")), None);
}

/// A copy of fixture host `name` booted with systemd (its marker directory), with or without
/// the system bus socket.
fn booted_with_systemd(name: &str, system_bus: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixtures().join(name).display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::create_dir_all(dir.path().join("run/systemd/system")).unwrap();
    if system_bus {
        std::fs::create_dir_all(dir.path().join("run/dbus")).unwrap();
        std::fs::write(dir.path().join("run/dbus/system_bus_socket"), "").unwrap();
    }
    dir
}

#[test]
fn a_v2_host_booted_with_systemd_gets_scopes_in_ignite_slice() {
    let host = booted_with_systemd("v2-ubuntu2404", true);
    let mut s = scenario("v2-ubuntu2404", LandlockSupport::Available { abi: 4 });
    s.opts.root = host.path().to_path_buf();
    let d = run(&s.opts);
    assert!(d.ok, "{}", d.table());
    assert_eq!(d.host.cgroup.driver, Probed::Found(CgroupDriver::Systemd));
    assert_eq!(
        assert_status(&d, "cgroup-driver", Status::Ok).value,
        "systemd: each run is a transient scope ignite.slice/ignite-<run>.scope, asked for over the system bus"
    );
    assert_eq!(
        assert_status(&d, "cgroup-parent", Status::Ok).value,
        "/ignite.slice in unified: created by systemd on the first run"
    );

    // Asked for cgroupfs: the OCI runtime's own directories, said to sit beside systemd's.
    s.opts.cgroup_driver = DriverChoice::Fixed(CgroupDriver::Cgroupfs);
    let d = run(&s.opts);
    assert!(d.ok, "{}", d.table());
    assert!(assert_status(&d, "cgroup-driver", Status::Ok).value.starts_with("cgroupfs (asked for)"), "{}", d.table());
    assert_eq!(
        assert_status(&d, "cgroup-parent", Status::Ok).value,
        "/ignite in unified: created by the OCI runtime on the first run"
    );
}

#[test]
fn the_systemd_driver_without_a_system_bus_or_on_a_v1_host_fails_with_a_remedy() {
    let host = booted_with_systemd("v2-ubuntu2404", false);
    let mut s = scenario("v2-ubuntu2404", LandlockSupport::Available { abi: 4 });
    s.opts.root = host.path().to_path_buf();
    let d = run(&s.opts);
    assert!(!d.ok);
    let driver = assert_status(&d, "cgroup-driver", Status::Fail);
    assert!(driver.value.contains("no system bus at /run/dbus/system_bus_socket"), "{driver:?}");
    assert!(driver.remedy.as_deref().unwrap().contains("--cgroup-driver cgroupfs"), "{driver:?}");

    let hybrid = booted_with_systemd("hybrid-debian12", true);
    let mut s = scenario("hybrid-debian12", LandlockSupport::Available { abi: 7 });
    s.opts.root = hybrid.path().to_path_buf();
    assert_eq!(run(&s.opts).host.cgroup.driver, Probed::Found(CgroupDriver::Cgroupfs), "auto: cgroupfs on v1");
    s.opts.cgroup_driver = DriverChoice::Fixed(CgroupDriver::Systemd);
    let d = run(&s.opts);
    assert!(!d.ok);
    let driver = assert_status(&d, "cgroup-driver", Status::Fail);
    assert!(driver.value.contains("keeps its controllers on cgroup v1"), "{driver:?}");
}
