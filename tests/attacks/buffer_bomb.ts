// Attack: off-heap memory bomb. Buffers live outside the JavaScript heap (so a runtime's heap
// limit does not stop them); fill each one so the pages are really committed.
// Must fail: the memory cgroup counts every committed page, heap or not; the OOM killer ends the
// program at the limit.
import { Buffer } from "node:buffer";

const keep: Buffer[] = [];
for (;;) {
  keep.push(Buffer.alloc(4 << 20, 1));
}
