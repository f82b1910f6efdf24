//! One job's way into a sandbox, below the façade ([`crate::engine::Engine::run`]): the runtime
//! resolved, its bundle and the service's npm dependencies made present, the TypeScript staged,
//! the grants set up, the spec built and validated (once), and the run handed to the
//! supervisor — cold, or in a sandbox launched ahead for the warm pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use oci_spec::runtime::{LinuxSeccomp, Spec};
use tokio_util::sync::CancellationToken;

use crate::data::policy::Policy;
use crate::data::preflight::{self, BundleFact, ColdStart, ColdStarts, Facts, PreflightReport, RuntimeFact};
use crate::data::program_io::ProgramIo;
use crate::data::report::rfc3339;
use crate::data::report::{InstallReport, Report};
use crate::data::runtime::{Registry, ResolvedRuntime, RuntimeError, TypeScript};
use crate::data::service::Service;
use crate::engine::Settings;
use crate::engine::install::{InstallError, Installer};
use crate::engine::supervisor::{
    INPUT_SUBDIR, Launched, OutputSink, ReadOut, RunPlan, StateDir, Supervisor, SupervisorError, Teardown, new_run_id,
};
use crate::sandbox::abi::{INPUT_ENV_MAX_BYTES, INPUT_FILE_PATH, INPUT_FILE_VAR, INPUT_VAR};
use crate::sandbox::audit::{AuditError, AuditPlan};
use crate::sandbox::grants::{self, GrantError, RunGrants};
use crate::sandbox::identity::{self, IdentityError, UidLease};
use crate::sandbox::init_proto::JobMessage;
use crate::sandbox::oci::CliRuntime;
use crate::sandbox::spawn_guard::{self, SpawnRule};
use crate::sandbox::spec::seccomp::{SeccompError, SeccompProfile};
use crate::sandbox::spec::{self, Limits, SpecError, SpecInput};
use crate::store::bundle::{BundleError, BundleStatus, BundleStore, Progress, resident};
use crate::store::deps::{self, DepsCache, DepsError, Lease, Modules};
use crate::store::stage::{self, StageError, StagedApp, Stager};

