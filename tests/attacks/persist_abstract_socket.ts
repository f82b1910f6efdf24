// Attack: persistence through an abstract unix socket (a name in the network namespace, no file).
// Run 1 binds "@ignite-escape", listens, and leaves a double-forked, session-leader holder
// behind to keep it open; run 2 connects to it to pick up what run 1 left.
// Must fail: every run has its own network namespace (abstract names live there) and the holder
// dies with run 1's pid namespace; run 2 finds no listener (ECONNREFUSED) and can bind the same
// name itself.
// Policy: runs with `allowSpawn: true, allowedCommands: []`: the holder is a forked process.
import { NR, buffer, compile, errname, input, report, sys } from "./_sys.ts";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const NAME = "ignite-escape";
// struct sockaddr_un with a leading NUL: an abstract name.
const addr = buffer(2 + 1 + NAME.length);
addr.view.setUint16(0, AF_UNIX, true);
addr.bytes.set(new TextEncoder().encode(NAME), 3);
const addrLen = addr.bytes.length;

const hold = compile(
  `
long hold(long fd) {
  long pid = raw(57, 0, 0, 0, 0, 0, 0);                   /* fork */
  if (pid == 0) {
    raw(112, 0, 0, 0, 0, 0, 0);                           /* setsid */
    if (raw(57, 0, 0, 0, 0, 0, 0) != 0) raw(60, 0, 0, 0, 0, 0, 0);
    for (;;) { long c = raw(43, fd, 0, 0, 0, 0, 0); if (c >= 0) raw(1, c, (long)"run 1 was here\\n", 15, 0, 0, 0); }
  }
  int status = 0;
  raw(61, pid, (long)&status, 0, 0, 0, 0);
  return status;
}`,
  { hold: { args: ["i64"], returns: "i64" } },
);

const run = input().run;
const fd = sys(NR.socket, AF_UNIX, SOCK_STREAM, 0);
if (run === 1) {
  const bound = errname(sys(NR.bind, fd, addr.addr, addrLen));
  const listening = errname(sys(NR.listen, fd, 16));
  report({ run, bound, listening, holder: Number(hold.hold(BigInt(fd))) });
} else {
  const connect = errname(sys(NR.connect, fd, addr.addr, addrLen));
  const again = sys(NR.socket, AF_UNIX, SOCK_STREAM, 0);
  report({ run, connect, bindSameName: errname(sys(NR.bind, again, addr.addr, addrLen)) });
}
