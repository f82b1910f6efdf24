// Attack: starve concurrent runs of a kernel limit that is counted per user, not per namespace
// or cgroup. A "holder" run opens inotify instances until the kernel refuses
// (fs.inotify.max_user_instances, 128 by default), says so, and keeps them open; while it does,
// this run opens one more. (POSIX message-queue bytes, queued signals and pipe buffer pages are
// counted the same way.)
// Must fail: every run has a uid of its own (200000..265535), so the holder used up only its own
// allowance: here inotify_init1 succeeds, and this run's uid is not the holder's.
import { NR, errname, input, report, sys } from "./_sys.ts";

const { role, holder } = input();
const uid = sys(NR.getuid);
const ownRange = uid >= 200000 && uid <= 265535;
if (role === "holder") {
  let held = 0;
  let last = 0;
  while ((last = sys(NR.inotify_init1, 0)) >= 0) {
    held++;
  }
  report({ uid, held, stopped: errname(last) });
  // Holds them until ignite stops the run (the test interrupts it).
  setInterval(() => {}, 1000);
} else {
  const opened = (fd: number) => (fd >= 0 ? "opened" : errname(fd));
  report({
    holderStopped: holder.stopped,
    holderHeldSome: holder.held > 0,
    inotify: opened(sys(NR.inotify_init1, 0)),
    ownRange,
    notTheHoldersUid: uid !== holder.uid,
  });
}
