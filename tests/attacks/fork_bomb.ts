// Attack: classic fork bomb. Every process forks in a loop, forever, exponentially (raw fork(2)
// from native code, so no runtime-level spawn limit gets in the way).
// Must fail: the pids cgroup caps the sandbox at 128 tasks, so fork(2) starts failing with
// EAGAIN inside the sandbox while the host's process table stays untouched; when the program
// exits, the entrypoint kills every process it left, and the run ends normally.
// Policy: runs with `allowSpawn: true, allowedCommands: []` (fork, no exec); under the default
// policy the first fork already fails with EPERM (row fork_bomb_default_policy).
import { compile, errname, report } from "./_sys.ts";

const bomb = compile(
  `
long bomb(void) {
  for (;;) {
    long pid = raw(57, 0, 0, 0, 0, 0, 0);          /* fork */
    if (pid == 0) {
      /* Every child forks for ever too; when it can't, it sleeps (pause) and retries. */
      for (;;) { if (raw(57, 0, 0, 0, 0, 0, 0) < 0) raw(34, 0, 0, 0, 0, 0, 0); }
    }
    if (pid < 0) return pid;                        /* the original process reports the failure */
  }
}`,
  { bomb: { args: [], returns: "i64" } },
);

report({ fork: errname(Number(bomb.bomb())) });
