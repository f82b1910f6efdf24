// Attack: CVE-2024-21626 ("Leaky Vessels"): runc leaked a descriptor of the host's
// /sys/fs/cgroup into the container; a process whose working directory (or an openat base) was
// that descriptor walked "../../.." to the host's root. Walk every descriptor this process and the
// entrypoint hold, and the working directory, looking for anything that refers to a host path or
// a directory, then try the "..' walk through each.
// Must fail: the program holds only its stdio pipes and its own runtime's descriptors (no
// directory, no host path); its working directory is /app inside the sandbox; the entrypoint's
// descriptors are closed to it (non-dumpable: EACCES).
import { readdirSync, readlinkSync, statSync } from "node:fs";
import { codeOf, report } from "./_sys.ts";

const fds: Record<string, string> = {};
const directories: string[] = [];
const escapes: string[] = [];
for (const fd of readdirSync("/proc/self/fd")) {
  let target: string;
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    continue; // the directory listing's own descriptor, closed by now
  }
  if (target === "/proc/self/fd" || target.startsWith("/proc/") && target.endsWith("/fd")) continue;
  fds[fd] = target.replace(/\[\d+\]$/, "");
  try {
    if (statSync(`/proc/self/fd/${fd}`).isDirectory()) {
      directories.push(target);
      const above = readdirSync(`/proc/self/fd/${fd}/../../..`);
      escapes.push(`${target}: ${above.join(",")}`);
    }
  } catch {}
}
let initFds: string[] | string;
try {
  initFds = readdirSync("/proc/1/fd");
} catch (e) {
  initFds = codeOf(e);
}
report({
  fds: Object.values(fds).sort(),
  directories,
  escapes,
  cwd: process.cwd(),
  cwdLink: readlinkSync("/proc/self/cwd"),
  root: readlinkSync("/proc/self/root"),
  initFds,
  initCwd: (() => {
    try {
      return readlinkSync("/proc/1/cwd");
    } catch (e) {
      return codeOf(e);
    }
  })(),
});
