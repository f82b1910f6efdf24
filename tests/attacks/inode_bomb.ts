// Attack: inode exhaustion. Create empty files in /tmp without end: they take no data blocks, so
// a size cap alone would not stop them.
// Must fail: every inode and directory entry is kernel memory charged to the sandbox's memory
// cgroup; the OOM killer ends the program at the memory limit, and /tmp is a per-run tmpfs, so the
// host's filesystems never see a single inode.
import { closeSync, openSync } from "node:fs";

for (let n = 0; ; n++) closeSync(openSync(`/tmp/f${n}`, "w"));
