//! Judges the facts: one row per check with its status, what was found, what needs it and,
//! when it is not ok, what to do. Pure: no I/O, so every branch is unit-tested from fixtures.

use serde::Serialize;

use super::facts::*;
use super::parse::{KernelController, Semver};
use crate::sandbox::cgroup::{CgroupDriver, driver_names};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Something optional is missing: a feature beyond a default run will not work.
    Warn,
    /// A default run will not work on this host.
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable identifier, e.g. `cgroup-controllers`.
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub value: String,
    /// What depends on it: `every run`, `audit mode`, …
    pub needed_for: &'static str,
    /// What to do; present exactly when the status is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

const EVERY_RUN: &str = "every run";

/// Below this much free space in the bundle cache, pulling one runtime (≈ 50 MB download plus
/// ≈ 100–130 MB unpacked, see the bundle table in docs/performance.md) fails.
pub const CACHE_FAIL_BYTES: u64 = 256 << 20;
/// Room for several more bundles and dependency installs.
pub const CACHE_WARN_BYTES: u64 = 2 << 30;
/// A bundle is a few hundred files; an npm dependency tree can be tens of thousands.
pub const CACHE_FAIL_INODES: u64 = 2_000;
pub const CACHE_WARN_INODES: u64 = 20_000;
/// A run's state is a spec, a lock, a pid file and logs: kilobytes.
pub const STATE_FAIL_BYTES: u64 = 1 << 20;
pub const STATE_WARN_BYTES: u64 = 16 << 20;
pub const STATE_FAIL_INODES: u64 = 100;
pub const STATE_WARN_INODES: u64 = 1_000;

/// The first runc release with `linux.seccomp.listenerPath` (seccomp user notification).
pub const RUNC_WITH_LISTENER: Semver = Semver::new(1, 1, 0);

/// Every check, in the order they are printed.
pub fn evaluate(f: &Facts) -> Vec<Check> {
    let mut checks = vec![
        privileges(f),
        oci_runtime(f),
        oci_on_path(f),
        entrypoint(f),
        cgroup_version(f),
        cgroup_controllers(f),
        cgroup_parent(f),
        cgroup_driver(f),
        memory_swap(f),
        seccomp(f),
        seccomp_notify(f),
        landlock(f),
        user_namespaces(f),
        overlayfs(f),
        user_network(f),
        iproute2(f),
    ];
    if let Some(r) = &f.rootless {
        checks.extend(rootless(f, r));
    }
    checks.extend(f.disks.iter().map(disk));
    checks.push(bundles(f));
    checks.push(open_files(f));
    checks.push(kernel(f));
    checks
}

fn ok(name: &'static str, needed_for: &'static str, value: impl Into<String>) -> Check {
    Check { name, status: Status::Ok, value: value.into(), needed_for, remedy: None }
}

fn not_ok(
    name: &'static str,
    status: Status,
    needed_for: &'static str,
    value: impl Into<String>,
    remedy: impl Into<String>,
) -> Check {
    Check { name, status, value: value.into(), needed_for, remedy: Some(remedy.into()) }
}

fn privileges(f: &Facts) -> Check {
    const NAME: &str = "privileges";
    match &f.privileges {
        Probed::Failed { error } => {
            not_ok(NAME, Status::Fail, EVERY_RUN, error.clone(), "run ignite on a host with /proc mounted")
        }
        Probed::Found(p) if p.euid != 0 => ok(
            NAME,
            EVERY_RUN,
            format!("uid {}: rootless (each sandbox in a user namespace over the user's subordinate ids)", p.euid),
        ),
        Probed::Found(p) if !p.cap_sys_admin => not_ok(
            NAME,
            Status::Fail,
            EVERY_RUN,
            "root without CAP_SYS_ADMIN (an unprivileged container?)",
            "run ignite on the host, or in a container that has CAP_SYS_ADMIN (e.g. docker run --privileged)",
        ),
        Probed::Found(_) => ok(NAME, EVERY_RUN, "root with CAP_SYS_ADMIN"),
    }
}

