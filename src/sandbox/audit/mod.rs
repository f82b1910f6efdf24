//! Audit mode's seccomp agent: one listener per run that receives the seccomp notification
//! descriptor from the OCI runtime, answers every notified syscall with EPERM and records it
//! (with one narrow exception: in runs with spawning off, the three process-creation calls that
//! start the runtime are let through, judged on pids and register values only, see
//! [`crate::sandbox::audit::gate`]); plus the assembly of the report's `securityAudit` from those events, the
//! cgroup's OOM and pids counters and the stops ignite made.
//!
//! Protocol (runc ≥ 1.1, `linux.seccomp.listenerPath`): after loading the filter, the runtime's
//! parent process connects to the unix socket and sends, in one `sendmsg`, the JSON
//! `ContainerProcessState` (`{"ociVersion","fds":["seccompFd"],"pid","metadata","state"}`) with
//! the listener descriptor as SCM_RIGHTS, the n-th descriptor named by `fds[n]`. The socket is
//! bound before the runtime starts, so the runtime never waits for us to be ready.
//!
//! Bounds: at most [`MAX_KEPT_EVENTS`] events are kept (all are counted); after
//! [`MAX_NOTIFICATIONS`] the listener descriptor is closed, after which the kernel fails every
//! further notified call with ENOSYS by itself, at no cost to the host. Pointer arguments
//! (paths, structs) are never read from the sandbox's memory: the thread that made the call can
//! change them at any time, and they would only say what the program chose to put there.

pub mod gate;

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::data::report::{AuditStatus, SecurityAudit, SecurityEvent, Verdict};
use crate::fsutil::{At, IoError};
use crate::sandbox::audit::gate::{Caller, Decision, SpawnGate, Step};
use crate::sandbox::spec::seccomp::{FilterMode, SeccompProfile, Syscall};
use crate::sys;

/// Events listed in the report; later ones are only counted.
pub const MAX_KEPT_EVENTS: usize = 100;
/// Notifications answered per run before the listener closes (≈ 30 µs of host CPU each).
pub const MAX_NOTIFICATIONS: u64 = 10_000;
/// The listener socket's name in the run directory.
pub const SOCKET_NAME: &str = "seccomp.sock";
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// The runtime's message is a few KiB; more is refused.
const MAX_STATE_BYTES: usize = 64 * 1024;
/// How long the runtime may take to send its message once connected.
const STATE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the listener waits for the entrypoint's pins when the runtime's exec arrives
/// first (the entrypoint writes them before it forks, so they are normally there already).
const PINS_WAIT: Duration = Duration::from_secs(5);
/// `AUDIT_ARCH_X86_64`: the only architecture the profile admits.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "audit mode needs a unix socket at {path}, whose path is {len} bytes long (the limit is {MAX_SOCKET_PATH}); use a shorter --state-dir"
    )]
    PathTooLong { path: PathBuf, len: usize },
    /// The operation names the listener ("bind the audit listener at").
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(
        "this kernel's seccomp notification structures differ from the ones ignite was built for; audit mode cannot listen here"
    )]
    KernelMismatch,
}

/// What one audit-mode run needs: the profile (to name event kinds), the filter mode it was
/// built with, and where the listener socket goes.
#[derive(Debug, Clone)]
pub struct AuditPlan {
    pub profile: Arc<SeccompProfile>,
    pub mode: FilterMode,
    pub socket: PathBuf,
}

impl AuditPlan {
    /// The plan for a run whose directory is `run_dir`; refuses socket paths the kernel cannot
    /// bind, before anything is started.
    /// `spawn_off`: the policy forbids spawning, and the listener enforces it (process
    /// creation is notified, see [`crate::sandbox::audit::gate`]).
    pub fn new(
        profile: Arc<SeccompProfile>,
        network: bool,
        spawn_off: bool,
        run_dir: &Path,
    ) -> Result<AuditPlan, AuditError> {
        let socket = run_dir.join(SOCKET_NAME);
        let len = socket.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(AuditError::PathTooLong { path: socket, len });
        }
        Ok(AuditPlan { profile, mode: FilterMode::Audit { network, spawn_off }, socket })
    }

    fn spawn_off(&self) -> bool {
        matches!(self.mode, FilterMode::Audit { spawn_off: true, .. })
    }

    /// Syscall names the filter reports, sorted.
    pub fn audited_syscalls(&self) -> Vec<String> {
        self.profile.notified_syscalls(self.mode).into_iter().map(str::to_string).collect()
    }
}

