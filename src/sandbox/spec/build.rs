//! The pure spec builder: service + runtime + limits → `oci_spec::runtime::Spec`, and
//! `validate`, which refuses any spec that lost a hardening property.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::network::{NetnsGrant, NetworkAttach, RESOLV_CONF, UsernsGrant};
use crate::data::runtime::APP_DIR;
use crate::sandbox::abi::{INPUT_DIR, INPUT_VAR, MAX_ENV_STRING, WAIT_JOB_FLAG};
use crate::sandbox::spawn_guard::SpawnRule;
use crate::sandbox::userns::{IdMap, IdMaps};
use oci_spec::runtime::{
    Capabilities, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, LinuxSeccomp, LinuxSeccompAction, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// `nobody`, which owns no file in the rootfs or /app. Sandboxes never use it (each gets a uid
/// of its own, see [`crate::sandbox::identity`]); the host-side TypeScript stripper does.
pub const NOBODY_UID: u32 = 65534;
pub const NOBODY_GID: u32 = 65534;
/// Where the service's installed npm dependencies appear (read-only). Module resolution walks up
/// from `/app` to `/`, so `import "lodash"` finds `/node_modules/lodash` unless the service
/// directory has its own `node_modules`.
pub const NODE_MODULES_DIR: &str = "/node_modules";
/// Where a session's workspace appears: the one writable bind mount a run may have. Under
/// `/tmp` (a per-run tmpfs) so runc creates its mount point there, not in the shared rootfs.
pub const WORKSPACE_DIR: &str = "/tmp/workspace";
/// Where a run's output directory is mounted read-write (a tmpfs of its own on the host; see
/// `sandbox::grants::out`). Under the container's `/tmp`: a mount point at `/out` would have
/// to be made in the shared, read-only runtime root.
pub const OUT_DIR: &str = "/tmp/out";
/// Most bytes a program may write to its output directory (its tmpfs's size).
pub const MAX_OUT_BYTES: u64 = 8 * 1024 * 1024;
/// Most files (and directories) it may create there (the tmpfs's inodes, less its root).
pub const MAX_OUT_FILES: u64 = 64;

/// The output tmpfs's options (`mount -o`): its caps, its mode and its owner.
pub fn out_tmpfs_data(uid: u32, gid: u32) -> String {
    format!("size={MAX_OUT_BYTES},nr_inodes={},mode=0700,uid={uid},gid={gid}", MAX_OUT_FILES + 1)
}

/// Rootless: the options of the spec mount that gives [`OUT_DIR`] the same tmpfs inside the
/// container ([`OutDir::Tmpfs`]), owned by the program's `uid:gid` as the container sees them.
pub fn out_tmpfs_options(uid: u32, gid: u32) -> Vec<String> {
    let mut options: Vec<String> = ["nosuid", "nodev", "noexec"].map(String::from).into();
    options.extend(out_tmpfs_data(uid, gid).split(',').map(String::from));
    options
}

/// Where a run's output directory at [`OUT_DIR`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutDir {
    /// The tmpfs ignite mounted for the run on the host (root), bound read-write, nosuid,
    /// nodev, noexec; such a spec passes [`validate_run`] with it granted.
    Bind(PathBuf),
    /// The same tmpfs, mounted by the OCI runtime inside the container (rootless: see
    /// [`crate::sandbox::grants::out`]).
    Tmpfs,
}

/// The variable that names [`OUT_DIR`] to a program that has one.
pub const OUT_DIR_VAR: &str = "IGNITE_OUT_DIR";
/// Where ignite's static entrypoint is bind-mounted (an empty placeholder in every rootfs).
pub const INIT_PATH: &str = "/.ignite/init";
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
pub const SANDBOX_HOME: &str = "/tmp";

const CPU_PERIOD_US: u64 = 100_000;

/// `/proc` and `/sys` paths hidden from the sandbox (Docker's list): kernel memory, keys,
/// timing side channels, firmware and power-capping interfaces.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    // Kernel symbol addresses help exploits; hidden whatever the host's kptr_restrict says.
    "/proc/kallsyms",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// `/proc` paths the sandbox may read but never write (Docker's list).
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Namespaces every sandbox gets, all new. The one exception: a sandbox granted a network
/// (a run whose policy enables it, the dependency install step) joins the network namespace
/// ignite created for it with a user-mode network (see [`Grants::netns`]); without that grant
/// a path would join an existing (e.g. the host's) namespace, and is refused.
pub const NAMESPACES: &[LinuxNamespaceType] = &[
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Cgroup,
];

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("failed to build the OCI spec: {0}")]
    Build(#[from] oci_spec::OciSpecError),
    #[error("refusing an unsafe OCI spec: {0}")]
    Unsafe(String),
    #[error("environment variable {name} is {len} bytes; the kernel limit for one variable is {MAX_ENV_STRING} bytes")]
    EnvTooLarge { name: String, len: usize },
}

/// Resource limits, already converted to the units the kernel uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub memory_bytes: u64,
    /// CPUs as a fraction (1.5 = one and a half cores).
    pub cpu_limit: f64,
    pub pids: i64,
    pub tmp_bytes: u64,
    pub nofile: u64,
}

impl Limits {
    pub const DEFAULT_PIDS: i64 = 128;
    pub const DEFAULT_TMP_MB: u64 = 64;
    pub const DEFAULT_NOFILE: u64 = 4096;

    pub fn new(memory_mb: u32, cpu_limit: f64) -> Limits {
        Limits {
            memory_bytes: u64::from(memory_mb) * 1024 * 1024,
            cpu_limit,
            pids: Self::DEFAULT_PIDS,
            tmp_bytes: Self::DEFAULT_TMP_MB * 1024 * 1024,
            nofile: Self::DEFAULT_NOFILE,
        }
    }

    fn cpu_quota_us(&self) -> i64 {
        ((self.cpu_limit * CPU_PERIOD_US as f64).round() as i64).max(1000)
    }
}

/// The run's own user ([`crate::sandbox::identity`]): its uid and gid, which also own `/tmp` and
/// `/dev/shm`, and the host files bound read-only at `/etc/passwd` and `/etc/group` that name it.
#[derive(Debug, Clone)]
pub struct RunUser {
    pub uid: u32,
    pub gid: u32,
    pub passwd: PathBuf,
    pub group: PathBuf,
}

