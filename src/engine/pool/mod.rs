//! The warm pool: sandboxes launched ahead of their jobs (container started, entrypoint set up
//! and confined, waiting on its job pipe), so that a request only hands over its input. Each
//! sandbox serves exactly one job and is then removed; a replacement starts in the background.
//! Sandboxes are kept per kind — everything their spec depends on (service, runtime, limits,
//! policy, audit mode, the service's dependency files) — and sized per service (min, max, idle
//! TTL) within a memory budget that running jobs count against too. A job that needs something
//! made for it alone (see [`crate::engine::runner::cold_only`]), or that finds no sandbox of its kind
//! parked, runs cold.
//!
//! Inline code (`POST /v1/execute`) has kinds too — runtime, entry, limits, policy, audit —
//! sized as the service [`INLINE_NAME`]. Each such sandbox is created with an empty directory of
//! its own mounted read-only at `/app`; the request's files, written to their run directory as
//! for a cold run, are hard-linked into it right before the handover, so the program sees
//! exactly its own files and nothing of any other run. A session keeps one sandbox parked
//! with its workspace and uid (kind: the session and what its last run asked for), replaced
//! after each run and removed when the session ends.

mod sizing;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use sizing::{Census, retire_idle, to_start};
pub use sizing::{PoolConfig, Sizing, SizingError, default_budget_mb, mem_available_mb, parse_override};

use crate::data::report::Report;
use crate::engine::inline::{self, INLINE_NAME, InlineDir};
use crate::engine::runner::{EngineError, Job, Runner, WarmSandbox, cold_only, job_message};
use crate::engine::supervisor::{OutputSink, SupervisorError};
use crate::store::bundle::NoProgress;

/// Wait before replacing a sandbox that died while parked, so that a kind of sandbox that
/// keeps dying cannot spin.
const REPLACE_DELAY: Duration = Duration::from_millis(200);

/// Counters and gauges of one service's sandboxes, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Ready and waiting now.
    pub parked: usize,
    /// Being launched now.
    pub starting: usize,
    /// Jobs served by a warm sandbox.
    pub hits: u64,
    /// Jobs that found no usable sandbox of their kind and ran cold.
    pub misses: u64,
    /// Jobs that could not be served warm at all (workspace, network, writable root, ...).
    pub cold_only: u64,
    /// Parked sandboxes removed without serving: idle past the TTL, or dead.
    pub discarded: u64,
    /// Sandboxes that failed to get ready.
    pub launch_failures: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub services: BTreeMap<String, ServiceStats>,
    /// Memory reserved by sandboxes now (parked, starting, running; warm and cold), MiB.
    pub reserved_mb: u64,
    pub budget_mb: u64,
}

/// The pool. Cheap to share behind an `Arc`; [`Pool::shutdown`] removes every sandbox.
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<Runner>,
    config: PoolConfig,
    state: Mutex<State>,
    /// Every sandbox's task (launch, park, run, removal), awaited at shutdown.
    tasks: TaskTracker,
    closing: CancellationToken,
}

#[derive(Default)]
struct State {
    kinds: HashMap<String, Kind>,
    stats: BTreeMap<String, ServiceStats>,
    /// The kind the latest request (or warm-up) for a service (or session) and audit mode
    /// asked for: only it is kept at the group's `min`; others drain to zero.
    current: HashMap<(Group, bool), String>,
    reserved_mb: u64,
    next_id: u64,
    closed: bool,
}

struct Kind {
    service: String,
    /// Whose floor and max the kind counts against: the service (inline code is the service
    /// [`INLINE_NAME`]), or the session whose workspace it has.
    group: Group,
    audit: bool,
    /// The job sandboxes of this kind are launched for (its input is never used).
    template: Job,
    memory_mb: u64,
    parked: VecDeque<Parked>,
    starting: usize,
    /// This kind cannot be served warm (found out when launching); its jobs run cold.
    cold_only: bool,
}

/// See [`Kind::group`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Group {
    Service(String),
    /// A session, by its workspace: one sandbox parked for it, kept while it lives.
    Session(std::path::PathBuf),
}

impl Group {
    fn of(job: &Job) -> Group {
        match (&job.workspace, &job.session_end) {
            (Some(ws), Some(_)) => Group::Session(ws.clone()),
            _ => Group::Service(job.service.name.clone()),
        }
    }
}

