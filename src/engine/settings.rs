//! Host-level settings of an engine — where state and caches live, which OCI runtime and
//! entrypoint binary, custom runtimes directories, the install's CA file — and how they are
//! found from what an operator chose (flags, environment, defaults).

use std::path::PathBuf;

use crate::host::doctor::select::{self, SelectError};
use crate::sandbox::cgroup::{CgroupDriver, DriverChoice, DriverError, DriverFacts};
use crate::sandbox::oci::OciKind;
use crate::sandbox::userns::{Mapper, Rootless, RootlessError};
use crate::store::stage::Stripper;

/// Environment variable naming custom runtimes directories when none is given explicitly.
pub const RUNTIMES_DIR_ENV: &str = "IGNITE_RUNTIMES_DIR";

/// The host's CA bundle on Debian/Ubuntu (the default CA file of the dependency install).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Host-level settings, resolved once by the edge (CLI flags, environment, defaults).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Runtime state: per-run bundle dirs, the OCI runtime's `--root`. Cleared on reboot.
    pub state_dir: PathBuf,
    /// Downloaded packages, built bundles, unpacked root filesystems.
    pub cache_dir: PathBuf,
    pub oci_kind: OciKind,
    pub oci_binary: PathBuf,
    /// Who creates the sandboxes' cgroups: systemd (transient scopes) or the OCI runtime.
    pub cgroup_driver: CgroupDriver,
    /// This `ignite` binary, which the OCI runtime runs as a hook where it needs one.
    pub hook_binary: PathBuf,
    /// The static `ignite-init` binary bind-mounted into every sandbox.
    pub init_binary: PathBuf,
    /// Directories of custom runtimes, loaded beside the built-in ones.
    pub runtimes_dirs: Vec<PathBuf>,
    /// CA certificates the dependency install trusts besides the installer's own (e.g. those
    /// of a TLS-inspecting proxy); only its PEM certificate blocks are passed in.
    pub ca_file: Option<PathBuf>,
    /// Where TypeScript is stripped for runtimes that run JavaScript only.
    pub stripper: Stripper,
    /// Rootless mode (ignite is not root): the user, its subordinate ids and its systemd
    /// manager's runtime directory. `None` as root.
    pub rootless: Option<RootlessHost>,
}

/// What rootless mode runs with, found once by [`Settings::detect`].
#[derive(Debug, Clone)]
pub struct RootlessHost {
    pub ids: Rootless,
    /// The user's runtime directory (`$XDG_RUNTIME_DIR`, else `/run/user/<uid>`): the OCI
    /// runtime finds the user's systemd manager through its `bus` socket.
    pub runtime_dir: PathBuf,
    /// The sandbox's maps and the tools that write them, for the user namespaces ignite makes
    /// itself (a network's owner, handing an install's scratch to its uid and back).
    pub mapper: Mapper,
}

impl Settings {
    /// How many run uids this host has: the whole range as root, the user's subordinate range
    /// (at most as many) rootless.
    pub fn run_uid_count(&self) -> u32 {
        self.rootless.as_ref().map_or(crate::sandbox::identity::UID_COUNT, |r| r.ids.run_ids())
    }
}

pub use crate::sandbox::userns::{default_oci_runtime, is_rootless, user_runtime_dir};

/// The state directory when none is named: `/run/ignite` as root; rootless, `ignite` in the
/// user's runtime directory (a tmpfs of the user's, emptied at logout or reboot like /run).
pub fn default_state_dir() -> PathBuf {
    if is_rootless() { user_runtime_dir().join("ignite") } else { PathBuf::from("/run/ignite") }
}

/// The bundle cache when none is named: `/var/lib/ignite` as root; rootless,
/// `$XDG_DATA_HOME/ignite` (`~/.local/share/ignite`).
pub fn default_cache_dir() -> PathBuf {
    if !is_rootless() {
        return PathBuf::from("/var/lib/ignite");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| user_runtime_dir().join("data"))
        .join("ignite")
}

