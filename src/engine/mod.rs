//! The façade every run goes through: [`Engine::run`] takes a [`Request`] — from the command
//! line (`ignite run`, `ignite exec`), any HTTP execute route, `ignite bench`, or a program that
//! embeds ignite — and does, in one order, everything between the request and its report.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ignite::engine::{Engine, HostChoice, Input, Program, Request, Settings};
//! let engine = Engine::new(Settings::detect(&HostChoice {
//!     state_dir: "/run/ignite".into(),
//!     cache_dir: "/var/lib/ignite".into(),
//!     oci_runtime: "runc".into(),
//!     ..Default::default()
//! })?)?;
//! let mut req = Request::new(Program::Dir {
//!     dir: "examples/hello".into(),
//!     required: true,
//!     overrides: Default::default(),
//!     pass_env: ignite::data::service::PassEnv::none(),
//! });
//! req.input = Input::Json(r#"{"name":"world"}"#.into());
//! let outcome = engine.run(req, Default::default()).await?;
//! println!("{}", outcome.report.stdout);
//! # Ok(()) }
//! ```
//!
//! Below the façade: [`runner`] turns one job into a sandbox (runtime, bundle, dependencies,
//! staging, grants, the spec, the supervisor), [`pool`] keeps sandboxes launched ahead of their
//! jobs, [`supervisor`] drives one container's lifecycle, [`install`] is the sandboxed npm
//! install, [`workdirs`] owns what runs keep on the host besides their containers: inline
//! programs' directories ([`inline`]) and session workspaces ([`session`]).

pub mod host_env;
pub mod inline;
pub mod install;
pub mod internal;
mod kind;
mod lockfile;
mod offline;
pub mod pool;
pub mod relpath;
mod request;
pub mod rootless;
pub mod runner;
mod runtimes;
pub mod session;
mod settings;
pub mod supervisor;
pub mod workdirs;

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::data::policy;
use crate::data::preflight::{Level, PreflightReport};
use crate::data::program_io::ProgramIo;
use crate::data::report::full::{LastReports, Limits, RunReport};
use crate::data::report::{Report, rfc3339};
use crate::data::service::{self, Service};
use crate::fsutil::svcdir;
use crate::store::bundle::BundleStore;
use crate::store::lock;

pub use crate::fsutil::IoError;
pub use crate::sandbox::cgroup::{CgroupDriver, DriverChoice};
pub use crate::sandbox::oci::OciKind;
pub use crate::store::bundle::{NoProgress, Progress, StderrProgress};
pub use crate::store::deps::Modules;
pub use host_env::{ListenFdsError, OperatorFileError, read_operator_text, take_activated_listener, take_env_var};
pub use inline::{FilesError, INLINE_NAME, InlineError, InlineProgram, InlineSource, MAX_FILES, MAX_TOTAL_BYTES};
pub use kind::ErrorKind;
pub use lockfile::{LockFile, LockStatus, Locked, LockfileError, Verified, verify_lock, write_lock};
pub use offline::{
    DepsArchive, ExportedBundle, ImportedBundle, RuntimeExport, RuntimeImport, export_deps, export_runtimes,
    import_deps, import_runtimes,
};
pub use pool::{PoolConfig, PoolStats, ServiceStats};
pub use pool::{Sizing, SizingError, default_budget_mb, parse_override};
pub use request::{
    Input, LockCheck, MAX_INPUT_BYTES, OnPreflight, OnStart, Outcome, PolicyChoice, PreflightGate, Program, Request,
    RunError,
};
pub use runner::{DEFAULT_GRACE, EngineError};
use runner::{Job, Runner};
pub use runtimes::{Pulled, pull_runtime, runtime_inventory};
pub use session::{
    FileEntry, FileError, FileErrorKind, FileKind, Listing, MAX_FILE_BYTES, WORKSPACE_DIR, Workspace, WorkspaceError,
    Written,
};
pub use settings::{
    HostChoice, RUNTIMES_DIR_ENV, RootlessHost, SYSTEM_CA_FILE, Settings, SettingsError, default_cache_dir,
    default_oci_runtime, default_state_dir, find_init, is_rootless, runtimes_dirs, user_runtime_dir,
};
pub use supervisor::{OutputSink, Stream};
pub use workdirs::BenchDir;

