// Attack: reach the network. TCP connect and UDP send to public addresses (IPv4 and IPv6), the
// cloud metadata endpoint (169.254.169.254) and a private range, through raw sockets calls so
// no runtime-level permission is involved.
// Must fail: the sandbox has its own network namespace with nothing but loopback: no interface,
// no route, so every packet to anywhere else fails with ENETUNREACH before leaving.
import { NR, buffer, errname, report, sys } from "./_sys.ts";

const AF_INET = 2, AF_INET6 = 10, SOCK_STREAM = 1, SOCK_DGRAM = 2;

function v4(ip: string, port: number) {
  const a = buffer(16);
  a.view.setUint16(0, AF_INET, true);
  a.view.setUint16(2, port, false);
  ip.split(".").forEach((o, i) => a.view.setUint8(4 + i, Number(o)));
  return a;
}
function v6(groups: number[], port: number) {
  const a = buffer(28);
  a.view.setUint16(0, AF_INET6, true);
  a.view.setUint16(2, port, false);
  groups.forEach((g, i) => a.view.setUint16(8 + 2 * i, g, false));
  return a;
}
function tcp(family: number, addr: { addr: bigint; bytes: Uint8Array }) {
  return errname(sys(NR.connect, sys(NR.socket, family, SOCK_STREAM, 0), addr.addr, addr.bytes.length));
}
function udp(family: number, addr: { addr: bigint; bytes: Uint8Array }) {
  const data = buffer(4);
  return errname(sys(NR.sendto, sys(NR.socket, family, SOCK_DGRAM, 0), data.addr, 4, 0, addr.addr, addr.bytes.length));
}

const cloudflare6 = [0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111];
report({
  tcp_public: tcp(AF_INET, v4("1.1.1.1", 443)),
  tcp_metadata: tcp(AF_INET, v4("169.254.169.254", 80)),
  tcp_private: tcp(AF_INET, v4("10.0.0.1", 22)),
  tcp_public6: tcp(AF_INET6, v6(cloudflare6, 443)),
  udp_dns: udp(AF_INET, v4("8.8.8.8", 53)),
  udp_dns6: udp(AF_INET6, v6(cloudflare6, 53)),
});
