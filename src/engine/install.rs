//! The install step: `bun install` in a sandbox of its own, then a copy of the result into the
//! cache. The sandbox has a run's hardening — a uid of its own, no capabilities, no_new_privs, the
//! seccomp allowlist, read-only rootfs, memory/CPU/pids limits, a time limit, capped output —
//! and differs in three ways only (see `spec::install`): a scratch tmpfs at `/tmp` that only
//! ignite can reach from the host (size-capped, and charged to the install's memory limit),
//! a generated resolv.conf, and a user-mode network in a namespace of its own (see
//! [`crate::sandbox::netns`]).
//!
//! Rootless (see [`crate::sandbox::userns`]) ignite cannot mount the scratch tmpfs: the scratch
//! is a directory of the state directory, which must then be on a tmpfs itself (the default,
//! `$XDG_RUNTIME_DIR/ignite`, is), so that what the install writes is memory charged to its
//! memory limit as root's scratch is. ignite hands the scratch to the install's uid and takes
//! everything in it back before reading it, each time with `chown` run inside a user namespace
//! with the sandbox's maps (as the user it cannot chown to or from its subordinate ids), and
//! the network belongs to a user namespace of the same maps, which the install joins.
//! The service directory itself is not mounted: the install sees copies of package.json and
//! the lockfile, and nothing is ever written into the service directory.
//!
//! Everything it sets up — the scratch mount and its directory under
//! `<state>/installs/<id>/`, the network namespace, slirp4netns, the container and its cgroup —
//! is torn down on every path. If ignite is killed, slirp4netns exits on its own (its exit fd
//! closes), the namespace dies with ignite's thread, and the next ignite (or `ignite cleanup`)
//! removes the container ([`Supervisor::reap_stale`]) and the scratch mount ([`reap_stale`]).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::Flock;
use nix::mount::{MntFlags, MsFlags};
use oci_spec::runtime::LinuxSeccomp;
use tokio_util::sync::CancellationToken;

use crate::data::report::{InstallReport, Status};
use crate::engine::supervisor::{RunPlan, StateDir, Supervisor, SupervisorError, new_run_id};
use crate::fsutil::owned::{self, Leftover};
use crate::fsutil::unix_now;
use crate::fsutil::{At, IoError};
use crate::sandbox::cgroup::CgroupDriver;
use crate::sandbox::identity::{self, IdentityError};
use crate::sandbox::netns::{NetError, Tools, UserNet};
use crate::sandbox::oci::OciRuntime;
use crate::sandbox::spawn_guard::SpawnRule;
use crate::sandbox::spec::{self, INSTALL_SCRATCH_DIR, InstallSandbox, Limits, SpecError, SpecInput};
use crate::sandbox::userns::{Mapper, chown_tree};
use crate::store::bundle::{BundleError, BundleStore, Progress};
use crate::store::deps::cache::{CacheError, DepsCache, InstallRecord, LockMode};
use crate::store::deps::tree::{TreeError, TreeLimits, copy_tree, real_dir};
use crate::store::deps::{Lease, Plan, REGISTRY};

/// Memory for the install, including what it writes: the scratch directory is a tmpfs whose
/// pages are charged to the install's cgroup (node_modules, Bun's download cache, Bun itself).
pub const INSTALL_MEMORY_MB: u32 = 1024;
/// Size cap of the scratch tmpfs (the memory limit above binds first in practice).
pub const INSTALL_SCRATCH_MB: u64 = 1024;
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
pub const INSTALL_CPUS: f64 = 2.0;
/// Threads of Bun's install (network, extraction) and of lifecycle scripts.
const INSTALL_PIDS: i64 = 256;
/// Output kept from the install (its tail appears in errors).
const INSTALL_OUTPUT_LIMIT: usize = 1024 * 1024;
const GRACE: Duration = Duration::from_millis(500);
const BACKSTOP_SLACK: Duration = Duration::from_secs(2);
/// Lines of the install's output quoted in an error.
const TAIL_LINES: usize = 15;
/// How often a process waiting for another one's install (or a lease) looks again.
const LOCK_POLL: Duration = Duration::from_millis(50);
/// Largest CA bundle passed into the install.
const MAX_CA_BYTES: u64 = 8 * 1024 * 1024;

