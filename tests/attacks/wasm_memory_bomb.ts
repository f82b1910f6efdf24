// Attack: WebAssembly memory bomb. Grow a WebAssembly.Memory (which runtimes reserve up front
// and commit on touch) one 4 MiB step at a time, writing to every new page.
// Must fail: committed WebAssembly pages are charged to the memory cgroup like any other; the OOM
// killer ends the program at the limit.
const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
const STEP = 64; // pages of 64 KiB: 4 MiB
for (;;) {
  const before = memory.buffer.byteLength;
  memory.grow(STEP);
  new Uint8Array(memory.buffer, before).fill(1);
}
