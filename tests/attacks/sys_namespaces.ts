// Attack: create or join namespaces. A new user namespace grants a full capability set inside it
// and exposes kernel code otherwise gated on CAP_SYS_ADMIN (the root of many container escapes);
// joining another namespace (setns) would leave the sandbox. Tries unshare with every namespace
// flag, clone with namespace flags, clone3 (whose flags seccomp cannot inspect), and setns on the
// sandbox's own namespace files.
// Must fail: unshare and setns are not allowed (EPERM), clone is allowed only without namespace
// flags (EPERM otherwise), and clone3 answers ENOSYS so that libcs fall back to clone.
import { openSync } from "node:fs";
import { NR, call, report } from "./_sys.ts";

const flags: Record<string, number> = {
  user: 0x10000000, mount: 0x20000, net: 0x40000000, pid: 0x20000000, ipc: 0x8000000, uts: 0x4000000,
  cgroup: 0x2000000, time: 0x80,
};
const SIGCHLD = 17;
const unshare: Record<string, unknown> = {};
const clone: Record<string, unknown> = {};
for (const [name, flag] of Object.entries(flags)) {
  unshare[name] = call(NR.unshare, flag);
  if (name !== "time") clone[name] = call(NR.clone, flag | SIGCHLD, 0, 0, 0, 0);
}
const setns: Record<string, unknown> = {};
for (const ns of ["user", "mnt", "net", "pid", "ipc", "uts", "cgroup"]) {
  setns[ns] = call(NR.setns, openSync(`/proc/self/ns/${ns}`, "r"), 0);
}
report({ unshare, clone, clone3: call(NR.clone3, 0, 0), setns });