/// What the listener saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    pub events: Vec<SecurityEvent>,
    pub counts: BTreeMap<String, u64>,
    /// Notifications answered.
    pub notifications: u64,
    /// Events counted but not kept.
    pub dropped: u64,
    pub limit_reached: bool,
    /// Whether the runtime handed over the notification descriptor.
    pub connected: bool,
    /// Process-creation calls let through (the runtime's start; not events).
    pub continued: u64,
    /// Why listening stopped early, if it did.
    pub error: Option<String>,
}

impl Collected {
    /// Counts an event and keeps it if there is room; bounded whatever the event rate.
    fn record(&mut self, event: SecurityEvent) {
        *self.counts.entry(event.kind.clone()).or_insert(0) += 1;
        if self.events.len() < MAX_KEPT_EVENTS {
            self.events.push(event);
        } else {
            self.dropped += 1;
        }
    }
}

/// The entrypoint's pins, handed from the supervisor's report reader to the listener thread.
#[derive(Default)]
struct PinSlot {
    pins: Mutex<Option<[u64; 3]>>,
    arrived: Condvar,
}

impl PinSlot {
    fn get(&self) -> Option<[u64; 3]> {
        *self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait(&self, limit: Duration) -> Option<[u64; 3]> {
        let guard = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) =
            self.arrived.wait_timeout_while(guard, limit, |p| p.is_none()).unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// The per-run listener: a socket in the run directory and one thread that serves it.
pub struct Listener {
    /// Dropping it wakes the thread (its read end hangs up).
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<Collected>>,
    socket: PathBuf,
    pins: Arc<PinSlot>,
    origin: Arc<Mutex<Instant>>,
}

impl Listener {
    /// Binds the socket (the run directory must exist) and starts the thread. `origin` is the
    /// instant event times count from.
    pub fn start(plan: &AuditPlan, origin: Instant) -> Result<Listener, AuditError> {
        // Every step names the listener: "failed to bind the audit listener at PATH: ...".
        if !sys::seccomp_notif_sizes_match().at("check the kernel for the audit listener at", &plan.socket)? {
            return Err(AuditError::KernelMismatch);
        }
        let _ = std::fs::remove_file(&plan.socket);
        let listener = UnixListener::bind(&plan.socket).at("bind the audit listener at", &plan.socket)?;
        listener.set_nonblocking(true).at("configure the audit listener at", &plan.socket)?;
        let (stop_r, stop_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .at("create a pipe for the audit listener at", &plan.socket)?;
        let pins = Arc::new(PinSlot::default());
        let origin = Arc::new(Mutex::new(origin));
        let worker = Worker {
            profile: plan.profile.clone(),
            mode: plan.mode,
            origin: origin.clone(),
            spawn_off: plan.spawn_off(),
            pins: pins.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("ignite-audit".into())
            .spawn(move || worker.serve(listener, stop_r))
            .at("start a thread for the audit listener at", &plan.socket)?;
        Ok(Listener { stop: Some(stop_w), thread: Some(thread), socket: plan.socket.clone(), pins, origin })
    }

    /// Event times count from `origin` from now on: a warm sandbox's run starts at its
    /// handover, not when the sandbox was launched.
    pub fn restart_clock(&self, origin: Instant) {
        *self.origin.lock().unwrap_or_else(|e| e.into_inner()) = origin;
    }

    /// The pins the entrypoint reported (only the first report counts: it is written before
    /// anything from the sandbox runs).
    pub fn give_pins(&self, pins: [u64; 3]) {
        let mut slot = self.pins.pins.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(pins);
            self.pins.arrived.notify_all();
        }
    }

    /// Stops listening (the descriptors close, the thread ends) and returns what was seen.
    pub fn finish(mut self) -> Collected {
        self.stop.take();
        let collected = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(c)) => c,
            _ => Collected { error: Some("the audit listener thread failed".into()), ..Collected::default() },
        };
        let _ = std::fs::remove_file(&self.socket);
        collected
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

struct Worker {
    profile: Arc<SeccompProfile>,
    mode: FilterMode,
    origin: Arc<Mutex<Instant>>,
    /// Whether process creation is notified (and so gated) in this run.
    spawn_off: bool,
    pins: Arc<PinSlot>,
}

impl Worker {
    fn serve(self, listener: UnixListener, stop: OwnedFd) -> Collected {
        let mut c = Collected::default();
        let notify = match self.receive_fd(&listener, &stop) {
            Ok(Some(fd)) => fd,
            Ok(None) => return c,
            Err(e) => {
                c.error = Some(e);
                return c;
            }
        };
        // One runtime, one connection: nobody else gets to talk to us.
        drop(listener);
        c.connected = true;
        let mut gate = self.spawn_off.then(SpawnGate::default);
        self.answer(notify, &stop, &mut c, gate.as_mut());
        c
    }

    /// Waits for the runtime's connection and takes the descriptor named `seccompFd`; `None`
    /// when the run ended first (e.g. the runtime failed before loading the filter).
    fn receive_fd(&self, listener: &UnixListener, stop: &OwnedFd) -> Result<Option<OwnedFd>, String> {
        let stream = loop {
            let ready = sys::poll_in(&[listener.as_raw_fd(), stop.as_raw_fd()], -1).map_err(|e| e.to_string())?;
            if ready[1] != 0 {
                return Ok(None);
            }
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        let deadline = Instant::now() + STATE_TIMEOUT;
        let mut buf = vec![0u8; MAX_STATE_BYTES];
        let mut len = 0;
        let mut fds = Vec::new();
        // One sendmsg on a stream socket normally arrives whole; keep reading if it did not.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ready = sys::poll_in(&[stream.as_raw_fd(), stop.as_raw_fd()], left.as_millis() as i32)
                .map_err(|e| e.to_string())?;
            if ready[1] != 0 {
                return Ok(None);
            }
            if ready[0] == 0 {
                return Err("the OCI runtime connected but sent no listener descriptor in time".into());
            }
            let (n, got) = sys::recv_with_fds(stream.as_raw_fd(), &mut buf[len..]).map_err(|e| e.to_string())?;
            fds.extend(got);
            len += n;
            if let Some(index) = seccomp_fd_index(&buf[..len])? {
                if index >= fds.len() {
                    return Err(format!("the OCI runtime named descriptor {index} but sent {}", fds.len()));
                }
                return Ok(Some(fds.swap_remove(index)));
            }
            if n == 0 || len == buf.len() {
                return Err("the OCI runtime's message is not a container process state".into());
            }
        }
    }

    /// Answers notifications until the run ends, the sandbox's last filtered task is gone, or
    /// the notification limit is reached.
    fn answer(&self, notify: OwnedFd, stop: &OwnedFd, c: &mut Collected, mut gate: Option<&mut SpawnGate>) {
        loop {
            let ready = match sys::poll_in(&[notify.as_raw_fd(), stop.as_raw_fd()], -1) {
                Ok(r) => r,
                Err(e) => {
                    c.error = Some(format!("poll: {e}"));
                    return;
                }
            };
            if ready[0] & libc::POLLIN != 0 {
                match sys::seccomp_notif_recv(&notify) {
                    Ok(n) => {
                        if let Some(g) = gate.as_deref_mut() {
                            match self.judge(g, &notify, &n) {
                                Judged::Run(step) => {
                                    match sys::seccomp_notif_send(&notify, &sys::seccomp_notif_continue(n.id)) {
                                        Ok(()) => c.continued += 1,
                                        Err(_) => g.undo(step),
                                    }
                                    continue;
                                }
                                Judged::Gone => continue,
                                Judged::Deny => {}
                            }
                        }
                        let keep = c.events.len() < MAX_KEPT_EVENTS;
                        let event = self.event(&notify, &n, keep);
                        // Answer first: the thread is suspended until then.
                        let _ = sys::seccomp_notif_send(&notify, &sys::seccomp_notif_deny(n.id));
                        c.notifications += 1;
                        c.record(event);
                        if c.notifications >= MAX_NOTIFICATIONS {
                            c.limit_reached = true;
                            // Closing the descriptor makes the kernel answer ENOSYS itself.
                            return;
                        }
                    }
                    // The calling thread was killed between poll and receive.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => {
                        c.error = Some(format!("receive: {e}"));
                        return;
                    }
                }
                continue;
            }
            // No task uses the filter any more, or the run is over.
            if ready[0] != 0 || ready[1] != 0 {
                return;
            }
        }
    }

    /// Whether a notified call is one of the runtime's start (see [`crate::sandbox::audit::gate`]).
    /// Only `/proc/<pid>/status` is read, and trusted only if the call is still pending after
    /// the read (so the pid still names the caller); the sandbox's memory is never read.
    fn judge(&self, gate: &mut SpawnGate, notify: &OwnedFd, n: &sys::SeccompNotif) -> Judged {
        let Some(syscall) = Syscall::from_number(n.nr).filter(|_| n.arch == AUDIT_ARCH_X86_64) else {
            return Judged::Deny;
        };
        if !matches!(syscall.name(), "execve" | "fork" | "vfork" | "clone") {
            return Judged::Deny;
        }
        let status = std::fs::read_to_string(Path::new("/proc").join(n.pid.to_string()).join("status"));
        let (sandbox_pid, parent_host_pid) =
            status.map_or((None, None), |s| crate::sandbox::audit::gate::parse_status(&s));
        // No longer pending: a signal interrupted the call (the kernel notifies it again when
        // it restarts; Go's preemption signal does this to runc's exec of the entrypoint) or
        // its thread died. Either way it did not run; it is judged if it comes back.
        if !sys::seccomp_notif_id_valid(notify, n.id) {
            return Judged::Gone;
        }
        let caller = Caller { host_pid: n.pid, sandbox_pid, parent_host_pid };
        let decision = match gate.decide(syscall.name(), &n.args, &caller, self.pins.get(), true) {
            Decision::NeedPins => {
                let pins = self.pins.wait(PINS_WAIT);
                if !sys::seccomp_notif_id_valid(notify, n.id) {
                    return Judged::Gone;
                }
                gate.decide(syscall.name(), &n.args, &caller, pins, false)
            }
            d => d,
        };
        match decision {
            Decision::Continue(step) => Judged::Run(step),
            Decision::Deny | Decision::NeedPins => Judged::Deny,
        }
    }

    fn event(&self, notify: &OwnedFd, n: &sys::SeccompNotif, detailed: bool) -> SecurityEvent {
        let syscall = Syscall::from_number(n.nr).filter(|_| n.arch == AUDIT_ARCH_X86_64);
        let name = syscall.map_or_else(|| format!("syscall_{}", n.nr), |s| s.name().to_string());
        let kind = self
            .profile
            .audit_rule_for(self.mode, &name, &n.args)
            .and_then(|r| r.audit())
            .map_or_else(|| "syscall".to_string(), |m| m.kind().to_string());
        let mut event = SecurityEvent {
            time_ms: self.origin.lock().unwrap_or_else(|e| e.into_inner()).elapsed().as_secs_f64() * 1000.0,
            kind,
            syscall: Some(name),
            args: BTreeMap::new(),
            pid: None,
            count: None,
            verdict: Verdict::Denied,
        };
        if detailed {
            event.args = describe_args(event.syscall.as_deref().unwrap_or(""), &n.args);
            // The pid as the sandbox numbers it; trusted only if the call is still pending
            // after the read (otherwise the host pid may already name another process).
            let pid = sandbox_pid(Path::new("/proc"), n.pid);
            event.pid = pid.filter(|_| sys::seccomp_notif_id_valid(notify, n.id));
        }
        event
    }
}

/// What the listener does with a process-creation call.
enum Judged {
    /// Let it run (one of the runtime's start).
    Run(Step),
    /// EPERM and an event.
    Deny,
    /// No longer pending: no answer, no event.
    Gone,
}

/// The index of `seccompFd` in the message's `fds`, once the message is complete JSON.
fn seccomp_fd_index(msg: &[u8]) -> Result<Option<usize>, String> {
    #[derive(serde::Deserialize)]
    struct State {
        fds: Vec<String>,
    }
    match serde_json::from_slice::<State>(msg) {
        Ok(state) => state
            .fds
            .iter()
            .position(|f| f == "seccompFd")
            .map(Some)
            .ok_or_else(|| format!("the OCI runtime sent descriptors {:?} but no seccompFd", state.fds)),
        Err(e) if e.is_eof() => Ok(None),
        Err(e) => Err(format!("the OCI runtime's message is not a container process state: {e}")),
    }
}

/// The innermost pid of `/proc/<pid>/status`'s `NSpid` line: the pid inside the sandbox.
fn sandbox_pid(proc_root: &Path, host_pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(proc_root.join(host_pid.to_string()).join("status")).ok()?;
    parse_nspid(&status)
}

fn parse_nspid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// Register arguments worth showing, decoded; pointers are left out on purpose.
pub fn describe_args(syscall: &str, a: &[u64; 6]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    let hex = |v: u64| format!("{v:#x}");
    match syscall {
        "socket" => {
            put("family", family_name(a[0]));
            put("type", socket_type(a[1]));
            put("protocol", a[2].to_string());
        }
        "mount" => put("flags", hex(a[3])),
        "umount2" => put("flags", hex(a[1])),
        "unshare" => put("flags", clone_flags(a[0])),
        "clone" => put("flags", hex(a[0])),
        "setns" => {
            put("fd", (a[0] as i32).to_string());
            put("nstype", if a[1] == 0 { "any".into() } else { clone_flags(a[1]) });
        }
        "ptrace" => {
            put("request", ptrace_request(a[0]));
            put("pid", (a[1] as i32).to_string());
        }
        "process_vm_readv" | "process_vm_writev" => put("pid", (a[0] as i32).to_string()),
        "bpf" => put("cmd", bpf_cmd(a[0])),
        "keyctl" => put("operation", a[0].to_string()),
        "perf_event_open" => {
            put("pid", (a[1] as i32).to_string());
            put("cpu", (a[2] as i32).to_string());
        }
        "userfaultfd" => put("flags", hex(a[0])),
        "open_by_handle_at" => {
            put("mountFd", (a[0] as i32).to_string());
            put("flags", hex(a[2]));
        }
        "fsopen" | "fspick" | "fsmount" => put("flags", hex(a[1])),
        "open_tree" | "open_tree_attr" => put("flags", hex(a[2])),
        "move_mount" => put("flags", hex(a[4])),
        "mount_setattr" => put("flags", hex(a[2])),
        "fsconfig" => put("cmd", a[1].to_string()),
        "reboot" => put("cmd", hex(a[2])),
        "iopl" => put("level", a[0].to_string()),
        _ => {}
    }
    m
}

fn family_name(f: u64) -> String {
    match f {
        1 => "AF_UNIX".into(),
        2 => "AF_INET".into(),
        10 => "AF_INET6".into(),
        16 => "AF_NETLINK".into(),
        17 => "AF_PACKET".into(),
        n => n.to_string(),
    }
}

fn socket_type(t: u64) -> String {
    let base = match t & 0xf {
        1 => "SOCK_STREAM".to_string(),
        2 => "SOCK_DGRAM".to_string(),
        3 => "SOCK_RAW".to_string(),
        5 => "SOCK_SEQPACKET".to_string(),
        n => n.to_string(),
    };
    let mut parts = vec![base];
    if t & libc::SOCK_NONBLOCK as u64 != 0 {
        parts.push("SOCK_NONBLOCK".into());
    }
    if t & libc::SOCK_CLOEXEC as u64 != 0 {
        parts.push("SOCK_CLOEXEC".into());
    }
    parts.join("|")
}

fn clone_flags(f: u64) -> String {
    const NAMES: [(u64, &str); 8] = [
        (0x0002_0000, "CLONE_NEWNS"),
        (0x0200_0000, "CLONE_NEWCGROUP"),
        (0x0400_0000, "CLONE_NEWUTS"),
        (0x0800_0000, "CLONE_NEWIPC"),
        (0x1000_0000, "CLONE_NEWUSER"),
        (0x2000_0000, "CLONE_NEWPID"),
        (0x4000_0000, "CLONE_NEWNET"),
        (0x0000_0080, "CLONE_NEWTIME"),
    ];
    let mut parts: Vec<String> = NAMES.iter().filter(|(bit, _)| f & bit != 0).map(|(_, n)| n.to_string()).collect();
    let rest = NAMES.iter().fold(f, |acc, (bit, _)| acc & !bit);
    if rest != 0 || parts.is_empty() {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

fn ptrace_request(r: u64) -> String {
    match r {
        0 => "PTRACE_TRACEME".into(),
        16 => "PTRACE_ATTACH".into(),
        17 => "PTRACE_DETACH".into(),
        0x4206 => "PTRACE_SEIZE".into(),
        n => n.to_string(),
    }
}

fn bpf_cmd(c: u64) -> String {
    match c {
        0 => "BPF_MAP_CREATE".into(),
        5 => "BPF_PROG_LOAD".into(),
        n => n.to_string(),
    }
}

/// What ignite itself observed, to be listed beside the kernel's notifications.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Time of the stop (ms since launch) and which one.
    pub timeout_at: Option<f64>,
    pub output_limit_at: Option<(f64, &'static str)>,
    /// Counters read from the cgroup when the program had exited, and when (ms since launch).
    pub oom_kills: u64,
    pub pids_limit_hits: u64,
    pub counters_at: f64,
}

/// The report section: the listener's events, then the cgroup's and ignite's own.
pub fn assemble(plan: &AuditPlan, mut c: Collected, seen: &Observed) -> SecurityAudit {
    let notifications = c.notifications;
    let mut extra = |kind: &str, time_ms: f64, count: Option<u64>, verdict: Verdict, args: BTreeMap<String, String>| {
        let event = SecurityEvent { time_ms, kind: kind.to_string(), syscall: None, args, pid: None, count, verdict };
        // A counter is one event carrying its count, counted as that many in `counts`.
        let n = count.unwrap_or(1);
        *c.counts.entry(event.kind.clone()).or_insert(0) += n.saturating_sub(1);
        c.record(event);
    };
    if seen.oom_kills > 0 {
        extra("oom", seen.counters_at, Some(seen.oom_kills), Verdict::Killed, BTreeMap::new());
    }
    if seen.pids_limit_hits > 0 {
        extra("pids_limit", seen.counters_at, Some(seen.pids_limit_hits), Verdict::Denied, BTreeMap::new());
    }
    if let Some(t) = seen.timeout_at {
        extra("timeout", t, None, Verdict::Stopped, BTreeMap::new());
    }
    if let Some((t, stream)) = seen.output_limit_at {
        extra("output_limit", t, None, Verdict::Stopped, BTreeMap::from([("stream".to_string(), stream.to_string())]));
    }
    let total: u64 = c.counts.values().sum();
    // Events are listed in time order: the stops and counters come last in the run anyway.
    c.events.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
    SecurityAudit {
        overall_status: if total == 0 { AuditStatus::Clean } else { AuditStatus::Violations },
        counts: c.counts,
        events: c.events,
        dropped: c.dropped,
        events_limit: MAX_KEPT_EVENTS as u64,
        notifications,
        notification_limit: MAX_NOTIFICATIONS,
        notification_limit_reached: c.limit_reached,
        audited_syscalls: plan.audited_syscalls(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> AuditPlan {
        AuditPlan::new(Arc::new(SeccompProfile::builtin().unwrap()), false, false, Path::new("/run/ignite/runs/ig-1"))
            .unwrap()
    }

    #[test]
    fn continue_is_only_the_flag_and_only_for_the_gate() {
        let resp = sys::seccomp_notif_continue(7);
        assert_eq!((resp.id, resp.val, resp.error), (7, 0, 0));
        assert_eq!(resp.flags, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32);
        // The gate exists only when process creation is notified.
        let profile = Arc::new(SeccompProfile::builtin().unwrap());
        let run = Path::new("/run/ignite/runs/ig-1");
        assert!(!AuditPlan::new(profile.clone(), false, false, run).unwrap().spawn_off());
        assert!(AuditPlan::new(profile, true, true, run).unwrap().spawn_off());
    }

    #[test]
    fn the_only_answer_is_eperm_without_continue() {
        for id in [0, 1, u64::MAX] {
            let resp = sys::seccomp_notif_deny(id);
            assert_eq!(resp.id, id);
            assert_eq!(resp.error, -libc::EPERM);
            assert_eq!(resp.val, 0);
            assert_eq!(resp.flags & libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32, 0);
            assert_eq!(resp.flags, 0);
        }
    }

    #[test]
    fn socket_paths_too_long_for_the_kernel_are_refused_up_front() {
        let profile = Arc::new(SeccompProfile::builtin().unwrap());
        let long = PathBuf::from("/").join("d".repeat(120));
        let err = AuditPlan::new(profile, false, false, &long).unwrap_err();
        assert!(err.to_string().contains("--state-dir"), "{err}");
    }

    #[test]
    fn arguments_are_decoded_without_pointers() {
        let a = describe_args("socket", &[2, 1 | 0o2000000, 0, 0, 0, 0]);
        assert_eq!(a["family"], "AF_INET");
        assert_eq!(a["type"], "SOCK_STREAM|SOCK_CLOEXEC");
        assert_eq!(
            describe_args("unshare", &[0x1000_0000 | 0x0002_0000, 0, 0, 0, 0, 0])["flags"],
            "CLONE_NEWNS|CLONE_NEWUSER"
        );
        assert_eq!(describe_args("ptrace", &[16, 1, 0, 0, 0, 0])["request"], "PTRACE_ATTACH");
        assert_eq!(describe_args("bpf", &[5, 0x7fff_0000, 0, 0, 0, 0])["cmd"], "BPF_PROG_LOAD");
        // mount's source and target are pointers: only the flags are shown.
        let m = describe_args("mount", &[0x1000, 0x2000, 0x3000, 0x20, 0x4000, 0]);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["flags"]);
        assert!(describe_args("kexec_load", &[1, 2, 3, 4, 5, 6]).is_empty());
    }

    #[test]
    fn nspid_gives_the_innermost_pid() {
        assert_eq!(parse_nspid("Name:\tbun\nNSpid:\t41233\t2\nNSsid:\t1\n"), Some(2));
        assert_eq!(parse_nspid("Name:\tx\nNSpid:\t7\n"), Some(7));
        assert_eq!(parse_nspid("Name:\tx\n"), None);
    }

    #[test]
    fn runtime_message_names_the_descriptor() {
        let msg = br#"{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":5,"state":{"id":"x"}}"#;
        assert_eq!(seccomp_fd_index(msg), Ok(Some(0)));
        assert_eq!(seccomp_fd_index(&msg[..20]), Ok(None), "incomplete: keep reading");
        assert!(seccomp_fd_index(br#"{"fds":["other"]}"#).is_err());
        assert!(seccomp_fd_index(b"garbage").is_err());
    }

    fn syscall_event(kind: &str, t: f64) -> SecurityEvent {
        SecurityEvent {
            time_ms: t,
            kind: kind.into(),
            syscall: Some("mount".into()),
            args: BTreeMap::new(),
            pid: Some(2),
            count: None,
            verdict: Verdict::Denied,
        }
    }

    #[test]
    fn memory_is_bounded_and_every_event_counted() {
        let mut c = Collected::default();
        for i in 0..(MAX_KEPT_EVENTS as u64 * 3) {
            c.record(syscall_event("mount", i as f64));
            c.notifications += 1;
        }
        let audit = assemble(&plan(), c, &Observed::default());
        assert_eq!(audit.events.len(), MAX_KEPT_EVENTS);
        assert_eq!(audit.counts["mount"], MAX_KEPT_EVENTS as u64 * 3);
        assert_eq!(audit.dropped, MAX_KEPT_EVENTS as u64 * 2);
        assert_eq!(audit.overall_status, AuditStatus::Violations);
    }

    #[test]
    fn clean_run_is_clean_and_lists_what_was_watched() {
        let audit = assemble(&plan(), Collected { connected: true, ..Default::default() }, &Observed::default());
        assert_eq!(audit.overall_status, AuditStatus::Clean);
        assert!(audit.counts.is_empty() && audit.events.is_empty() && audit.dropped == 0);
        for name in ["mount", "unshare", "ptrace", "bpf", "keyctl", "perf_event_open", "userfaultfd", "socket"] {
            assert!(audit.audited_syscalls.iter().any(|s| s == name), "{name} not audited");
        }
    }

    #[test]
    fn counters_and_stops_become_events() {
        let seen = Observed {
            timeout_at: Some(50.0),
            output_limit_at: Some((40.0, "stderr")),
            oom_kills: 2,
            pids_limit_hits: 3,
            counters_at: 60.0,
        };
        let mut c = Collected::default();
        c.record(syscall_event("network", 10.0));
        let audit = assemble(&plan(), c, &seen);
        let kinds: Vec<&str> = audit.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["network", "output_limit", "timeout", "oom", "pids_limit"]);
        assert_eq!(audit.counts["oom"], 2);
        assert_eq!(audit.counts["pids_limit"], 3);
        assert_eq!(audit.counts["timeout"], 1);
        assert_eq!(audit.events[3].verdict, Verdict::Killed);
        assert_eq!(audit.events[3].count, Some(2));
        assert_eq!(audit.events[1].args["stream"], "stderr");
        assert_eq!(audit.dropped, 0);
    }
}