/// Rootless mode's rows: the subordinate ids, the helpers that map them, the user's systemd
/// manager with its delegated controllers, and what rootless mode refuses.
fn rootless(f: &Facts, r: &RootlessFacts) -> Vec<Check> {
    use crate::sandbox::userns::setup_remedy;
    let user = r.ids.found().map_or("USER", |i| i.user.as_str());
    let ids = match &r.ids {
        Probed::Found(i) => ok(
            "subordinate-ids",
            EVERY_RUN,
            format!(
                "{}: uids {}+{}, gids {}+{}: {} run uids",
                i.user,
                i.subuid.start,
                i.subuid.count,
                i.subgid.start,
                i.subgid.count,
                i.run_ids()
            ),
        ),
        Probed::Failed { error } => {
            not_ok("subordinate-ids", Status::Fail, EVERY_RUN, error.clone(), setup_remedy(user))
        }
    };
    let helpers = match (&r.newuidmap, &r.newgidmap) {
        (Some(u), Some(g)) => ok("uidmap", EVERY_RUN, format!("{} and {}", u.display(), g.display())),
        _ => not_ok(
            "uidmap",
            Status::Fail,
            EVERY_RUN,
            "newuidmap/newgidmap not on PATH: the OCI runtime cannot map the subordinate ids",
            "as root: apt-get install uidmap",
        ),
    };
    let manager = match &r.user_manager {
        Probed::Found(bus) => ok(
            "user-manager",
            EVERY_RUN,
            format!(
                "systemd user manager on {}; cpu, memory and pids delegated: limits are its transient scopes",
                bus.display()
            ),
        ),
        Probed::Failed { error } => {
            not_ok("user-manager", Status::Fail, EVERY_RUN, "rootless cgroup limits are not available", error.clone())
        }
    };
    let oci = match f.oci.selected.found() {
        Some(o) if !drops_groups_rootless(o.kind) => not_ok(
            "oci-rootless",
            Status::Fail,
            EVERY_RUN,
            format!("{} leaves the user's supplementary groups on a rootless sandbox's program", o.kind),
            "use crun: --oci-runtime crun (the rootless default) or IGNITE_OCI_RUNTIME=crun",
        ),
        Some(o) => ok(
            "oci-rootless",
            EVERY_RUN,
            format!("{}: sets the program's groups (the entrypoint refuses a program holding others)", o.kind),
        ),
        None => not_ok("oci-rootless", Status::Fail, EVERY_RUN, "no OCI runtime", "see oci-runtime"),
    };
    let refused: Vec<&str> = crate::sandbox::userns::ALL.iter().map(|u| u.feature).collect();
    let limits = not_ok(
        "rootless-limits",
        Status::Warn,
        "writable roots, sessions, bundle builds",
        format!("refused rootless: {}", refused.join("; ")),
        "run ignite as root for these (each rests on a mount or a chroot ignite makes on the host); bring bundles in with `ignite runtime import`",
    );
    vec![ids, helpers, manager, oci, limits]
}

/// Whether the OCI runtime `kind` (as doctor found it) drops the user's groups rootless.
fn drops_groups_rootless(kind: &str) -> bool {
    crate::sandbox::oci::OciKind::from_name(kind).is_some_and(|k| k.sets_groups_rootless())
}

/// ignite's hard open-file limit bounds each sandbox's (see [`crate::sandbox::nofile`]): below 4096 the
/// sandboxes get less; below the minimum none starts.
fn open_files(f: &Facts) -> Check {
    use crate::sandbox::nofile::{MIN_SANDBOX_NOFILE, Nofile, REMEDY, SANDBOX_NOFILE, sandbox_limit};
    const NAME: &str = "open-files";
    let shown = |v: u64| if v == u64::MAX { "unlimited".to_string() } else { v.to_string() };
    match &f.open_files {
        Probed::Failed { error } => {
            not_ok(NAME, Status::Warn, EVERY_RUN, error.clone(), "run ignite on a host with /proc mounted")
        }
        Probed::Found(l) => {
            let found = format!("soft {}, hard {}", shown(l.soft), shown(l.hard));
            match sandbox_limit(Nofile { soft: l.soft, hard: l.hard }) {
                Err(_) => not_ok(
                    NAME,
                    Status::Fail,
                    EVERY_RUN,
                    format!("{found}: below the {MIN_SANDBOX_NOFILE} a sandbox needs, no sandbox starts"),
                    REMEDY,
                ),
                Ok(n) if n < SANDBOX_NOFILE => not_ok(
                    NAME,
                    Status::Warn,
                    EVERY_RUN,
                    format!("{found}: sandboxes get {n} open files instead of {SANDBOX_NOFILE}"),
                    REMEDY,
                ),
                Ok(n) => ok(NAME, EVERY_RUN, format!("{found}: sandboxes get {n}")),
            }
        }
    }
}

fn kernel(f: &Facts) -> Check {
    match &f.kernel {
        Probed::Found(k) => ok("kernel", EVERY_RUN, format!("Linux {}", k.release)),
        Probed::Failed { error } => {
            not_ok("kernel", Status::Warn, EVERY_RUN, error.clone(), "run ignite on a host with /proc mounted")
        }
    }
}

/// Something about an OCI runtime that breaks (fail) or limits (warn) ignite on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    pub status: Status,
    pub problem: String,
    pub remedy: String,
}

