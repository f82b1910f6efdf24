// Attack: JavaScript heap bomb. Keep allocating objects that stay reachable until something
// gives. The same source runs on every runtime (bun, node, deno, quickjs).
// Must fail: the memory cgroup (no swap) caps the sandbox; the kernel's OOM killer ends the
// program at the limit, the host keeps its memory, and the report says "oom" from the cgroup's
// own counter. (ignite keeps the runtime's own files in the page cache, charged to itself, so
// the sandbox cannot evict its runtime's code and thrash on re-reading it instead.)
const keep: object[][] = [];
for (let i = 0; ; i++) {
  keep.push(Array.from({ length: 1 << 16 }, (_, j) => ({ i, j })));
}
