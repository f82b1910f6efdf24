// Attack: persistence through System V IPC and POSIX message queues. Run 1 creates a shared
// memory segment, a message queue and a semaphore set under a well-known key, and a named POSIX
// queue, and puts a message in; run 2 opens them by key and name.
// Must fail: every run has its own IPC namespace; its objects die with it, so run 2 gets ENOENT
// for every one of them.
import { NR, buffer, cstr, errname, input, report, sys } from "./_sys.ts";

const KEY = 0x1617e;
const IPC_CREAT = 0o1000;
const O_RDWR = 2;
const O_CREAT = 0o100;
const run = input().run;
const flags = run === 1 ? IPC_CREAT | 0o600 : 0;
const shm = sys(NR.shmget, KEY, 4096, flags);
const msg = sys(NR.msgget, KEY, flags);
const sem = sys(NR.semget, KEY, 1, flags);
const mq = sys(NR.mq_open, cstr("ignite-escape"), O_RDWR | (run === 1 ? O_CREAT : 0), 0o600, 0);
if (run === 1 && msg >= 0) {
  const m = buffer(16); // struct msgbuf { long mtype; char mtext[8]; }
  m.view.setBigInt64(0, 1n, true);
  sys(NR.msgsnd, msg, m.addr, 8, 0);
}
// Run 1 reports what it created (a non-negative id), run 2 what it found.
const seen = (r: number) => (r >= 0 ? (run === 1 ? "created" : "found") : errname(r));
report({ run, shm: seen(shm), msg: seen(msg), sem: seen(sem), mq: seen(mq) });