/// What the operator chose; [`Settings::detect`] turns it into [`Settings`].
#[derive(Debug, Clone, Default)]
pub struct HostChoice {
    pub state_dir: PathBuf,
    pub cache_dir: PathBuf,
    /// `runc`, `crun`, `youki` (looked up in PATH) or a path to one of them.
    pub oci_runtime: String,
    /// `auto` (systemd on pure cgroup v2 hosts booted with systemd, cgroupfs elsewhere),
    /// `systemd` or `cgroupfs`.
    pub cgroup_driver: DriverChoice,
    /// Custom runtimes directories named explicitly; empty: see [`runtimes_dirs`].
    pub runtimes_dirs: Vec<PathBuf>,
    /// The install's CA file named explicitly (an empty path counts as not named).
    pub install_ca_file: Option<PathBuf>,
    /// The `ignite` binary, which the OCI runtime runs as a hook and which strips TypeScript
    /// in a child process; `ignite-init` is looked for beside it. `None`: this process is
    /// `ignite`. A program that embeds the engine names the installed binary here.
    pub ignite_binary: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Oci(#[from] SelectError),
    #[error(transparent)]
    Cgroup(#[from] DriverError),
    #[error("CA certificate file {path} (--install-ca-file / NODE_EXTRA_CA_CERTS) {problem}")]
    CaFile { path: PathBuf, problem: String },
    #[error("{0}")]
    Init(String),
    #[error("the ignite binary {0} does not exist")]
    Binary(PathBuf),
    #[error("failed to locate the ignite binary: {0}")]
    Exe(std::io::Error),
    #[error(transparent)]
    Rootless(#[from] RootlessError),
}

impl Settings {
    /// Resolves `choice` on this host: the OCI runtime by its `--version` (refused here when
    /// this host is known to break it), the entrypoint beside this binary, the CA file.
    pub fn detect(choice: &HostChoice) -> Result<Settings, SettingsError> {
        let path_env = std::env::var_os("PATH");
        let selected =
            select::select(&choice.oci_runtime, path_env.as_deref(), &choice.state_dir, std::path::Path::new("/"))?;
        let ca_file = match &choice.install_ca_file {
            Some(p) if !p.as_os_str().is_empty() => {
                // Named explicitly: a missing or empty file is an error now, not an install
                // that fails later for lack of the certificate.
                crate::engine::install::check_certificates(p)
                    .map_err(|problem| SettingsError::CaFile { path: p.clone(), problem })?;
                Some(p.clone())
            }
            _ => Some(PathBuf::from(SYSTEM_CA_FILE)).filter(|p| p.is_file()),
        };
        let (hook_binary, strip_exe) = match &choice.ignite_binary {
            Some(p) if p.is_file() => (p.clone(), p.clone()),
            Some(p) => return Err(SettingsError::Binary(p.clone())),
            // The running binary for the OCI runtime's hooks (`/proc/self/exe` would name the
            // runtime itself when the runtime runs it); for the stripper, the running binary
            // itself, whatever happens to its file meanwhile.
            None => (std::env::current_exe().map_err(SettingsError::Exe)?, PathBuf::from("/proc/self/exe")),
        };
        let init_binary = find_init_beside(&hook_binary).map_err(SettingsError::Init)?;
        let facts = DriverFacts::read(std::path::Path::new("/"));
        let root = std::path::Path::new("/");
        let (cgroup_driver, rootless) = if is_rootless() {
            // The entrypoint would refuse every run (it holds the user's groups): say why now.
            if !selected.kind.sets_groups_rootless() {
                return Err(RootlessError::KeepsGroups(selected.kind.as_str()).into());
            }
            let ids = Rootless::detect(root)?;
            let idmap_tools = crate::sandbox::userns::IdMapTools::from_env()?;
            let runtime_dir = user_runtime_dir();
            let bus = runtime_dir.join("bus");
            let driver = crate::sandbox::cgroup::rootless_driver(choice.cgroup_driver, &facts, root, ids.uid, &bus)?;
            let mapper = Mapper { maps: ids.maps(), tools: idmap_tools };
            (driver, Some(RootlessHost { ids, runtime_dir, mapper }))
        } else {
            (choice.cgroup_driver.resolve(&facts)?, None)
        };
        Ok(Settings {
            state_dir: choice.state_dir.clone(),
            cache_dir: choice.cache_dir.clone(),
            oci_kind: selected.kind,
            oci_binary: selected.path,
            cgroup_driver,
            hook_binary,
            init_binary,
            runtimes_dirs: runtimes_dirs(&choice.runtimes_dirs),
            ca_file,
            stripper: Stripper::Subprocess { exe: strip_exe },
            rootless,
        })
    }
}

/// The custom runtimes directories: the first of `explicit`, `$IGNITE_RUNTIMES_DIR`, the
/// per-user config directory that is given. One source replaces the next rather than adding
/// to it, so a command line or an environment states exactly which runtimes exist.
pub fn runtimes_dirs(explicit: &[PathBuf]) -> Vec<PathBuf> {
    if !explicit.is_empty() {
        return explicit.to_vec();
    }
    if let Some(value) = std::env::var_os(RUNTIMES_DIR_ENV) {
        return std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()).collect();
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")));
    // The per-user directory is optional; a directory named explicitly is not.
    config.map(|c| c.join("ignite").join("runtimes")).filter(|d| d.symlink_metadata().is_ok()).into_iter().collect()
}

/// The entrypoint ships beside the running `ignite` binary; `IGNITE_INIT` overrides.
pub fn find_init() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("failed to locate the ignite binary: {e}"))?;
    find_init_beside(&exe)
}

/// `ignite-init` beside the `ignite` binary `exe`; `IGNITE_INIT` overrides.
fn find_init_beside(exe: &std::path::Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("IGNITE_INIT") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!("IGNITE_INIT={} does not exist", p.display()));
        }
        return Ok(p);
    }
    let p = exe.with_file_name("ignite-init");
    if !p.is_file() {
        return Err(format!(
            "the sandbox entrypoint {} is missing; install it beside ignite (cargo build --release builds both binaries) or set IGNITE_INIT",
            p.display()
        ));
    }
    Ok(p)
}