/// Known incompatibilities of `bin` with ignite on a host with these cgroups.
pub fn oci_incompatibilities(bin: &OciBinary, cgroup: &CgroupFacts) -> Vec<Incompatibility> {
    let mut found = Vec::new();
    let version = bin.version.found().copied();
    if bin.seccomp == Some(false) {
        found.push(Incompatibility {
            status: Status::Fail,
            problem: format!(
                "{} was built without seccomp support: it would start every sandbox without its seccomp filter",
                bin.kind
            ),
            remedy: match bin.kind {
                "youki" => {
                    "rebuild it with the feature: cargo install youki --locked --features v1,v2,seccomp".to_owned()
                }
                kind => format!("install a {kind} built with seccomp (Debian/Ubuntu: apt-get install {kind})"),
            },
        });
    }
    match bin.kind {
        "runc" => {
            if let Some(v) = version.filter(|v| *v < RUNC_WITH_LISTENER) {
                found.push(Incompatibility {
                    status: Status::Warn,
                    problem: format!(
                        "runc {v} has no seccomp listenerPath (added in runc {RUNC_WITH_LISTENER}): audit mode gets no security events"
                    ),
                    remedy: format!("install runc {RUNC_WITH_LISTENER} or newer"),
                });
            }
        }
        "crun" => {
            // Seen with crun 1.8.1 on a hybrid host whose cgroup2 holds hugetlb: "cgroups in
            // hybrid mode not supported, drop all controllers from cgroupv2".
            let hybrid = matches!(cgroup.mode, Probed::Found(Some(HostCgroup::Hybrid)));
            let v2_controllers = match &cgroup.unified_controllers {
                Some(Probed::Found(c)) => c.clone(),
                // Unknown: assume the refusal rather than promise a run that fails.
                _ => vec!["?".to_owned()],
            };
            if hybrid && !v2_controllers.is_empty() {
                found.push(Incompatibility {
                    status: Status::Fail,
                    problem: format!(
                        "crun refuses hybrid cgroup hosts whose cgroup2 has controllers (here: {}): \
                         \"cgroups in hybrid mode not supported, drop all controllers from cgroupv2\"",
                        v2_controllers.join(" ")
                    ),
                    remedy: "use runc on this host, or boot with cgroup v2 only (systemd.unified_cgroup_hierarchy=1)"
                        .to_owned(),
                });
            }
        }
        _ => {}
    }
    found
}

fn describe(bin: &OciBinary) -> String {
    match &bin.version {
        Probed::Found(v) => format!("{} {v} at {}", bin.kind, bin.path.display()),
        Probed::Failed { .. } => format!("{} at {} (version unknown)", bin.kind, bin.path.display()),
    }
}

fn oci_runtime(f: &Facts) -> Check {
    const NAME: &str = "oci-runtime";
    let bin = match &f.oci.selected {
        Probed::Failed { error } => {
            return not_ok(
                NAME,
                Status::Fail,
                EVERY_RUN,
                error.clone(),
                "install runc (Debian/Ubuntu: apt-get install runc), crun or youki, or point --oci-runtime / IGNITE_OCI_RUNTIME at one of them",
            );
        }
        Probed::Found(bin) => bin,
    };
    if let Probed::Failed { error } = &bin.version {
        return not_ok(
            NAME,
            Status::Fail,
            EVERY_RUN,
            format!("{} at {} does not work: {error}", bin.kind, bin.path.display()),
            "reinstall it, or pick another one with --oci-runtime",
        );
    }
    let problems = oci_incompatibilities(bin, &f.cgroup);
    let value = describe(bin);
    match problems.iter().map(|p| p.status).max() {
        None | Some(Status::Ok) => ok(NAME, EVERY_RUN, value),
        Some(status) => not_ok(
            NAME,
            status,
            EVERY_RUN,
            format!("{value}; {}", problems.iter().map(|p| p.problem.as_str()).collect::<Vec<_>>().join("; ")),
            problems.iter().map(|p| p.remedy.as_str()).collect::<Vec<_>>().join("; "),
        ),
    }
}

fn oci_on_path(f: &Facts) -> Check {
    const NAME: &str = "oci-runtimes";
    const NEEDED: &str = "choosing --oci-runtime";
    let selected = f.oci.selected.found().map(|b| &b.path);
    let mut parts: Vec<String> = f
        .oci
        .on_path
        .iter()
        .map(|bin| {
            let mut notes = Vec::new();
            if Some(&bin.path) == selected {
                notes.push("in use".to_owned());
            }
            notes.extend(oci_incompatibilities(bin, &f.cgroup).into_iter().map(|p| p.problem));
            if notes.is_empty() { describe(bin) } else { format!("{} ({})", describe(bin), notes.join("; ")) }
        })
        .collect();
    let missing: Vec<&str> = super::probe::OCI_RUNTIMES
        .iter()
        .copied()
        .filter(|name| !f.oci.on_path.iter().any(|b| b.kind == *name))
        .collect();
    if !missing.is_empty() {
        parts.push(format!("not on PATH: {}", missing.join(", ")));
    }
    let value = parts.join("; ");
    if f.oci.on_path.is_empty() {
        not_ok(NAME, Status::Warn, NEEDED, value, "install runc (Debian/Ubuntu: apt-get install runc)")
    } else {
        ok(NAME, NEEDED, value)
    }
}

fn entrypoint(f: &Facts) -> Check {
    match &f.entrypoint {
        Probed::Found(p) => ok("entrypoint", EVERY_RUN, p.display().to_string()),
        Probed::Failed { error } => not_ok(
            "entrypoint",
            Status::Fail,
            EVERY_RUN,
            error.clone(),
            "install ignite-init beside ignite (cargo build builds both binaries) or set IGNITE_INIT",
        ),
    }
}

fn mode(f: &Facts) -> Option<HostCgroup> {
    f.cgroup.mode.found().copied().flatten()
}