/// Everything the builder needs; all of it already validated by its owner.
#[derive(Debug, Clone)]
pub struct SpecInput {
    /// Unpacked, shared, read-only rootfs of the runtime bundle; or, with `writable_root`, the
    /// writable overlay ignite mounted over it for this one run.
    pub rootfs: PathBuf,
    /// The root is mounted read-write (a policy's `readOnly: false`). Only for an overlay that
    /// ignite built for the run: such a spec passes [`validate_run`] with that path granted.
    pub writable_root: bool,
    /// A user-mode network to join instead of a loopback-only namespace (a policy's
    /// `network.enabled: true`, or the install step); its resolv.conf is bound read-only.
    pub network: Option<NetworkAttach>,
    /// Mounted read-only at `/app`: the service directory, or a staged copy of it (e.g. with
    /// TypeScript already stripped).
    pub app_dir: PathBuf,
    /// Installed dependencies, mounted read-only at [`NODE_MODULES_DIR`].
    pub node_modules: Option<PathBuf>,
    /// The service's own `node_modules`, mounted read-only at `/app/node_modules` when `app_dir`
    /// is a staged copy (which has an empty directory there and does not copy packages).
    pub app_node_modules: Option<PathBuf>,
    /// A session's workspace (a host directory), mounted read-write, nosuid, nodev, noexec at
    /// [`WORKSPACE_DIR`]; such a spec passes [`validate_session`] only.
    pub workspace: Option<PathBuf>,
    /// The run's input directory (ignite's, in the run directory), mounted read-only at
    /// [`INPUT_DIR`]: it holds the input file when the input is too large for
    /// [`INPUT_VAR`]. Every run has it (a warm sandbox's is filled at handover), so that the
    /// spec does not depend on the input's size.
    pub input_dir: Option<PathBuf>,
    /// The run's output directory at [`OUT_DIR`] (see [`OutDir`]).
    pub out_dir: Option<OutDir>,
    /// Host path of the static `ignite-init` binary.
    pub init_binary: PathBuf,
    /// Who the program runs as.
    pub user: RunUser,
    /// The runtime command, e.g. `["/usr/local/bin/bun", "run", "/app/index.ts"]`.
    pub argv: Vec<String>,
    /// Final environment, `KEY=VALUE` (see [`compose_env`]).
    pub env: Vec<String>,
    pub limits: Limits,
    pub hostname: String,
    /// cgroup path given to the OCI runtime (absolute: `/ignite/<id>`).
    pub cgroups_path: String,
    /// Entrypoint's backstop: it SIGKILLs the program this long after start even if the
    /// host-side supervisor is gone.
    pub kill_after_ms: u64,
    /// What the program may start; the entrypoint enforces it right before it execs the runtime.
    pub spawn: SpawnRule,
    pub seccomp: LinuxSeccomp,
    /// A warm sandbox: started ahead of its job, the entrypoint waits for the input on
    /// [`JOB_FD`](crate::sandbox::abi::JOB_FD); the spec then has no `IGNITE_INPUT` (it arrives
    /// with the job) and is otherwise the one a cold run of the same job gets.
    pub wait_job: bool,
    /// Rootless mode: the maps of the user namespace the sandbox gets (see
    /// [`crate::sandbox::userns`]); `None` as root, where the sandbox has no user namespace.
    pub userns: Option<IdMaps>,
}

/// Composes the sandbox environment. Later sources win: runtime defaults, then the
/// service's env, then ignite's own variables (which the service cannot override).
pub fn compose_env(
    runtime_env: &BTreeMap<String, String>,
    service_env: &BTreeMap<String, String>,
    input: &str,
) -> Result<Vec<String>, SpecError> {
    let mut env: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in runtime_env.iter().chain(service_env) {
        env.insert(k, v);
    }
    env.insert("PATH", SANDBOX_PATH);
    env.insert("HOME", SANDBOX_HOME);
    env.insert(INPUT_VAR, input);
    env.into_iter()
        .map(|(k, v)| {
            let s = format!("{k}={v}");
            if s.len() > MAX_ENV_STRING {
                Err(SpecError::EnvTooLarge { name: k.to_string(), len: s.len() })
            } else {
                Ok(s)
            }
        })
        .collect()
}

pub(super) fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
        .build()?)
}

/// Builds the spec. Pure: no I/O, same input → same output.
pub fn build(input: &SpecInput) -> Result<Spec, SpecError> {
    let l = &input.limits;
    let tmp_size = format!("size={}k", l.tmp_bytes.div_ceil(1024));
    // runc gives a tmpfs the mode of the directory it covers (0755 in the rootfs), so
    // the writable mounts are owned by the sandbox user rather than made world-writable.
    let user = &input.user;
    // One option per array entry, as the OCI spec has them: runc joins the entries with commas
    // anyway, but youki rejects a tmpfs whose single entry holds `uid=…,gid=…` (EINVAL).
    let (tmp_uid, tmp_gid) = (format!("uid={}", user.uid), format!("gid={}", user.gid));
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "noexec", "strictatime", "mode=755", "size=64k"])?,
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", &tmp_size, &tmp_uid, &tmp_gid])?,
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"])?,
        // The only writable place; noexec so nothing written can be executed.
        mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "noexec", "mode=1777", &tmp_size, &tmp_uid, &tmp_gid])?,
        mount(APP_DIR, "bind", &input.app_dir.to_string_lossy(), &["bind", "ro", "nosuid", "nodev"])?,
        mount(INIT_PATH, "bind", &input.init_binary.to_string_lossy(), &["bind", "ro", "nosuid", "nodev"])?,
        mount("/etc/passwd", "bind", &user.passwd.to_string_lossy(), &["bind", "ro", "nosuid", "nodev", "noexec"])?,
        mount("/etc/group", "bind", &user.group.to_string_lossy(), &["bind", "ro", "nosuid", "nodev", "noexec"])?,
    ];
    if let Some(modules) = &input.app_node_modules {
        // After the /app mount, which holds its mount point.
        let dest = format!("{APP_DIR}/node_modules");
        mounts.push(mount(&dest, "bind", &modules.to_string_lossy(), &["bind", "ro", "nosuid", "nodev"])?);
    }
    if let Some(modules) = &input.node_modules {
        mounts.push(mount(NODE_MODULES_DIR, "bind", &modules.to_string_lossy(), &["bind", "ro", "nosuid", "nodev"])?);
    }
    if let Some(ws) = &input.workspace {
        // After /tmp, which holds its mount point.
        mounts.push(mount(WORKSPACE_DIR, "bind", &ws.to_string_lossy(), &["bind", "rw", "nosuid", "nodev", "noexec"])?);
    }
    if let Some(dir) = &input.input_dir {
        // After /tmp, which holds its mount point.
        mounts.push(mount(INPUT_DIR, "bind", &dir.to_string_lossy(), &["bind", "ro", "nosuid", "nodev", "noexec"])?);
    }
    match &input.out_dir {
        // After /tmp, which holds its mount point.
        Some(OutDir::Bind(dir)) => {
            mounts.push(mount(OUT_DIR, "bind", &dir.to_string_lossy(), &["bind", "rw", "nosuid", "nodev", "noexec"])?);
        }
        Some(OutDir::Tmpfs) => {
            let options = out_tmpfs_options(input.user.uid, input.user.gid);
            let options: Vec<&str> = options.iter().map(String::as_str).collect();
            mounts.push(mount(OUT_DIR, "tmpfs", "tmpfs", &options)?);
        }
        None => {}
    }
    if let Some(net) = &input.network {
        let source = net.resolv_conf.to_string_lossy();
        mounts.push(mount(RESOLV_CONF, "bind", &source, &["bind", "ro", "nosuid", "nodev", "noexec"])?);
    }

    let mut args = vec![INIT_PATH.to_string(), "--kill-after-ms".to_string(), input.kill_after_ms.to_string()];
    args.extend(input.spawn.to_args());
    if input.wait_job {
        args.push(WAIT_JOB_FLAG.into());
    }
    args.push("--".into());
    args.extend(input.argv.iter().cloned());

    let no_caps = Capabilities::new();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(no_caps.clone())
        .effective(no_caps.clone())
        .inheritable(no_caps.clone())
        .permitted(no_caps.clone())
        .ambient(no_caps)
        .build()?;

    let rlimits = vec![
        PosixRlimitBuilder::default().typ(PosixRlimitType::RlimitNofile).hard(l.nofile).soft(l.nofile).build()?,
        PosixRlimitBuilder::default().typ(PosixRlimitType::RlimitCore).hard(0u64).soft(0u64).build()?,
    ];

    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(user.uid).gid(user.gid).additional_gids(Vec::<u32>::new()).build()?)
        .args(args)
        .env(if input.wait_job {
            let input_var = format!("{}=", INPUT_VAR);
            input.env.iter().filter(|e| !e.starts_with(&input_var)).cloned().collect()
        } else {
            input.env.clone()
        })
        .cwd(APP_DIR)
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(true)
        // Under host memory pressure the sandbox is the first thing the kernel kills.
        .oom_score_adj(1000)
        .build()?;

    let memory = LinuxMemoryBuilder::default()
        .limit(l.memory_bytes as i64)
        // swap == limit means "no swap": the limit is the program's real memory.
        .swap(l.memory_bytes as i64)
        .build()?;
    let cpu = LinuxCpuBuilder::default().quota(l.cpu_quota_us()).period(CPU_PERIOD_US).build()?;
    let resources = LinuxResourcesBuilder::default()
        // Deny every device; the OCI runtime re-adds only null, zero, full, (u)random, tty.
        .devices(vec![LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build()?])
        .memory(memory)
        .cpu(cpu)
        .pids(LinuxPidsBuilder::default().limit(l.pids).build()?)
        .build()?;

    let namespaces = NAMESPACES
        .iter()
        .map(|t| {
            let mut ns = LinuxNamespaceBuilder::default().typ(*t).build()?;
            if *t == LinuxNamespaceType::Network
                && let Some(net) = &input.network
            {
                ns.set_path(Some(net.netns.path.clone()));
            }
            Ok(ns)
        })
        .collect::<Result<Vec<_>, oci_spec::OciSpecError>>()?;
    let mut namespaces = namespaces;
    let mut linux = LinuxBuilder::default();
    if let Some(joined) = input.network.as_ref().and_then(|n| n.netns.userns.as_ref()) {
        // Rootless with a network: the user namespace that owns the network's, with its maps.
        namespaces
            .push(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::User).path(joined.path.clone()).build()?);
    } else if let Some(maps) = &input.userns {
        namespaces.push(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::User).build()?);
        let convert = |maps: &[IdMap]| {
            maps.iter()
                .map(|m| {
                    LinuxIdMappingBuilder::default().container_id(m.container).host_id(m.host).size(m.size).build()
                })
                .collect::<Result<Vec<_>, _>>()
        };
        linux = linux.uid_mappings(convert(&maps.uids)?).gid_mappings(convert(&maps.gids)?);
    }

    let linux = linux
        .namespaces(namespaces)
        .resources(resources)
        .cgroups_path(PathBuf::from(&input.cgroups_path))
        .seccomp(input.seccomp.clone())
        .masked_paths(MASKED_PATHS.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
        .readonly_paths(READONLY_PATHS.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
        .rootfs_propagation("private")
        .build()?;

    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path(&input.rootfs).readonly(!input.writable_root).build()?)
        .hostname(input.hostname.clone())
        .mounts(mounts)
        .process(process)
        .linux(linux)
        .build()?)
}

