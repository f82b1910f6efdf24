// Attack: find any socket family beyond plain networking: AF_VSOCK (talk to the hypervisor),
// AF_ALG (the kernel crypto API, a frequent source of kernel bugs), AF_BLUETOOTH, AF_RDS,
// AF_TIPC, AF_XDP... every family number 0..45 with every common socket type.
// Must fail: the seccomp allowlist admits socket(2) only for AF_UNIX, AF_INET, AF_INET6 and
// AF_NETLINK; every other family gets EPERM whatever the type.
import { NR, report, sys } from "./_sys.ts";

const opened: number[] = [];
const refused: Record<string, string> = {};
for (let family = 0; family <= 45; family++) {
  const results = [1, 2, 3, 5].map((type) => sys(NR.socket, family, type, 0)); // stream, dgram, raw, seqpacket
  if (results.some((r) => r >= 0)) opened.push(family);
  else if (results.every((r) => r === -1)) refused[family] = "EPERM";
  else refused[family] = results.join(",");
}
report({ opened, vsock: refused[40], alg: refused[38], allOthersEPERM: Object.values(refused).every((v) => v === "EPERM") });