fn cgroup_version(f: &Facts) -> Check {
    const NAME: &str = "cgroup-version";
    let unified_mount = f.cgroup.mounts.iter().find(|m| m.version == "v2").map(|m| m.mount_point.display().to_string());
    match &f.cgroup.mode {
        Probed::Failed { error } => {
            not_ok(NAME, Status::Fail, EVERY_RUN, error.clone(), "run ignite on a host with /proc mounted")
        }
        Probed::Found(None) => not_ok(
            NAME,
            Status::Fail,
            EVERY_RUN,
            "no cgroup filesystem is mounted",
            "mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup); systemd does this at boot",
        ),
        Probed::Found(Some(HostCgroup::V1)) => ok(NAME, EVERY_RUN, "v1 (legacy hierarchies only)"),
        Probed::Found(Some(HostCgroup::Hybrid)) => {
            let v2 = match &f.cgroup.unified_controllers {
                Some(Probed::Found(c)) if c.is_empty() => "no controllers".to_owned(),
                Some(Probed::Found(c)) => format!("controllers: {}", c.join(" ")),
                _ => "controllers unknown".to_owned(),
            };
            ok(
                NAME,
                EVERY_RUN,
                format!("hybrid: controllers on v1, cgroup2 at {} ({v2})", unified_mount.unwrap_or_default()),
            )
        }
        Probed::Found(Some(HostCgroup::V2)) => {
            ok(NAME, EVERY_RUN, format!("v2 (unified) at {}", unified_mount.unwrap_or_default()))
        }
    }
}

/// The controllers every run's limits need.
pub const REQUIRED_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

fn controller_available(f: &Facts, name: &str) -> bool {
    match mode(f) {
        Some(HostCgroup::V1 | HostCgroup::Hybrid) => {
            f.cgroup.mounts.iter().any(|m| m.version == "v1" && m.controllers.iter().any(|c| c == name))
        }
        Some(HostCgroup::V2) => match &f.cgroup.unified_controllers {
            Some(Probed::Found(c)) => c.iter().any(|c| c == name),
            _ => false,
        },
        None => false,
    }
}

fn kernel_config(name: &str) -> &'static str {
    match name {
        "memory" => "CONFIG_MEMCG",
        "cpu" => "CONFIG_CGROUP_SCHED and CONFIG_CFS_BANDWIDTH",
        "pids" => "CONFIG_CGROUP_PIDS",
        "cpuacct" => "CONFIG_CGROUP_CPUACCT",
        _ => "the controller",
    }
}

/// Why `name` is missing and what to do, from /proc/cgroups.
fn controller_remedy(f: &Facts, name: &str) -> (String, String) {
    let kernel: Option<&KernelController> =
        f.cgroup.kernel_controllers.found().and_then(|list| list.iter().find(|c| c.name == name));
    match (kernel, f.cgroup.kernel_controllers.found().is_some(), mode(f)) {
        (None, true, _) => {
            (format!("{name}: not in the kernel"), format!("use a kernel built with {}", kernel_config(name)))
        }
        (Some(c), _, _) if !c.enabled => (
            format!("{name}: disabled at boot"),
            format!("remove cgroup_disable={name} from the kernel command line and reboot"),
        ),
        (Some(_), _, Some(HostCgroup::V1 | HostCgroup::Hybrid)) => (
            format!("{name}: in the kernel, not mounted"),
            format!(
                "mount its hierarchy: mkdir -p /sys/fs/cgroup/{name} && mount -t cgroup -o {name} cgroup /sys/fs/cgroup/{name}"
            ),
        ),
        (Some(c), _, Some(HostCgroup::V2)) if c.hierarchy != 0 => (
            format!("{name}: bound to cgroup v1 hierarchy {}", c.hierarchy),
            format!("unmount the v1 {name} hierarchy so the kernel hands the controller to cgroup2"),
        ),
        (Some(_), _, _) => (
            format!("{name}: not offered by this cgroup2 root"),
            format!(
                "delegate {name} to this cgroup: enable it in the parent's cgroup.subtree_control (systemd: Delegate=yes; a container engine: a delegated cgroup)"
            ),
        ),
        (None, false, _) => (format!("{name}: missing"), format!("enable the {name} cgroup controller")),
    }
}

fn cgroup_controllers(f: &Facts) -> Check {
    const NAME: &str = "cgroup-controllers";
    if mode(f).is_none() {
        return not_ok(NAME, Status::Fail, EVERY_RUN, "no cgroup hierarchy", "see cgroup-version");
    }
    let v1 = matches!(mode(f), Some(HostCgroup::V1 | HostCgroup::Hybrid));
    let mut wanted: Vec<&str> = REQUIRED_CONTROLLERS.to_vec();
    if v1 {
        // On v1 CPU time is read from its own hierarchy; without it runs work, unmeasured.
        wanted.push("cpuacct");
    }
    let (have, missing): (Vec<&str>, Vec<&str>) = wanted.iter().partition(|c| controller_available(f, c));
    let place = if v1 { "v1 hierarchies" } else { "cgroup2" };
    if missing.is_empty() {
        return ok(NAME, EVERY_RUN, format!("{} on {place}", have.join(", ")));
    }
    let (why, remedies): (Vec<String>, Vec<String>) = missing.iter().map(|c| controller_remedy(f, c)).unzip();
    let required_missing = missing.iter().any(|c| REQUIRED_CONTROLLERS.contains(c));
    let consequence = if required_missing {
        "runs would go without the limits ignite promises"
    } else {
        "runs work, but their CPU time is not reported"
    };
    not_ok(
        NAME,
        if required_missing { Status::Fail } else { Status::Warn },
        EVERY_RUN,
        format!(
            "{} on {place}; missing {} ({consequence})",
            if have.is_empty() { "none".to_owned() } else { have.join(", ") },
            why.join("; ")
        ),
        remedies.join("; "),
    )
}