/// Inside the sandbox, `/tmp` is the scratch dir: the project in `app/`, Bun's cache in `cache/`.
const CA_FILE: &str = "ca-certificates.pem";
const SCRATCH: &str = "scratch";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("rootless install: {0}")]
    Holder(#[from] crate::sandbox::userns::HolderError),
    #[error(
        "rootless install: the state directory {path} is not on a tmpfs, so the install's scratch (which ignite cannot \
         mount as a normal user) would have no size cap; use a state directory on a tmpfs (the default, \
         $XDG_RUNTIME_DIR/ignite, is one)"
    )]
    RootlessScratch { path: PathBuf },
    #[error(transparent)]
    Nofile(#[from] crate::sandbox::nofile::NofileError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{service}: the dependency install produced a tree ignite does not accept: {source}")]
    Tree { service: String, source: TreeError },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(
        "{service}: package.json does not match {lockfile}, and the install uses the lockfile as it is (frozen); update {lockfile} with your package manager (e.g. `bun install`) and try again. The installer said:\n{output}"
    )]
    LockfileMismatch { service: String, lockfile: String, output: String },
    #[error(
        "{service}: installing dependencies with {installer} failed: {reason}. The last lines it printed:\n{output}"
    )]
    Failed { service: String, installer: String, reason: String, output: String },
    #[error("CA certificate file {path} (--install-ca-file / NODE_EXTRA_CA_CERTS): {problem}")]
    CaFile { path: PathBuf, problem: String },
    #[error("{service}: the dependency install was interrupted; nothing was kept")]
    Interrupted { service: String },
    #[error("the install's network namespace changed before the sandbox started; refusing to run it")]
    NetnsChanged,
    #[error("dependency tree sha256-{key} disappeared right after it was installed; try again")]
    Vanished { key: String },
}

/// A tree ready for a run: the lease keeps it from being pruned while the run uses it.
#[derive(Debug)]
pub struct InstallOutcome {
    pub lease: Lease,
    pub report: InstallReport,
}

/// What the install step needs from the engine.
pub struct Installer<'a, R: OciRuntime> {
    pub supervisor: &'a Supervisor<R>,
    pub state: &'a StateDir,
    pub store: &'a BundleStore,
    pub cache: &'a DepsCache,
    pub seccomp: &'a LinuxSeccomp,
    pub init_binary: &'a Path,
    /// Where the install sandbox's cgroup is created, as for runs.
    pub cgroup_driver: CgroupDriver,
    /// CA certificates the install trusts in addition to Bun's own (e.g. a TLS-inspecting
    /// proxy's); only the PEM certificate blocks of this file are passed in.
    pub ca_file: Option<&'a Path>,
    /// Rootless: the sandbox's maps, for the install's user namespaces (see the module doc).
    pub rootless: Option<&'a Mapper>,
}