use pool::Pool;

/// Ignite's engine: one per process. Cheap to share behind an `Arc`.
pub struct Engine {
    runner: Arc<Runner>,
    /// Sandboxes launched ahead of their jobs (`ignite serve`); `None` runs everything cold.
    pool: Option<Pool>,
    cache_dir: std::path::PathBuf,
    /// Services' policy files, parsed once per version of each (a server resolves a service's
    /// policy on every request).
    policies: policy::ParsedPolicyFiles,
}

impl Engine {
    /// An engine with the host settings an edge resolved (see [`Settings::detect`]); loads the
    /// runtime definitions and the seccomp profile. Starts nothing.
    pub fn new(settings: Settings) -> Result<Engine, EngineError> {
        let cache_dir = settings.cache_dir.clone();
        Ok(Engine {
            runner: Arc::new(Runner::new(settings)?),
            pool: None,
            cache_dir,
            policies: policy::ParsedPolicyFiles::default(),
        })
    }

    /// This engine with a warm pool: requests with `warm` set may then run in a sandbox
    /// launched ahead of them.
    pub fn with_pool(mut self, config: PoolConfig) -> Engine {
        self.pool = Some(Pool::new(self.runner.clone(), config));
        self
    }

    /// Runs one request to its report. The order is the point of this function:
    ///
    /// 1. resolve the service (load its directory, take it as given, or write inline code to a
    ///    directory of its own) and the policy;
    /// 2. the lock check: the service must match its `ignite.lock`, if asked;
    /// 3. the preflight gate: a failing check refuses the run, and the refusal is kept as the
    ///    service's last report;
    /// 4. the run itself — staging and dependencies, a warm sandbox or a cold one, the grants,
    ///    the one spec, the supervisor — in [`Runner::execute`] or the [`pool`];
    /// 5. keep the full report as the service's last one and the cold start for the next
    ///    preflight.
    pub async fn run(&self, req: Request, cancel: CancellationToken) -> Result<Outcome, RunError> {
        // 1. The service, its input and its policy (and a session's workspace); inline code is
        //    written to a directory of its own first, which `code_dir` removes when the run is
        //    over.
        let workspace = req.workspace.as_deref();
        let writes_code = matches!(req.program, Program::Inline(_));
        let resolve =
            async { self.resolve(req.program, &req.input, &req.policy, req.audit, req.output_limit, workspace) };
        let (mut job, code_dir) = if writes_code { off_the_workers(resolve).await? } else { resolve.await? };
        self.attach_io(&mut job, req.io, &req.allow_env)?;
        let inline = code_dir.is_some();
        // 2. The lock file (hashing the service directory: off the runtime's workers).
        if req.lock != LockCheck::Off {
            let progress = req.progress.clone();
            off_the_workers(async { self.check_lock(&job.service, req.lock, progress.as_ref()) }).await?;
        }
        // 3. Preflight: reads only, so it is cheap enough for every run.
        let checked = match req.preflight {
            PreflightGate::Skip => None,
            PreflightGate::Enforce => {
                let report = self.runner.preflight(&job.service)?;
                if report.status == Level::Fail {
                    let full = self.keep(&job.service, Some(report), None, req.keep_report && !inline);
                    return Err(RunError::Preflight { full: Box::new(full) });
                }
                if let Some(tell) = req.on_preflight {
                    tell(&report);
                }
                Some(report)
            }
        };
        if let Some(start) = req.on_start {
            start();
        }
        // 4. The run: warm when the request allows it and a sandbox of its kind is parked,
        //    otherwise cold. Inline code (in a session or not) is linked into the parked
        //    sandbox's own empty directory at the handover.
        let service = job.service.clone();
        let code = code_dir.as_ref().map(|d| d.path());
        let report = match (&self.pool, req.warm) {
            (Some(pool), true) => pool.execute(job, code, req.sink, cancel).await?,
            _ => off_the_workers(self.runner.execute(&job, req.progress.as_ref(), req.sink, cancel)).await?,
        };
        // 5. What the next preflight and `ignite report` read (when the edge asks for it; inline
        //    code has no directory of the operator's to keep a report for).
        if !report.metrics.warm {
            self.runner.record_cold_start(&report);
        }
        let full = self.keep(&service, checked, Some(report.clone()), req.keep_report && !inline);
        Ok(Outcome { report, full })
    }

