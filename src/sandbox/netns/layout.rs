//! The addressing of a user-mode network: which subnet slirp4netns uses inside the namespace
//! and which ranges are made unreachable there. Pure, apart from reading the host's interfaces.

use std::fmt;
use std::net::Ipv4Addr;

/// Ranges never routed from the namespace, whatever the host's networks are.
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

/// Every candidate subnet overlaps one of the host's networks (listed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("all of ignite's candidate subnets for a user-mode network overlap the host's networks ({0})")]
pub struct NoSubnet(pub String);

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
    pub fn for_host(host: &[Net4]) -> Result<Layout, NoSubnet> {
        let subnet = CANDIDATE_SUBNETS
            .iter()
            .map(|a| Net4::new(Ipv4Addr::from(*a), 24))
            .find(|s| !host.iter().any(|h| h.overlaps(s)))
            .ok_or_else(|| NoSubnet(host.iter().map(Net4::to_string).collect::<Vec<_>>().join(", ")))?;
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
    pub(super) fn route_batch(&self) -> String {
        self.unreachable.iter().map(|n| format!("route add unreachable {n}\n")).collect()
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
        assert!(matches!(l, Err(NoSubnet(_))));
    }
}