fn cgroup_parent(f: &Facts) -> Check {
    const NAME: &str = "cgroup-parent";
    if mode(f).is_none() {
        return not_ok(NAME, Status::Fail, EVERY_RUN, "no cgroup hierarchy", "see cgroup-version");
    }
    let parents = &f.cgroup.parent;
    if let Some(p) = parents.iter().find(|p| p.read_only) {
        return not_ok(
            NAME,
            Status::Fail,
            EVERY_RUN,
            format!("the {} hierarchy is mounted read-only: {} cannot be created", p.hierarchy, p.path.display()),
            "run ignite on the host, or give its container a writable cgroup filesystem (e.g. docker run --privileged --cgroupns=private)",
        );
    }
    if let Some(p) = parents.iter().find(|p| p.not_a_directory) {
        return not_ok(
            NAME,
            Status::Fail,
            EVERY_RUN,
            format!("{} exists and is not a directory", p.path.display()),
            format!("remove {}", p.path.display()),
        );
    }
    if let Some(root) = &f.cgroup.unified_root {
        let undelegated: Vec<&str> =
            REQUIRED_CONTROLLERS.iter().copied().filter(|c| !root.subtree_control.iter().any(|s| s == c)).collect();
        if root.nested && root.processes > 0 && !undelegated.is_empty() {
            let dir = root.path.display();
            return not_ok(
                NAME,
                Status::Fail,
                EVERY_RUN,
                format!(
                    "{} process(es) live in {dir} itself (a cgroup namespace or delegated subtree), so cgroup v2 \
                     cannot enable {} for its children",
                    root.processes,
                    undelegated.join(", ")
                ),
                format!(
                    "move them into a leaf first, as docker's dind entrypoint does: mkdir {dir}/init && xargs -rn1 < {dir}/cgroup.procs > {dir}/init/cgroup.procs"
                ),
            );
        }
    }
    let where_: Vec<String> = parents.iter().map(|p| p.hierarchy.clone()).collect();
    let systemd = f.cgroup.driver.found() == Some(&CgroupDriver::Systemd);
    let state = match (parents.iter().all(|p| p.exists), systemd) {
        (true, _) => "exists",
        (false, true) => "created by systemd on the first run",
        (false, false) => "created by the OCI runtime on the first run",
    };
    let name = if systemd { driver_names::SLICE } else { super::probe::CGROUP_PARENT };
    ok(NAME, EVERY_RUN, format!("/{name} in {}: {state}", where_.join(", ")))
}

/// Who creates the runs' cgroups, and whether it can: the systemd driver needs systemd as
/// the init system and the system bus, over which the OCI runtime asks for each scope.
fn cgroup_driver(f: &Facts) -> Check {
    const NAME: &str = "cgroup-driver";
    let systemd = f.cgroup.systemd;
    match &f.cgroup.driver {
        Probed::Failed { error } => not_ok(
            NAME,
            Status::Fail,
            EVERY_RUN,
            error.clone(),
            "use --cgroup-driver auto (or cgroupfs), or IGNITE_CGROUP_DRIVER=auto",
        ),
        Probed::Found(CgroupDriver::Systemd) if !systemd.system_bus => not_ok(
            NAME,
            Status::Fail,
            EVERY_RUN,
            format!(
                "systemd: no system bus at /{}, over which the OCI runtime asks systemd for each run's scope",
                driver_names::SYSTEM_BUS_SOCKET
            ),
            "start the system bus (apt-get install dbus; systemctl start dbus), or use --cgroup-driver cgroupfs",
        ),
        Probed::Found(CgroupDriver::Systemd) => ok(
            NAME,
            EVERY_RUN,
            format!(
                "systemd: each run is a transient scope {}/{}-<run>.scope, asked for over the {}",
                driver_names::SLICE,
                driver_names::SCOPE_PREFIX,
                if f.rootless.is_some() { "user's bus (in the user's systemd manager)" } else { "system bus" }
            ),
        ),
        Probed::Found(CgroupDriver::Cgroupfs) if systemd.booted && mode(f) == Some(HostCgroup::V2) => ok(
            NAME,
            EVERY_RUN,
            format!(
                "cgroupfs (asked for): the OCI runtime creates /{}/<run> itself, beside systemd's slices",
                super::probe::CGROUP_PARENT
            ),
        ),
        Probed::Found(CgroupDriver::Cgroupfs) => ok(
            NAME,
            EVERY_RUN,
            format!("cgroupfs: the OCI runtime creates /{}/<run> itself", super::probe::CGROUP_PARENT),
        ),
    }
}

