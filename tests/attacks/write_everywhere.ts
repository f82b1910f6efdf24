// Attack: find any writable place besides the per-run scratch space, to fill the host's disk,
// leave something for the next run or change what other runs execute: try to create a file in
// every directory of the sandbox's filesystem (the shared rootfs, /app, /dev, /node_modules,
// the entrypoint's directory; /proc and /sys are covered by their own attacks). The same source
// runs on bun and node.
// Must fail: the rootfs and /app are read-only mounts (and root's), /dev is root's; the only
// writable directories are the two per-run tmpfs mounts, /tmp and /dev/shm.
import { readdirSync, rmSync, writeFileSync } from "node:fs";

const writable: string[] = [];
const errors = new Set<string>();
let checked = 0;
function visit(dir: string) {
  checked++;
  const probe = `${dir === "/" ? "" : dir}/.ignite-escape-probe`;
  try {
    writeFileSync(probe, "x");
    writable.push(dir);
    rmSync(probe);
  } catch (e: any) {
    errors.add(e.code);
  }
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const path = `${dir === "/" ? "" : dir}/${e.name}`;
    if (path === "/proc" || path === "/sys") continue;
    if (e.isDirectory() && !e.isSymbolicLink()) visit(path);
  }
}
visit("/");
// Sorted: the order directories are listed in depends on the filesystem.
console.log(JSON.stringify({ writable: [...writable].sort(), errors: [...errors].sort(), checkedMoreThan10: checked > 10 }));