impl<R: OciRuntime> Installer<'_, R> {
    /// The installed tree of `plan`, installing it first if the cache does not have it.
    /// Several processes asking for the same key at once: one installs, the others wait and
    /// then use its tree.
    pub async fn ensure(
        &self,
        plan: &Plan,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<InstallOutcome, InstallError> {
        let started = Instant::now();
        let mut installed: Option<InstallRecord> = None;
        // A tree can vanish between the install and the lease only if pruned by another
        // process in that instant; retry a few times rather than loop forever.
        for _ in 0..3 {
            let lock = self.wait_lock(plan, LockMode::Shared, progress, cancel).await?;
            match self.cache.lease(lock, &plan.key) {
                Ok(lease) => {
                    let record = installed.as_ref().unwrap_or(&lease.record);
                    let report = InstallReport {
                        cached: installed.is_none(),
                        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                        packages: record.packages,
                        installer: record.installer.clone(),
                        lockfile: plan.lockfile.as_ref().map(|l| l.name.to_string()),
                        key: plan.key.clone(),
                    };
                    return Ok(InstallOutcome { lease, report });
                }
                Err(lock) => drop(lock),
            }
            let lock = self.wait_lock(plan, LockMode::Exclusive, progress, cancel).await?;
            if self.cache.record(&plan.key).is_none() {
                self.cache.remove_stale_temps(&plan.key);
                installed = Some(self.install(plan, progress, cancel).await?);
            }
            drop(lock);
            self.cache.prune(&plan.key);
        }
        Err(InstallError::Vanished { key: plan.key.clone() })
    }

    /// Takes the key's lock, waiting (interruptibly) while another process holds it.
    async fn wait_lock(
        &self,
        plan: &Plan,
        mode: LockMode,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<Flock<File>, InstallError> {
        let mut told = false;
        loop {
            if let Some(lock) = self.cache.try_lock(&plan.key, mode)? {
                return Ok(lock);
            }
            if !told {
                progress.phase(&format!(
                    "{}: waiting for another ignite process installing the same dependencies",
                    plan.service
                ));
                told = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(LOCK_POLL) => {}
                _ = cancel.cancelled() => return Err(InstallError::Interrupted { service: plan.service.clone() }),
            }
        }
    }

    /// One install, under the key's exclusive lock: sandbox → copy into the cache.
    async fn install(
        &self,
        plan: &Plan,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<InstallRecord, InstallError> {
        // A missing tool or an open-file limit no sandbox can start under fails before
        // anything is set up.
        let tools = Tools::find("the dependency install")?;
        let nofile = crate::sandbox::nofile::sandbox_limit_now()?;
        let rootfs = self.store.ensure(&plan.installer, progress)?;
        let started = Instant::now();
        let noun = if plan.direct == 1 { "dependency" } else { "dependencies" };
        let lock_note = plan.lockfile.as_ref().map(|l| format!(" from {}", l.name)).unwrap_or_default();
        progress.phase(&format!(
            "{}: installing {} {noun}{lock_note} with {} …",
            plan.service, plan.direct, plan.installer
        ));

        reap_stale(self.state, self.rootless);
        let id = new_run_id();
        // A uid of its own like a run's (lifecycle scripts are the packages' code); declared
        // before the workspace, so it is released only after the scratch it owns is gone.
        // The tree copied into the cache belongs to ignite, never to this uid.
        let identity = identity::allocate(&self.state.root, identity::UID_COUNT)?;
        let mut ws = Workspace::create(&self.state.root.join("installs"), &id)?;
        let has_ca = match self.rootless {
            None => {
                ws.mount_scratch(plan.scripts, identity.uid(), identity.gid())?;
                ws.populate(plan, self.ca_file, Some((identity.uid(), identity.gid())))?
            }
            Some(mapper) => {
                ws.check_scratch_is_tmpfs(&self.state.root)?;
                let has_ca = ws.populate(plan, self.ca_file, None)?;
                ws.hand_over(identity.uid(), identity.gid(), mapper)?;
                has_ca
            }
        };
        let net = UserNet::start(&tools, &ws.dir, self.rootless).await?;

        let mut extra_env = BTreeMap::new();
        if has_ca {
            extra_env.insert("NODE_EXTRA_CA_CERTS".to_string(), format!("{INSTALL_SCRATCH_DIR}/{CA_FILE}"));
        }
        let mut limits = Limits::new(INSTALL_MEMORY_MB, INSTALL_CPUS);
        limits.pids = INSTALL_PIDS;
        limits.nofile = nofile;
        let input = SpecInput {
            rootfs: rootfs.path,
            app_dir: ws.scratch().join("app"),
            node_modules: None,
            input_dir: None,
            out_dir: None,
            app_node_modules: None,
            workspace: None,
            writable_root: false,
            network: None,
            init_binary: self.init_binary.to_path_buf(),
            user: spec::RunUser {
                uid: identity.uid(),
                gid: identity.gid(),
                passwd: identity.passwd(),
                group: identity.group(),
            },
            argv: install_argv(plan),
            env: spec::compose_env(&plan.installer.env, &extra_env, "{}")?,
            limits: limits.clone(),
            hostname: plan.service.clone(),
            cgroups_path: self.cgroup_driver.cgroups_path(&id),
            // Rootless, the install joins the user namespace that owns its network, with these
            // same maps.
            userns: self.rootless.map(|m| m.maps.clone()),
            kill_after_ms: (INSTALL_TIMEOUT + GRACE + BACKSTOP_SLACK).as_millis() as u64,
            wait_job: false,
            // The installer is ignite's own step, not the program: lifecycle scripts, when
            // opted in, run shells and compilers.
            spawn: SpawnRule::Any,
            seccomp: self.seccomp.clone(),
        };
        let sandbox = InstallSandbox { scratch: ws.scratch(), exec: plan.scripts, network: net.attach() };
        let spec = spec::build_install(&input, &sandbox)?;
        spec::validate_install(&spec, &sandbox)?;
        if !net.still_ours() {
            return Err(InstallError::NetnsChanged);
        }
        if cancel.is_cancelled() {
            return Err(InstallError::Interrupted { service: plan.service.clone() });
        }
        let run = RunPlan {
            id,
            spec,
            timeout: INSTALL_TIMEOUT,
            grace: GRACE,
            output_limit: INSTALL_OUTPUT_LIMIT,
            memory_limit_mb: INSTALL_MEMORY_MB,
            pids_limit: limits.pids,
            service: plan.service.clone(),
            runtime: plan.installer.key(),
            // The install is ignite's own step, not the program's: it is not audited.
            audit: None,
            stdin: Default::default(),
            input_file: None,
            read_out: None,
        };
        let report = self.supervisor.run(run, None, cancel.clone()).await?;
        // The network is no longer needed: take it down before the (possibly long) copy.
        drop(net);
        if cancel.is_cancelled() {
            return Err(InstallError::Interrupted { service: plan.service.clone() });
        }
        if report.status != Status::Ok {
            let output = tail(&report.stdout, &report.stderr);
            if let Some(lock) = &plan.lockfile
                && output.contains("lockfile is frozen")
            {
                return Err(InstallError::LockfileMismatch {
                    service: plan.service.clone(),
                    lockfile: lock.name.to_string(),
                    output,
                });
            }
            let reason = report.message.clone().unwrap_or_else(|| match (report.exit_code, &report.signal) {
                (Some(code), _) => format!("exit code {code}"),
                (None, Some(sig)) => format!("killed by {sig}"),
                _ => report.status.as_str().to_string(),
            });
            return Err(InstallError::Failed {
                service: plan.service.clone(),
                installer: plan.installer.key(),
                reason,
                output,
            });
        }

        // Rootless: everything the install wrote becomes the user's again before ignite reads it.
        ws.take_back()?;
        let staging = self.cache.stage(&plan.key)?;
        // The sandbox owned app/ and could have replaced it (or node_modules) with a symlink
        // to anywhere on the host: look at each level without following links. (The scratch
        // dir itself is the mount point, which the sandbox could not replace.)
        let tree_err = |source| InstallError::Tree { service: plan.service.clone(), source };
        let app = ws.scratch().join("app");
        let produced = app.join("node_modules");
        let limits = TreeLimits { max_bytes: INSTALL_SCRATCH_MB * 1024 * 1024, ..TreeLimits::default() };
        let stats = if real_dir(&app).map_err(tree_err)? && real_dir(&produced).map_err(tree_err)? {
            copy_tree(&produced, &staging.modules(), &limits).map_err(tree_err)?
        } else {
            // Everything optional and skipped for this platform: an empty tree.
            let m = staging.modules();
            fs::DirBuilder::new().mode(0o755).create(&m).at("create", &m)?;
            Default::default()
        };
        drop(ws);
        let record = InstallRecord {
            key: plan.key.clone(),
            installer: plan.installer.key(),
            service: plan.service.clone(),
            lockfile: plan.lockfile.as_ref().map(|l| l.name.to_string()),
            scripts: plan.scripts,
            packages: stats.packages,
            files: stats.files,
            bytes: stats.bytes,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            created_unix: unix_now(),
        };
        self.cache.commit(staging, &record)?;
        progress.done(&format!(
            "{}: {} package{} installed with {} in {:.1} s",
            plan.service,
            stats.packages,
            if stats.packages == 1 { "" } else { "s" },
            plan.installer,
            started.elapsed().as_secs_f64()
        ));
        Ok(record)
    }
}

/// `bun install` with: production dependencies only, the lockfile frozen when there is one,
/// no lifecycle scripts unless opted in, the npm registry, a flat (hoisted) node_modules, and
/// Bun's cache inside the scratch dir (so it hardlinks instead of copying).
pub fn install_argv(plan: &Plan) -> Vec<String> {
    let bun = plan.installer.command.first().cloned().unwrap_or_else(|| "/usr/local/bin/bun".to_string());
    let mut argv = vec![
        bun,
        "install".into(),
        "--production".into(),
        "--linker=hoisted".into(),
        "--no-progress".into(),
        format!("--registry={REGISTRY}"),
        format!("--cache-dir={INSTALL_SCRATCH_DIR}/cache"),
    ];
    if plan.lockfile.is_some() {
        argv.push("--frozen-lockfile".into());
    }
    if !plan.scripts {
        argv.push("--ignore-scripts".into());
    }
    argv
}

/// The last lines of the install's output (stderr first: that is where Bun puts errors).
fn tail(stdout: &str, stderr: &str) -> String {
    let pick = |text: &str| -> Vec<String> {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].iter().map(|l| format!("  {l}")).collect()
    };
    let mut out = pick(stderr);
    if out.is_empty() {
        out = pick(stdout);
    }
    if out.is_empty() {
        return "  (nothing)".to_string();
    }
    out.join("\n")
}

/// `<state>/installs/<id>/`: the scratch mount point, resolv.conf, slirp4netns's log, and a
/// lock held while the install lives. Unmounted and removed on drop.
struct Workspace {
    dir: PathBuf,
    _lock: Flock<File>,
    mounted: bool,
    /// Rootless: the scratch belongs to the install's uid until taken back with this.
    handed: Option<Mapper>,
}

impl Workspace {
    /// Created under a hidden name with its lock taken, then renamed into place: a concurrent
    /// [`reap_stale`] never sees an unlocked live workspace.
    fn create(installs: &Path, id: &str) -> Result<Workspace, InstallError> {
        let (dir, lock) = owned::create(installs, id, 0o700, |tmp| {
            let scratch = tmp.join(SCRATCH);
            fs::DirBuilder::new().mode(0o700).create(&scratch).at("create", &scratch)
        })?;
        Ok(Workspace { dir, _lock: lock, mounted: false, handed: None })
    }

    fn scratch(&self) -> PathBuf {
        self.dir.join(SCRATCH)
    }

    /// A tmpfs owned by the sandbox user, reachable only through this root-only directory.
    fn mount_scratch(&mut self, exec: bool, uid: u32, gid: u32) -> Result<(), InstallError> {
        let path = self.scratch();
        let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        if !exec {
            flags |= MsFlags::MS_NOEXEC;
        }
        let data = format!("size={INSTALL_SCRATCH_MB}m,mode=0700,uid={uid},gid={gid}");
        nix::mount::mount(Some("tmpfs"), &path, Some("tmpfs"), flags, Some(data.as_str()))
            .at("mount the install's scratch directory", &path)?;
        self.mounted = true;
        Ok(())
    }

    /// Rootless: the scratch directory (not mounted) must be on a tmpfs, where what the install
    /// writes is memory charged to its limit (see the module doc).
    fn check_scratch_is_tmpfs(&self, state_dir: &Path) -> Result<(), InstallError> {
        let scratch = self.scratch();
        let fs = nix::sys::statfs::statfs(&scratch).at("statfs", &scratch)?;
        if fs.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC {
            return Err(InstallError::RootlessScratch { path: state_dir.to_path_buf() });
        }
        Ok(())
    }

    /// Rootless: gives the scratch directory and `app/` (not the files ignite wrote, which stay
    /// read-only to the install as root's do) to the install's uid.
    fn hand_over(&mut self, uid: u32, gid: u32, mapper: &Mapper) -> Result<(), InstallError> {
        let (scratch, app) = (self.scratch(), self.scratch().join("app"));
        self.handed = Some(mapper.clone());
        chown_tree(&[&scratch, &app], uid, gid, false, mapper)?;
        Ok(())
    }

    /// Rootless: makes everything in the scratch directory the user's again (a no-op as root).
    fn take_back(&mut self) -> Result<(), InstallError> {
        if let Some(mapper) = &self.handed {
            chown_tree(&[&self.scratch()], 0, 0, true, mapper)?;
            self.handed = None;
        }
        Ok(())
    }

    /// Copies package.json, the lockfile and the CA certificates into the scratch dir, `app/`
    /// owned by `owner` when given (as root; rootless see [`Workspace::hand_over`]).
    /// Returns whether CA certificates were passed in.
    fn populate(&self, plan: &Plan, ca_file: Option<&Path>, owner: Option<(u32, u32)>) -> Result<bool, InstallError> {
        let app = self.scratch().join("app");
        fs::DirBuilder::new().mode(0o755).create(&app).at("create", &app)?;
        if let Some((uid, gid)) = owner {
            nix::unistd::chown(&app, Some(nix::unistd::Uid::from_raw(uid)), Some(nix::unistd::Gid::from_raw(gid)))
                .at("chown", &app)?;
        }
        let write = |name: &str, bytes: &[u8]| {
            let p = app.join(name);
            fs::write(&p, bytes).at("write", &p)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).at("set mode of", &p)
        };
        write(crate::store::deps::MANIFEST, &plan.manifest)?;
        if let Some(lock) = &plan.lockfile {
            write(lock.name, &lock.bytes)?;
        }
        let Some(ca_file) = ca_file else {
            return Ok(false);
        };
        let pem =
            certificates(ca_file).map_err(|problem| InstallError::CaFile { path: ca_file.to_path_buf(), problem })?;
        let p = self.scratch().join(CA_FILE);
        fs::write(&p, pem).at("write", &p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).at("set mode of", &p)?;
        Ok(true)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        // On an early return (a failed or interrupted install): the user cannot remove what
        // the install's uid owns.
        if let Err(e) = self.take_back() {
            tracing::warn!("failed to take {} back from the install's uid: {e}", self.scratch().display());
        }
        if self.mounted {
            let scratch = self.scratch();
            if let Err(e) = nix::mount::umount2(&scratch, MntFlags::MNT_DETACH) {
                tracing::warn!("failed to unmount {}: {e}", scratch.display());
            }
        }
        // Renamed away first (the lock is dropped after this): a scan by another install
        // never sees it unlocked.
        if let Err(e) = owned::remove(&self.dir) {
            tracing::warn!("failed to remove {}: {e}", self.dir.display());
        }
    }
}