fn unsafe_spec(msg: impl Into<String>) -> SpecError {
    SpecError::Unsafe(msg.into())
}

/// Checks every hardening property ignite promises. Runs on each spec before any
/// privileged step, so a builder regression can never reach the OCI runtime.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    validate_run(spec, &Grants::default())
}

/// [`validate`], except that `workspace` may be bind-mounted read-write (still nosuid, nodev,
/// noexec) at [`WORKSPACE_DIR`]; any other writable bind is refused as before.
pub fn validate_session(spec: &Spec, workspace: &Path) -> Result<(), SpecError> {
    validate_run(spec, &Grants { workspace: Some(workspace), ..Grants::default() })
}

/// What a run's spec may have beyond the default sandbox, each tied to one exact thing ignite
/// set up for this run. Everything not granted is refused as in [`validate`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Grants<'a> {
    /// The network namespace joins exactly this one (which must not be the host's), instead of
    /// a new loopback-only namespace: `security.network.enabled: true`.
    pub netns: Option<&'a NetnsGrant>,
    /// The root may be read-write when its path is exactly this one, the overlay ignite mounted
    /// for the run: `security.filesystem.readOnly: false`.
    pub writable_root: Option<&'a Path>,
    /// [`WORKSPACE_DIR`] may be a read-write (nosuid, nodev, noexec) bind of this directory.
    pub workspace: Option<&'a Path>,
    /// [`OUT_DIR`] may be a read-write (nosuid, nodev, noexec) bind of this directory, the
    /// output tmpfs ignite mounted for the run.
    pub out: Option<&'a Path>,
}

/// [`validate`] with the departures `grants` allows, and only those.
pub fn validate_run(spec: &Spec, grants: &Grants) -> Result<(), SpecError> {
    validate_with(
        spec,
        &Allowances {
            netns: grants.netns,
            writable_tmp: None,
            workspace: grants.workspace,
            writable_root: grants.writable_root,
            out: grants.out,
        },
    )
}

/// The only departures from a run's spec that [`validate_with`] accepts, each tied to one
/// exact path: a run's [`Grants`], and the install step's writable `/tmp` (see `spec::install`).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Allowances<'a> {
    /// The network namespace must join exactly this one (one ignite created).
    pub netns: Option<&'a NetnsGrant>,
    /// `/tmp` may be a read-write (still nosuid, nodev) bind mount of this host directory.
    pub writable_tmp: Option<&'a Path>,
    /// [`WORKSPACE_DIR`] may be a read-write (nosuid, nodev, noexec) bind of this directory.
    pub workspace: Option<&'a Path>,
    /// The root may be read-write at exactly this path.
    pub writable_root: Option<&'a Path>,
    /// [`OUT_DIR`] may be a read-write (nosuid, nodev, noexec) bind of this directory.
    pub out: Option<&'a Path>,
}

/// A user namespace (rootless mode) must be a new one, or exactly the one granted with the
/// network namespace (see [`UsernsGrant`]); either way its maps never reach the host's root
/// and never make the program the user that runs ignite: the program's uid and gid must be
/// mapped, and not onto the host ids container root has. Without a user namespace there must
/// be no maps either (the runtime would ignore them, and a reader would believe them).
fn check_user_namespace(
    linux: &oci_spec::runtime::Linux,
    uid: u32,
    gid: u32,
    granted: Option<&UsernsGrant>,
) -> Result<(), SpecError> {
    let namespaces = linux.namespaces().as_deref().unwrap_or(&[]);
    let user = namespaces.iter().filter(|n| n.typ() == LinuxNamespaceType::User).collect::<Vec<_>>();
    let convert = |maps: Option<&Vec<LinuxIdMapping>>| {
        maps.map(|m| {
            m.iter().map(|m| IdMap { container: m.container_id(), host: m.host_id(), size: m.size() }).collect()
        })
        .unwrap_or_default()
    };
    let in_spec = IdMaps { uids: convert(linux.uid_mappings().as_ref()), gids: convert(linux.gid_mappings().as_ref()) };
    let has_maps = !in_spec.uids.is_empty() || !in_spec.gids.is_empty();
    let maps = match (user.as_slice(), granted) {
        ([], _) if !has_maps => return Ok(()),
        ([], _) => return Err(unsafe_spec("uid/gid maps are set without a user namespace")),
        ([ns], Some(grant)) if ns.path().as_deref() == Some(grant.path.as_path()) => {
            if has_maps {
                return Err(unsafe_spec("uid/gid maps are set for a user namespace that is joined"));
            }
            &grant.maps
        }
        ([ns], _) if ns.path().is_some() => {
            return Err(unsafe_spec(format!(
                "User namespace joins an existing namespace ({}), not the one ignite created with the run's network",
                ns.path().as_deref().unwrap_or(Path::new("")).display()
            )));
        }
        ([_], _) => &in_spec,
        _ => return Err(unsafe_spec("more than one user namespace")),
    };
    for (kind, ranges, id) in [("uid", &maps.uids, uid), ("gid", &maps.gids, gid)] {
        let host = |container: u32| if kind == "uid" { maps.host_uid(container) } else { maps.host_gid(container) };
        if ranges.iter().any(|m| m.host == 0 || m.size == 0) {
            return Err(unsafe_spec(format!("the user namespace maps host {kind} 0 (or an empty range)")));
        }
        let Some(program) = host(id) else {
            return Err(unsafe_spec(format!("the program's {kind} {id} is not mapped in its user namespace")));
        };
        if host(0) == Some(program) {
            return Err(unsafe_spec(format!(
                "the program's {kind} maps to the host {kind} of the sandbox's root ({program})"
            )));
        }
    }
    Ok(())
}

