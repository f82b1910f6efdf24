//! The install step's network. It is never the host's network namespace:
//!
//! - ignite creates a fresh network namespace in a thread of its own that holds it until the
//!   install is over (the thread's `/proc/<pid>/task/<tid>/ns/net` is what the spec joins), so
//!   the namespace cannot outlive ignite, however ignite ends;
//! - slirp4netns, a user-mode TCP/IP stack, gives it a tap interface and a default route and
//!   makes the connections on its behalf from the host. It runs sandboxed (`--enable-sandbox`,
//!   `--enable-seccomp`), cannot reach the host's loopback (`--disable-host-loopback`), and
//!   exits as soon as ignite closes its end of the `--exit-fd` pipe — including when ignite is
//!   killed;
//! - inside the namespace, routes make the host's own addresses, the networks it is attached
//!   to, loopback, link-local (cloud metadata services), private and other special-purpose
//!   ranges unreachable: the install reaches the public internet, and nothing else.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::spec::{NetnsGrant, NsId};

/// How long slirp4netns may take to configure the namespace.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long slirp4netns may take to exit after its exit fd is closed, before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(2);
/// The interface slirp4netns creates inside the namespace.
const TAP: &str = "tap0";
/// slirp4netns's largest MTU: fewer, larger packets through the user-mode stack.
const MTU: u32 = 65520;

/// Ranges never routed from the install's namespace, whatever the host's networks are.
const BLOCKED: &[(&str, [u8; 4], u8)] = &[
    ("\"this\" network", [0, 0, 0, 0], 8),
    ("private (RFC 1918)", [10, 0, 0, 0], 8),
    ("carrier-grade NAT", [100, 64, 0, 0], 10),
    ("loopback", [127, 0, 0, 0], 8),
    ("link-local, incl. cloud metadata services", [169, 254, 0, 0], 16),
    ("private (RFC 1918)", [172, 16, 0, 0], 12),
    ("IETF protocol assignments", [192, 0, 0, 0], 24),
    ("private (RFC 1918)", [192, 168, 0, 0], 16),
    ("benchmarking", [198, 18, 0, 0], 15),
    ("multicast", [224, 0, 0, 0], 4),
    ("reserved and broadcast", [240, 0, 0, 0], 4),
];

/// Subnets slirp4netns may use inside the namespace; the first that overlaps none of the
/// host's networks is taken (its own subnet must stay routable there).
const CANDIDATE_SUBNETS: &[[u8; 4]] = &[[10, 0, 2, 0], [10, 213, 77, 0], [172, 31, 213, 0], [192, 168, 213, 0]];

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(
        "the dependency install needs `{tool}` for its sandboxed network, and it is not in PATH; install it (Debian/Ubuntu: apt-get install {package})"
    )]
    MissingTool { tool: &'static str, package: &'static str },
    #[error("failed to create the install's network namespace: {0}")]
    Namespace(String),
    #[error("failed to start slirp4netns: {0}")]
    Spawn(std::io::Error),
    #[error("slirp4netns did not set up the install's network: {0}")]
    Slirp(String),
    #[error("all of ignite's candidate subnets for the install's network overlap the host's networks ({0})")]
    NoSubnet(String),
}

/// An IPv4 network, `addr/prefix`, with `addr` reduced to the network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Net4 {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Net4 {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Net4 {
        let prefix = prefix.min(32);
        Net4 { addr: Ipv4Addr::from(u32::from(addr) & Self::mask(prefix)), prefix }
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
    }

    pub fn contains(&self, other: &Net4) -> bool {
        other.prefix >= self.prefix && u32::from(other.addr) & Self::mask(self.prefix) == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Net4) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The `n`th address of the network (slirp4netns: .2 gateway, .3 DNS, .100 the namespace).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | n)
    }
}

