// Attack: persistence through the filesystem. Run 1 leaves files in every writable place (/tmp,
// a hidden directory in /tmp, $HOME, /dev/shm); run 2 of the same service looks for them.
// Must fail: /tmp and /dev/shm are tmpfs mounts of that one run, gone with its mount namespace,
// and nothing else is writable; run 2 starts empty.
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { input, report } from "./_sys.ts";

const places = ["/tmp", "/dev/shm", process.env.HOME ?? "/tmp"];
if (input().run === 1) {
  mkdirSync("/tmp/.hidden", { recursive: true });
  writeFileSync("/tmp/.hidden/payload", "from run 1");
  for (const dir of places) writeFileSync(`${dir}/marker`, "from run 1");
  report({ planted: readdirSync("/tmp").sort() });
} else {
  report(Object.fromEntries(places.map((d) => [d, readdirSync(d)])));
}
