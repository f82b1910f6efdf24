// Attack: stop its own process group with SIGSTOP, hoping a stopped program can neither be
// stopped at the time limit (SIGTERM is not delivered to a stopped process) nor reaped.
// Must fail: at the time limit the entrypoint SIGKILLs the program's process group (SIGKILL also
// ends stopped processes); the run ends as a timeout and nothing is left.
import { NR, sys } from "./_sys.ts";

console.log("stopping");
sys(NR.kill, 0, 19); // kill(0, SIGSTOP): the whole process group, this process included
console.log("still running");
