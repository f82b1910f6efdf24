//! Reads the host: kernel files under an injected root (`/` on a real host, a fixture directory
//! in tests), PATH lookups, `--version` of the tools found, statvfs, the Landlock syscall and
//! the bundle cache index. Read-only: it creates, locks and starts nothing but `--version`.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::data::runtime::Registry;
use crate::sandbox::cgroup::{self, CgroupDriver, CgroupMode, CgroupMount, CgroupVersion, DriverChoice, DriverFacts};
use crate::store::bundle::BundleStore;

use super::facts::*;
use super::parse::{self, ProcStatus};
use super::{DoctorError, DoctorOptions};

/// A `--version` that has not answered by then is reported as hung; real ones take milliseconds.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// The name under which ignite's cgroups are created in each hierarchy with the cgroupfs
/// driver (`cgroupsPath: /ignite/<run>`).
pub const CGROUP_PARENT: &str = cgroup::driver_names::CGROUPFS_PARENT;

/// The OCI runtimes looked for on PATH, in order of preference.
pub const OCI_RUNTIMES: [&str; 3] = ["runc", "crun", "youki"];

/// Gathers every fact. The `--version` commands run on their own threads while the kernel files
/// are read, to keep `doctor` fast.
pub fn gather(opts: &DoctorOptions) -> Facts {
    let root = opts.root.as_path();
    let path_env = opts.path_env.as_deref();
    std::thread::scope(|s| {
        let oci = s.spawn(|| oci_facts(opts, path_env));
        let tools = s.spawn(|| tool_facts(path_env));
        let status = read_status(root);
        let privileges = match &status {
            Ok(st) => Probed::Found(Privileges { euid: st.euid, cap_sys_admin: st.has_cap(parse::CAP_SYS_ADMIN) }),
            Err(e) => Probed::failed(e),
        };
        let seccomp = SeccompFacts {
            mode: match &status {
                Ok(st) => Probed::Found(st.seccomp_mode),
                Err(e) => Probed::failed(e),
            },
            actions: read_optional(root, "proc/sys/kernel/seccomp/actions_avail")
                .map(|t| t.map(|t| parse::parse_words(&t)))
                .into(),
        };
        let user_namespaces = UserNamespaceFacts {
            max_user_namespaces: read_optional_parsed(
                root,
                "proc/sys/user/max_user_namespaces",
                parse::parse_sysctl_u64,
            )
            .into(),
            unprivileged_userns_clone: read_optional_parsed(
                root,
                "proc/sys/kernel/unprivileged_userns_clone",
                parse::parse_sysctl_u64,
            )
            .into(),
        };
        let kernel = read_parsed(root, "proc/sys/kernel/osrelease", parse::parse_kernel_release).into();
        let cgroup = cgroup_facts_for(root, opts.cgroup_driver);
        let landlock = LandlockFacts {
            support: opts.landlock.clone(),
            lsm: read_optional(root, "sys/kernel/security/lsm").ok().flatten().map(|t| parse::parse_lsm_list(&t)),
        };
        let overlayfs = read_parsed(root, "proc/filesystems", parse::parse_filesystems)
            .map(|fs| fs.iter().any(|f| f == "overlay"))
            .into();
        let disks = vec![disk("cache", &opts.cache_dir), disk("state", &opts.state_dir)];
        let bundles = bundle_facts(&opts.cache_dir).into();
        let open_files = read_parsed(root, "proc/self/limits", parse::parse_nofile_limits)
            .map(|(soft, hard)| OpenFiles { soft, hard })
            .into();
        let rootless = privileges
            .found()
            .filter(|p| p.euid != 0)
            .map(|p| rootless_facts(root, path_env, opts.cgroup_driver, p.euid));
        Facts {
            rootless,
            kernel,
            privileges,
            oci: oci.join().unwrap_or_else(|_| OciFacts {
                requested: opts.oci_requested.clone(),
                selected: Probed::failed("probing the OCI runtimes panicked"),
                on_path: Vec::new(),
            }),
            entrypoint: opts.entrypoint.clone().into(),
            cgroup,
            seccomp,
            landlock,
            user_namespaces,
            overlayfs,
            tools: tools.join().unwrap_or_default(),
            disks,
            bundles,
            open_files,
        }
    })
}

