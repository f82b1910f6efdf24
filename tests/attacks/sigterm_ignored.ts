// Attack: ignore every signal that can be ignored (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2)
// and keep running past the time limit.
// Must fail: after SIGTERM and the 500 ms grace the entrypoint SIGKILLs the program, which cannot
// be ignored; the run ends as a timeout with SIGKILL.
for (const s of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const) {
  process.on(s, () => console.log(`ignored ${s}`));
}
setInterval(() => {}, 1000);
console.log("ready");
