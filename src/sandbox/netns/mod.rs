//! User-mode networking for sandboxes that are granted a network (the dependency install
//! step, and runs whose policy sets `security.network.enabled: true`). It is never the host's
//! network namespace:
//!
//! - ignite creates a fresh network namespace in a thread of its own that holds it until the
//!   sandbox is over (the thread's `/proc/<pid>/task/<tid>/ns/net` is what the spec joins), so
//!   the namespace cannot outlive ignite, however ignite ends;
//! - slirp4netns, a user-mode TCP/IP stack, gives it a tap interface and a default route and
//!   makes the connections on its behalf from the host. It runs sandboxed (`--enable-sandbox`,
//!   `--enable-seccomp`), cannot reach the host's loopback (`--disable-host-loopback`), and
//!   exits as soon as ignite closes its end of the `--exit-fd` pipe — including when ignite is
//!   killed;
//! - inside the namespace, routes make the host's own addresses, the networks it is attached
//!   to, loopback, link-local (cloud metadata services), private and other special-purpose
//!   ranges unreachable: the sandbox reaches the public internet, and nothing else;
//! - a generated resolv.conf names slirp4netns's DNS forwarder, which asks the host's resolver.
//!
//! Rootless (ignite run by a normal user, see [`crate::sandbox::userns`]) the network namespace
//! must belong to a user namespace the user owns, and the sandbox joins both: a child process of
//! ignite (a thread cannot, see [`crate::sys::spawn_ns_holder`]) creates them and holds them
//! until the sandbox is over (ending when ignite does), `newuidmap`/`newgidmap` give that user
//! namespace exactly the maps a rootless sandbox's own gets (container 0 → the user, the run
//! uids → the user's subordinate ids, read back and checked), `ip` adds the routes from inside
//! it, and slirp4netns enters it by the holder's pid.
//!
//! [`UserNet`] bundles all of it; [`layout`] is the pure addressing part.

pub mod layout;

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::AsyncReadExt;

pub use layout::{Layout, Net4, NoSubnet, host_networks};

use crate::sandbox::spec::{NetnsGrant, NetworkAttach, NsId, UsernsGrant};
use crate::sandbox::userns::{HolderError, IdMaps, MappedNamespaces, Mapper};

