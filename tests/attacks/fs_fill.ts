// Attack: fill a writable filesystem (/tmp or /dev/shm, from the input) with one ever-growing
// file, to exhaust the host's disk or memory.
// Must fail: both are per-run tmpfs mounts capped at 64 MiB and charged to the sandbox's memory
// cgroup. With room in the memory limit the write fails with ENOSPC at exactly the cap; with a
// smaller memory limit the OOM killer ends the program first. Nothing reaches the host's disk.
import { openSync, writeSync } from "node:fs";
import { codeOf, input, report } from "./_sys.ts";

const fd = openSync(`${input().dir}/fill`, "w");
const chunk = new Uint8Array(1 << 20).fill(7);
let bytes = 0;
try {
  for (;;) bytes += writeSync(fd, chunk);
} catch (e) {
  report({ write: codeOf(e), bytes });
}
