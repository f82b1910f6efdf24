// Attack: bypass the seccomp filter through a second system call table: the 32-bit i386 ABI
// (`int 0x80`, where getpid is 20 and the filter's x86_64 numbers mean other calls) and the x32
// ABI (numbers with bit 30 set). Each attempt runs in a forked child (a raw fork, one thread),
// which reports by its exit status.
// Must fail: the filter allows only the native x86_64 ABI; any other architecture or x32 number
// hits its bad-architecture action, which kills the calling thread with SIGSYS, so the child
// never reaches its exit(42).
// Policy: runs with `allowSpawn: true, allowedCommands: []`: each probe is a forked child.
import { compile, report } from "./_sys.ts";

const probe = compile(
  `
static long in_child(long abi) {
  long pid = raw(57, 0, 0, 0, 0, 0, 0);                    /* fork */
  if (pid == 0) {
    if (abi == 32) { long r; __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory"); }
    else raw(0x40000000 | 39, 0, 0, 0, 0, 0, 0);           /* x32 getpid */
    raw(60, 42, 0, 0, 0, 0, 0);                            /* only if the call was let through */
  }
  int status = 0;
  long w = raw(61, pid, (long)&status, 0, 0, 0, 0);       /* wait4 */
  return w < 0 ? w : status;
}
long i386(void) { return in_child(32); }
long x32(void) { return in_child(64); }`,
  { i386: { args: [], returns: "i64" }, x32: { args: [], returns: "i64" } },
);

// A wait status: low 7 bits = terminating signal, or 0 and the exit code in the next byte.
const describe = (status: number) =>
  (status & 0x7f) === 0 ? `exited ${(status >> 8) & 0xff}` : `killed by signal ${status & 0x7f}`;
report({ int80: describe(Number(probe.i386())), x32: describe(Number(probe.x32())) });
