// Attack: burn every CPU of the host: busy loops in the main thread and in four Workers.
// Must fail: the CPU cgroup quota (cpuLimit) caps the whole sandbox, however many threads spin,
// and the time limit stops it: SIGTERM, then SIGKILL.
const spin = "for (;;) {}";
const url = URL.createObjectURL(new Blob([spin], { type: "application/javascript" }));
for (let i = 0; i < 4; i++) new Worker(url);
for (;;) {}
