// Attack: CVE-2019-5736 and relatives: overwrite the binary that started the container through
// /proc/self/exe or /proc/1/exe (runc's bug let a container overwrite the host's runc), directly
// or by reopening an O_PATH descriptor writable through /proc/self/fd, and overwrite the
// entrypoint (a host binary bind-mounted at /.ignite/init) and the runtime binary in the shared
// rootfs, which every other run executes.
// Must fail: ignite never runs `runc exec` (no host process ever enters the sandbox), the
// entrypoint is non-dumpable (its /proc/1/exe is closed: EACCES), and the binaries are root's
// files on read-only mounts (EACCES before the read-only check). The test compares the host's
// copies before and after.
import { openSync, writeFileSync } from "node:fs";
import { NR, call, codeOf, cstr, report, sys } from "./_sys.ts";

const write = (path: string) => {
  try {
    writeFileSync(path, "#!/bin/sh\necho owned\n");
    return "WRITTEN";
  } catch (e) {
    return codeOf(e);
  }
};
const O_PATH = 0o10000000, O_WRONLY = 1;
const pathFd = sys(NR.open, cstr("/proc/self/exe"), O_PATH, 0);
let reopen: string;
try {
  openSync(`/proc/self/fd/${pathFd}`, "r+");
  reopen = "opened";
} catch (e) {
  reopen = codeOf(e);
}
report({
  proc_self_exe: write("/proc/self/exe"),
  proc_init_exe: write("/proc/1/exe"),
  o_path_reopen_writable: reopen,
  open_self_exe_wronly: call(NR.open, cstr("/proc/self/exe"), O_WRONLY, 0),
  entrypoint: write("/.ignite/init"),
  runtime_binary: write(process.execPath),
  libc: write("/lib/x86_64-linux-gnu/libc.so.6"),
});
