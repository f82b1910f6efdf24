// Attack: reconfigure the network and reach kernel subsystems over netlink: netfilter, xfrm,
// audit, uevents, sock_diag (other families), and through the allowed NETLINK_ROUTE protocol
// try to bring up an interface, add an address and create a new link.
// Must fail: only NETLINK_ROUTE passes the seccomp filter (the rest: EPERM); over it, every change
// needs CAP_NET_ADMIN, so the kernel answers each request with an EPERM error message.
import { NR, buffer, errname, report, sys } from "./_sys.ts";

const AF_NETLINK = 16, SOCK_RAW = 3;
const protocols: Record<string, number> = { sock_diag: 4, xfrm: 6, audit: 9, netfilter: 12, kobject_uevent: 15, generic: 16 };
const other: Record<string, string | number> = {};
for (const [name, proto] of Object.entries(protocols)) other[name] = errname(sys(NR.socket, AF_NETLINK, SOCK_RAW, proto));

const fd = sys(NR.socket, AF_NETLINK, SOCK_RAW, 0);
const NLM_F_REQUEST = 1, NLM_F_ACK = 4, NLM_F_CREATE = 0x400, NLM_F_EXCL = 0x200;
// Sends one request (header + body) and returns the error the kernel's ack carries.
function request(type: number, body: Uint8Array): string | number {
  const msg = buffer(16 + body.length);
  msg.view.setUint32(0, 16 + body.length, true);
  msg.view.setUint16(4, type, true);
  msg.view.setUint16(6, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, true);
  msg.bytes.set(body, 16);
  const sent = sys(NR.sendto, fd, msg.addr, msg.bytes.length, 0, 0, 0);
  if (sent < 0) return errname(sent);
  const ack = buffer(4096);
  const n = sys(NR.recvfrom, fd, ack.addr, 4096, 0, 0, 0);
  if (n < 0) return errname(n);
  return errname(ack.view.getInt32(16, true)); // struct nlmsgerr.error
}
const RTM_NEWLINK = 16, RTM_NEWADDR = 20, IFF_UP = 1;
// ifinfomsg { family, pad, type, index=1 (lo), flags, change }
const linkUp = new Uint8Array(16);
new DataView(linkUp.buffer).setInt32(4, 1, true);
new DataView(linkUp.buffer).setUint32(8, IFF_UP, true);
new DataView(linkUp.buffer).setUint32(12, IFF_UP, true);
// ifinfomsg + IFLA_IFNAME "evil0" + IFLA_LINKINFO { IFLA_INFO_KIND "dummy" }
const newLink = new Uint8Array(16 + 12 + 16);
const nl = new DataView(newLink.buffer);
nl.setUint16(16, 10, true); nl.setUint16(18, 3, true); newLink.set(new TextEncoder().encode("evil0"), 20);
nl.setUint16(28, 16, true); nl.setUint16(30, 18, true);
nl.setUint16(32, 10, true); nl.setUint16(34, 1, true); newLink.set(new TextEncoder().encode("dummy"), 36);
// ifaddrmsg { AF_INET, prefixlen 8, flags, scope, index=1 } + IFA_LOCAL 10.6.6.6
const addr = new Uint8Array(8 + 8);
const ad = new DataView(addr.buffer);
ad.setUint8(0, 2); ad.setUint8(1, 8); ad.setUint32(4, 1, true);
ad.setUint16(8, 8, true); ad.setUint16(10, 2, true); addr.set([10, 6, 6, 6], 12);
report({
  other,
  route: fd >= 0 ? "opened" : errname(fd),
  set_lo_up: request(RTM_NEWLINK, linkUp),
  new_dummy_link: request(RTM_NEWLINK, newLink),
  new_address: request(RTM_NEWADDR, addr),
});