/// Only the `CERTIFICATE` blocks of a PEM file: whatever else the file holds (a private key,
/// by mistake) never reaches the sandbox. A file that cannot be read or holds no certificate is
/// an error: a CA file someone named must not be dropped silently.
pub fn certificates(path: &Path) -> Result<String, String> {
    let text = read_pem(path)?;
    let mut out = String::with_capacity(text.len());
    for block in certificate_blocks(&text) {
        out.push_str(block);
        out.push('\n');
    }
    if out.is_empty() {
        return Err(NO_CERTIFICATE.into());
    }
    Ok(out)
}

/// The check of [`certificates`] without collecting the blocks: the file can be read and holds
/// at least one certificate. Every command checks a CA file named on its command line or in
/// the environment, so this stays cheap for a large system bundle.
pub fn check_certificates(path: &Path) -> Result<(), String> {
    use std::io::Read;
    // Read until the first complete certificate, not the whole bundle: a system bundle is a
    // few hundred KiB, its first certificate a couple of KiB into it. (What comes after it is
    // read, and must be UTF-8 text, when an install passes the certificates in.)
    const CHUNK: u64 = 16 * 1024;
    let mut file = File::open(path).map_err(|e| format!("cannot be read: {e}"))?.take(MAX_CA_BYTES);
    let mut bytes = Vec::new();
    loop {
        let n = (&mut file).take(CHUNK).read_to_end(&mut bytes).map_err(|e| format!("cannot be read: {e}"))?;
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            // A character cut by the chunk's end: the part before it is whole.
            Err(e) if e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
            Err(e) => return Err(format!("cannot be read: {e}")),
        };
        if certificate_blocks(text).next().is_some() {
            return Ok(());
        }
        if n == 0 {
            return Err(NO_CERTIFICATE.into());
        }
    }
}