impl fmt::Display for Net4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The host's IPv4 networks and addresses, from its interfaces.
pub fn host_networks() -> Vec<Net4> {
    let mut nets = Vec::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return nets;
    };
    for ifa in addrs {
        let Some(addr) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()).map(|a| a.ip()) else {
            continue;
        };
        let prefix = ifa
            .netmask
            .as_ref()
            .and_then(|m| m.as_sockaddr_in())
            .map_or(32, |m| u32::from(m.ip()).leading_ones() as u8);
        nets.push(Net4::new(addr, prefix));
        nets.push(Net4::new(addr, 32));
    }
    nets
}

/// The install's subnet and the routes that make everything but the internet unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub subnet: Net4,
    pub unreachable: Vec<Net4>,
}

impl Layout {
    /// Pure: from the host's networks (see [`host_networks`]).
    pub fn for_host(host: &[Net4]) -> Result<Layout, NetError> {
        let subnet = CANDIDATE_SUBNETS
            .iter()
            .map(|a| Net4::new(Ipv4Addr::from(*a), 24))
            .find(|s| !host.iter().any(|h| h.overlaps(s)))
            .ok_or_else(|| NetError::NoSubnet(host.iter().map(Net4::to_string).collect::<Vec<_>>().join(", ")))?;
        let mut unreachable: Vec<Net4> = BLOCKED.iter().map(|(_, a, p)| Net4::new(Ipv4Addr::from(*a), *p)).collect();
        for h in host {
            if !unreachable.iter().any(|u| u.contains(h)) {
                unreachable.push(*h);
            }
        }
        unreachable.sort();
        unreachable.dedup();
        Ok(Layout { subnet, unreachable })
    }

    /// The name server inside the namespace: slirp4netns's forwarder to the host's resolver.
    pub fn resolv_conf(&self) -> String {
        format!("nameserver {}\n", self.subnet.host(3))
    }

    /// Commands for `ip -batch -`.
    fn route_batch(&self) -> String {
        self.unreachable.iter().map(|n| format!("route add unreachable {n}\n")).collect()
    }
}

/// Finds a tool in PATH.
pub fn find_tool(name: &'static str, package: &'static str) -> Result<PathBuf, NetError> {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|c| c.is_file()))
        .ok_or(NetError::MissingTool { tool: name, package })
}

/// A network namespace held by a thread of ignite for as long as this value lives.
pub struct Netns {
    grant: NetnsGrant,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
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
                    let mut child = Command::new(&ip)
                        .args(["-batch", "-"])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .map_err(|e| format!("{}: {e}", ip.display()))?;
                    if let Some(mut stdin) = child.stdin.take() {
                        stdin.write_all(batch.as_bytes()).map_err(|e| format!("writing routes to ip: {e}"))?;
                    }
                    let out = child.wait_with_output().map_err(|e| format!("{}: {e}", ip.display()))?;
                    if !out.status.success() {
                        return Err(format!(
                            "ip -batch failed ({}): {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ));
                    }
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
        let mut netns = Netns { grant: placeholder_grant(), stop: Some(stop_tx), thread: Some(thread) };
        let tid = ready_rx
            .recv()
            .map_err(|_| NetError::Namespace("the namespace thread ended early".into()))?
            .map_err(NetError::Namespace)?;
        let path = PathBuf::from(format!("/proc/{}/task/{tid}/ns/net", std::process::id()));
        let id = ns_id(&path).map_err(|e| NetError::Namespace(format!("{}: {e}", path.display())))?;
        netns.grant = NetnsGrant { path, id, host: host_namespaces() };
        Ok(netns)
    }

    pub fn grant(&self) -> &NetnsGrant {
        &self.grant
    }

    /// Whether the granted path still names the namespace created (checked right before the
    /// OCI runtime is told to join it).
    pub fn still_ours(&self) -> bool {
        ns_id(&self.grant.path).is_ok_and(|id| id == self.grant.id)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn placeholder_grant() -> NetnsGrant {
    NetnsGrant { path: PathBuf::new(), id: NsId { dev: 0, ino: 0 }, host: Vec::new() }
}

/// The namespaces the install must never join: ignite's own, and the host's pid 1's when
/// this process may look at it.
fn host_namespaces() -> Vec<NsId> {
    ["/proc/self/ns/net", "/proc/1/ns/net"].iter().filter_map(|p| ns_id(Path::new(p)).ok()).collect()
}

/// The running slirp4netns. Dropping it closes its exit fd, waits briefly, then kills it.
pub struct Slirp {
    child: Child,
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
            .arg("--netns-type=path")
            // fd 3 and 4 in the child, placed by pass_fds below.
            .arg("--exit-fd=3")
            .arg("--ready-fd=4")
            .arg(&netns.grant.path)
            .arg(TAP)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().map_err(NetError::Spawn)?))
            .stderr(Stdio::from(log_file));
        // Its own process group: a Ctrl-C at the terminal is ignite's to handle, in order.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child_ends = [exit_r, ready_w];
        crate::sys::pass_fds(&mut cmd, &child_ends);
        let child = cmd.spawn().map_err(NetError::Spawn)?;
        // Our copies of the child's ends close now: the ready pipe then reports EOF if
        // slirp4netns dies before it is ready.
        drop(child_ends);
        let mut slirp = Slirp { child, exit: Some(exit_w) };

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
        self.child.id()
    }

