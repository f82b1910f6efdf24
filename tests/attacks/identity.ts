// Attack: find any privilege left: capabilities in any set, a missing no_new_privs (setuid
// binaries would then raise privileges), seccomp off, root or a root group, and supplementary
// groups. The same source runs on bun and node.
// Must fail: every capability set is empty, NoNewPrivs is 1, Seccomp is 2 (filter mode), and every
// uid and gid (real, effective, saved, filesystem) is the run's own (200000..265535, gid = uid)
// with no supplementary group.
import { readFileSync } from "node:fs";

const status = readFileSync("/proc/self/status", "utf8");
const field = (k: string) =>
  status
    .split("\n")
    .find((l) => l.startsWith(`${k}:`))
    ?.split(":")[1]
    .trim()
    .split(/\s+/)
    .filter(Boolean);
console.log(
  JSON.stringify({
    CapInh: field("CapInh")?.[0],
    CapPrm: field("CapPrm")?.[0],
    CapEff: field("CapEff")?.[0],
    CapBnd: field("CapBnd")?.[0],
    CapAmb: field("CapAmb")?.[0],
    NoNewPrivs: field("NoNewPrivs")?.[0],
    Seccomp: field("Seccomp")?.[0],
    Uid: field("Uid"),
    Gid: field("Gid"),
    Groups: field("Groups") ?? [],
  }),
);