/// Rootless mode's prerequisites, checked as a run checks them ([`crate::engine::Settings::detect`]).
fn rootless_facts(root: &Path, path_env: Option<&OsStr>, choice: DriverChoice, uid: u32) -> RootlessFacts {
    let ids = crate::sandbox::userns::Rootless::for_ids(root, uid, nix::unistd::getegid().as_raw());
    let facts = DriverFacts::read(root);
    let bus = crate::sandbox::userns::user_runtime_dir().join("bus");
    let user_manager = cgroup::rootless_driver(choice, &facts, root, uid, &bus).map(|_| bus);
    RootlessFacts {
        ids: ids.into(),
        newuidmap: find_in_path(path_env, crate::sandbox::userns::NEWUIDMAP),
        newgidmap: find_in_path(path_env, crate::sandbox::userns::NEWGIDMAP),
        user_manager: user_manager.into(),
    }
}

/// The Landlock ABI this kernel offers, from the syscall (no ruleset is created).
pub fn landlock_support() -> LandlockSupport {
    match crate::sys::landlock_abi_version() {
        Ok(abi) => LandlockSupport::Available { abi },
        Err(nix::errno::Errno::EOPNOTSUPP) => LandlockSupport::Disabled,
        Err(nix::errno::Errno::ENOSYS) => LandlockSupport::Unsupported,
        Err(e) => LandlockSupport::Failed { error: format!("landlock_create_ruleset failed: {e}") },
    }
}

/// `rel` (relative, e.g. `proc/cgroups`) under `root`.
fn host_path(root: &Path, rel: impl AsRef<Path>) -> PathBuf {
    let rel = rel.as_ref();
    root.join(rel.strip_prefix("/").unwrap_or(rel))
}

fn read_file(path: PathBuf) -> Result<String, DoctorError> {
    std::fs::read_to_string(&path).map_err(|source| DoctorError::Read { path, source })
}

fn read(root: &Path, rel: impl AsRef<Path>) -> Result<String, DoctorError> {
    read_file(host_path(root, rel))
}

