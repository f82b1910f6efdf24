// Attack: raw network access: raw IPv4/IPv6 sockets (forge packets), packet sockets (sniff or
// inject frames), ICMP "ping" sockets.
// Must fail: raw and packet sockets need CAP_NET_RAW, which the sandbox does not have (EPERM;
// AF_PACKET is also outside the seccomp socket allowlist), and the ping socket's group range is
// empty in a new network namespace (EACCES).
import { NR, call, report } from "./_sys.ts";

const AF_INET = 2, AF_INET6 = 10, AF_PACKET = 17;
const SOCK_DGRAM = 2, SOCK_RAW = 3;
const IPPROTO_ICMP = 1, IPPROTO_RAW = 255, IPPROTO_ICMPV6 = 58, ETH_P_ALL_BE = 0x0300;
report({
  raw_icmp: call(NR.socket, AF_INET, SOCK_RAW, IPPROTO_ICMP),
  raw_ip: call(NR.socket, AF_INET, SOCK_RAW, IPPROTO_RAW),
  raw_icmp6: call(NR.socket, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6),
  packet_raw: call(NR.socket, AF_PACKET, SOCK_RAW, ETH_P_ALL_BE),
  packet_dgram: call(NR.socket, AF_PACKET, SOCK_DGRAM, ETH_P_ALL_BE),
  ping: call(NR.socket, AF_INET, SOCK_DGRAM, IPPROTO_ICMP),
  ping6: call(NR.socket, AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6),
});