    fn stop(&mut self) {
        if self.exit.take().is_none() {
            return;
        }
        let deadline = Instant::now() + EXIT_WAIT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Net4 {
        let (a, p) = s.split_once('/').unwrap();
        Net4::new(a.parse().unwrap(), p.parse().unwrap())
    }

    #[test]
    fn net4_arithmetic() {
        assert_eq!(net("192.0.2.77/24").to_string(), "192.0.2.0/24");
        assert!(net("10.0.0.0/8").contains(&net("10.0.2.0/24")));
        assert!(!net("10.0.2.0/24").contains(&net("10.0.0.0/8")));
        assert!(net("10.0.2.0/24").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.0.2.0/24").overlaps(&net("10.0.3.0/24")));
        assert_eq!(net("10.0.2.0/24").host(3), Ipv4Addr::new(10, 0, 2, 3));
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
    }

    #[test]
    fn layout_blocks_the_host_and_special_ranges_but_not_its_own_subnet() {
        // A host on a documentation range (as on the development machine) with a resolver on 10/8.
        let host = [net("127.0.0.1/8"), net("127.0.0.1/32"), net("192.0.2.2/24"), net("192.0.2.2/32")];
        let l = Layout::for_host(&host).unwrap();
        assert_eq!(l.subnet, net("10.0.2.0/24"));
        for must in ["192.0.2.0/24", "169.254.0.0/16", "10.0.0.0/8", "127.0.0.0/8", "172.16.0.0/12"] {
            assert!(l.unreachable.contains(&net(must)), "{must} not blocked: {:?}", l.unreachable);
        }
        // Covered by a wider blocked range already: not listed twice (ip would say "File exists").
        assert!(!l.unreachable.contains(&net("127.0.0.1/32")));
        // The own subnet stays reachable: it is more specific than the blocked 10/8.
        assert!(!l.unreachable.contains(&l.subnet));
        assert_eq!(l.resolv_conf(), "nameserver 10.0.2.3\n");
        assert!(l.route_batch().contains("route add unreachable 192.0.2.0/24\n"));
        // Public addresses (the registry) are not blocked.
        let registry = net("104.16.0.1/32");
        assert!(!l.unreachable.iter().any(|u| u.contains(&registry)));
    }

    #[test]
    fn layout_avoids_subnets_the_host_uses() {
        let l = Layout::for_host(&[net("10.0.2.15/24")]).unwrap();
        assert_eq!(l.subnet, net("10.213.77.0/24"));
        let l = Layout::for_host(&[net("10.0.0.0/8"), net("172.16.0.0/12"), net("192.168.0.0/16")]);
        assert!(matches!(l, Err(NetError::NoSubnet(_))));
    }
}