/// How long slirp4netns may take to configure the namespace.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The interface slirp4netns creates inside the namespace.
const TAP: &str = "tap0";
/// slirp4netns's largest MTU: fewer, larger packets through the user-mode stack.
const MTU: u32 = 65520;
/// Files [`UserNet::start`] writes into the directory it is given.
pub const RESOLV_CONF_FILE: &str = "resolv.conf";
pub const SLIRP_LOG_FILE: &str = "slirp.log";

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(
        "{purpose} needs `{tool}` for its user-mode network, and it is not in PATH; install it (Debian/Ubuntu: apt-get install {package})"
    )]
    MissingTool { purpose: &'static str, tool: &'static str, package: &'static str },
    #[error("failed to create a network namespace: {0}")]
    Namespace(String),
    #[error("failed to start slirp4netns: {0}")]
    Spawn(std::io::Error),
    #[error("slirp4netns did not set up the network: {0}")]
    Slirp(String),
    #[error(transparent)]
    NoSubnet(#[from] NoSubnet),
    #[error("failed to write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("rootless network: {0}")]
    UserNamespace(#[from] HolderError),
}

/// Finds a tool in PATH; `purpose` says who needs it (in the error when it is missing).
pub fn find_tool(purpose: &'static str, name: &'static str, package: &'static str) -> Result<PathBuf, NetError> {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|c| c.is_file()))
        .ok_or(NetError::MissingTool { purpose, tool: name, package })
}

/// The host programs a user-mode network needs, found before anything is set up.
#[derive(Debug, Clone)]
pub struct Tools {
    ip: PathBuf,
    slirp4netns: PathBuf,
}

impl Tools {
    /// `purpose` names what asked for the network, e.g. "the dependency install".
    pub fn find(purpose: &'static str) -> Result<Tools, NetError> {
        Ok(Tools {
            ip: find_tool(purpose, "ip", "iproute2")?,
            slirp4netns: find_tool(purpose, "slirp4netns", "slirp4netns")?,
        })
    }
}

/// A network namespace with slirp4netns serving it, and the resolv.conf that goes with it.
/// Dropping it stops slirp4netns, then releases the namespace (fields drop in this order).
pub struct UserNet {
    slirp: Slirp,
    netns: Netns,
    resolv_conf: PathBuf,
}

impl UserNet {
    /// Sets the network up; `dir` (owned by the caller, no one else's) receives resolv.conf
    /// and slirp4netns's log. `owner` (rootless) makes the user namespace that is to own the
    /// network namespace, with the sandbox's maps; `None` as root.
    pub async fn start(tools: &Tools, dir: &Path, owner: Option<&Mapper>) -> Result<UserNet, NetError> {
        let layout = Layout::for_host(&host_networks())?;
        let resolv_conf = dir.join(RESOLV_CONF_FILE);
        std::fs::write(&resolv_conf, layout.resolv_conf())
            .map_err(|source| NetError::Write { path: resolv_conf.clone(), source })?;
        let netns = match owner {
            None => Netns::create(&layout, &tools.ip)?,
            Some(mapper) => Netns::create_owned(&layout, &tools.ip, mapper)?,
        };
        let slirp = Slirp::start(&tools.slirp4netns, &netns, &layout, &dir.join(SLIRP_LOG_FILE)).await?;
        tracing::debug!(pid = slirp.pid(), netns = %netns.grant().path.display(), "user-mode network ready");
        Ok(UserNet { slirp, netns, resolv_conf })
    }

    /// What the spec needs to join this network.
    pub fn attach(&self) -> NetworkAttach {
        NetworkAttach { netns: self.netns.grant().clone(), resolv_conf: self.resolv_conf.clone() }
    }

    /// Whether the granted path still names the namespace created (checked right before the
    /// OCI runtime is told to join it).
    pub fn still_ours(&self) -> bool {
        self.netns.still_ours()
    }

    pub fn slirp_pid(&self) -> u32 {
        self.slirp.pid()
    }
}

/// The attachment a spec gets to show what a run with a network will join, before the network
/// exists (`--print-spec`): the namespace paths are placeholders, filled in at run time.
pub fn preview_attach(resolv_conf: PathBuf, userns: Option<&IdMaps>) -> NetworkAttach {
    let placeholder = NsId { dev: 0, ino: 0 };
    let (path, userns) = match userns {
        None => (PathBuf::from("/proc/<ignite>/task/<netns thread>/ns/net"), None),
        Some(maps) => (
            PathBuf::from("/proc/<namespace holder>/ns/net"),
            Some(UsernsGrant {
                path: PathBuf::from("/proc/<namespace holder>/ns/user"),
                id: placeholder,
                maps: maps.clone(),
            }),
        ),
    };
    NetworkAttach { netns: NetnsGrant { path, id: placeholder, host: host_namespaces(), userns }, resolv_conf }
}

/// A network namespace held for as long as this value lives: as root by a thread of ignite,
/// rootless by a child process that also holds the user namespace owning it.
pub struct Netns {
    grant: NetnsGrant,
    holder: Holder,
}

enum Holder {
    Thread {
        stop: Option<mpsc::Sender<()>>,
        thread: Option<JoinHandle<()>>,
    },
    /// The network namespace stays open here too (the user namespace in the holder).
    Process {
        holder: MappedNamespaces,
        _net: OwnedFd,
    },
}

/// Runs `ip -batch -` (`cmd`, set up to start in the namespace) with `batch` on its stdin.
fn run_route_batch(mut cmd: Command, ip: &Path, batch: &str) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("{}: {e}", ip.display());
    cmd.args(["-batch", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(failed)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(batch.as_bytes()).map_err(|e| format!("writing routes to ip: {e}"))?;
    }
    let out = child.wait_with_output().map_err(failed)?;
    if !out.status.success() {
        return Err(format!("ip -batch failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

fn ns_id(path: &Path) -> std::io::Result<NsId> {
    let m = std::fs::metadata(path)?;
    Ok(NsId { dev: m.dev(), ino: m.ino() })
}

impl Netns {
    /// Creates the namespace with `layout`'s unreachable routes already in place (before any
    /// interface exists, so there is no instant in which they are missing).
    pub fn create(layout: &Layout, ip: &Path) -> Result<Netns, NetError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<i32, String>>(1);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let batch = layout.route_batch();
        let ip = ip.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("ignite-netns".into())
            .spawn(move || {
                let setup = (|| {
                    // Only this thread moves: the rest of ignite stays in the host's namespace.
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare: {e}"))?;
                    // A child started from this thread is born in its namespace.
                    run_route_batch(Command::new(&ip), &ip, &batch)?;
                    Ok(nix::unistd::gettid().as_raw())
                })();
                let ok = setup.is_ok();
                let _ = ready_tx.send(setup);
                if ok {
                    // Hold the namespace until told to stop (or until the sender is dropped).
                    let _ = stop_rx.recv();
                }
            })
            .map_err(|e| NetError::Namespace(format!("failed to start a thread: {e}")))?;
        let mut netns =
            Netns { grant: placeholder_grant(), holder: Holder::Thread { stop: Some(stop_tx), thread: Some(thread) } };
        let tid = ready_rx
            .recv()
            .map_err(|_| NetError::Namespace("the namespace thread ended early".into()))?
            .map_err(NetError::Namespace)?;
        let path = PathBuf::from(format!("/proc/{}/task/{tid}/ns/net", std::process::id()));
        let id = ns_id(&path).map_err(|e| NetError::Namespace(format!("{}: {e}", path.display())))?;
        netns.grant = NetnsGrant { path, id, host: host_namespaces(), userns: None };
        Ok(netns)
    }

    /// Rootless: a child of ignite creates a user namespace (with the mapper's maps, checked)
    /// and a network namespace it owns, and `layout`'s routes are added before any interface
    /// exists, from inside it.
    pub fn create_owned(layout: &Layout, ip: &Path, mapper: &Mapper) -> Result<Netns, NetError> {
        let holder = MappedNamespaces::create(libc::CLONE_NEWNET, mapper)?;
        let net = holder.open("net")?;
        // The routes, from inside: joining the user namespace gives `ip` the capabilities it
        // needs in the network namespace that namespace owns.
        let mut child = Command::new(ip);
        crate::sys::join_namespaces_on_spawn(
            &mut child,
            &[(holder.user(), libc::CLONE_NEWUSER), (&net, libc::CLONE_NEWNET)],
        );
        run_route_batch(child, ip, &layout.route_batch()).map_err(NetError::Namespace)?;
        let id = |fd: &OwnedFd| {
            nix::sys::stat::fstat(fd)
                .map(|st| NsId { dev: st.st_dev, ino: st.st_ino })
                .map_err(|e| NetError::Namespace(format!("fstat: {e}")))
        };
        let pid = holder.pid();
        let grant = NetnsGrant {
            path: PathBuf::from(format!("/proc/{pid}/ns/net")),
            id: id(&net)?,
            host: host_namespaces(),
            userns: Some(UsernsGrant {
                path: PathBuf::from(format!("/proc/{pid}/ns/user")),
                id: id(holder.user())?,
                maps: mapper.maps.clone(),
            }),
        };
        Ok(Netns { grant, holder: Holder::Process { holder, _net: net } })
    }

    pub fn grant(&self) -> &NetnsGrant {
        &self.grant
    }

    /// Whether the granted paths still name the namespaces created (checked right before the
    /// OCI runtime is told to join them).
    pub fn still_ours(&self) -> bool {
        ns_id(&self.grant.path).is_ok_and(|id| id == self.grant.id)
            && self.grant.userns.as_ref().is_none_or(|u| ns_id(&u.path).is_ok_and(|id| id == u.id))
    }

    /// Rootless: the pid of the process holding the namespaces (what slirp4netns enters).
    fn holder_pid(&self) -> Option<u32> {
        match &self.holder {
            Holder::Process { holder, .. } => Some(holder.pid()),
            Holder::Thread { .. } => None,
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Holder::Thread { stop, thread } = &mut self.holder {
            stop.take();
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
        // A holder process ends and is reaped when its `NsHolder` drops.
    }
}

fn placeholder_grant() -> NetnsGrant {
    NetnsGrant { path: PathBuf::new(), id: NsId { dev: 0, ino: 0 }, host: Vec::new(), userns: None }
}

/// The namespaces the install must never join: ignite's own, and the host's pid 1's when
/// this process may look at it.
fn host_namespaces() -> Vec<NsId> {
    ["/proc/self/ns/net", "/proc/1/ns/net"].iter().filter_map(|p| ns_id(Path::new(p)).ok()).collect()
}

/// The running slirp4netns. Dropping it closes its exit fd and kills it.
pub struct Slirp {
    /// `None` once stopped (handed to the thread that reaps it).
    child: Option<Child>,
    pid: u32,
    exit: Option<OwnedFd>,
}

impl Slirp {
    /// Starts slirp4netns on `netns` and waits until it has configured it. Its messages go to `log`.
    pub async fn start(binary: &Path, netns: &Netns, layout: &Layout, log: &Path) -> Result<Slirp, NetError> {
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| NetError::Spawn(e.into()));
        let (exit_r, exit_w) = pipe()?;
        let (ready_r, ready_w) = pipe()?;
        let log_file = File::create(log).map_err(NetError::Spawn)?;
        let mut cmd = Command::new(binary);
        cmd.arg("--configure")
            .arg(format!("--mtu={MTU}"))
            .arg("--disable-host-loopback")
            .arg("--enable-sandbox")
            .arg("--enable-seccomp")
            .arg(format!("--cidr={}", layout.subnet))
            // fd 3 and 4 in the child, placed by pass_fds below.
            .arg("--exit-fd=3")
            .arg("--ready-fd=4");
        match netns.holder_pid() {
            // Rootless: by the holder's pid, so that slirp4netns enters the user namespace
            // too (its sandbox needs that, and it only does so for a pid). The holder is
            // ignite's unreaped child: its pid cannot name another process meanwhile.
            Some(pid) => cmd.arg(pid.to_string()),
            None => cmd.arg("--netns-type=path").arg(&netns.grant.path),
        };
        cmd.arg(TAP)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().map_err(NetError::Spawn)?))
            .stderr(Stdio::from(log_file));
        // Its own process group: a Ctrl-C at the terminal is ignite's to handle, in order.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child_ends = [exit_r, ready_w];
        crate::sys::pass_fds(&mut cmd, &child_ends);
        // Its sandbox pivots and lazily unmounts the old root after making only `/` private:
        // from ignite's own namespace, that unmount would propagate to the host's shared mounts.
        // Rootless it makes its mount namespace inside the holder's user namespace, where the
        // host's shared mounts arrive as slaves: nothing propagates back (and a normal user
        // could not unshare one here).
        if netns.holder_pid().is_none() {
            crate::sys::private_mounts_on_spawn(&mut cmd);
        }
        let child = cmd.spawn().map_err(NetError::Spawn)?;
        // Our copies of the child's ends close now: the ready pipe then reports EOF if
        // slirp4netns dies before it is ready.
        drop(child_ends);
        let pid = child.id();
        let mut slirp = Slirp { child: Some(child), pid, exit: Some(exit_w) };

        let mut ready = tokio::net::unix::pipe::Receiver::from_owned_fd(ready_r).map_err(NetError::Spawn)?;
        let mut byte = [0u8; 1];
        let outcome = tokio::time::timeout(READY_TIMEOUT, ready.read(&mut byte)).await;
        match outcome {
            Ok(Ok(1)) => Ok(slirp),
            other => {
                let why = match other {
                    Err(_) => format!("not ready after {} s", READY_TIMEOUT.as_secs()),
                    _ => "it exited".to_string(),
                };
                slirp.stop();
                let said = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = said.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(NetError::Slirp(format!("{why}; it said: {}", tail.join(" | "))))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// slirp4netns keeps nothing worth a graceful exit, and the sandbox it served is gone by
    /// now: it is killed outright (the exit fd is what ends it when ignite itself dies). Its
    /// exit takes 10-20 ms — the kernel unregisters its tap device, which waits for an RCU
    /// grace period — so it is reaped on a thread of its own instead of on the run's path.
    fn stop(&mut self) {
        self.exit.take();
        let Some(mut child) = self.child.take() else { return };
        let _ = child.kill();
        let reaper = std::thread::Builder::new().name("ignite-slirp-reap".into()).spawn(move || {
            let _ = child.wait();
        });
        match reaper {
            Ok(handle) => {
                let mut reapers = REAPERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                reapers.retain(|h| !h.is_finished());
                reapers.push(handle);
            }
            Err(e) => tracing::warn!("failed to start a thread to reap slirp4netns: {e}"),
        }
    }
}

/// Threads reaping killed slirp4netns processes (see [`Slirp::stop`]).
static REAPERS: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits until every slirp4netns this process stopped has exited and been reaped. A process
/// that is about to exit calls it, so that none is left for another to reap.
pub fn wait_for_exits() {
    let handles = std::mem::take(&mut *REAPERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for h in handles {
        let _ = h.join();
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        self.stop();
    }
}
