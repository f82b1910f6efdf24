// Attack: thread bomb. Create native threads (pthread_create from libc) until the kernel says
// no, each one parked for ever.
// Must fail: threads are tasks too, so the pids cgroup's 128-task cap stops thread creation
// with EAGAIN; the host is never short of threads, and every thread dies with the sandbox.
import { dlopen, FFIType } from "bun:ffi";
import { buffer, compile, errname, report } from "./_sys.ts";

const park = compile(
  `
static void *parked(void *arg) { for (;;) raw(34, 0, 0, 0, 0, 0, 0); return 0; }  /* pause */
long parked_addr(void) { return (long)&parked; }`,
  { parked_addr: { args: [], returns: "i64" } },
);
const libc = dlopen("libc.so.6", {
  pthread_create: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
});

const start = Number(park.parked_addr());
const thread = buffer(8);
let created = 0;
let failure = 0;
while (failure === 0 && created < 10_000) {
  const rc = libc.symbols.pthread_create(thread.bytes, null, start, null);
  if (rc === 0) created++;
  else failure = rc;
}
// pthread_create returns the error number itself.
report({ pthread_create: errname(-failure), underCap: created < 128 });
