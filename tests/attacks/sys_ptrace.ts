// Attack: inspect or control other processes: ptrace (TRACEME, ATTACH and SEIZE of the entrypoint
// and of a child of our own), process_vm_readv/writev, pidfd_getfd (steal a descriptor, e.g. the
// entrypoint's private report pipe), kcmp, and the entrypoint's /proc/1/mem and /proc/1/environ.
// Must fail: ptrace, process_vm_*, pidfd_getfd and kcmp are not in the seccomp allowlist (EPERM);
// the entrypoint is non-dumpable, so its /proc files are root's and closed to uid 65534 (EACCES).
// Policy: runs with `allowSpawn: true, allowedCommands: [/usr/local/bin/bun]`: the child to
// attach to is a second bun.
import { openSync, readFileSync } from "node:fs";
import { NR, call, codeOf, report, sys } from "./_sys.ts";

const PTRACE_TRACEME = 0, PTRACE_ATTACH = 16, PTRACE_SEIZE = 0x4206;
const child = Bun.spawn([process.execPath, "-e", "setInterval(() => {}, 1000)"]);
const pidfd = sys(NR.pidfd_open, 1, 0);
const open = (p: string, flags: string) => {
  try {
    openSync(p, flags);
    return "opened";
  } catch (e) {
    return codeOf(e);
  }
};
const read = (p: string) => {
  try {
    return readFileSync(p).length;
  } catch (e) {
    return codeOf(e);
  }
};
report({
  traceme: call(NR.ptrace, PTRACE_TRACEME, 0, 0, 0),
  attach_init: call(NR.ptrace, PTRACE_ATTACH, 1, 0, 0),
  seize_init: call(NR.ptrace, PTRACE_SEIZE, 1, 0, 0),
  attach_child: call(NR.ptrace, PTRACE_ATTACH, child.pid, 0, 0),
  vm_readv_init: call(NR.process_vm_readv, 1, 0, 0, 0, 0, 0),
  vm_writev_child: call(NR.process_vm_writev, child.pid, 0, 0, 0, 0, 0),
  pidfd_open_init: pidfd >= 0 ? "opened" : pidfd,
  pidfd_getfd_report_pipe: call(NR.pidfd_getfd, pidfd, 3, 0),
  kcmp: call(NR.kcmp, 1, child.pid, 0, 0, 0),
  init_mem: open("/proc/1/mem", "r"),
  init_environ: read("/proc/1/environ"),
  init_fd_report_pipe: open("/proc/1/fd/3", "w"),
});
child.kill();