fn memory_swap(f: &Facts) -> Check {
    const NAME: &str = "memory-swap";
    const NEEDED: &str = EVERY_RUN;
    let swap_kib = f.cgroup.swap_total_kib.found().copied();
    let no_swap = swap_kib == Some(0);
    match (mode(f), f.cgroup.swap_accounting) {
        (None, _) => not_ok(NAME, Status::Fail, NEEDED, "no cgroup hierarchy", "see cgroup-version"),
        (Some(HostCgroup::V1 | HostCgroup::Hybrid), Some(true)) => {
            ok(NAME, NEEDED, "memory.memsw.* present: the memory limit includes swap")
        }
        (Some(HostCgroup::V1 | HostCgroup::Hybrid), Some(false)) => not_ok(
            NAME,
            Status::Fail,
            NEEDED,
            "no memory.memsw.limit_in_bytes (swap accounting is off): runc writes memory+swap = the memory limit for every run and fails",
            "boot with swapaccount=1 on the kernel command line, or use a cgroup v2 host",
        ),
        (Some(HostCgroup::V2), Some(true)) => {
            ok(NAME, NEEDED, "memory.swap.max present: runs get no swap beyond their memory limit")
        }
        (Some(_), _) if no_swap => ok(NAME, NEEDED, "the host has no swap: the memory limit is exact"),
        (Some(HostCgroup::V2), Some(false)) => not_ok(
            NAME,
            Status::Warn,
            NEEDED,
            format!(
                "no memory.swap.max (swap accounting is off) and {} KiB of swap: a program can swap beyond its memory limit",
                swap_kib.unwrap_or_default()
            ),
            "remove swapaccount=0 / cgroup.memory=noswap from the kernel command line, or turn swap off (swapoff -a)",
        ),
        (Some(_), None) => not_ok(
            NAME,
            Status::Warn,
            NEEDED,
            "could not tell whether swap is accounted (no cgroup with memory files to look at)",
            "check that memory.swap.max (v2) or memory.memsw.limit_in_bytes (v1) exists in a child cgroup",
        ),
    }
}

fn actions(f: &Facts) -> Option<&Vec<String>> {
    f.seccomp.actions.found().and_then(Option::as_ref)
}

fn seccomp(f: &Facts) -> Check {
    const NAME: &str = "seccomp";
    let mode = match &f.seccomp.mode {
        Probed::Failed { error } => {
            return not_ok(NAME, Status::Fail, EVERY_RUN, error.clone(), "run ignite on a host with /proc mounted");
        }
        Probed::Found(None) => {
            return not_ok(
                NAME,
                Status::Fail,
                EVERY_RUN,
                "the kernel has no seccomp (no Seccomp: line in /proc/self/status)",
                "use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER",
            );
        }
        Probed::Found(Some(m)) => *m,
    };
    let nested = if mode == 2 { "; ignite itself already runs under a seccomp filter" } else { "" };
    match &f.seccomp.actions {
        Probed::Found(Some(list)) => {
            // The default profile allows listed calls and fails the rest with an errno.
            let missing: Vec<&str> = ["allow", "errno"].into_iter().filter(|a| !list.iter().any(|l| l == a)).collect();
            if missing.is_empty() {
                ok(NAME, EVERY_RUN, format!("filter mode (actions: {}){nested}", list.join(" ")))
            } else {
                not_ok(
                    NAME,
                    Status::Fail,
                    EVERY_RUN,
                    format!("the kernel's seccomp filter lacks the {} action(s)", missing.join(", ")),
                    "use a kernel built with CONFIG_SECCOMP_FILTER",
                )
            }
        }
        Probed::Found(None) => not_ok(
            NAME,
            Status::Warn,
            EVERY_RUN,
            format!("seccomp present, filter actions unknown (no /proc/sys/kernel/seccomp/actions_avail){nested}"),
            "use a kernel ≥ 4.14 built with CONFIG_SECCOMP_FILTER",
        ),
        Probed::Failed { error } => {
            not_ok(NAME, Status::Warn, EVERY_RUN, error.clone(), "check that /proc/sys is mounted")
        }
    }
}

fn seccomp_notify(f: &Facts) -> Check {
    const NAME: &str = "seccomp-notify";
    const NEEDED: &str = "audit mode";
    match actions(f) {
        Some(list) if list.iter().any(|a| a == "user_notif") => ok(NAME, NEEDED, "user_notif available"),
        Some(_) => not_ok(
            NAME,
            Status::Warn,
            NEEDED,
            "the kernel has no seccomp user notification (user_notif)",
            "use a kernel ≥ 5.0 for audit mode's kernel-sourced security events",
        ),
        None => not_ok(
            NAME,
            Status::Warn,
            NEEDED,
            "unknown: the kernel does not list its seccomp actions",
            "use a kernel ≥ 5.0 for audit mode's kernel-sourced security events",
        ),
    }
}

/// What each Landlock ABI adds (Documentation/userspace-api/landlock.rst).
pub fn landlock_features(abi: u32) -> Vec<&'static str> {
    const BY_ABI: [&str; 7] = [
        "filesystem rules (execute, read, write)",
        "refer",
        "truncate",
        "TCP bind/connect",
        "device ioctl",
        "IPC scoping",
        "audit logging",
    ];
    BY_ABI.iter().take(abi as usize).copied().collect()
}