    /// The spec a request would run with, validated, nothing started: `--print-spec`. What
    /// only a run creates (its network namespace, its writable root) appears under the paths
    /// the run would give it. No gate applies.
    pub fn spec(&self, req: Request) -> Result<oci_spec::runtime::Spec, RunError> {
        let workspace = req.workspace.as_deref();
        let (mut job, _code_dir) =
            self.resolve(req.program, &req.input, &req.policy, req.audit, req.output_limit, workspace)?;
        self.attach_io(&mut job, req.io, &req.allow_env)?;
        self.check_lock(&job.service, req.lock, req.progress.as_ref())?;
        let prepared = self.runner.prepare(&job, req.progress.as_ref())?;
        Ok(self.runner.preview_spec(&prepared, &job)?)
    }

    /// Step 1 of a run (and of [`Engine::spec`]): the service (loaded, given, or written from
    /// inline code), its input, its policy and a session's workspace, as the job the runner and
    /// the pool take. Inline code gets the built-in policy whatever was asked (never a policy
    /// file from the request's own files), and comes with the directory it was written to, to
    /// be held until the run is over.
    fn resolve(
        &self,
        program: Program,
        input: &Input,
        choice: &PolicyChoice,
        audit: bool,
        output_limit: Option<(u64, &'static str)>,
        workspace: Option<&Workspace>,
    ) -> Result<(Job, Option<inline::InlineDir>), RunError> {
        let (service, code) = match program {
            Program::Dir { dir, required, overrides, pass_env } => {
                (service::load(&dir, required, &overrides, &pass_env)?, None)
            }
            Program::Service(svc) => (*svc, None),
            Program::Inline(program) => {
                let (svc, dir) = inline::materialise(&program, self.registry(), self.state_dir())?;
                (svc, Some(dir))
            }
        };
        let input = input.read(&service.dir)?;
        let mut effective = match choice {
            _ if code.is_some() => policy::builtin_only(audit)?,
            PolicyChoice::Service { file } => {
                policy::resolve_cached(&service.dir, file.as_deref(), audit, &self.policies)?
            }
            PolicyChoice::Builtin => policy::builtin_only(audit)?,
        };
        if let Some((bytes, origin)) = output_limit {
            effective.set_output_max_bytes(bytes, origin)?;
        }
        let mut job = Job {
            service,
            input,
            policy: effective.policy,
            grace: DEFAULT_GRACE,
            workspace: None,
            audit,
            identity: None,
            inline: code.is_some(),
            session_end: None,
            io: Default::default(),
        };
        if let Some(ws) = workspace {
            ws.attach(&mut job);
        }
        Ok((job, code))
    }

    /// Checks a request's arguments, stdin and variables and gives them to `job`: within the
    /// caps, and each variable allowed (by the service's `allowEnv` or `allow_env`), never one
    /// of ignite's own and never one the runtime or the service sets.
    fn attach_io(&self, job: &mut Job, io: ProgramIo, allow_env: &[String]) -> Result<(), RunError> {
        io.check_caps()?;
        if !io.env.is_empty() {
            let allowed: Vec<String> = job.service.allow_env.iter().chain(allow_env).cloned().collect();
            let runtime_env = self.registry().resolve(&job.service.runtime).map(|rt| rt.env).unwrap_or_default();
            let taken = |name: &str| {
                if runtime_env.contains_key(name) {
                    Some(format!("the runtime {} sets it", job.service.runtime))
                } else if job.service.env.contains_key(name) {
                    Some("the service's env sets it".to_string())
                } else {
                    None
                }
            };
            io.check_env(&allowed, &taken)?;
        }
        job.io = io;
        Ok(())
    }

    /// Starts the warm pool's `min` sandboxes for `service`, made for the runs a request with
    /// `audit` and the service's own policy file gets. `None` when the engine has no pool or
    /// the service's min is 0; otherwise how many started (fewer within the memory budget,
    /// none for a service whose runs cannot be warm).
    pub fn warm_up(&self, service: Service, audit: bool) -> Result<Option<usize>, RunError> {
        let Some(pool) = &self.pool else { return Ok(None) };
        let min = pool.config().sizing(&service.name).min;
        if min == 0 {
            return Ok(None);
        }
        // The job a request with the default input would make: the pool launches sandboxes
        // for its kind (the input is never used).
        let default_input = Input::Json("{}".to_string());
        let choice = PolicyChoice::Service { file: None };
        let (job, _) = self.resolve(Program::Service(Box::new(service)), &default_input, &choice, audit, None, None)?;
        Ok(Some(pool.warm_up(&job, min)))
    }

    fn check_lock(&self, svc: &Service, check: LockCheck, progress: &dyn Progress) -> Result<(), RunError> {
        // Looked up beneath the service directory without following a link, like every read
        // of it; whatever is there (even a link) is then the lock check's to judge.
        let present = || matches!(svcdir::kind_of(&svc.dir, lock::LOCK_FILE), Ok(Some(_)));
        match check {
            LockCheck::Off => return Ok(()),
            LockCheck::IfPresent if !present() => return Ok(()),
            LockCheck::IfPresent | LockCheck::Required => {}
        }
        let rt = self.runner.resolve_runtime(svc)?;
        lock::enforce(&svc.dir, &rt, &BundleStore::new(self.cache_dir.clone()), progress)?;
        Ok(())
    }

    /// Keeps the full report of a run (or of a run preflight refused) as the service's last
    /// one. Failing to keep it costs `ignite report` that run, not the run.
    /// With `save` false (inline code) the report is only returned.
    fn keep(
        &self,
        svc: &Service,
        preflight: Option<PreflightReport>,
        execution: Option<Report>,
        save: bool,
    ) -> RunReport {
        let limits = Limits { timeout_ms: svc.timeout_ms, cold_start_warn_ratio: svc.preflight.cold_start_warn_ratio };
        let full = RunReport::new(&svc.name, rfc3339(std::time::SystemTime::now()), preflight, execution, limits);
        if !save {
            return full;
        }
        if let Err(e) = LastReports::new(&self.cache_dir).save(&svc.dir, &full) {
            tracing::warn!(error = %e, "failed to keep the report for `ignite report`");
        }
        full
    }

    /// The preflight checks of a service against this engine's runtimes and bundle store;
    /// reads only.
    pub fn preflight(&self, svc: &Service) -> Result<PreflightReport, EngineError> {
        self.runner.preflight(svc)
    }

    /// How many OCI specs this engine has built: exactly one per run (and per warm sandbox),
    /// plus one per [`Engine::spec`].
    pub fn specs_built(&self) -> u64 {
        self.runner.specs_built()
    }

    /// The job runner below the façade (the benchmark's reduced isolation levels drive it).
    pub(crate) fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// The warm pool's counters, when the engine has one.
    pub fn pool_stats(&self) -> Option<PoolStats> {
        self.pool.as_ref().map(Pool::stats)
    }

    /// The warm pool, when the engine has one.
    pub fn pool(&self) -> Option<&Pool> {
        self.pool.as_ref()
    }

    /// Removes every sandbox of the warm pool (waits for their removal).
    pub async fn shutdown(&self) {
        if let Some(pool) = &self.pool {
            pool.shutdown().await;
        }
    }

    /// Only the dependency step of a service (`ignite install`).
    pub async fn install(
        &self,
        svc: &Service,
        progress: &dyn Progress,
        cancel: CancellationToken,
    ) -> Result<(crate::store::deps::Modules, Option<crate::data::report::InstallReport>), EngineError> {
        self.runner.install(svc, progress, cancel).await
    }

    /// Removes what crashed ignite processes left behind; returns the run and install ids.
    pub async fn reap_stale(&self) -> Vec<String> {
        self.runner.reap_stale().await
    }

    /// Removes the session workspaces and inline code directories of dead `ignite serve`
    /// processes; call after [`Engine::reap_stale`].
    pub fn reap_server_dirs(&self) -> workdirs::Reaped {
        self.runner.reap_server_dirs()
    }

    /// What keeps this host from running the default runtime now; empty when ready.
    pub fn readiness(&self) -> Vec<String> {
        self.runner.readiness()
    }

    /// The runtimes this engine knows (built-in and custom).
    pub fn registry(&self) -> &crate::data::runtime::Registry {
        self.runner.registry()
    }

    /// Runtime state: per-run directories live below it.
    pub fn state_dir(&self) -> &Path {
        self.runner.state_dir()
    }

    /// Removes the staged TypeScript copies no run is using; returns how many.
    pub fn clear_staged(&self) -> usize {
        self.runner.clear_staged()
    }
}

/// Runs `fut`, whose synchronous stretches (bundle and staging locks, file copies, unpacking,
/// hashing a directory) may take long, without stalling other tasks: on a multi-threaded
/// runtime (`ignite serve`) the calling worker first hands its queue to another thread
/// (`block_in_place`); on the command line's current-thread runtime it is simply awaited, as
/// nothing else runs there. So a request runs on the runtime's workers up to the point where
/// it may block — a warm run never leaves them — instead of hopping to a blocking thread.
pub(crate) async fn off_the_workers<F: std::future::Future>(fut: F) -> F::Output {
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(|| handle.block_on(fut))
    } else {
        fut.await
    }
}

