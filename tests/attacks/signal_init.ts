// Attack: take down the entrypoint (PID 1 of the sandbox, which reports the exit and the
// metrics): SIGKILL, SIGSTOP and SIGSEGV to pid 1, and SIGSTOP to every process (kill -1).
// Must fail: the kernel drops signals sent to a pid namespace's init from inside it unless init
// handles them, and the entrypoint handles none of these, so it survives and reports the
// program's own exit code (7); kill(-1) never reaches init, nor the caller itself.
import { NR, call, report, sys } from "./_sys.ts";

const results = {
  kill_init_sigkill: call(NR.kill, 1, 9),
  kill_init_sigstop: call(NR.kill, 1, 19),
  kill_init_sigsegv: call(NR.kill, 1, 11),
  tkill_init_sigkill: call(NR.tkill, 1, 9),
  kill_all_sigstop: call(NR.kill, -1, 19),
};
report(results);
process.exit(7);