fn landlock(f: &Facts) -> Check {
    const NAME: &str = "landlock";
    const NEEDED: &str = "allowedCommands";
    let lsm_note = match &f.landlock.lsm {
        Some(list) => format!("active LSMs: {}", list.join(",")),
        None => "LSM list not read (securityfs is not mounted)".to_owned(),
    };
    match &f.landlock.support {
        LandlockSupport::Available { abi } if *abi < crate::sandbox::spawn_guard::LANDLOCK_MIN_ABI => not_ok(
            NAME,
            Status::Warn,
            NEEDED,
            format!(
                "ABI {abi}: {}; allowedCommands needs ABI {} (refer, so that renames across directories work); {lsm_note}",
                landlock_features(*abi).join(", "),
                crate::sandbox::spawn_guard::LANDLOCK_MIN_ABI
            ),
            "use a kernel ≥ 5.19",
        ),
        LandlockSupport::Available { abi } => {
            ok(NAME, NEEDED, format!("ABI {abi}: {}; {lsm_note}", landlock_features(*abi).join(", ")))
        }
        LandlockSupport::Disabled => not_ok(
            NAME,
            Status::Warn,
            NEEDED,
            format!("built into the kernel but not enabled; {lsm_note}"),
            match &f.landlock.lsm {
                Some(list) => format!(
                    "add landlock to the lsm= kernel parameter (e.g. lsm=landlock,{}) and reboot",
                    list.join(",")
                ),
                None => "add landlock to the lsm= kernel parameter and reboot".to_owned(),
            },
        ),
        LandlockSupport::Unsupported => not_ok(
            NAME,
            Status::Warn,
            NEEDED,
            "the kernel has no Landlock",
            "use a kernel ≥ 5.13 built with CONFIG_SECURITY_LANDLOCK",
        ),
        LandlockSupport::Failed { error } => {
            not_ok(NAME, Status::Warn, NEEDED, error.clone(), "use a kernel ≥ 5.13 built with CONFIG_SECURITY_LANDLOCK")
        }
    }
}

/// `security.filesystem.readOnly: false` puts a writable overlay over the read-only root.
const WRITABLE_ROOT: &str = "writable-root policies";
/// Each run has a host uid of its own (200000..265535) without a user namespace today
/// (docs/security-model.md, "Limits, plainly"); the check says whether the host could give
/// them one.
const USER_NAMESPACES: &str = "rootless mode (as root: not used)";

fn user_namespaces(f: &Facts) -> Check {
    const NAME: &str = "user-namespaces";
    // Rootless, every sandbox is in a user namespace: without them no run starts.
    let rootless = f.rootless.is_some();
    let (status, needed_for) = if rootless { (Status::Fail, EVERY_RUN) } else { (Status::Warn, USER_NAMESPACES) };
    let clone_off = matches!(f.user_namespaces.unprivileged_userns_clone.found(), Some(Some(0)));
    match &f.user_namespaces.max_user_namespaces {
        Probed::Failed { error } => not_ok(NAME, status, needed_for, error.clone(), "check that /proc/sys is mounted"),
        Probed::Found(None) => not_ok(
            NAME,
            status,
            needed_for,
            "the kernel has no user namespaces (no user.max_user_namespaces)",
            "use a kernel built with CONFIG_USER_NS",
        ),
        Probed::Found(Some(0)) => not_ok(
            NAME,
            status,
            needed_for,
            "disabled (user.max_user_namespaces = 0)",
            "sysctl -w user.max_user_namespaces=15000, and persist it in /etc/sysctl.d/",
        ),
        Probed::Found(Some(n)) if clone_off && rootless => not_ok(
            NAME,
            Status::Fail,
            EVERY_RUN,
            format!(
                "enabled (user.max_user_namespaces = {n}), but not for normal users (kernel.unprivileged_userns_clone=0)"
            ),
            "sysctl -w kernel.unprivileged_userns_clone=1, and persist it in /etc/sysctl.d/",
        ),
        Probed::Found(Some(n)) => {
            let note = if clone_off {
                "; unprivileged creation off (kernel.unprivileged_userns_clone=0): root only"
            } else {
                ""
            };
            ok(NAME, needed_for, format!("enabled (user.max_user_namespaces = {n}){note}"))
        }
    }
}

fn overlayfs(f: &Facts) -> Check {
    const NAME: &str = "overlayfs";
    match &f.overlayfs {
        Probed::Found(true) => ok(NAME, WRITABLE_ROOT, "overlay in /proc/filesystems"),
        Probed::Found(false) => not_ok(
            NAME,
            Status::Warn,
            WRITABLE_ROOT,
            "overlay is not in /proc/filesystems",
            "load it: modprobe overlay (a kernel built with CONFIG_OVERLAY_FS)",
        ),
        Probed::Failed { error } => {
            not_ok(NAME, Status::Warn, WRITABLE_ROOT, error.clone(), "check that /proc is mounted")
        }
    }
}

fn tool<'a>(f: &'a Facts, name: &str) -> Option<&'a Tool> {
    f.tools.iter().find(|t| t.name == name && t.path.is_some())
}

fn describe_tool(t: &Tool) -> String {
    let path = t.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
    match &t.version {
        Some(v) => format!("{v} at {path}"),
        None => format!("{} at {path}", t.name),
    }
}

