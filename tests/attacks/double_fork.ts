// Attack: outlive the run. Double-fork a grandchild that starts its own session (setsid, so no
// process-group kill reaches it), then exit at once with success, leaving the grandchild behind.
// Must fail: when the program exits, the entrypoint (PID 1) SIGKILLs every process left in the
// sandbox's pid namespace and then exits, which tears the namespace down; the host sees no
// process of this run afterwards.
// Policy: runs with `allowSpawn: true, allowedCommands: []` (fork, no exec); under the default
// policy the first fork already fails with EPERM (row double_fork_default_policy).
import { readdirSync } from "node:fs";
import { compile, report } from "./_sys.ts";

const escape = compile(
  `
long escape(void) {
  long pid = raw(57, 0, 0, 0, 0, 0, 0);                /* fork */
  if (pid == 0) {
    raw(112, 0, 0, 0, 0, 0, 0);                        /* setsid */
    if (raw(57, 0, 0, 0, 0, 0, 0) != 0) raw(60, 0, 0, 0, 0, 0, 0); /* fork; the middle one exits */
    long ts[2] = { 3600, 0 };
    for (;;) raw(35, (long)ts, 0, 0, 0, 0, 0);         /* nanosleep for ever */
  }
  int status = 0;
  raw(61, pid, (long)&status, 0, 0, 0, 0);             /* reap the middle process */
  return status;
}`,
  { escape: { args: [], returns: "i64" } },
);

const middleExit = Number(escape.escape());
// The grandchild is running: the only process here besides the entrypoint (1) and this one.
const others = readdirSync("/proc").filter((p) => /^[0-9]+$/.test(p) && p !== "1" && p !== String(process.pid));
report({ middleExit, survivors: others.length });
