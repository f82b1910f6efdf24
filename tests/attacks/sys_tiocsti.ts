// Attack: TIOCSTI pushes characters into a terminal's input queue, typing commands into the
// shell that started the sandbox once the program exits (CVE-2016-7545 and friends). Tries it on
// stdin, stdout, stderr, /dev/tty and a new pseudo-terminal, and checks for TIOCLINUX too.
// Must fail: the sandbox has no terminal at all: stdio are pipes (ENOTTY), there is no
// controlling terminal (/dev/tty: ENXIO) and no devpts to allocate one from (/dev/ptmx: ENOENT).
import { openSync } from "node:fs";
import { NR, buffer, call, codeOf, report } from "./_sys.ts";

const TIOCSTI = 0x5412, TIOCLINUX = 0x541c;
const ch = buffer(1);
ch.bytes[0] = "x".charCodeAt(0);
const open = (p: string) => {
  try {
    return { fd: openSync(p, "r+"), error: null };
  } catch (e) {
    return { fd: -1, error: codeOf(e) };
  }
};
const tty = open("/dev/tty");
const ptmx = open("/dev/ptmx");
report({
  stdin: call(NR.ioctl, 0, TIOCSTI, ch.addr),
  stdout: call(NR.ioctl, 1, TIOCSTI, ch.addr),
  stderr: call(NR.ioctl, 2, TIOCSTI, ch.addr),
  linux_stdin: call(NR.ioctl, 0, TIOCLINUX, ch.addr),
  dev_tty: tty.error ?? call(NR.ioctl, tty.fd, TIOCSTI, ch.addr),
  dev_ptmx: ptmx.error ?? call(NR.ioctl, ptmx.fd, TIOCSTI, ch.addr),
});