fn user_network(f: &Facts) -> Check {
    const NAME: &str = "user-network";
    const NEEDED: &str = "npm dependencies, network policies";
    let pasta = tool(f, "pasta").map(describe_tool);
    match tool(f, "slirp4netns") {
        Some(slirp) => ok(
            NAME,
            NEEDED,
            match pasta {
                Some(p) => format!("{}; {p}", describe_tool(slirp)),
                None => format!("{}; pasta not on PATH", describe_tool(slirp)),
            },
        ),
        None => not_ok(
            NAME,
            Status::Warn,
            NEEDED,
            match pasta {
                Some(p) => format!("slirp4netns not on PATH ({p} is, but ignite's user-mode network is slirp4netns)"),
                None => "neither slirp4netns nor pasta is on PATH".to_owned(),
            },
            "apt-get install slirp4netns",
        ),
    }
}

fn iproute2(f: &Facts) -> Check {
    const NAME: &str = "iproute2";
    const NEEDED: &str = "npm dependencies, network policies";
    match tool(f, "ip") {
        Some(ip) => ok(NAME, NEEDED, describe_tool(ip)),
        None => not_ok(NAME, Status::Warn, NEEDED, "ip is not on PATH", "apt-get install iproute2"),
    }
}

/// "31.2 GB" (decimal, as ignite's other byte counts).
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000_000 => format!("{:.1} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b => format!("{:.1} kB", b as f64 / 1e3),
    }
}

fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

fn disk(d: &Disk) -> Check {
    let (name, needed_for, flag, limits) = match d.role {
        "cache" => (
            "cache-space",
            "bundles, dependencies",
            "--cache-dir / IGNITE_CACHE_DIR",
            (CACHE_FAIL_BYTES, CACHE_WARN_BYTES, CACHE_FAIL_INODES, CACHE_WARN_INODES),
        ),
        _ => (
            "state-space",
            EVERY_RUN,
            "--state-dir / IGNITE_STATE_DIR",
            (STATE_FAIL_BYTES, STATE_WARN_BYTES, STATE_FAIL_INODES, STATE_WARN_INODES),
        ),
    };
    let (fail_bytes, warn_bytes, fail_inodes, warn_inodes) = limits;
    let dir = d.dir.display();
    let whereabouts = if d.exists {
        dir.to_string()
    } else {
        format!("{dir} (not created yet; measured at {})", d.measured.display())
    };
    let u = match &d.usage {
        Probed::Found(u) => u,
        Probed::Failed { error } => {
            return not_ok(name, Status::Warn, needed_for, format!("{whereabouts}: {error}"), format!("check {dir}"));
        }
    };
    // Filesystems without inode accounting (btrfs, some FUSE) report 0 inodes in total.
    let inodes_counted = u.total_inodes > 0;
    let value = format!(
        "{whereabouts}: {} free of {}, {} inodes free",
        human_bytes(u.free_bytes),
        human_bytes(u.total_bytes),
        if inodes_counted { human_count(u.free_inodes) } else { "uncounted".to_owned() }
    );
    let move_it = format!("free space there, or point {flag} at a filesystem with room");
    if u.read_only {
        return not_ok(
            name,
            Status::Fail,
            needed_for,
            format!("{value}; the filesystem is read-only"),
            format!("point {flag} at a writable filesystem"),
        );
    }
    let low_inodes = |limit| inodes_counted && u.free_inodes < limit;
    if u.free_bytes < fail_bytes || low_inodes(fail_inodes) {
        return not_ok(
            name,
            Status::Fail,
            needed_for,
            format!("{value} (needs at least {} and {fail_inodes} inodes)", human_bytes(fail_bytes)),
            move_it,
        );
    }
    if u.free_bytes < warn_bytes || low_inodes(warn_inodes) {
        return not_ok(
            name,
            Status::Warn,
            needed_for,
            format!("{value} (below {} or {warn_inodes} inodes)", human_bytes(warn_bytes)),
            move_it,
        );
    }
    ok(name, needed_for, value)
}

fn bundles(f: &Facts) -> Check {
    const NAME: &str = "bundles";
    const NEEDED: &str = "a first run without a download";
    let list = match &f.bundles {
        Probed::Found(list) => list,
        Probed::Failed { error } => return not_ok(NAME, Status::Warn, NEEDED, error.clone(), "report this as a bug"),
    };
    let present: Vec<String> = list
        .iter()
        .filter(|b| !b.present_versions.is_empty())
        .map(|b| format!("{} {}", b.runtime, b.present_versions.join("/")))
        .collect();
    let absent: Vec<&str> = list.iter().filter(|b| b.present_versions.is_empty()).map(|b| b.runtime.as_str()).collect();
    let mut value = format!("present: {}", if present.is_empty() { "none".to_owned() } else { present.join(", ") });
    if !absent.is_empty() {
        value.push_str(&format!("; not pulled: {}", absent.join(", ")));
    }
    let default = crate::data::service::DEFAULT_RUNTIME;
    match list.iter().find(|b| b.runtime == default) {
        Some(b) if b.default_present => ok(NAME, NEEDED, value),
        Some(b) => not_ok(
            NAME,
            Status::Warn,
            NEEDED,
            format!("{value} ({default} {} not pulled: the first run downloads it)", b.default_version),
            format!("ignite runtime pull {default} (downloads from registry.npmjs.org)"),
        ),
        None => ok(NAME, NEEDED, value),
    }
}