/// A granted namespace must be one ignite created, never the host's, and the spec must join
/// exactly it: a sandbox that was granted a network never silently runs without it, nor in
/// another namespace.
fn check_netns_grant(spec: &Spec, grant: &NetnsGrant) -> Result<(), SpecError> {
    if grant.host.is_empty() {
        return Err(unsafe_spec(
            "the host's network namespace is unknown, so the sandbox's cannot be told apart from it",
        ));
    }
    if grant.host.contains(&grant.id) {
        return Err(unsafe_spec(format!("network namespace {} is the host's", grant.path.display())));
    }
    // The path the spec joins for a namespace type, if any.
    let joins = |typ: LinuxNamespaceType| {
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .and_then(|ns| ns.iter().find(|n| n.typ() == typ))
            .and_then(|n| n.path().clone())
    };
    if joins(LinuxNamespaceType::Network).as_deref() != Some(grant.path.as_path()) {
        return Err(unsafe_spec("the network namespace is not the one ignite created for this sandbox"));
    }
    if let Some(owner) = &grant.userns
        && joins(LinuxNamespaceType::User).as_deref() != Some(owner.path.as_path())
    {
        return Err(unsafe_spec("the user namespace is not the one that owns the network ignite created"));
    }
    Ok(())
}

pub(super) fn validate_with(spec: &Spec, allow: &Allowances) -> Result<(), SpecError> {
    let root = spec.root().as_ref().ok_or_else(|| unsafe_spec("no root"))?;
    if root.readonly() != Some(true) {
        match allow.writable_root {
            Some(granted) if root.path() == granted => {}
            Some(granted) => {
                return Err(unsafe_spec(format!(
                    "root filesystem {} is writable, and it is not the writable layer ignite built for this run ({})",
                    root.path().display(),
                    granted.display()
                )));
            }
            None => return Err(unsafe_spec("root filesystem is not read-only")),
        }
    }
    let process = spec.process().as_ref().ok_or_else(|| unsafe_spec("no process"))?;
    if process.user().uid() == 0 || process.user().gid() == 0 {
        return Err(unsafe_spec("process runs as root"));
    }
    // Only a uid of the run's own: one shared with anything else shares its per-user limits.
    if !crate::sandbox::identity::is_run_uid(process.user().uid())
        || !crate::sandbox::identity::is_run_uid(process.user().gid())
    {
        return Err(unsafe_spec(format!(
            "process runs as uid {} gid {}, outside the range of run uids ({}..={})",
            process.user().uid(),
            process.user().gid(),
            crate::sandbox::identity::FIRST_UID,
            crate::sandbox::identity::LAST_UID
        )));
    }
    if process.user().additional_gids().as_ref().is_some_and(|g| g.contains(&0)) {
        return Err(unsafe_spec("process has supplementary group 0"));
    }
    if process.no_new_privileges() != Some(true) {
        return Err(unsafe_spec("no_new_privileges is not set"));
    }
    if process.terminal() == Some(true) {
        return Err(unsafe_spec("a terminal is attached"));
    }
    let caps = process.capabilities().as_ref().ok_or_else(|| unsafe_spec("capability sets are not set explicitly"))?;
    for (set, name) in [
        (caps.bounding(), "bounding"),
        (caps.effective(), "effective"),
        (caps.inheritable(), "inheritable"),
        (caps.permitted(), "permitted"),
        (caps.ambient(), "ambient"),
    ] {
        match set {
            Some(s) if s.is_empty() => {}
            _ => return Err(unsafe_spec(format!("{name} capability set is not empty"))),
        }
    }
    let rlimits = process.rlimits().as_deref().unwrap_or(&[]);
    if rlimits.iter().any(|r| r.typ() == PosixRlimitType::RlimitAs) {
        return Err(unsafe_spec("RLIMIT_AS is set (V8 reserves large address ranges; use the memory cgroup)"));
    }
    if !rlimits.iter().any(|r| r.typ() == PosixRlimitType::RlimitCore && r.hard() == 0) {
        return Err(unsafe_spec("core dumps are not disabled"));
    }
    if !rlimits.iter().any(|r| r.typ() == PosixRlimitType::RlimitNofile) {
        return Err(unsafe_spec("RLIMIT_NOFILE is not set"));
    }

    let linux = spec.linux().as_ref().ok_or_else(|| unsafe_spec("no linux section"))?;
    let namespaces = linux.namespaces().as_deref().unwrap_or(&[]);
    for want in NAMESPACES {
        match namespaces.iter().find(|n| n.typ() == *want) {
            None => return Err(unsafe_spec(format!("{want:?} namespace is missing"))),
            Some(n) => match n.path() {
                None => {}
                Some(p) if *want == LinuxNamespaceType::Network && allow.netns.is_some_and(|g| g.path == *p) => {}
                Some(p) => {
                    return Err(unsafe_spec(format!(
                        "{want:?} namespace joins an existing namespace ({})",
                        p.display()
                    )));
                }
            },
        }
    }
    if let Some(grant) = allow.netns {
        check_netns_grant(spec, grant)?;
    }
    let granted_userns = allow.netns.and_then(|g| g.userns.as_ref());
    check_user_namespace(linux, process.user().uid(), process.user().gid(), granted_userns)?;
    let res = linux.resources().as_ref().ok_or_else(|| unsafe_spec("no resource limits"))?;
    let mem = res.memory().as_ref().ok_or_else(|| unsafe_spec("no memory limit"))?;
    match (mem.limit(), mem.swap()) {
        (Some(l), Some(s)) if l > 0 && l == s => {}
        _ => return Err(unsafe_spec("memory limit missing or swap differs from it")),
    }
    if res.pids().as_ref().is_none_or(|p| p.limit() <= 0) {
        return Err(unsafe_spec("no pids limit"));
    }
    if !res.cpu().as_ref().is_some_and(|c| c.quota().is_some_and(|q| q > 0) && c.period().is_some()) {
        return Err(unsafe_spec("no CPU quota"));
    }
    let seccomp = linux.seccomp().as_ref().ok_or_else(|| unsafe_spec("no seccomp profile"))?;
    if matches!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog) {
        return Err(unsafe_spec("seccomp default action allows unknown syscalls"));
    }
    let masked = linux.masked_paths().as_deref().unwrap_or(&[]);
    for p in MASKED_PATHS {
        if !masked.iter().any(|m| m == p) {
            return Err(unsafe_spec(format!("{p} is not masked")));
        }
    }
    let ro = linux.readonly_paths().as_deref().unwrap_or(&[]);
    for p in READONLY_PATHS {
        if !ro.iter().any(|m| m == p) {
            return Err(unsafe_spec(format!("{p} is not read-only")));
        }
    }

    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let opts = m.options().as_deref().unwrap_or(&[]);
        let has = |o: &str| opts.iter().any(|x| x == o);
        let dest = m.destination();
        let is_bind = has("bind") || has("rbind");
        let writable_ok = allow.writable_tmp.is_some_and(|src| {
            dest == Path::new("/tmp") && m.source().as_deref() == Some(src) && has("bind") && !has("rbind")
        });
        let workspace_ok = allow.workspace.is_some_and(|src| {
            dest == Path::new(WORKSPACE_DIR)
                && m.source().as_deref() == Some(src)
                && has("bind")
                && !has("rbind")
                && has("noexec")
        });
        let out_ok = allow.out.is_some_and(|src| {
            dest == Path::new(OUT_DIR)
                && m.source().as_deref() == Some(src)
                && has("bind")
                && !has("rbind")
                && has("noexec")
        });
        if is_bind && !(has("nosuid") && has("nodev") && (has("ro") || writable_ok || workspace_ok || out_ok)) {
            return Err(unsafe_spec(format!("bind mount {} is not ro,nosuid,nodev", dest.display())));
        }
        if !is_bind && !has("nosuid") {
            return Err(unsafe_spec(format!("mount {} is not nosuid", dest.display())));
        }
        if dest == Path::new("/sys") && !has("ro") {
            return Err(unsafe_spec("/sys is writable"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::spec::fixtures::{input, netns_path};
    use oci_spec::runtime::LinuxSeccompBuilder;

    fn built() -> Spec {
        build(&input()).unwrap()
    }

    #[test]
    fn generated_spec_validates() {
        validate(&built()).unwrap();
    }

    #[test]
    fn root_is_read_only_and_app_is_a_read_only_bind() {
        let s = built();
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
        let app = s.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new("/app")).unwrap();
        assert_eq!(app.source().as_deref(), Some(Path::new("/srv/hello")));
        let o = app.options().as_ref().unwrap();
        for want in ["bind", "ro", "nosuid", "nodev"] {
            assert!(o.iter().any(|x| x == want), "{want} missing: {o:?}");
        }
    }

    #[test]
    fn node_modules_is_mounted_read_only_only_when_given() {
        let find = |s: &Spec| {
            s.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new(NODE_MODULES_DIR)).cloned()
        };
        assert!(find(&built()).is_none());
        let mut i = input();
        i.node_modules = Some("/var/lib/ignite/deps/sha256-cd/node_modules".into());
        let s = build(&i).unwrap();
        validate(&s).unwrap();
        let m = find(&s).expect("node_modules mount");
        assert_eq!(m.source().as_deref(), Some(Path::new("/var/lib/ignite/deps/sha256-cd/node_modules")));
        let o = m.options().as_ref().unwrap();
        for want in ["bind", "ro", "nosuid", "nodev"] {
            assert!(o.iter().any(|x| x == want), "{want} missing: {o:?}");
        }
    }

    #[test]
    fn app_node_modules_is_mounted_read_only_after_app() {
        let dest = Path::new("/app/node_modules");
        assert!(built().mounts().as_ref().unwrap().iter().all(|m| m.destination() != dest));
        let mut i = input();
        i.app_node_modules = Some("/srv/hello/node_modules".into());
        let s = build(&i).unwrap();
        validate(&s).unwrap();
        let mounts = s.mounts().as_ref().unwrap();
        let at = |d: &Path| mounts.iter().position(|m| m.destination() == d).expect("mount");
        assert!(at(dest) > at(Path::new(APP_DIR)), "mounted before its mount point exists");
        let m = &mounts[at(dest)];
        assert_eq!(m.source().as_deref(), Some(Path::new("/srv/hello/node_modules")));
        let o = m.options().as_ref().unwrap();
        for want in ["bind", "ro", "nosuid", "nodev"] {
            assert!(o.iter().any(|x| x == want), "{want} missing: {o:?}");
        }
    }

    #[test]
    fn a_rootless_output_directory_is_a_tmpfs_with_the_caps_owned_by_the_program_and_needs_no_grant() {
        let mut i = input();
        i.out_dir = Some(OutDir::Tmpfs);
        let s = build(&i).unwrap();
        let m = s.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new(OUT_DIR)).unwrap();
        assert_eq!(m.typ().as_deref(), Some("tmpfs"));
        let o = m.options().as_ref().unwrap();
        let uid = format!("uid={}", i.user.uid);
        let gid = format!("gid={}", i.user.gid);
        let caps = ["size=8388608", "nr_inodes=65", "mode=0700", uid.as_str(), gid.as_str()];
        for want in ["nosuid", "nodev", "noexec"].iter().chain(&caps) {
            assert!(o.iter().any(|x| x == want), "{want} missing: {o:?}");
        }
        assert!(!o.iter().any(|x| x == "bind"), "{o:?}");
        validate(&s).unwrap();
    }

    #[test]
    fn only_a_granted_output_directory_is_bound_read_write_and_every_run_has_its_input_read_only() {
        let out = Path::new("/run/ignite/grants/ig-1/out");
        let mut i = input();
        i.out_dir = Some(OutDir::Bind(out.to_path_buf()));
        let s = build(&i).unwrap();
        let find =
            |dest: &str| s.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new(dest)).cloned();
        let m = find(OUT_DIR).unwrap();
        let o = m.options().as_ref().unwrap();
        for want in ["bind", "rw", "nosuid", "nodev", "noexec"] {
            assert!(o.iter().any(|x| x == want), "{want} missing: {o:?}");
        }
        validate_run(&s, &Grants { out: Some(out), ..Grants::default() }).unwrap();
        assert!(validate(&s).unwrap_err().to_string().contains("not ro,nosuid,nodev"));
        let elsewhere = Grants { out: Some(Path::new("/elsewhere")), ..Grants::default() };
        assert!(validate_run(&s, &elsewhere).is_err(), "another source");
        // The granted source at another destination is refused too.
        let mut moved = s.clone();
        let mut mounts = moved.mounts().clone().unwrap();
        for m in mounts.iter_mut().filter(|m| m.destination() == Path::new(OUT_DIR)) {
            m.set_destination(PathBuf::from("/tmp/elsewhere"));
        }
        moved.set_mounts(Some(mounts));
        assert!(validate_run(&moved, &Grants { out: Some(out), ..Grants::default() }).is_err());
        // The input directory: read-only, in every run's spec, warm or cold.
        let m = find(INPUT_DIR).unwrap();
        assert!(m.options().as_ref().unwrap().iter().any(|x| x == "ro"));
        let mut warm = input();
        warm.wait_job = true;
        assert!(
            build(&warm).unwrap().mounts().as_ref().unwrap().iter().any(|m| m.destination() == Path::new(INPUT_DIR))
        );
    }

    #[test]
    fn only_a_session_spec_may_bind_its_workspace_read_write() {
        let ws = Path::new("/var/lib/ignite-state/sessions/s1");
        let mut i = input();
        i.workspace = Some(ws.to_path_buf());
        let s = build(&i).unwrap();
        let m = s.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new(WORKSPACE_DIR)).unwrap();
        let o = m.options().as_ref().unwrap();
        for want in ["bind", "rw", "nosuid", "nodev", "noexec"] {
            assert!(o.iter().any(|x| x == want), "{want} missing: {o:?}");
        }
        validate_session(&s, ws).unwrap();
        validate_session(&built(), ws).unwrap();
        assert!(validate(&s).unwrap_err().to_string().contains("not ro,nosuid,nodev"));
        assert!(validate_session(&s, Path::new("/elsewhere")).is_err(), "another source");

        type Mutation = Box<dyn Fn(&mut Mount)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "other destination",
                Box::new(|m: &mut Mount| {
                    m.set_destination("/app/ws".into());
                }),
            ),
            (
                "exec",
                Box::new(|m: &mut Mount| {
                    m.set_options(Some(vec!["bind".into(), "nosuid".into(), "nodev".into()]));
                }),
            ),
            (
                "rbind",
                Box::new(|m: &mut Mount| {
                    m.set_options(Some(vec!["rbind".into(), "nosuid".into(), "nodev".into(), "noexec".into()]));
                }),
            ),
            (
                "suid",
                Box::new(|m: &mut Mount| {
                    m.set_options(Some(vec!["bind".into(), "nodev".into(), "noexec".into()]));
                }),
            ),
        ];
        for (what, mutate) in cases {
            let mut s = build(&i).unwrap();
            for m in s.mounts_mut().as_mut().unwrap().iter_mut() {
                if m.destination() == Path::new(WORKSPACE_DIR) {
                    mutate(m);
                }
            }
            assert!(validate_session(&s, ws).is_err(), "{what} accepted");
        }
        // Any other read-write bind stays refused in a session spec.
        let mut s = build(&i).unwrap();
        for m in s.mounts_mut().as_mut().unwrap().iter_mut() {
            if m.destination() == Path::new(APP_DIR) {
                m.set_options(Some(vec!["bind".into(), "nosuid".into(), "nodev".into(), "noexec".into()]));
            }
        }
        assert!(validate_session(&s, ws).is_err(), "a writable /app was accepted");
    }

    #[test]
    fn a_writable_root_passes_only_as_the_granted_overlay() {
        let layer = Path::new("/run/ignite/grants/ig-1/root");
        let mut i = input();
        i.rootfs = layer.to_path_buf();
        i.writable_root = true;
        let s = build(&i).unwrap();
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
        validate_run(&s, &Grants { writable_root: Some(layer), ..Grants::default() }).unwrap();
        // Not granted: the plain validator and a session's refuse it.
        assert!(validate(&s).unwrap_err().to_string().contains("root filesystem is not read-only"));
        assert!(validate_session(&s, Path::new("/ws")).is_err());
        // Granted for another path (e.g. the spec names the shared rootfs itself).
        let e = validate_run(
            &s,
            &Grants { writable_root: Some(Path::new("/run/ignite/grants/ig-2/root")), ..Grants::default() },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not the writable layer ignite built"), "{e}");
        let mut shared = input();
        shared.writable_root = true;
        let e = validate_run(&build(&shared).unwrap(), &Grants { writable_root: Some(layer), ..Grants::default() })
            .unwrap_err()
            .to_string();
        assert!(e.contains("sha256-ab is writable"), "{e}");
        // A grant does not oblige: a read-only root still passes with it.
        validate_run(&built(), &Grants { writable_root: Some(layer), ..Grants::default() }).unwrap();
    }

    fn network() -> NetworkAttach {
        NetworkAttach {
            netns: NetnsGrant {
                path: "/proc/77/task/78/ns/net".into(),
                id: crate::sandbox::spec::NsId { dev: 4, ino: 4026532177 },
                host: vec![crate::sandbox::spec::NsId { dev: 4, ino: 4026531833 }],
                userns: None,
            },
            resolv_conf: "/run/ignite/grants/ig-1/resolv.conf".into(),
        }
    }

    #[test]
    fn a_network_joins_only_the_granted_namespace_and_gets_its_resolver() {
        let net = network();
        let mut i = input();
        i.network = Some(net.clone());
        let s = build(&i).unwrap();
        assert_eq!(netns_path(&s).as_deref(), Some(Path::new("/proc/77/task/78/ns/net")));
        let resolv = s.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new(RESOLV_CONF)).unwrap();
        assert_eq!(resolv.source().as_deref(), Some(net.resolv_conf.as_path()));
        let o = resolv.options().as_ref().unwrap();
        for want in ["bind", "ro", "nosuid", "nodev", "noexec"] {
            assert!(o.iter().any(|x| x == want), "{want} missing: {o:?}");
        }
        validate_run(&s, &Grants { netns: Some(&net.netns), ..Grants::default() }).unwrap();
        assert!(validate(&s).unwrap_err().to_string().contains("joins an existing namespace"));

        // The grant names the host's namespace (by identity, whatever the path says).
        let mut host = net.netns.clone();
        host.id = host.host[0];
        let e = validate_run(&s, &Grants { netns: Some(&host), ..Grants::default() }).unwrap_err().to_string();
        assert!(e.contains("is the host's"), "{e}");
        // The host's namespace is unknown.
        let mut unknown = net.netns.clone();
        unknown.host.clear();
        assert!(validate_run(&s, &Grants { netns: Some(&unknown), ..Grants::default() }).is_err());
        // Granted, but the spec does not join it (a run that asked for a network never
        // silently runs without one).
        let e =
            validate_run(&built(), &Grants { netns: Some(&net.netns), ..Grants::default() }).unwrap_err().to_string();
        assert!(e.contains("not the one ignite created"), "{e}");
        // Granted, but the spec joins another one.
        let mut other = i.clone();
        other.network.as_mut().unwrap().netns.path = "/proc/1/ns/net".into();
        let e = validate_run(&build(&other).unwrap(), &Grants { netns: Some(&net.netns), ..Grants::default() })
            .unwrap_err()
            .to_string();
        assert!(e.contains("joins an existing namespace (/proc/1/ns/net)"), "{e}");
    }

    #[test]
    fn tmp_is_a_capped_noexec_tmpfs() {
        let s = built();
        let tmp = s.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new("/tmp")).unwrap();
        assert_eq!(tmp.typ().as_deref(), Some("tmpfs"));
        let o = tmp.options().as_ref().unwrap();
        assert!(o.contains(&"size=65536k".to_string()), "{o:?}");
        assert!(o.contains(&"noexec".to_string()) && o.contains(&"nosuid".to_string()));
        // Writable by the sandbox user although runc copies the rootfs dir's 0755 mode.
        assert!(o.contains(&"uid=200123".to_string()) && o.contains(&"gid=200123".to_string()), "{o:?}");
    }

    #[test]
    fn all_namespaces_are_new() {
        let s = built();
        let ns = s.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
        for t in NAMESPACES {
            let n = ns.iter().find(|n| n.typ() == *t).unwrap_or_else(|| panic!("{t:?} missing"));
            assert!(n.path().is_none());
        }
        assert!(ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    }

    #[test]
    fn no_capabilities_no_new_privs_non_root() {
        let s = built();
        let p = s.process().as_ref().unwrap();
        let c = p.capabilities().as_ref().unwrap();
        assert!(c.bounding().as_ref().unwrap().is_empty());
        assert!(c.effective().as_ref().unwrap().is_empty());
        assert!(c.permitted().as_ref().unwrap().is_empty());
        assert!(c.ambient().as_ref().unwrap().is_empty());
        assert!(c.inheritable().as_ref().unwrap().is_empty());
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.user().uid(), 200_123);
        assert_eq!(p.user().gid(), 200_123);
        assert_ne!(p.user().uid(), 0);
    }

    #[test]
    fn only_a_run_uid_passes() {
        for (uid, gid, why) in [
            (0, 200_123, "process runs as root"),
            (200_123, 0, "process runs as root"),
            (NOBODY_UID, NOBODY_GID, "outside the range of run uids"),
            (1000, 200_123, "outside the range of run uids"),
            (200_123, crate::sandbox::identity::LAST_UID + 1, "outside the range of run uids"),
        ] {
            let mut i = input();
            (i.user.uid, i.user.gid) = (uid, gid);
            let e = validate(&build(&i).unwrap()).unwrap_err().to_string();
            assert!(e.contains(why), "{uid}:{gid}: {e}");
        }
        let mut i = input();
        (i.user.uid, i.user.gid) = (crate::sandbox::identity::LAST_UID, crate::sandbox::identity::FIRST_UID);
        validate(&build(&i).unwrap()).unwrap();
    }

    #[test]
    fn limits_are_applied() {
        let s = built();
        let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(64 * 1024 * 1024));
        assert_eq!(m.swap(), Some(64 * 1024 * 1024));
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(r.pids().as_ref().unwrap().limit(), Limits::DEFAULT_PIDS);
        let rl = s.process().as_ref().unwrap().rlimits().as_ref().unwrap();
        assert!(rl.iter().any(|r| r.typ() == PosixRlimitType::RlimitCore && r.hard() == 0 && r.soft() == 0));
        assert!(rl.iter().any(|r| r.typ() == PosixRlimitType::RlimitNofile && r.hard() == 4096));
        assert!(!rl.iter().any(|r| r.typ() == PosixRlimitType::RlimitAs));
    }

    #[test]
    fn masked_and_readonly_paths() {
        let s = built();
        let l = s.linux().as_ref().unwrap();
        assert!(l.masked_paths().as_ref().unwrap().contains(&"/proc/kcore".to_string()));
        assert!(l.readonly_paths().as_ref().unwrap().contains(&"/proc/sysrq-trigger".to_string()));
    }

    #[test]
    fn entrypoint_wraps_the_runtime_command() {
        let s = built();
        let args = s.process().as_ref().unwrap().args().as_ref().unwrap();
        assert_eq!(args[0], INIT_PATH);
        assert_eq!(&args[1..6], &["--kill-after-ms", "7000", "--spawn", "none", "--"]);
        assert_eq!(&args[6..], &["/usr/local/bin/bun", "run", "/app/index.ts"]);
    }

    #[test]
    fn a_warm_spec_is_the_cold_one_without_the_input_and_with_the_job_flag() {
        let cold = built();
        let mut i = input();
        i.wait_job = true;
        let warm = build(&i).unwrap();
        validate(&warm).unwrap();
        let (cp, wp) = (cold.process().as_ref().unwrap(), warm.process().as_ref().unwrap());
        let mut want_args = cp.args().clone().unwrap();
        let end = want_args.iter().position(|a| a == "--").unwrap();
        want_args.insert(end, WAIT_JOB_FLAG.to_string());
        assert_eq!(wp.args().as_ref().unwrap(), &want_args);
        let want_env: Vec<String> =
            cp.env().clone().unwrap().into_iter().filter(|e| !e.starts_with("IGNITE_INPUT=")).collect();
        assert_eq!(wp.env().as_ref().unwrap(), &want_env);
        assert!(want_env.len() + 1 == cp.env().as_ref().unwrap().len());
        // Everything else is identical: the same protections, limits and mounts.
        let mut same = warm.clone();
        let mut p = wp.clone();
        p.set_args(cp.args().clone());
        p.set_env(cp.env().clone());
        same.set_process(Some(p));
        assert_eq!(serde_json::to_value(&same).unwrap(), serde_json::to_value(&cold).unwrap());
    }

    #[test]
    fn the_spawn_rule_reaches_the_entrypoint_before_the_program() {
        let mut i = input();
        i.spawn = SpawnRule::Commands(vec!["/usr/local/bin/bun".into(), "/app/tool".into()]);
        let s = build(&i).unwrap();
        let args = s.process().as_ref().unwrap().args().clone().unwrap();
        let end = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(
            &args[3..end],
            &["--spawn", "commands", "--allow-exec", "/usr/local/bin/bun", "--allow-exec", "/app/tool"]
        );
        assert_eq!(&args[end + 1..], &["/usr/local/bin/bun", "run", "/app/index.ts"]);
    }

    #[test]
    fn env_has_input_path_home_and_ignite_wins() {
        let mut svc = BTreeMap::new();
        svc.insert("DEBUG".to_string(), "1".to_string());
        let mut rt = BTreeMap::new();
        rt.insert("DEBUG".to_string(), "0".to_string());
        rt.insert("PATH".to_string(), "/evil".to_string());
        let env = compose_env(&rt, &svc, "{\"a\":1}").unwrap();
        assert!(env.contains(&"DEBUG=1".to_string()));
        assert!(env.contains(&"IGNITE_INPUT={\"a\":1}".to_string()));
        assert!(env.contains(&format!("PATH={SANDBOX_PATH}")));
        assert!(env.contains(&format!("HOME={SANDBOX_HOME}")));
        let big = "x".repeat(MAX_ENV_STRING);
        assert!(matches!(compose_env(&rt, &svc, &big), Err(SpecError::EnvTooLarge { .. })));
    }

    #[test]
    fn validate_rejects_each_lost_property() {
        // Each mutation removes one property; validate must notice every one.
        type Mutation = Box<dyn Fn(&mut Spec)>;
        let mut cases: Vec<(&str, Mutation)> = vec![];
        cases.push((
            "read-only",
            Box::new(|s: &mut Spec| {
                s.root_mut().as_mut().unwrap().set_readonly(Some(false));
            }),
        ));
        cases.push((
            "root",
            Box::new(|s: &mut Spec| {
                s.process_mut().as_mut().unwrap().user_mut().set_uid(0);
            }),
        ));
        cases.push((
            "no_new_privileges",
            Box::new(|s: &mut Spec| {
                s.process_mut().as_mut().unwrap().set_no_new_privileges(Some(false));
            }),
        ));
        cases.push((
            "bounding",
            Box::new(|s: &mut Spec| {
                let mut caps = Capabilities::new();
                caps.insert(oci_spec::runtime::Capability::SysAdmin);
                let p = s.process_mut().as_mut().unwrap();
                let mut c = p.capabilities().clone().unwrap();
                c.set_bounding(Some(caps));
                p.set_capabilities(Some(c));
            }),
        ));
        cases.push((
            "Network",
            Box::new(|s: &mut Spec| {
                let l = s.linux_mut().as_mut().unwrap();
                let ns: Vec<_> = l
                    .namespaces()
                    .clone()
                    .unwrap()
                    .into_iter()
                    .filter(|n| n.typ() != LinuxNamespaceType::Network)
                    .collect();
                l.set_namespaces(Some(ns));
            }),
        ));
        cases.push((
            "joins",
            Box::new(|s: &mut Spec| {
                let l = s.linux_mut().as_mut().unwrap();
                let mut ns = l.namespaces().clone().unwrap();
                for n in &mut ns {
                    if n.typ() == LinuxNamespaceType::Network {
                        n.set_path(Some("/proc/1/ns/net".into()));
                    }
                }
                l.set_namespaces(Some(ns));
            }),
        ));
        cases.push((
            "swap",
            Box::new(|s: &mut Spec| {
                let r = s.linux_mut().as_mut().unwrap().resources_mut().as_mut().unwrap();
                r.memory_mut().as_mut().unwrap().set_swap(Some(-1));
            }),
        ));
        cases.push((
            "pids",
            Box::new(|s: &mut Spec| {
                s.linux_mut().as_mut().unwrap().resources_mut().as_mut().unwrap().set_pids(None);
            }),
        ));
        cases.push((
            "seccomp",
            Box::new(|s: &mut Spec| {
                s.linux_mut().as_mut().unwrap().set_seccomp(None);
            }),
        ));
        cases.push((
            "allows unknown",
            Box::new(|s: &mut Spec| {
                let sc =
                    LinuxSeccompBuilder::default().default_action(LinuxSeccompAction::ScmpActAllow).build().unwrap();
                s.linux_mut().as_mut().unwrap().set_seccomp(Some(sc));
            }),
        ));
        cases.push((
            "RLIMIT_AS",
            Box::new(|s: &mut Spec| {
                let p = s.process_mut().as_mut().unwrap();
                let mut rl = p.rlimits().clone().unwrap();
                rl.push(
                    PosixRlimitBuilder::default()
                        .typ(PosixRlimitType::RlimitAs)
                        .hard(1u64 << 30)
                        .soft(1u64 << 30)
                        .build()
                        .unwrap(),
                );
                p.set_rlimits(Some(rl));
            }),
        ));
        cases.push((
            "masked",
            Box::new(|s: &mut Spec| {
                s.linux_mut().as_mut().unwrap().set_masked_paths(Some(vec![]));
            }),
        ));
        cases.push((
            "ro,nosuid,nodev",
            Box::new(|s: &mut Spec| {
                let mounts = s.mounts_mut().as_mut().unwrap();
                for m in mounts.iter_mut() {
                    if m.destination() == Path::new("/app") {
                        m.set_options(Some(vec!["bind".into(), "nosuid".into(), "nodev".into()]));
                    }
                }
            }),
        ));
        for (want, mutate) in cases {
            let mut s = built();
            mutate(&mut s);
            let err = validate(&s).expect_err(want).to_string();
            assert!(err.contains(want), "expected {want:?} in {err:?}");
        }
    }

    fn rootless_input() -> SpecInput {
        use crate::sandbox::userns::{IdRange, Rootless};
        let ids = Rootless {
            uid: 1000,
            gid: 1000,
            user: "tester".into(),
            subuid: IdRange { start: 100_000, count: 65_536 },
            subgid: IdRange { start: 100_000, count: 65_536 },
        };
        SpecInput { userns: Some(ids.maps()), ..input() }
    }

    #[test]
    fn a_rootless_spec_has_a_new_user_namespace_mapping_root_to_the_user_and_runs_to_subordinate_ids() {
        let spec = build(&rootless_input()).unwrap();
        validate(&spec).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let user = linux.namespaces().as_ref().unwrap().iter().find(|n| n.typ() == LinuxNamespaceType::User).unwrap();
        assert!(user.path().is_none());
        let uids = linux.uid_mappings().as_ref().unwrap();
        let pairs: Vec<_> = uids.iter().map(|m| (m.container_id(), m.host_id(), m.size())).collect();
        assert_eq!(pairs, vec![(0, 1000, 1), (crate::sandbox::identity::FIRST_UID, 100_000, 65_536)]);
        assert_eq!(linux.gid_mappings().as_ref().unwrap().len(), 2);
        // As root there is no user namespace and no maps.
        let root = built();
        let linux = root.linux().as_ref().unwrap();
        assert!(linux.namespaces().as_ref().unwrap().iter().all(|n| n.typ() != LinuxNamespaceType::User));
        assert!(linux.uid_mappings().is_none() && linux.gid_mappings().is_none());
    }

    #[test]
    fn a_rootless_network_joins_the_user_namespace_that_owns_it_and_its_maps_are_checked() {
        let mut i = rootless_input();
        let maps = i.userns.clone().unwrap();
        let mut net = network();
        net.netns.path = "/proc/77/ns/net".into();
        net.netns.userns = Some(UsernsGrant {
            path: "/proc/77/ns/user".into(),
            id: crate::sandbox::spec::NsId { dev: 4, ino: 4026532100 },
            maps: maps.clone(),
        });
        i.network = Some(net.clone());
        let s = build(&i).unwrap();
        let linux = s.linux().as_ref().unwrap();
        let user = linux.namespaces().as_ref().unwrap().iter().find(|n| n.typ() == LinuxNamespaceType::User).unwrap();
        assert_eq!(user.path().as_deref(), Some(Path::new("/proc/77/ns/user")));
        assert!(linux.uid_mappings().is_none() && linux.gid_mappings().is_none(), "the joined namespace has its maps");
        let granted = |g: &NetnsGrant| validate_run(&s, &Grants { netns: Some(g), ..Grants::default() });
        granted(&net.netns).unwrap();
        // Without the grant, joining it is refused.
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("joins an existing namespace"), "{e}");
        // Granted the network alone, as root's is: its user namespace is not granted.
        let no_owner = NetnsGrant { userns: None, ..net.netns.clone() };
        let e = granted(&no_owner).unwrap_err().to_string();
        assert!(e.contains("User namespace joins an existing namespace (/proc/77/ns/user)"), "{e}");
        // Granted another user namespace than the one the spec joins.
        let mut other = net.netns.clone();
        other.userns.as_mut().unwrap().path = "/proc/1/ns/user".into();
        let e = granted(&other).unwrap_err().to_string();
        assert!(e.contains("not the one that owns the network"), "{e}");
        // The granted namespace's maps are held to the same rules as a new one's.
        let mut root_mapped = net.netns.clone();
        root_mapped.userns.as_mut().unwrap().maps.uids[0].host = 0;
        let e = granted(&root_mapped).unwrap_err().to_string();
        assert!(e.contains("maps host uid 0"), "{e}");
        let mut program_is_user = net.netns.clone();
        program_is_user.userns.as_mut().unwrap().maps.gids.truncate(1);
        let e = granted(&program_is_user).unwrap_err().to_string();
        assert!(e.contains("gid") && e.contains("is not mapped"), "{e}");
        // A spec that joins the network but makes a user namespace of its own (where the
        // network's owner is not): refused, as is one with maps for the joined namespace.
        let mut own = s.clone();
        let ns = own.linux_mut().as_mut().unwrap().namespaces_mut().as_mut().unwrap();
        ns.iter_mut().find(|n| n.typ() == LinuxNamespaceType::User).unwrap().set_path(None);
        let e = validate_run(&own, &Grants { netns: Some(&net.netns), ..Grants::default() }).unwrap_err().to_string();
        assert!(e.contains("not the one that owns the network"), "{e}");
        let mut mapped = s.clone();
        let with_maps = build(&SpecInput { network: None, ..i.clone() }).unwrap();
        let uid_maps = with_maps.linux().as_ref().unwrap().uid_mappings().clone();
        mapped.linux_mut().as_mut().unwrap().set_uid_mappings(uid_maps);
        let e = granted(&net.netns)
            .and_then(|()| validate_run(&mapped, &Grants { netns: Some(&net.netns), ..Grants::default() }));
        assert!(e.unwrap_err().to_string().contains("maps are set for a user namespace that is joined"));
    }

    #[test]
    fn validate_rejects_user_namespaces_that_reach_host_root_or_make_the_program_the_user() {
        use oci_spec::runtime::LinuxIdMappingBuilder;
        let map = |c: u32, h: u32, n: u32| {
            LinuxIdMappingBuilder::default().container_id(c).host_id(h).size(n).build().unwrap()
        };
        let first = crate::sandbox::identity::FIRST_UID;
        let uid = input().user.uid;
        type Break = Box<dyn Fn(&mut Spec)>;
        let cases: Vec<(&str, Break)> = vec![
            (
                "maps host uid 0",
                Box::new(move |s: &mut Spec| {
                    s.linux_mut()
                        .as_mut()
                        .unwrap()
                        .set_uid_mappings(Some(vec![map(0, 0, 1), map(first, 100_000, 65_536)]));
                }),
            ),
            (
                "uid 200123 is not mapped",
                Box::new(move |s: &mut Spec| {
                    s.linux_mut()
                        .as_mut()
                        .unwrap()
                        .set_uid_mappings(Some(vec![map(0, 1000, 1), map(first, 100_000, 10)]));
                }),
            ),
            (
                "maps to the host uid of the sandbox's root",
                Box::new(move |s: &mut Spec| {
                    s.linux_mut().as_mut().unwrap().set_uid_mappings(Some(vec![map(0, 1000, 1), map(uid, 1000, 1)]));
                }),
            ),
            (
                "User namespace joins an existing namespace",
                Box::new(|s: &mut Spec| {
                    let ns = s.linux_mut().as_mut().unwrap().namespaces_mut().as_mut().unwrap();
                    let user = ns.iter_mut().find(|n| n.typ() == LinuxNamespaceType::User).unwrap();
                    user.set_path(Some("/proc/1/ns/user".into()));
                }),
            ),
            (
                "maps are set without a user namespace",
                Box::new(|s: &mut Spec| {
                    let ns = s.linux_mut().as_mut().unwrap().namespaces_mut().as_mut().unwrap();
                    ns.retain(|n| n.typ() != LinuxNamespaceType::User);
                }),
            ),
        ];
        for (want, break_it) in cases {
            let mut s = build(&rootless_input()).unwrap();
            break_it(&mut s);
            let err = validate(&s).expect_err(want).to_string();
            assert!(err.contains(want), "expected {want:?} in {err:?}");
        }
    }
}
