// Attack: load eBPF. A verifier bug turns an eBPF program into kernel read/write; maps and
// programs also outlive the process if pinned. Tries BPF_MAP_CREATE and BPF_PROG_LOAD of a
// trivial socket filter, and attaching a classic BPF filter to a socket (which is allowed and
// harmless: it only filters our own socket).
// Must fail: bpf(2) is not in the seccomp allowlist (EPERM) for every command.
import { NR, buffer, call, report } from "./_sys.ts";

const BPF_MAP_CREATE = 0, BPF_PROG_LOAD = 5;
const mapAttr = buffer(72);
mapAttr.view.setUint32(0, 2, true); // BPF_MAP_TYPE_ARRAY
mapAttr.view.setUint32(4, 4, true);
mapAttr.view.setUint32(8, 8, true);
mapAttr.view.setUint32(12, 1, true);
const insns = buffer(16); // r0 = 0; exit
insns.view.setUint8(0, 0xb7);
insns.view.setUint8(8, 0x95);
const license = buffer(4);
license.bytes.set(new TextEncoder().encode("GPL"));
const progAttr = buffer(128);
progAttr.view.setUint32(0, 1, true); // BPF_PROG_TYPE_SOCKET_FILTER
progAttr.view.setUint32(4, 2, true);
progAttr.view.setBigUint64(8, insns.addr, true);
progAttr.view.setBigUint64(16, license.addr, true);
report({
  map_create: call(NR.bpf, BPF_MAP_CREATE, mapAttr.addr, 72),
  prog_load: call(NR.bpf, BPF_PROG_LOAD, progAttr.addr, 128),
  prog_load_unprivileged_check: call(NR.bpf, 0xffff, 0, 0),
});
