// Attack: CVE-2022-0492 style escape through a cgroup v1 release_agent (a program the host
// kernel runs as root when a cgroup empties), and escaping the resource limits by moving to
// another cgroup: look for cgroup files, mount a cgroup v1 hierarchy, unshare a cgroup namespace
// first, and search /sys for any release_agent or cgroup.procs.
// Must fail: no cgroup filesystem is mounted in the sandbox (/sys/fs/cgroup is an empty
// directory of a read-only sysfs), mount and unshare are denied by seccomp (EPERM), and no
// release_agent or cgroup.procs exists anywhere the sandbox can see.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { NR, call, codeOf, cstr, report } from "./_sys.ts";

const found: string[] = [];
function search(dir: string, depth: number) {
  if (depth > 8) return;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = `${dir}/${e.name}`;
    if (e.name === "release_agent" || e.name === "cgroup.procs" || e.name === "notify_on_release") found.push(p);
    if (e.isDirectory() && !e.isSymbolicLink()) search(p, depth + 1);
  }
}
search("/sys", 0);
let moved: string;
try {
  writeFileSync("/sys/fs/cgroup/cgroup.procs", String(process.pid));
  moved = "WRITTEN";
} catch (e) {
  moved = codeOf(e);
}
report({
  sys_fs_cgroup: readdirSync("/sys/fs/cgroup"),
  own_cgroup: readFileSync("/proc/self/cgroup", "utf8").trim().split("\n").every((l) => l.endsWith(":/")),
  mount_cgroup_v1: call(NR.mount, cstr("cgroup"), cstr("/tmp"), cstr("cgroup"), 0, cstr("memory")),
  mount_cgroup2: call(NR.mount, cstr("cgroup2"), cstr("/tmp"), cstr("cgroup2"), 0, 0),
  unshare_cgroup: call(NR.unshare, 0x2000000),
  release_agents_and_procs: found,
  move_to_root_cgroup: moved,
});