const NO_CERTIFICATE: &str = "holds no PEM certificate (-----BEGIN CERTIFICATE-----)";

fn read_pem(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    // Sized up front: a system bundle is a few hundred KiB, read in one go.
    let len = file.metadata().map_or(0, |m| m.len()).min(MAX_CA_BYTES);
    let mut text = String::with_capacity(len as usize + 1);
    file.take(MAX_CA_BYTES).read_to_string(&mut text).map_err(|e| format!("cannot be read: {e}"))?;
    Ok(text)
}

/// The complete `BEGIN CERTIFICATE` … `END CERTIFICATE` blocks of a PEM text, in order.
fn certificate_blocks(text: &str) -> impl Iterator<Item = &str> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find(BEGIN)?;
        let len = rest[start..].find(END)?;
        let block = &rest[start..start + len + END.len()];
        rest = &rest[start + len + END.len()..];
        Some(block)
    })
}

/// Removes install workspaces whose ignite died: unmounts the scratch tmpfs and deletes the
/// directory. Returns the ids removed.
pub fn reap_stale(state: &StateDir, rootless: Option<&Mapper>) -> Vec<String> {
    let mut reaped = Vec::new();
    for leftover in owned::leftovers(&state.root.join("installs")) {
        let (name, dir, _lock) = match leftover {
            Leftover::Abandoned { name, dir } => (name, dir, None),
            Leftover::Dead { name, dir, lock } => (name, dir, lock),
        };
        // Not mounted (EINVAL) or already gone: nothing to do either way.
        let _ = nix::mount::umount2(&dir.join(SCRATCH), MntFlags::MNT_DETACH);
        // Rootless, a killed install's scratch may still be its uid's.
        if let Some(mapper) = rootless
            && let Err(e) = chown_tree(&[&dir], 0, 0, true, mapper)
        {
            tracing::warn!("failed to take {} back from an install's uid: {e}", dir.display());
        }
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::warn!("failed to remove {}: {e}", dir.display());
            continue;
        }
        tracing::info!("removed the leftovers of install {name}");
        reaped.push(name);
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::owned::{HIDDEN_PREFIX, LOCK_FILE};

    #[test]
    fn only_certificates_are_passed_in() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bundle.pem");
        fs::write(
            &p,
            "junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let pem = certificates(&p).unwrap();
        assert!(pem.contains("AAA") && pem.contains("BBB"), "{pem}");
        check_certificates(&p).unwrap();
        assert!(!pem.contains("SECRET") && !pem.contains("junk"), "{pem}");
        fs::write(&p, "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n").unwrap();
        assert!(certificates(&p).unwrap_err().contains("no PEM certificate"));
        assert!(check_certificates(&p).unwrap_err().contains("no PEM certificate"));
        assert!(certificates(&d.path().join("missing")).unwrap_err().contains("cannot be read"));
        assert!(check_certificates(&d.path().join("missing")).unwrap_err().contains("cannot be read"));
        // A block that never ends is no certificate.
        fs::write(&p, "-----BEGIN CERTIFICATE-----\nAAA\n").unwrap();
        assert!(check_certificates(&p).unwrap_err().contains("no PEM certificate"));
    }

    #[test]
    fn the_certificate_check_reads_as_far_as_the_first_certificate() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bundle.pem");
        let cert = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";
        // Found past several read chunks, with a marker split across two of them.
        for junk in [40_000, 16 * 1024 - 10, 16 * 1024 - 30] {
            fs::write(&p, format!("{}{cert}", "# comment\n".repeat(junk / 10))).unwrap();
            check_certificates(&p).unwrap_or_else(|e| panic!("{junk} bytes before it: {e}"));
        }
        // A multi-byte character cut by a chunk's end is no error.
        fs::write(&p, format!("{}é\n{cert}", "x".repeat(16 * 1024 - 1))).unwrap();
        check_certificates(&p).unwrap();
        // Bytes that are not text before the certificate are refused, as a full read refuses them.
        let mut bad = b"\xff\xfe junk\n".to_vec();
        bad.extend_from_slice(cert.as_bytes());
        fs::write(&p, &bad).unwrap();
        assert!(check_certificates(&p).unwrap_err().contains("cannot be read"));
        assert!(certificates(&p).unwrap_err().contains("cannot be read"));
        // Only a part of a large file is read: the rest may be anything (here 9 MiB, past the cap).
        let mut big = cert.as_bytes().to_vec();
        big.resize(9 * 1024 * 1024, b'z');
        fs::write(&p, &big).unwrap();
        check_certificates(&p).unwrap();
    }

    #[test]
    fn tail_prefers_stderr_and_keeps_the_last_lines() {
        let err: String = (0..40).map(|i| format!("e{i}\n")).collect();
        let t = tail("out\n", &err);
        assert!(t.contains("e39") && !t.contains("e20") && !t.contains("out"), "{t}");
        assert_eq!(tail("out\n\n", ""), "  out");
        assert_eq!(tail("", ""), "  (nothing)");
    }

    #[test]
    fn argv_follows_the_plan() {
        let registry = crate::data::runtime::Registry::builtin().unwrap();
        let mut plan = Plan {
            service: "s".into(),
            dir: "/srv/s".into(),
            manifest: b"{}".to_vec(),
            lockfile: None,
            direct: 1,
            scripts: false,
            installer: registry.resolve("bun").unwrap(),
            key: "k".into(),
        };
        let argv = install_argv(&plan);
        assert_eq!(&argv[..2], &["/usr/local/bin/bun", "install"]);
        for want in ["--production", "--ignore-scripts", "--registry=https://registry.npmjs.org/"] {
            assert!(argv.iter().any(|a| a == want), "{want}: {argv:?}");
        }
        assert!(!argv.iter().any(|a| a == "--frozen-lockfile"), "{argv:?}");
        plan.scripts = true;
        plan.lockfile = Some(crate::store::deps::Lockfile { name: "bun.lock", bytes: vec![] });
        let argv = install_argv(&plan);
        assert!(!argv.iter().any(|a| a == "--ignore-scripts"), "{argv:?}");
        assert!(argv.iter().any(|a| a == "--frozen-lockfile"), "{argv:?}");
    }

    #[test]
    fn reap_stale_skips_live_workspaces() {
        let d = tempfile::tempdir().unwrap();
        let state = StateDir { root: d.path().to_path_buf() };
        let installs = d.path().join("installs");
        let live = Workspace::create(&installs, "live").unwrap();
        fs::create_dir_all(installs.join("dead").join(SCRATCH)).unwrap();
        fs::write(installs.join("dead").join(LOCK_FILE), "").unwrap();
        fs::create_dir_all(installs.join(format!("{HIDDEN_PREFIX}fresh"))).unwrap();
        assert_eq!(reap_stale(&state, None), vec!["dead".to_string()]);
        assert!(live.dir.exists() && installs.join(format!("{HIDDEN_PREFIX}fresh")).exists());
        drop(live);
        assert!(!installs.join("live").exists());
    }
}