/// A file that may legitimately be absent (a sysctl the kernel does not have).
fn read_optional(root: &Path, rel: impl AsRef<Path>) -> Result<Option<String>, DoctorError> {
    match read(root, rel) {
        Ok(text) => Ok(Some(text)),
        Err(DoctorError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_parsed<T>(
    root: &Path,
    rel: &str,
    parser: impl FnOnce(&str) -> Result<T, parse::ParseError>,
) -> Result<T, DoctorError> {
    let text = read(root, rel)?;
    parser(&text).map_err(|source| DoctorError::Parse { path: host_path(root, rel), source })
}

fn read_optional_parsed<T>(
    root: &Path,
    rel: &str,
    parser: impl FnOnce(&str) -> Result<T, parse::ParseError>,
) -> Result<Option<T>, DoctorError> {
    match read_optional(root, rel)? {
        None => Ok(None),
        Some(text) => {
            parser(&text).map(Some).map_err(|source| DoctorError::Parse { path: host_path(root, rel), source })
        }
    }
}

fn read_status(root: &Path) -> Result<ProcStatus, DoctorError> {
    read_parsed(root, "proc/self/status", parse::parse_status)
}

/// How the host mounts its cgroups (`None`: no cgroup filesystem, or mountinfo unreadable);
/// only that, for reports that name it (`ignite bench`).
pub fn cgroup_mode(root: &Path) -> Option<HostCgroup> {
    let text = read(root, "proc/self/mountinfo").ok()?;
    cgroup::detect_mode(&cgroup::parse_cgroup_mounts(&text).ok()?).map(host_cgroup)
}

fn host_cgroup(mode: CgroupMode) -> HostCgroup {
    match mode {
        CgroupMode::Legacy => HostCgroup::V1,
        CgroupMode::Hybrid => HostCgroup::Hybrid,
        CgroupMode::Unified => HostCgroup::V2,
    }
}

/// The cgroup mounts, the controllers, where `/ignite` goes and whether swap is accounted,
/// with the cgroup driver chosen automatically.
pub fn cgroup_facts(root: &Path) -> CgroupFacts {
    cgroup_facts_for(root, DriverChoice::Auto)
}

/// [`cgroup_facts`] with the driver the operator chose (`--cgroup-driver`).
pub fn cgroup_facts_for(root: &Path, choice: DriverChoice) -> CgroupFacts {
    let driver_facts = DriverFacts::read(root);
    let driver = Probed::from(choice.resolve(&driver_facts));
    let systemd = DriverSystemd {
        booted: driver_facts.systemd_booted,
        system_bus: host_path(root, cgroup::driver_names::SYSTEM_BUS_SOCKET).exists(),
    };
    let mounts = cgroup::self_mountinfo(&host_path(root, "proc"))
        .map_err(|source| DoctorError::Read { path: host_path(root, "proc/self/mountinfo"), source })
        .and_then(|text| cgroup::parse_cgroup_mounts(&text).map_err(|source| DoctorError::Cgroup { source }));
    let kernel_controllers = read_parsed(root, "proc/cgroups", parse::parse_proc_cgroups).into();
    let swap_total_kib = read_parsed(root, "proc/meminfo", parse::parse_swap_total_kib).into();
    let mounts = match mounts {
        Ok(m) => m,
        Err(e) => {
            return CgroupFacts {
                mode: Probed::failed(e),
                mounts: Vec::new(),
                kernel_controllers,
                unified_controllers: None,
                parent: Vec::new(),
                unified_root: None,
                swap_accounting: None,
                swap_total_kib,
                driver,
                systemd,
            };
        }
    };
    let mode = cgroup::detect_mode(&mounts).map(host_cgroup);
    let unified = mounts.iter().find(|m| m.version == CgroupVersion::V2);
    let unified_dir = unified.map(|m| host_path(root, &m.mount_point));
    let unified_controllers = unified_dir
        .as_ref()
        .map(|dir| Probed::from(read_file(dir.join("cgroup.controllers")).map(|t| parse::parse_words(&t))));

    // The hierarchies runc creates `/ignite/<run>` in and ignite relies on.
    let mut needed: Vec<&CgroupMount> = Vec::new();
    match mode {
        Some(HostCgroup::V1 | HostCgroup::Hybrid) => {
            for controller in ["memory", "cpu", "cpuacct", "pids"] {
                if let Some(m) = mounts.iter().find(|m| m.version == CgroupVersion::V1 && m.has_controller(controller))
                    && !needed.contains(&m)
                {
                    needed.push(m);
                }
            }
            needed.extend(unified);
        }
        Some(HostCgroup::V2) => needed.extend(unified),
        None => {}
    }
    // With the systemd driver the runs' scopes go into ignite.slice, which systemd creates.
    let parent_name = match driver.found() {
        Some(CgroupDriver::Systemd) => cgroup::driver_names::SLICE,
        _ => CGROUP_PARENT,
    };
    // runc (cgroupfs driver) also creates the run's cgroup in every other v1 hierarchy it
    // knows (cpuset, devices, freezer, blkio, …): one mounted read-only fails every run, so it
    // joins the list, while writable ones stay out of it (they need nothing from the host).
    let read_only_others: Vec<&CgroupMount> = match mode {
        Some(HostCgroup::V1 | HostCgroup::Hybrid) => mounts
            .iter()
            .filter(|m| m.version == CgroupVersion::V1 && m.read_only && !needed.contains(m))
            .filter(|m| m.controllers.iter().any(|c| !c.starts_with("name=")))
            .collect(),
        _ => Vec::new(),
    };
    let parent = needed
        .iter()
        .chain(&read_only_others)
        .map(|m| {
            let path = host_path(root, &m.mount_point).join(parent_name);
            let meta = std::fs::symlink_metadata(&path).ok();
            ParentDir {
                hierarchy: if m.version == CgroupVersion::V2 { "unified".into() } else { m.controllers.join(",") },
                exists: meta.is_some(),
                not_a_directory: meta.is_some_and(|m| !m.is_dir()),
                read_only: m.read_only,
                path,
            }
        })
        .collect();

    let unified_root = match (mode, &unified_dir) {
        (Some(HostCgroup::V2), Some(dir)) => Some(UnifiedRoot {
            nested: dir.join("cgroup.type").exists(),
            processes: std::fs::read_to_string(dir.join("cgroup.procs"))
                .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
                .unwrap_or(0),
            subtree_control: std::fs::read_to_string(dir.join("cgroup.subtree_control"))
                .map(|t| parse::parse_words(&t))
                .unwrap_or_default(),
            path: dir.clone(),
        }),
        _ => None,
    };

    let swap_accounting = match mode {
        Some(HostCgroup::V1 | HostCgroup::Hybrid) => mounts
            .iter()
            .find(|m| m.version == CgroupVersion::V1 && m.has_controller("memory"))
            .map(|m| host_path(root, &m.mount_point).join("memory.memsw.limit_in_bytes").exists()),
        Some(HostCgroup::V2) => unified_dir.as_deref().and_then(|dir| v2_swap_accounting(root, dir)),
        None => None,
    };

    CgroupFacts {
        mode: Probed::Found(mode),
        mounts: mounts
            .iter()
            .map(|m| CgroupMountFact {
                version: if m.version == CgroupVersion::V2 { "v2" } else { "v1" },
                controllers: m.controllers.clone(),
                mount_point: m.mount_point.clone(),
                read_only: m.read_only,
            })
            .collect(),
        kernel_controllers,
        unified_controllers,
        parent,
        unified_root,
        swap_accounting,
        swap_total_kib,
        driver,
        systemd,
    }
}

/// cgroup2 shows `memory.swap.max` in every non-root cgroup with the memory controller when
/// swap is accounted; the root has no memory files at all. Looks at ignite's parent, the
/// reader's own cgroup, then the root's children. `None`: no such cgroup to look at.
fn v2_swap_accounting(root: &Path, unified: &Path) -> Option<bool> {
    let own = read(root, "proc/self/cgroup")
        .ok()
        .and_then(|t| cgroup::parse_proc_cgroup(&t).ok()?.into_iter().find(|e| e.is_unified()).map(|e| e.path));
    let mut candidates = vec![unified.join(CGROUP_PARENT), unified.join(cgroup::driver_names::SLICE)];
    if let Some(own) = own.filter(|p| p != "/") {
        candidates.push(unified.join(own.trim_start_matches('/')));
    }
    if let Ok(entries) = std::fs::read_dir(unified) {
        let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        children.sort();
        candidates.extend(children);
    }
    candidates.iter().find(|dir| dir.join("memory.max").exists()).map(|dir| dir.join("memory.swap.max").exists())
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable `name` on `path_env`.
pub fn find_in_path(path_env: Option<&OsStr>, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path_env?).filter(|d| d.is_absolute()).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn oci_facts(opts: &DoctorOptions, path_env: Option<&OsStr>) -> OciFacts {
    let found: Vec<(&'static str, PathBuf)> =
        OCI_RUNTIMES.iter().filter_map(|name| find_in_path(path_env, name).map(|p| (*name, p))).collect();
    let mut binaries: Vec<OciBinary> = std::thread::scope(|s| {
        let handles: Vec<_> = found.iter().map(|(kind, path)| s.spawn(move || oci_binary(kind, path))).collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let selected = match &opts.oci_selected {
        Err(why) => Probed::failed(why),
        Ok((kind, path)) => {
            let same = |b: &OciBinary| canonical(&b.path) == canonical(path);
            match binaries.iter().find(|b| same(b)) {
                Some(b) => Probed::Found(OciBinary { kind: kind.as_str(), ..b.clone() }),
                None => Probed::Found(oci_binary(kind.as_str(), path)),
            }
        }
    };
    binaries.sort_by_key(|b| OCI_RUNTIMES.iter().position(|n| *n == b.kind));
    OciFacts { requested: opts.oci_requested.clone(), selected, on_path: binaries }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `name` is what the binary was found as; what it prints for `--version` says what it is.
fn oci_binary(name: &'static str, path: &Path) -> OciBinary {
    let out = run_version(path, &["--version"]);
    let kind =
        out.as_deref().ok().and_then(crate::sandbox::oci::OciKind::from_version_output).map_or(name, |k| k.as_str());
    let seccomp = out.as_deref().ok().and_then(|out| parse::parse_oci_seccomp(kind, out));
    let version = out.and_then(|out| {
        parse::parse_oci_version(&out).ok_or_else(|| DoctorError::NoVersion {
            program: path.to_path_buf(),
            output: parse::first_line(&out).unwrap_or_default(),
        })
    });
    OciBinary { kind, path: path.to_path_buf(), version: version.into(), seccomp }
}

/// What an OCI runtime says to `--version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciVersion {
    /// Its first line, for people: `runc version 1.1.5`.
    pub line: String,
    pub version: parse::Semver,
}

/// Asks the OCI runtime at `path` for its version (`<path> --version`, killed after
/// `VERSION_TIMEOUT`): what `ignite doctor` judges and `ignite env` shows.
pub fn oci_version(path: &Path) -> Result<OciVersion, DoctorError> {
    let out = run_version(path, &["--version"])?;
    let line = parse::first_line(&out).unwrap_or_default();
    match parse::parse_oci_version(&out) {
        Some(version) => Ok(OciVersion { line, version }),
        None => Err(DoctorError::NoVersion { program: path.to_path_buf(), output: line }),
    }
}

fn tool_facts(path_env: Option<&OsStr>) -> Vec<Tool> {
    let tools: [(&'static str, &'static str); 3] = [("slirp4netns", "--version"), ("pasta", "--version"), ("ip", "-V")];
    std::thread::scope(|s| {
        let handles: Vec<_> = tools
            .iter()
            .map(|(name, flag)| {
                s.spawn(move || {
                    let path = find_in_path(path_env, name);
                    let version =
                        path.as_deref().and_then(|p| run_version(p, &[flag]).ok()).and_then(|o| parse::first_line(&o));
                    Tool { name, path, version }
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// Runs `program args…` with no stdin and returns its stdout, or why it failed. A program that
/// does not exit within `VERSION_TIMEOUT` is killed.
pub fn run_version(program: &Path, args: &[&str]) -> Result<String, DoctorError> {
    run_version_within(program, args, VERSION_TIMEOUT)
}

pub fn run_version_within(program: &Path, args: &[&str], timeout: Duration) -> Result<String, DoctorError> {
    let command = || format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| DoctorError::Spawn { command: command(), source })?;
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        // Read on the side so that a chatty program cannot block on a full pipe; a version is
        // a few lines, so 64 KiB is plenty.
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.take(64 * 1024).read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DoctorError::Hung { command: command(), after: timeout });
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => return Err(DoctorError::Spawn { command: command(), source }),
        }
    };
    // The program exited; its stdout closes now unless it left a child holding it.
    let out = rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    let out = String::from_utf8_lossy(&out).into_owned();
    if !status.success() {
        return Err(DoctorError::Exit { command: command(), status: status.to_string() });
    }
    Ok(out)
}

/// Free space and inodes where `dir` is (or would be created).
pub fn disk(role: &'static str, dir: &Path) -> Disk {
    let exists = dir.symlink_metadata().is_ok();
    let measured = dir.ancestors().find(|a| a.symlink_metadata().is_ok()).unwrap_or(Path::new("/")).to_path_buf();
    let usage = nix::sys::statvfs::statvfs(&measured)
        .map(|st| {
            let unit = st.fragment_size();
            DiskUsage {
                free_bytes: st.blocks_available().saturating_mul(unit),
                total_bytes: st.blocks().saturating_mul(unit),
                free_inodes: st.files_available(),
                total_inodes: st.files(),
                read_only: st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
            }
        })
        .map_err(|errno| DoctorError::Statvfs { path: measured.clone(), errno });
    Disk { role, dir: dir.to_path_buf(), exists, measured, usage: usage.into() }
}

/// Which built-in runtimes have bundles in the cache (reads its index; downloads nothing).
fn bundle_facts(cache_dir: &Path) -> Result<Vec<BundleFact>, DoctorError> {
    let registry = Registry::builtin().map_err(|source| DoctorError::Registry { source })?;
    let store = BundleStore::new(cache_dir.to_path_buf());
    let all = registry.list();
    let mut facts = Vec::new();
    for (def, _) in registry.definitions() {
        let versions: Vec<_> = all.iter().filter(|rt| rt.name == def.name).collect();
        let present: Vec<_> = versions.iter().filter(|rt| store.present(rt).is_some()).collect();
        facts.push(BundleFact {
            runtime: def.name.clone(),
            default_version: def.default.to_string(),
            default_present: present.iter().any(|rt| rt.is_default),
            present_versions: present.iter().map(|rt| rt.version.to_string()).collect(),
        });
    }
    Ok(facts)
}