impl Kind {
    /// A kind with nothing launched yet, for jobs like `job`.
    fn new(job: &Job) -> Kind {
        // A sandbox's spec never carries the input of the request that made its kind: the
        // sandboxes of a kind serve other requests (of other keys, for inline code).
        let template = Job { input: "{}".to_string(), io: Default::default(), ..job.clone() };
        Kind {
            service: job.service.name.clone(),
            group: Group::of(job),
            audit: job.audit,
            template,
            memory_mb: u64::from(job.service.memory_mb),
            parked: VecDeque::new(),
            starting: 0,
            cold_only: false,
        }
    }

    fn census(&self) -> Census {
        Census { parked: self.parked.len(), starting: self.starting }
    }

    /// The kind of a session that has ended: nothing of it may be kept (its template holds the
    /// session's uid).
    fn ended(&self) -> bool {
        self.template.session_end.as_ref().is_some_and(|t| t.is_cancelled())
    }
}

struct Parked {
    id: u64,
    tx: oneshot::Sender<Checkout>,
}

/// A job for a parked sandbox.
struct Checkout {
    job: Job,
    /// Inline code's run directory, linked into the sandbox's own before the handover.
    code: Option<std::path::PathBuf>,
    sink: Option<Arc<dyn OutputSink>>,
    cancel: CancellationToken,
    reply: oneshot::Sender<Served>,
}

enum Served {
    Report(Box<Result<Report, EngineError>>),
    /// The sandbox died before it took the job: nothing ran; the job goes cold.
    Unusable,
}

/// Memory held for one sandbox until it is gone.
struct Reservation {
    inner: Arc<Inner>,
    mb: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.reserved_mb = st.reserved_mb.saturating_sub(self.mb);
    }
}