/// Time between SIGTERM and SIGKILL at the time limit.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(500);
/// Extra time the in-container backstop waits beyond timeout + grace before it kills.
const BACKSTOP_SLACK: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("service {service}: runtime {spec:?}")]
    ServiceRuntime { service: String, spec: String, source: Box<RuntimeError> },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(
        "{service}: entry {entry:?} is JSX, which {runtime} does not run: it gets TypeScript with the types stripped, and JSX is not type syntax; use bun or deno, or compile the JSX first"
    )]
    Jsx { service: String, entry: String, runtime: String },
    #[error("{service}: entry {entry:?} is not a file {runtime} runs (expected one of: {expected})")]
    EntryType { service: String, entry: String, runtime: String, expected: String },
    #[error("{service}: dependency {name:?} is declared in service.yaml, but {problem}")]
    MissingDependency { service: String, name: String, problem: String },
    #[error(transparent)]
    Deps(#[from] DepsError),
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error(transparent)]
    Spawn(#[from] spawn_guard::GuardError),
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error(
        "{path} is not readable by the sandbox user (each run has a uid of its own, in {first}..={last}, which owns no file): the sandbox could not load it; make it world-readable (chmod o+r, and o+x on directories)",
        first = identity::FIRST_UID,
        last = identity::LAST_UID
    )]
    Unreadable { path: PathBuf },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Rootless(#[from] crate::sandbox::userns::Unsupported),
    #[error("{service}: a sandbox started ahead cannot serve a job that needs {why}")]
    NotWarm { service: String, why: &'static str },
    #[error("cannot create the directory a warm sandbox's inline code goes to: {0}")]
    WarmDir(#[source] std::io::Error),
    #[error(transparent)]
    Nofile(#[from] crate::sandbox::nofile::NofileError),
    /// Boxed: its messages carry several paths and digests, and every result of the engine
    /// would otherwise grow by them.
    #[error(transparent)]
    Archive(Box<crate::store::archive::ArchiveError>),
    #[error("{service}: {why}; there is no dependency tree to export or import")]
    NoDependencyTree { service: String, why: String },
}

impl From<crate::store::archive::ArchiveError> for EngineError {
    fn from(e: crate::store::archive::ArchiveError) -> Self {
        EngineError::Archive(Box::new(e))
    }
}

/// One execution request.
#[derive(Debug, Clone)]
pub struct Job {
    pub service: Service,
    /// Passed to the program as `IGNITE_INPUT`.
    pub input: String,
    /// The effective security policy (see [`crate::data::policy`]); every field is enforced.
    pub policy: Policy,
    pub grace: Duration,
    /// A session's workspace directory, mounted read-write at [`spec::WORKSPACE_DIR`].
    pub workspace: Option<PathBuf>,
    /// Audit mode: the seccomp profile's audited syscalls notify ignite, which denies and
    /// records them, and the report gets a `securityAudit` (see [`crate::sandbox::audit`]). The policy
    /// is resolved separately (`policy::resolve(.., audit)`).
    pub audit: bool,
    /// The uid the program runs as, for a session whose workspace it owns across runs;
    /// `None` allocates one for this run alone (see [`crate::sandbox::identity`]).
    pub identity: Option<Arc<UidLease>>,
    /// The service directory is inline code ignite wrote for this run alone (world-readable,
    /// no links): a warm sandbox for it gets an empty directory of its own at launch, which
    /// the run's files are linked into right before the handover (see [`crate::engine::pool`]).
    pub inline: bool,
    /// A session's end: cancelled when its workspace is closed, so that the pool removes the
    /// sandbox it keeps parked for the session (and the uid and mount that sandbox holds).
    pub session_end: Option<CancellationToken>,
    /// The request's arguments, stdin and variables, already checked
    /// ([`crate::data::program_io`]). A cold run's spec has the arguments and variables; a warm
    /// sandbox's does not (they come with the job message), and its stdin is written at handover.
    pub io: ProgramIo,
}

/// A job turned into everything the OCI runtime will see but the spec itself, which is built
/// once, when the run has what it grants (see [`Runner::preview_spec`] for `--print-spec`).
#[derive(Debug)]
pub struct Prepared {
    pub runtime: ResolvedRuntime,
    pub id: String,
    pub limits: Limits,
    /// Which node_modules the run sees; an `Install` tree may still have to be installed
    /// (the spec already mounts where it will be).
    pub modules: Modules,
    /// The staged copy mounted at /app, for runtimes that get stripped TypeScript; holding it
    /// keeps it from being pruned while the run uses it.
    pub staged: Option<StagedApp>,
    /// Audit mode's listener plan (the spec's filter notifies it).
    pub audit: Option<AuditPlan>,
    /// What the spec is built from. With a network granted, it names a placeholder for the
    /// namespace, which exists only once the run sets it up; the run fills it in then.
    input: SpecInput,
    /// The runtime's shared rootfs (the lower layer of a writable root).
    rootfs: PathBuf,
    /// The uid the spec runs as, held until the run is over (its container and everything the
    /// uid owned are gone).
    identity: Arc<UidLease>,
    /// The page-cache walk of the rootfs, waited for before the container starts.
    residency: resident::Background,
}

/// A sandbox launched ahead of its job (see [`crate::engine::pool`]): container started, entrypoint
/// set up and confined, waiting for the job. It holds what its container uses until it is
/// gone ([`Runner::finish_warm`], [`Runner::discard_warm`]).
pub struct WarmSandbox {
    launched: Launched,
    held: Held,
}

/// What a run's container uses besides its spec, released only after the container is gone:
/// the dependency tree's lease, the staged copy of the app, the uid.
struct Held {
    _modules: Option<Lease>,
    _staged: Option<StagedApp>,
    _identity: Arc<UidLease>,
}

/// What is left of a warm run once its report is out (see [`Runner::finish_warm`]).
pub struct WarmTeardown {
    teardown: Teardown,
    held: Held,
}

/// Whether `input` reaches the program as a file rather than in [`INPUT_VAR`].
pub fn input_is_file(input: &str) -> bool {
    input.len() > INPUT_ENV_MAX_BYTES
}

/// Why a job cannot be served by a sandbox started ahead of it: it needs something made for
/// that one run (a network, a writable root overlay), or a workspace or uid that is not a
/// session's (a session's sandbox is parked with its workspace and uid, see
/// [`crate::engine::pool`]).
pub fn cold_only(job: &Job) -> Option<&'static str> {
    let session = job.workspace.is_some() && job.identity.is_some() && job.session_end.is_some();
    if job.workspace.is_some() && !session {
        Some("a workspace that is not a session's")
    } else if job.policy.network {
        Some("a network")
    } else if !job.policy.read_only {
        Some("a writable root")
    } else if job.identity.is_some() && !session {
        Some("a uid of its own")
    } else if job.io.outputs {
        // Its tmpfs is mounted for the one run, owned by the run's uid; a parked sandbox would
        // need one mounted at launch and handed over clean. Not built yet.
        Some("an output directory")
    } else {
        None
    }
}

/// The job message a warm sandbox gets for `job`: its input and the same backstop a cold run's
/// entrypoint gets on its command line.
pub fn job_message(job: &Job) -> JobMessage {
    let timeout = Duration::from_millis(job.service.timeout_ms);
    let file = input_is_file(&job.input);
    JobMessage {
        // A large input is written to the sandbox's input directory at handover instead.
        input: if file { String::new() } else { job.input.clone() },
        input_file: file,
        kill_after_ms: (timeout + job.grace + BACKSTOP_SLACK).as_millis() as u64,
        args: job.io.args.clone(),
        env: job.io.env.clone(),
    }
}

pub struct Runner {
    registry: Registry,
    store: BundleStore,
    deps: DepsCache,
    stager: Stager,
    seccomp: LinuxSeccomp,
    /// The profile `seccomp` came from, for audit mode's filters and event kinds.
    profile: Arc<SeccompProfile>,
    settings: Settings,
    state: StateDir,
    supervisor: Supervisor<CliRuntime>,
    /// Specs built so far (see [`Runner::specs_built`]).
    specs_built: AtomicU64,
}

impl Runner {
    pub fn new(settings: Settings) -> Result<Runner, EngineError> {
        let registry = Registry::load(&settings.runtimes_dirs)?;
        let profile = Arc::new(SeccompProfile::builtin()?);
        // In the dialect of the OCI runtime in use, so that the profile means the same under each.
        let seccomp = settings.oci_kind.adapt_seccomp(profile.to_oci()?)?;
        let state = StateDir { root: settings.state_dir.clone() };
        let oci = CliRuntime::new(
            settings.oci_kind,
            settings.oci_binary.clone(),
            state.oci_root(settings.oci_kind.as_str()),
            state.runs(),
        )
        .with_hook_binary(settings.hook_binary.clone())
        .with_systemd_cgroup(settings.cgroup_driver.systemd())
        .with_user_runtime_dir(settings.rootless.as_ref().map(|r| r.runtime_dir.clone()));
        Ok(Runner {
            registry,
            store: BundleStore::new(settings.cache_dir.clone()),
            deps: DepsCache::new(&settings.cache_dir),
            stager: Stager::new(&settings.cache_dir, settings.stripper.clone()),
            seccomp,
            profile,
            supervisor: Supervisor::new(oci, state.clone()),
            state,
            settings,
            specs_built: AtomicU64::new(0),
        })
    }

    /// The runtime `svc` names, resolved in this runner's registry; an error names the service.
    pub fn resolve_runtime(&self, svc: &Service) -> Result<ResolvedRuntime, EngineError> {
        self.registry.resolve(&svc.runtime).map_err(|source| EngineError::ServiceRuntime {
            service: svc.name.clone(),
            spec: svc.runtime.clone(),
            source: Box::new(source),
        })
    }

    /// Resolves, fetches and checks everything a run needs, up to the spec's input: the spec
    /// itself is built once the run has what it grants ([`Runner::execute`],
    /// [`Runner::launch_warm`]) or for a preview ([`Runner::preview_spec`]).
    pub fn prepare(&self, job: &Job, progress: &dyn Progress) -> Result<Prepared, EngineError> {
        let svc = &job.service;
        // Before anything else: what a rootless host cannot give is refused, never weakened.
        if self.settings.rootless.is_some() {
            crate::engine::rootless::check_job(&job.policy, job.workspace.is_some())?;
        }
        // Before anything is fetched or staged: no sandbox starts under too low a limit.
        let nofile = crate::sandbox::nofile::sandbox_limit_now()?;
        let runtime = self.resolve_runtime(svc)?;
        let is_jsx = svc.entry.ends_with(".tsx") || svc.entry.ends_with(".jsx");
        if runtime.typescript == TypeScript::Strip && is_jsx {
            return Err(EngineError::Jsx {
                service: svc.name.clone(),
                entry: svc.entry.clone(),
                runtime: runtime.key(),
            });
        }
        if !runtime.accepts_entry(&svc.entry) {
            return Err(EngineError::EntryType {
                service: svc.name.clone(),
                entry: svc.entry.clone(),
                runtime: runtime.key(),
                expected: runtime.entry_extensions.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(", "),
            });
        }
        // Inline code is written world-readable by ignite itself; a warm sandbox's directory
        // for it is still empty here (its files come at the handover).
        if !job.inline {
            check_readable(&svc.dir, &svc.dir.join(&svc.entry))?;
        }
        // Before the bundle: a source that does not parse fails fast, without a download.
        let staged = if runtime.typescript == TypeScript::Strip && stage::needs_staging(&svc.entry) {
            Some(self.stager.stage(&svc.dir, &svc.entry, &runtime.key())?)
        } else {
            None
        };
        let entry = staged.as_ref().map_or(svc.entry.as_str(), |s| s.entry.as_str());
        let mut argv = runtime.command_with_policy(entry, &job.policy)?;
        // The request's arguments follow the entry (a warm sandbox's job brings them instead).
        argv.extend(job.io.args.iter().cloned());
        let modules = deps::plan(svc, &self.registry)?;
        let rootfs = self.store.ensure_unpacked(&runtime, progress)?;
        // Every page of the rootfs is read in by ignite, charged to ignite, before the sandbox
        // starts (see bundle::resident); the rest of the set-up proceeds meanwhile, and
        // `execute` waits for the walk before it starts the container.
        let residency = resident::Background::start(&rootfs.path);

        let spawn = SpawnRule::from_policy(&job.policy);
        // In audit mode the listener enforces allowSpawn false, so that attempts become events.
        let spawn = if job.audit { spawn.audited() } else { spawn };
        // The entrypoint checks again inside the sandbox; this says it before anything starts.
        spawn_guard::check_supported(&spawn)?;
        let mut limits = Limits::new(svc.memory_mb, svc.cpu_limit);
        // Never above ignite's own hard limit, which the OCI runtime may be unable to exceed.
        limits.nofile = nofile;
        limits.pids = i64::from(job.policy.max_processes);
        limits.tmp_bytes = u64::from(job.policy.tmp_mb) * 1024 * 1024;
        let timeout = Duration::from_millis(svc.timeout_ms);
        let id = new_run_id();
        let identity = match &job.identity {
            Some(lease) => lease.clone(),
            None => Arc::new(identity::allocate(&self.state.root, self.settings.run_uid_count())?),
        };
        let audit = if job.audit {
            Some(AuditPlan::new(self.profile.clone(), job.policy.network, spawn.notified(), &self.state.run_dir(&id))?)
        } else {
            None
        };
        let seccomp = match &audit {
            Some(plan) => self.settings.oci_kind.adapt_seccomp(self.profile.to_oci_audit(
                job.policy.network,
                spawn.notified(),
                &plan.socket,
            )?)?,
            None => self.seccomp.clone(),
        };
        let writable_root = !job.policy.read_only;
        let userns = self.settings.rootless.as_ref().map(|r| r.ids.maps());
        let input = SpecInput {
            // A writable root is the overlay the run mounts over the shared rootfs.
            rootfs: if writable_root { grants::root_path(&self.state.root, &id) } else { rootfs.path.clone() },
            writable_root,
            network: job.policy.network.then(|| {
                crate::sandbox::netns::preview_attach(grants::resolv_conf_path(&self.state.root, &id), userns.as_ref())
            }),
            app_dir: staged.as_ref().map_or_else(|| svc.dir.clone(), |s| s.dir.clone()),
            node_modules: match &modules {
                Modules::Install(plan) => Some(self.deps.modules_dir(&plan.key)),
                Modules::None | Modules::Vendored(_) => None,
            },
            // A staged copy holds no packages: the service's own node_modules is mounted into it.
            app_node_modules: staged.as_ref().and_then(|s| s.node_modules.clone()),
            workspace: job.workspace.clone(),
            // In the run directory, which the supervisor creates (with this directory) and
            // removes on every path.
            input_dir: Some(self.state.run_dir(&id).join(INPUT_SUBDIR)),
            out_dir: job.io.outputs.then(|| match self.settings.rootless {
                None => spec::OutDir::Bind(grants::out_path(&self.state.root, &id)),
                Some(_) => spec::OutDir::Tmpfs,
            }),
            init_binary: self.settings.init_binary.clone(),
            user: spec::RunUser {
                uid: identity.uid(),
                gid: identity.gid(),
                passwd: identity.passwd(),
                group: identity.group(),
            },
            argv,
            env: {
                // The request's variables were checked against these names (never replaced).
                let large = input_is_file(&job.input);
                let mut env = spec::compose_env(&runtime.env, &svc.env, if large { "" } else { &job.input })?;
                if large {
                    // A file instead: the variable is absent, not empty, so that a program
                    // cannot mistake it for an input of its own.
                    let var = format!("{INPUT_VAR}=");
                    env.retain(|e| !e.starts_with(&var));
                    env.push(format!("{INPUT_FILE_VAR}={INPUT_FILE_PATH}"));
                    env.sort();
                }
                if job.io.outputs {
                    env.push(format!("{}={}", spec::OUT_DIR_VAR, spec::OUT_DIR));
                    env.sort();
                }
                env.extend(job.io.env_strings());
                env
            },
            limits: limits.clone(),
            hostname: svc.name.clone(),
            cgroups_path: self.settings.cgroup_driver.cgroups_path(&id),
            kill_after_ms: (timeout + job.grace + BACKSTOP_SLACK).as_millis() as u64,
            wait_job: false,
            userns,
            spawn,
            seccomp,
        };
        Ok(Prepared { runtime, id, limits, modules, staged, audit, input, rootfs: rootfs.path, identity, residency })
    }

    /// Runs a job to its report. Leftovers of crashed earlier runs are removed first.
    pub async fn execute(
        &self,
        job: &Job,
        progress: &dyn Progress,
        sink: Option<Arc<dyn OutputSink>>,
        cancel: CancellationToken,
    ) -> Result<Report, EngineError> {
        let prepared = self.prepare(job, progress)?;
        // Before anything is installed or mounted: a missing network tool is said at once.
        let tools = grants::tools_for(&job.policy)?;
        // Held until the run is over: the staged directory must outlive the container.
        let _staged = prepared.staged;
        // Root mounts the output tmpfs on the host; rootless, the OCI runtime mounts it in the
        // container, and the supervisor reads it back before the entrypoint is released.
        let in_container_out = matches!(prepared.input.out_dir, Some(spec::OutDir::Tmpfs));
        let out_owner = matches!(prepared.input.out_dir, Some(spec::OutDir::Bind(_)))
            .then(|| (prepared.identity.uid(), prepared.identity.gid()));
        // Declared before the grants and the run, so released after them: dropped last.
        let _identity = prepared.identity;
        self.supervisor.reap_stale().await;
        grants::reap_stale(&self.state.root);
        identity::reap_stale(&self.state.root);
        // Held until the run is over: the tree cannot be pruned while it is mounted.
        let (_lease, install) = self.ensure_modules(&job.service, &prepared.modules, progress, &cancel).await?;
        // Torn down when dropped, after the supervisor has removed the container (or on any
        // early return): the network and the writable layer never outlive the run.
        let run_grants = RunGrants::setup(
            &self.state.root,
            &prepared.id,
            &job.policy,
            tools.as_ref(),
            &prepared.rootfs,
            out_owner,
            self.settings.rootless.as_ref().map(|r| &r.mapper),
        )
        .await?;
        // The one build of this run's spec: everything it names exists now.
        let mut input = prepared.input;
        let network = run_grants.as_ref().and_then(|g| g.network());
        if let Some(g) = &run_grants {
            input.network = network.clone();
            if let Some(root) = g.writable_root() {
                input.rootfs = root.to_path_buf();
            }
        }
        let granted = spec::Grants {
            netns: network.as_ref().map(|n| &n.netns),
            writable_root: run_grants.as_ref().and_then(|g| g.writable_root()),
            workspace: job.workspace.as_deref(),
            out: run_grants.as_ref().and_then(|g| g.out_dir()),
        };
        let spec = self.build(&input, &granted)?;
        if let Some(g) = &run_grants {
            g.verify()?;
        }
        let mut plan = run_plan(job, prepared.id, spec, &prepared.limits, &prepared.runtime, prepared.audit);
        let read_out = in_container_out.then(|| ReadOut::new(self.settings.hook_binary.clone()));
        plan.read_out = read_out.clone();
        // The sandbox must not be the first to fault in its runtime's pages.
        prepared.residency.wait();
        let report = self.supervisor.run(plan, sink, cancel).await;
        // The container is gone: what it left in its output directory is final.
        let collected = match read_out {
            Some(r) => Some(r.take()),
            None => run_grants.as_ref().and_then(RunGrants::collect_out),
        };
        drop(run_grants);
        let mut report = report?;
        report.install = install;
        if let Some(collected) = collected {
            let (files, limit) = output_files(collected);
            report.files = Some(files);
            report.files_limit = limit;
        }
        Ok(report)
    }

    /// Prepares a warm sandbox for jobs like `job`: the spec a cold run of it gets, without the
    /// input and with the entrypoint told to wait for its job. Synchronous like [`Runner::prepare`].
    pub fn prepare_warm(&self, job: &Job) -> Result<Prepared, EngineError> {
        if let Some(why) = cold_only(job) {
            return Err(EngineError::NotWarm { service: job.service.name.clone(), why });
        }
        // A staged copy is a snapshot of the sources: a sandbox parked with it would run code
        // that may have changed since (and inline code is not there yet to be staged).
        let runtime = self.resolve_runtime(&job.service)?;
        if runtime.typescript == TypeScript::Strip && stage::needs_staging(&job.service.entry) {
            return Err(EngineError::NotWarm {
                service: job.service.name.clone(),
                why: "a staged copy of its sources",
            });
        }
        // Nothing of a request's own I/O is in a warm kind's spec: each job brings its own.
        let job = &Job { io: ProgramIo::default(), ..job.clone() };
        let mut prepared = self.prepare(job, &crate::store::bundle::NoProgress)?;
        prepared.input.wait_job = true;
        Ok(prepared)
    }

    /// Launches a prepared warm sandbox and waits until its entrypoint is ready for the job.
    pub async fn launch_warm(
        &self,
        prepared: Prepared,
        job: &Job,
        cancel: &CancellationToken,
    ) -> Result<WarmSandbox, EngineError> {
        let (modules, _) =
            self.ensure_modules(&job.service, &prepared.modules, &crate::store::bundle::NoProgress, cancel).await?;
        // A session's sandbox is parked with its workspace: the one departure it is granted.
        let granted = spec::Grants { workspace: job.workspace.as_deref(), ..spec::Grants::default() };
        let spec = self.build(&prepared.input, &granted)?;
        let held = Held { _modules: modules, _staged: prepared.staged, _identity: prepared.identity };
        let mut plan = run_plan(job, prepared.id, spec, &prepared.limits, &prepared.runtime, prepared.audit);
        // The job this sandbox is launched for is only a template: neither its input nor its
        // stdin is ever written (the job it serves brings its own at handover).
        plan.input_file = None;
        plan.stdin = Arc::default();
        let mut launched = self.supervisor.launch(plan, true).await?;
        if let Err(e) = self.supervisor.wait_ready(&mut launched).await {
            self.supervisor.discard(launched).await;
            return Err(e.into());
        }
        Ok(WarmSandbox { launched, held })
    }

    /// Resolves when a parked sandbox can no longer serve (its entrypoint or runtime died);
    /// says why. Cancel-safe.
    pub async fn warm_failure(&self, sandbox: &mut WarmSandbox) -> String {
        self.supervisor.parked_failure(&mut sandbox.launched).await
    }

    /// Runs `job` in a warm sandbox launched for jobs like it. The report comes as soon as the
    /// program's exit and the final counters are in; the [`WarmTeardown`] must then be given to
    /// [`Runner::finish_warm`].
    pub async fn run_warm(
        &self,
        sandbox: WarmSandbox,
        job: &Job,
        sink: Option<Arc<dyn OutputSink>>,
        cancel: CancellationToken,
    ) -> (Result<Report, EngineError>, WarmTeardown) {
        let wall = std::time::Instant::now();
        let started_at = rfc3339(std::time::SystemTime::now());
        let WarmSandbox { mut launched, held } = sandbox;
        // The time limit is the request's (a request may lower or raise it).
        launched.set_timeout(Duration::from_millis(job.service.timeout_ms), job.grace);
        launched.set_stdin(job.io.stdin.clone());
        launched.set_input_file(input_is_file(&job.input).then(|| Arc::from(job.input.as_str())));
        let message = job_message(job);
        let (report, teardown) = self.supervisor.drive(launched, Some(&message), sink, cancel, wall, started_at).await;
        (report.map_err(EngineError::from), WarmTeardown { teardown, held })
    }

    /// Releases a warm run's sandbox and removes it (container, cgroup, run directory, uid).
    pub async fn finish_warm(&self, t: WarmTeardown) {
        self.supervisor.finish(t.teardown).await;
        drop(t.held);
    }

    /// Removes a warm sandbox that never ran a job.
    pub async fn discard_warm(&self, sandbox: WarmSandbox) {
        self.supervisor.discard(sandbox.launched).await;
        drop(sandbox.held);
    }

    /// Builds a spec and validates it with exactly the departures granted: a writable root only
    /// at the run's own overlay, a network namespace only the one ignite created for it, a
    /// session's workspace. Every spec a run gets is built here, once per run.
    fn build(&self, input: &SpecInput, grants: &spec::Grants) -> Result<Spec, EngineError> {
        self.specs_built.fetch_add(1, Ordering::Relaxed);
        let spec = spec::build(input)?;
        spec::validate_run(&spec, grants)?;
        Ok(spec)
    }

    /// The spec `prepared` would run with, validated: for `--print-spec` and the benchmark's
    /// levels. What only a run creates (its network namespace, its writable root) appears under
    /// the paths the run will give it.
    pub fn preview_spec(&self, prepared: &Prepared, job: &Job) -> Result<Spec, EngineError> {
        let root_grant = (!job.policy.read_only).then(|| grants::root_path(&self.state.root, &prepared.id));
        self.build(
            &prepared.input,
            &spec::Grants {
                netns: prepared.input.network.as_ref().map(|n| &n.netns),
                writable_root: root_grant.as_deref(),
                workspace: job.workspace.as_deref(),
                out: match &prepared.input.out_dir {
                    Some(spec::OutDir::Bind(dir)) => Some(dir.as_path()),
                    _ => None,
                },
            },
        )
    }

    /// Supervises a plan built outside [`Runner::execute`]: for the benchmark's reduced isolation
    /// levels, whose spec is a prepared run's ([`Runner::preview_spec`]) with pieces taken away,
    /// which no request can ask for. Nothing is staged, granted or validated here; the container
    /// is gone when this returns, as for every run.
    pub async fn supervise(
        &self,
        plan: RunPlan,
        sink: Option<Arc<dyn OutputSink>>,
        cancel: CancellationToken,
    ) -> Result<Report, EngineError> {
        Ok(self.supervisor.run(plan, sink, cancel).await?)
    }

    /// How many specs this runner has built: one per run or warm sandbox, plus previews.
    pub fn specs_built(&self) -> u64 {
        self.specs_built.load(Ordering::Relaxed)
    }

    /// Preflight of a service against this engine's registry and cache; no side effects.
    pub fn preflight(&self, svc: &Service) -> Result<PreflightReport, EngineError> {
        preflight(svc, &self.registry, &self.store)
    }

    /// Keeps this run's cold start for the next preflight of its runtime (in any process). A
    /// failure to write it only costs that information, not the run.
    pub(crate) fn record_cold_start(&self, report: &Report) {
        let Some(ms) = report.metrics.init_time_ms else { return };
        let m = ColdStart { runtime: report.runtime.clone(), ms, measured_at: report.started_at.clone() };
        if let Err(e) = ColdStarts::new(&self.settings.cache_dir).record(&m) {
            tracing::warn!(error = %e, "failed to record the cold start");
        }
    }

    /// Only the dependency step of a service (`ignite install`): what a run would see as
    /// node_modules, installed into the cache if needed; no report when nothing is installed.
    pub async fn install(
        &self,
        svc: &Service,
        progress: &dyn Progress,
        cancel: CancellationToken,
    ) -> Result<(Modules, Option<InstallReport>), EngineError> {
        let modules = deps::plan(svc, &self.registry)?;
        self.supervisor.reap_stale().await;
        let (_lease, report) = self.ensure_modules(svc, &modules, progress, &cancel).await?;
        Ok((modules, report))
    }

    /// Installs the tree of an `Install` plan if the cache lacks it, and checks the names in
    /// service.yaml's `dependencies:` against the node_modules the run will see.
    async fn ensure_modules(
        &self,
        svc: &Service,
        modules: &Modules,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<(Option<Lease>, Option<InstallReport>), EngineError> {
        let (lease, report) = match modules {
            Modules::Install(plan) => {
                let installer = Installer {
                    supervisor: &self.supervisor,
                    state: &self.state,
                    store: &self.store,
                    cache: &self.deps,
                    seccomp: &self.seccomp,
                    init_binary: &self.settings.init_binary,
                    cgroup_driver: self.settings.cgroup_driver,
                    ca_file: self.settings.ca_file.as_deref(),
                    rootless: self.settings.rootless.as_ref().map(|r| &r.mapper),
                };
                let outcome = installer.ensure(plan, progress, cancel).await?;
                (Some(outcome.lease), Some(outcome.report))
            }
            Modules::None | Modules::Vendored(_) => (None, None),
        };
        check_dependencies(svc, modules, lease.as_ref())?;
        Ok((lease, report))
    }

    /// Removes what crashed ignite processes left behind (containers, cgroups, install
    /// scratch mounts, half-built dependency trees); returns the run and install ids cleaned.
    pub async fn reap_stale(&self) -> Vec<String> {
        let mut ids = self.supervisor.reap_stale().await;
        // After the containers: a crashed run's writable root may still be their root.
        for id in grants::reap_stale(&self.state.root) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.extend(crate::engine::install::reap_stale(&self.state, self.settings.rootless.as_ref().map(|r| &r.mapper)));
        self.deps.reap_temps();
        // Last: the uids of dead runs are free already (their locks died with them); this
        // removes their files.
        identity::reap_stale(&self.state.root);
        ids
    }

    /// Removes the session workspaces and inline code directories of `ignite serve` processes
    /// that are gone (never a live server's). Call it after [`reap_stale`](Self::reap_stale):
    /// a dead server's containers may still have had them mounted.
    pub fn reap_server_dirs(&self) -> crate::engine::workdirs::Reaped {
        crate::engine::workdirs::reap_stale(&self.state.root)
    }

    /// What keeps this host from running the default runtime now, one sentence each; empty
    /// when it is ready. Looks only: nothing is fetched or started.
    pub fn readiness(&self) -> Vec<String> {
        let mut missing = Vec::new();
        // Root, or rootless with what that needs: settings were refused otherwise. The user's
        // systemd manager may go away later (a logout without linger): checked on each call.
        if let Some(r) = &self.settings.rootless {
            let bus = r.runtime_dir.join("bus");
            if !bus.exists() {
                missing.push(format!(
                    "rootless: the user's systemd manager is gone (no {}); enable lingering (`loginctl enable-linger {}`)",
                    bus.display(),
                    r.ids.user
                ));
            }
        }
        if !self.settings.oci_binary.is_file() {
            missing.push(format!("OCI runtime {} not found", self.settings.oci_binary.display()));
        }
        if !self.settings.init_binary.is_file() {
            missing.push(format!("sandbox entrypoint {} not found", self.settings.init_binary.display()));
        }
        if let Err(e) = crate::sandbox::nofile::sandbox_limit_now() {
            missing.push(e.to_string());
        }
        match self.registry.resolve(crate::data::service::DEFAULT_RUNTIME) {
            Ok(rt) if self.store.present(&rt).is_none() => missing.push(format!(
                "bundle of the default runtime {} is not in {}; run `ignite runtime pull {}`",
                rt.key(),
                self.store.root().display(),
                crate::data::service::DEFAULT_RUNTIME
            )),
            Ok(_) => {}
            Err(e) => missing.push(format!("default runtime: {e}")),
        }
        missing
    }

    /// The runtimes this engine knows (built-in and custom).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runtime state: per-run directories live below it.
    pub fn state_dir(&self) -> &Path {
        &self.settings.state_dir
    }

    /// Removes the staged TypeScript copies no run is using; returns how many.
    pub fn clear_staged(&self) -> usize {
        self.stager.clear()
    }
}

/// The report's view of an output directory read back: each file's size, SHA-256 and content
/// (base64), and why it is not everything the program meant to leave, if so.
fn output_files(
    collected: std::io::Result<grants::out::Collected>,
) -> (std::collections::BTreeMap<String, crate::data::report::OutputFile>, Option<String>) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let collected = match collected {
        Ok(c) => c,
        Err(e) => return (Default::default(), Some(format!("failed to read the output directory: {e}"))),
    };
    let files = collected
        .files
        .into_iter()
        .map(|(path, f)| {
            let file = crate::data::report::OutputFile {
                size: f.bytes.len() as u64,
                sha256: format!("{:x}", sha2::Sha256::digest(&f.bytes)),
                content: Some(base64::engine::general_purpose::STANDARD.encode(&f.bytes)),
            };
            (path, file)
        })
        .collect();
    let mut why = Vec::new();
    if collected.full {
        why.push(format!(
            "{} was full ({} bytes or {} files at most); a write may have been refused",
            spec::OUT_DIR,
            grants::out::MAX_OUT_BYTES,
            grants::out::MAX_OUT_FILES
        ));
    }
    if !collected.skipped.is_empty() {
        why.push(format!("not returned (not regular files, or nested too deep): {}", collected.skipped.join(", ")));
    }
    (files, (!why.is_empty()).then(|| why.join("; ")))
}

/// What the supervisor gets for one run of `job` (cold, or in a warm sandbox) with `spec`.
fn run_plan(
    job: &Job,
    id: String,
    spec: Spec,
    limits: &Limits,
    runtime: &ResolvedRuntime,
    audit: Option<AuditPlan>,
) -> RunPlan {
    RunPlan {
        id,
        spec,
        timeout: Duration::from_millis(job.service.timeout_ms),
        grace: job.grace,
        output_limit: usize::try_from(job.policy.output_max_bytes).unwrap_or(usize::MAX),
        memory_limit_mb: job.service.memory_mb,
        pids_limit: limits.pids,
        service: job.service.name.clone(),
        runtime: runtime.key(),
        audit,
        stdin: job.io.stdin.clone(),
        input_file: input_is_file(&job.input).then(|| Arc::from(job.input.as_str())),
        read_out: None,
    }
}

/// Gathers what preflight checks — the runtime and what the bundle store records for it, the
/// service's dependencies, the last cold start — and evaluates it with the service's
/// thresholds. Reads only: nothing is downloaded, built, unpacked, installed or written, and
/// neither root nor an OCI runtime is needed.
pub fn preflight(svc: &Service, registry: &Registry, store: &BundleStore) -> Result<PreflightReport, EngineError> {
    let runtime = registry.resolve(&svc.runtime).map(|rt| {
        let bundle = match store.status(&rt) {
            BundleStatus::Present { digest, bytes } => BundleFact::Present { digest, bytes },
            BundleStatus::Packed { digest, bytes } => BundleFact::Packed { digest, bytes },
            BundleStatus::Stale { digest, bytes, reason } => BundleFact::Stale { digest, bytes, reason },
            BundleStatus::Absent => BundleFact::Absent,
        };
        RuntimeFact { key: rt.key(), base_memory_mb: rt.base_memory_mb, recipe_digest: rt.recipe.digest(), bundle }
    });
    let (count, source) = match deps::plan(svc, registry)? {
        Modules::Install(plan) => (Some(plan.direct), Some(deps::MANIFEST.to_string())),
        Modules::None | Modules::Vendored(_) => {
            let declared = deps::declared_dependencies(&svc.dir)?;
            (declared, declared.map(|_| deps::MANIFEST.to_string()))
        }
    };
    let cold_start = match &runtime {
        Ok(rt) => ColdStarts::new(store.root()).last(&rt.key).map_err(|e| e.to_string()),
        Err(_) => Ok(None),
    };
    let facts = Facts {
        service: svc.name.clone(),
        runtime_spec: svc.runtime.clone(),
        // Worded as a run would say it, so a refused run reads the same as a failed one.
        runtime: runtime.map_err(|e| format!("service {}: runtime {:?}: {e}", svc.name, svc.runtime)),
        memory_mb: svc.memory_mb,
        timeout_ms: svc.timeout_ms,
        dependencies: count.unwrap_or(0) as u64,
        dependencies_source: source,
        cold_start,
    };
    Ok(preflight::evaluate(&facts, &svc.preflight))
}

/// A name in service.yaml's `dependencies:` must be in the node_modules the run sees (the
/// installed tree, or the service's own node_modules/), or the program would fail at import
/// time with a less helpful message from inside the sandbox.
fn check_dependencies(svc: &Service, modules: &Modules, lease: Option<&Lease>) -> Result<(), EngineError> {
    for name in &svc.dependencies {
        let problem = match (modules, lease) {
            // The installed tree is ignite's own copy: look without following any link.
            (Modules::Install(_), Some(lease)) => {
                let found = std::fs::symlink_metadata(lease.modules.join(name)).is_ok_and(|m| m.is_dir());
                (!found).then(|| {
                    format!(
                        "the dependencies installed from {} do not include it; add it to `dependencies` in package.json",
                        svc.dir.join(deps::MANIFEST).display()
                    )
                })
            }
            // The service's own node_modules: looked up beneath the service directory without
            // following any link, so a linked package cannot make this an oracle for host paths.
            (Modules::Vendored(dir), _) => {
                let found = crate::fsutil::svcdir::kind_of(&svc.dir, &format!("node_modules/{name}"));
                match found {
                    Ok(Some(crate::fsutil::svcdir::EntryKind::Dir)) => None,
                    Ok(Some(_)) => Some(format!(
                        "{} is not a directory (a link or a file); a vendored package must be a directory inside the service directory",
                        dir.join(name).display()
                    )),
                    Ok(None) => Some(format!(
                        "{} is missing; the service's own node_modules/ is used as it is (remove it to let ignite install package.json)",
                        dir.join(name).display()
                    )),
                    Err(e) => Some(e.to_string()),
                }
            }
            _ => Some(format!(
                "{} lists no dependencies to install; add it to `dependencies` in package.json",
                svc.dir.join(deps::MANIFEST).display()
            )),
        };
        if let Some(problem) = problem {
            return Err(EngineError::MissingDependency { service: svc.name.clone(), name: name.clone(), problem });
        }
    }
    Ok(())
}

/// The program runs as an unprivileged uid; a root-only entry would fail inside the
/// sandbox with EACCES. Say so before starting anything.
fn check_readable(dir: &Path, entry: &Path) -> Result<(), EngineError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode()).unwrap_or(0);
    if mode(dir) & 0o005 != 0o005 {
        return Err(EngineError::Unreadable { path: dir.to_path_buf() });
    }
    if mode(entry) & 0o004 == 0 {
        return Err(EngineError::Unreadable { path: entry.to_path_buf() });
    }
    Ok(())
}
