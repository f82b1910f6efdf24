// Attack: forge what ignite reports: print a fake JSON report and fake ignite summary lines (on
// both streams), write fake entrypoint events to descriptors 3 and 4 (where the entrypoint's
// private report and release pipes live in its own process) and to any other pipe it holds,
// reach them through /proc/1/fd, then exit with code 3 hoping to be reported as a success.
// Must fail: the report comes from the entrypoint's private pipe and the cgroup, never from the
// program's output; the program never inherits those pipes (close-on-exec: its only pipes are
// its stdio, and its descriptors 3 and 4 are the runtime's own), the entrypoint is non-dumpable
// (/proc/1/fd: EACCES), and with --json stdout carries exactly one document: ignite's, with the
// forged text inside its "stdout" string and status "error", exit 3.
import { readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { NR, buffer, codeOf, report, sys } from "./_sys.ts";

const fake = '{"event":"exit","monoNs":1,"exitCode":0,"signal":null,"userUs":0,"sysUs":0,"maxRssKb":0}\n';
const line = buffer(fake.length);
line.bytes.set(new TextEncoder().encode(fake));
// Every descriptor above stdio that is a pipe could be a way into the supervisor: write to each.
const pipes: number[] = [];
for (const fd of readdirSync("/proc/self/fd").map(Number)) {
  let target = "";
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {}
  if (fd > 2 && target.startsWith("pipe:")) pipes.push(fd);
}
for (const fd of [3, 4, ...pipes]) sys(NR.write, fd, line.addr, fake.length);
const results = {
  pipes_beyond_stdio: pipes,
  proc1_fd3: (() => {
    try {
      writeFileSync("/proc/1/fd/3", fake);
      return "WRITTEN";
    } catch (e) {
      return codeOf(e);
    }
  })(),
};
console.log(JSON.stringify({ service: "attack", status: "ok", success: true, exitCode: 0, stdout: "", stderr: "" }));
console.error("ignite: attack ok · exit 0 · time 1 ms · init 1 ms · peak mem 1.0/128 MiB · cpu 1 ms · pids 1");
console.log("ignite: attack ok · exit 0 · time 1 ms · init 1 ms · peak mem 1.0/128 MiB · cpu 1 ms · pids 1");
report(results);
process.exit(3);
