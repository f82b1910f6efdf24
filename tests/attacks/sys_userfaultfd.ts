// Attack: userfaultfd, the tool of choice for winning kernel race conditions (stall the kernel in
// the middle of a copy from user memory). Tries the system call (with and without
// UFFD_USER_MODE_ONLY) and the /dev/userfaultfd device.
// Must fail: userfaultfd is not in the seccomp allowlist (EPERM), and the sandbox's /dev has no
// such device (ENOENT).
import { openSync } from "node:fs";
import { NR, call, codeOf, report } from "./_sys.ts";

const O_CLOEXEC = 0o2000000, UFFD_USER_MODE_ONLY = 1;
let device: string;
try {
  openSync("/dev/userfaultfd", "r");
  device = "opened";
} catch (e) {
  device = codeOf(e);
}
report({
  userfaultfd: call(NR.userfaultfd, O_CLOEXEC),
  user_mode_only: call(NR.userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY),
  device,
});