/// Preflight of a service without an engine: neither root nor an OCI runtime is needed, and
/// nothing is downloaded, built or written (`ignite preflight`).
pub fn preflight(
    svc: &Service,
    runtimes_dirs: &[std::path::PathBuf],
    cache_dir: &Path,
) -> Result<PreflightReport, EngineError> {
    let registry = crate::data::runtime::Registry::load(runtimes_dirs)?;
    runner::preflight(svc, &registry, &BundleStore::new(cache_dir.to_path_buf()))
}

/// For a process that will start sandboxes: raises its soft open-file limit to the hard one
/// (connections, runs and pipes each hold descriptors; each sandbox's own limit fits under it).
pub fn raise_open_files() -> Result<crate::sandbox::nofile::Nofile, crate::sandbox::nofile::NofileError> {
    crate::sandbox::nofile::raise_soft_to_hard()
}

/// Whether a sandbox can start under this process's open-file limit now (`Err` says why not).
pub fn sandbox_open_files() -> Result<u64, crate::sandbox::nofile::NofileError> {
    crate::sandbox::nofile::sandbox_limit_now()
}

/// Before the process exits: waits for the user-mode network helpers runs stopped on the way.
pub fn wait_for_helpers() {
    crate::sandbox::netns::wait_for_exits();
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use super::off_the_workers;

    /// Blocks (bounded) until `flag` is set; whether it was.
    fn wait_for(flag: &AtomicBool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        flag.load(Ordering::SeqCst)
    }

    #[test]
    fn blocking_work_leaves_the_workers_to_other_tasks() {
        // One worker: if the blocking part held it, nothing else could run until it ended.
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let other_ran = Arc::new(AtomicBool::new(false));
        let saw = rt.block_on(async {
            let flag = other_ran.clone();
            let blocking = tokio::spawn(async move {
                // Another task is queued on the same (only) worker before the blocking part.
                let f = flag.clone();
                tokio::spawn(async move { f.store(true, Ordering::SeqCst) });
                off_the_workers(async { wait_for(&flag) }).await
            });
            blocking.await.unwrap()
        });
        assert!(saw, "the other task ran while the blocking part was running");
    }

    #[test]
    fn on_a_current_thread_runtime_the_future_is_simply_awaited() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let value = rt.block_on(off_the_workers(async {
            tokio::task::yield_now().await;
            7
        }));
        assert_eq!(value, 7);
    }
}