impl Pool {
    pub fn new(engine: Arc<Runner>, config: PoolConfig) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                engine,
                config,
                state: Mutex::new(State::default()),
                tasks: TaskTracker::new(),
                closing: CancellationToken::new(),
            }),
        }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// Runs `job`: in a parked sandbox of its kind if there is one (and a replacement starts),
    /// otherwise cold (and, within the service's max and the budget, one more sandbox starts).
    /// `code` is inline code's run directory (the job's service directory), whose files a
    /// warm sandbox gets linked into its own.
    pub async fn execute(
        &self,
        job: Job,
        code: Option<&Path>,
        sink: Option<Arc<dyn OutputSink>>,
        cancel: CancellationToken,
    ) -> Result<Report, EngineError> {
        let name = job.service.name.clone();
        // A job message that cannot be made fails the same way cold, with the cold run's error.
        let key = kind_key(&job).filter(|_| job_message(&job).to_line().is_ok());
        let Some(key) = key else {
            self.inner.count(&name, |s| s.cold_only += 1);
            return self.inner.cold(job, sink, cancel).await;
        };
        let parked = 'taken: {
            let mut st = self.inner.lock();
            if st.closed {
                Ok(None)
            } else {
                forget_ended(&mut st);
                forget_idle(&mut st);
                let group = Group::of(&job);
                let before = st.current.insert((group.clone(), job.audit), key.clone());
                // A session keeps one sandbox: the one made for what it asked for last.
                if let (Group::Session(_), Some(old)) = (&group, before)
                    && old != key
                {
                    let dropped = st.kinds.get_mut(&old).map_or(0, |k| std::mem::take(&mut k.parked).len());
                    st.stats.entry(name.clone()).or_default().discarded += dropped as u64;
                }
                let kind = st.kinds.entry(key.clone()).or_insert_with(|| Kind::new(&job));
                if kind.cold_only {
                    st.stats.entry(name.clone()).or_default().cold_only += 1;
                    break 'taken Err(());
                }
                let parked = kind.parked.pop_front();
                if parked.is_none() {
                    // One more for the demand that found none. A sandbox that is taken is
                    // replaced once its run is over, not now: starting a container would
                    // compete with that run for the CPU.
                    let want = kind.census().total() + 1;
                    self.inner.start_locked(&mut st, &key, want);
                }
                Ok(parked)
            }
        };
        let Ok(parked) = parked else {
            return self.inner.cold(job, sink, cancel).await;
        };
        if let Some(p) = parked {
            let (reply, answer) = oneshot::channel();
            let checkout = Checkout {
                job: job.clone(),
                code: code.map(Path::to_path_buf),
                sink: sink.clone(),
                cancel: cancel.clone(),
                reply,
            };
            if p.tx.send(checkout).is_ok()
                && let Ok(Served::Report(report)) = answer.await
            {
                self.inner.count(&name, |s| s.hits += 1);
                return *report;
            }
        }
        self.inner.count(&name, |s| s.misses += 1);
        self.inner.cold(job, sink, cancel).await
    }

    /// Starts sandboxes for jobs like `job` until `n` are parked or starting (within the
    /// service's max and the budget), and makes this the kind kept at the service's min.
    /// Returns how many it started; a job that cannot be served warm starts none.
    pub fn warm_up(&self, job: &Job, n: usize) -> usize {
        let Some(key) = kind_key(job) else { return 0 };
        let mut st = self.inner.lock();
        if st.closed {
            return 0;
        }
        forget_ended(&mut st);
        st.current.insert((Group::of(job), job.audit), key.clone());
        st.kinds.entry(key.clone()).or_insert_with(|| Kind::new(job));
        self.inner.start_locked(&mut st, &key, n)
    }

    /// Waits until no sandbox of `job`'s kind is being launched (those that could start are
    /// parked, or failed). For warm-up at start and for tests.
    pub async fn settled(&self, job: &Job) {
        let Some(key) = kind_key(job) else { return };
        loop {
            let starting = self.inner.lock().kinds.get(&key).map_or(0, |k| k.starting);
            if starting == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stats(&self) -> PoolStats {
        let st = self.inner.lock();
        let mut services = st.stats.clone();
        for kind in st.kinds.values() {
            let s = services.entry(kind.service.clone()).or_default();
            s.parked += kind.parked.len();
            s.starting += kind.starting;
        }
        PoolStats { services, reserved_mb: st.reserved_mb, budget_mb: self.inner.config.memory_budget_mb }
    }

    /// Stops starting sandboxes, removes the parked ones, and waits until every sandbox task
    /// (including runs in progress) has ended and removed what it used.
    pub async fn shutdown(&self) {
        {
            let mut st = self.inner.lock();
            st.closed = true;
            // Dropping a parked sandbox's sender tells its task to remove it.
            for kind in st.kinds.values_mut() {
                kind.parked.clear();
            }
        }
        self.inner.closing.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic mid-update; the counts are still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, service: &str, f: impl FnOnce(&mut ServiceStats)) {
        f(self.lock().stats.entry(service.to_string()).or_default());
    }

    /// A kind's min and max: its service's; for a session one sandbox, kept while the session
    /// lives, unless inline code gets none (`--pool inline=0:0`, or `--pool-max 0`).
    fn sizing(&self, kind: &Kind) -> Sizing {
        match &kind.group {
            Group::Service(name) => self.config.sizing(name),
            Group::Session(_) => {
                let n = self.config.sizing(INLINE_NAME).max.min(1);
                Sizing { min: n, max: n }
            }
        }
    }

    /// The number of sandboxes a kind is kept at when nobody asks for more.
    fn floor(&self, st: &State, key: &str) -> usize {
        let Some(kind) = st.kinds.get(key) else { return 0 };
        let current = st.current.get(&(kind.group.clone(), kind.audit)).is_some_and(|k| k == key);
        if current { self.sizing(kind).min } else { 0 }
    }

    /// Starts sandboxes of kind `key` until `want` are parked or starting; returns how many.
    fn start_locked(self: &Arc<Self>, st: &mut State, key: &str, want: usize) -> usize {
        if st.closed {
            return 0;
        }
        let reserved = st.reserved_mb;
        let Some(kind) = st.kinds.get_mut(key) else { return 0 };
        if kind.cold_only || kind.ended() {
            return 0;
        }
        let max = self.sizing(kind).max;
        let n = to_start(kind.census(), want, max, kind.memory_mb, reserved, self.config.memory_budget_mb);
        kind.starting += n;
        let (template, mb) = (kind.template.clone(), kind.memory_mb);
        st.reserved_mb += mb * n as u64;
        for _ in 0..n {
            let reservation = Reservation { inner: self.clone(), mb };
            self.tasks.spawn(self.clone().sandbox(key.to_string(), template.clone(), reservation));
        }
        n
    }

    /// A cold run, with its memory reserved while it runs.
    async fn cold(
        self: &Arc<Self>,
        job: Job,
        sink: Option<Arc<dyn OutputSink>>,
        cancel: CancellationToken,
    ) -> Result<Report, EngineError> {
        let mb = u64::from(job.service.memory_mb);
        self.lock().reserved_mb += mb;
        let _reservation = Reservation { inner: self.clone(), mb };
        super::off_the_workers(self.engine.execute(&job, &NoProgress, sink, cancel)).await
    }

    /// Removes parked sandbox `id` from its kind's queue; false when a request took it already.
    fn unpark(&self, key: &str, id: u64) -> bool {
        let mut st = self.lock();
        let Some(kind) = st.kinds.get_mut(key) else { return false };
        let before = kind.parked.len();
        kind.parked.retain(|p| p.id != id);
        kind.parked.len() < before
    }

    /// One sandbox's life: launch, park until a job, a failure, the idle TTL or shutdown; run
    /// the job; remove everything.
    async fn sandbox(self: Arc<Self>, key: String, template: Job, reservation: Reservation) {
        let service = template.service.name.clone();
        let launched = self.launch(&template).await;
        // `app`: inline code's sandbox's own directory, removed once the sandbox is gone.
        let (mut sandbox, app) = match launched {
            Ok(s) => s,
            Err(e) => {
                // A launch cut short by the pool's shutdown, or by the end of the session it was
                // for (its workspace is gone), is not a failure of the sandbox.
                let moot =
                    self.closing.is_cancelled() || template.session_end.as_ref().is_some_and(|t| t.is_cancelled());
                if moot {
                    tracing::debug!(service = %service, error = %e, "a warm sandbox was no longer needed");
                } else {
                    tracing::warn!(service = %service, error = %e, "a warm sandbox failed to start");
                }
                let mut st = self.lock();
                if let Some(kind) = st.kinds.get_mut(&key) {
                    kind.starting -= 1;
                    if matches!(e, EngineError::NotWarm { .. }) {
                        kind.cold_only = true;
                    }
                }
                if !moot {
                    st.stats.entry(service).or_default().launch_failures += 1;
                }
                return;
            }
        };
        let (tx, mut rx) = oneshot::channel::<Checkout>();
        let parked = {
            let mut st = self.lock();
            st.next_id += 1;
            let id = st.next_id;
            let closed = st.closed;
            match st.kinds.get_mut(&key) {
                Some(kind) => {
                    kind.starting -= 1;
                    (!closed).then(|| kind.parked.push_back(Parked { id, tx })).map(|()| id)
                }
                None => None,
            }
        };
        // Shutting down: the pool will not hand this one a job (and `tx`, not parked, would
        // keep `rx` waiting forever).
        let Some(id) = parked else {
            self.engine.discard_warm(sandbox).await;
            return;
        };
        let session_end = template.session_end.clone();
        let ended = async move {
            match session_end {
                Some(t) => t.cancelled_owned().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(ended);

        let mut replace = false;
        let checkout = loop {
            tokio::select! {
                c = &mut rx => break c.ok(),
                why = self.engine.warm_failure(&mut sandbox) => {
                    tracing::warn!(service = %service, reason = %why, "discarding a warm sandbox");
                    if self.unpark(&key, id) {
                        self.count(&service, |s| s.discarded += 1);
                        replace = true;
                        break None;
                    }
                    // A request took it meanwhile: tell it to go cold.
                    if let Ok(c) = (&mut rx).await {
                        let _ = c.reply.send(Served::Unusable);
                    }
                    replace = true;
                    break None;
                }
                _ = tokio::time::sleep(self.config.idle_ttl) => {
                    let retire = {
                        let st = self.lock();
                        let census = st.kinds.get(&key).map(Kind::census);
                        census.is_some_and(|c| retire_idle(c, self.floor(&st, &key)))
                    };
                    if retire && self.unpark(&key, id) {
                        self.count(&service, |s| s.discarded += 1);
                        break None;
                    }
                }
                _ = self.closing.cancelled() => {
                    if self.unpark(&key, id) {
                        break None;
                    }
                    break (&mut rx).await.ok();
                }
                () = &mut ended => {
                    // The session is over: nothing is kept for it, not even its kind.
                    let unparked = self.unpark(&key, id);
                    forget_ended(&mut self.lock());
                    if unparked {
                        break None;
                    }
                    break (&mut rx).await.ok();
                }
            }
        };
        match checkout {
            None => self.engine.discard_warm(sandbox).await,
            Some(c) if let Err(e) = handover_files(app.as_ref(), c.code.as_deref()) => {
                // Nothing ran: the request's files are still whole in their run directory.
                tracing::warn!(service = %service, error = %e, "a warm sandbox could not get its job's files");
                let _ = c.reply.send(Served::Unusable);
                self.engine.discard_warm(sandbox).await;
                replace = true;
            }
            Some(c) => {
                let (report, teardown) = self.engine.run_warm(sandbox, &c.job, c.sink, c.cancel).await;
                let served = match report {
                    Err(EngineError::Supervisor(SupervisorError::Handover(e))) => {
                        tracing::warn!(service = %service, error = %e, "a warm sandbox could not take its job");
                        Served::Unusable
                    }
                    r => Served::Report(Box::new(r)),
                };
                let _ = c.reply.send(served);
                // The replacement starts now that the run is over, while this sandbox's uid is
                // still held (so the two never share one).
                {
                    let mut st = self.lock();
                    let want = st.kinds.get(&key).map_or(0, |k| k.census().total() + 1);
                    self.start_locked(&mut st, &key, want);
                }
                self.engine.finish_warm(teardown).await;
            }
        }
        drop(app);
        drop(reservation);
        if replace {
            tokio::time::sleep(REPLACE_DELAY).await;
            let mut st = self.lock();
            let floor = self.floor(&st, &key);
            self.start_locked(&mut st, &key, floor);
        }
    }

    /// Launches a sandbox for jobs like `job`; one for inline code gets an empty directory of
    /// its own as its service directory, returned with it.
    async fn launch(&self, job: &Job) -> Result<(WarmSandbox, Option<InlineDir>), EngineError> {
        let app = match job.inline {
            true => Some(inline::empty_run_dir(self.engine.state_dir()).map_err(EngineError::WarmDir)?),
            false => None,
        };
        let mut job = job.clone();
        if let Some(app) = &app {
            job.service.dir = app.path().to_path_buf();
        }
        let engine = self.engine.clone();
        let j = job.clone();
        // Preparing is synchronous (bundle and staging locks, file copies).
        let prepared = tokio::task::spawn_blocking(move || engine.prepare_warm(&j))
            .await
            .map_err(|e| EngineError::Supervisor(SupervisorError::NotReady(format!("preparation failed: {e}"))))??;
        let sandbox = self.engine.launch_warm(prepared, &job, &self.closing).await?;
        Ok((sandbox, app))
    }
}

/// Gives an inline code sandbox its job's files (linked from the run directory `code` into the
/// sandbox's own `app`); a service's sandbox gets none. A job whose code does not match the
/// sandbox's kind is refused (it cannot happen: the kind key says whether it is inline).
fn handover_files(app: Option<&InlineDir>, code: Option<&Path>) -> std::io::Result<()> {
    match (app, code) {
        (Some(app), Some(code)) => inline::link_into(code, app.path()),
        (None, None) => Ok(()),
        _ => Err(std::io::Error::other("the job's inline code does not match the sandbox's kind")),
    }
}

/// Kinds kept in the map before idle ones are forgotten: a kind is made by what a request asks
/// for (limits, an inline entry's name), so their number is the callers' to choose.
const MAX_KINDS: usize = 64;

/// Forgets kinds with nothing parked or starting that no group asks for now, once there are
/// more than [`MAX_KINDS`]: what is forgotten is only whether a kind could not be warm, which a
/// next request finds out again.
fn forget_idle(st: &mut State) {
    if st.kinds.len() <= MAX_KINDS {
        return;
    }
    let State { kinds, current, .. } = st;
    kinds.retain(|key, kind| kind.census().total() > 0 || current.values().any(|k| k == key));
}

/// Removes the kinds of sessions that have ended: dropping a parked sandbox's sender tells its
/// task to remove it, and a kind's template holds the session's uid.
fn forget_ended(st: &mut State) {
    let ended: Vec<String> = st.kinds.iter().filter(|(_, k)| k.ended()).map(|(key, _)| key.clone()).collect();
    for key in ended {
        if let Some(kind) = st.kinds.remove(&key) {
            st.current.remove(&(kind.group, kind.audit));
        }
    }
}

/// What a sandbox for `job` depends on, as a key: the service (its time limit aside, which the
/// job brings), the policy, audit mode, and the files its dependencies come from; for inline
/// code not its run directory (each sandbox has its own), and for a session its workspace and
/// uid. `None` for a job that cannot be served warm.
fn kind_key(job: &Job) -> Option<String> {
    if cold_only(job).is_some() {
        return None;
    }
    let mut service = job.service.clone();
    service.timeout_ms = 0;
    let stamp = match job.inline {
        true => {
            service.dir = std::path::PathBuf::new();
            Vec::new()
        }
        false => source_stamp(&service.dir),
    };
    let session = job.workspace.as_ref().map(|ws| (ws, job.identity.as_ref().map(|id| id.uid())));
    Some(format!(
        "{service:?}\n{:?}\naudit={}\ninline={}\n{stamp:?}\nsession={session:?}",
        job.policy, job.audit, job.inline
    ))
}

/// Identity of the files that decide which node_modules a run sees: a change to any of them
/// makes a new kind, so no parked sandbox runs with dependencies that are no longer the
/// service's. (The service directory itself is mounted live.)
fn source_stamp(dir: &Path) -> Vec<Option<(i64, i64, u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    std::iter::once("node_modules")
        .chain(std::iter::once(crate::store::deps::MANIFEST))
        .chain(crate::store::deps::LOCKFILES.iter().copied())
        .map(|name| {
            std::fs::symlink_metadata(dir.join(name)).ok().map(|m| (m.mtime(), m.mtime_nsec(), m.ino(), m.len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::service::{Overrides, PassEnv, RawService};

    fn job(dir: &Path, memory_mb: u32) -> Job {
        std::fs::write(dir.join("index.ts"), "").unwrap();
        let raw = RawService { name: Some(INLINE_NAME.into()), memory_mb: Some(memory_mb), ..RawService::default() };
        let service =
            crate::data::service::resolve(raw, dir, Path::new("t"), false, &Overrides::default(), &PassEnv::none())
                .unwrap();
        Job {
            service,
            input: "{\"secret\":1}".into(),
            policy: crate::data::policy::builtin_only(false).unwrap().policy,
            grace: Duration::from_millis(1),
            workspace: None,
            audit: false,
            identity: None,
            inline: true,
            session_end: None,
            io: Default::default(),
        }
    }

    #[test]
    fn kinds_beyond_the_bound_are_forgotten_unless_busy_or_current() {
        let d = tempfile::tempdir().unwrap();
        let mut st = State::default();
        for mb in 0..(MAX_KINDS as u32 + 10) {
            let j = job(d.path(), 64 + mb);
            let mut kind = Kind::new(&j);
            // A kind never carries the input of the request that made it.
            assert_eq!(kind.template.input, "{}");
            if mb == 3 {
                kind.starting = 1;
            }
            st.kinds.insert(format!("k{mb}"), kind);
        }
        st.current.insert((Group::Service(INLINE_NAME.into()), false), "k7".into());
        forget_idle(&mut st);
        let mut left: Vec<&String> = st.kinds.keys().collect();
        left.sort();
        assert_eq!(left, ["k3", "k7"]);
        // Within the bound nothing is forgotten.
        forget_idle(&mut st);
        assert_eq!(st.kinds.len(), 2);
    }

    #[test]
    fn an_inline_kind_does_not_depend_on_the_run_directory_or_the_input() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ja, mut jb) = (job(a.path(), 64), job(b.path(), 64));
        jb.input = "{}".into();
        assert_eq!(kind_key(&ja), kind_key(&jb));
        assert!(kind_key(&ja).is_some());
        // Limits make another kind; so does a service (not inline) in the same directory.
        assert_ne!(kind_key(&ja), kind_key(&job(a.path(), 80)));
        let mut service = job(a.path(), 64);
        service.inline = false;
        assert_ne!(kind_key(&ja), kind_key(&service));
    }
}
