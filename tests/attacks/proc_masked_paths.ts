// Attack: read what the host kernel exposes about itself and other tenants: the masked /proc and
// /sys paths (kernel memory, keys, timer and scheduler internals, interrupts, firmware, power
// capping's energy counters), which the test passes in (those that exist on this host), plus
// kernel symbol addresses (/proc/kallsyms), the kernel log (/dev/kmsg) and debugfs.
// Must fail: masked files are bound to /dev/null (read empty) and masked directories to an empty
// read-only tmpfs; /proc/kallsyms is masked too (and would show zero addresses to a non-root
// reader on most hosts anyway); /dev/kmsg does not exist
// in the sandbox's /dev; debugfs is not mounted (an empty directory).
import { readdirSync, readFileSync } from "node:fs";
import { codeOf, input, report } from "./_sys.ts";

const masked: Record<string, number | string> = {};
for (const p of input().masked as string[]) {
  try {
    masked[p] = readdirSync(p).length;
  } catch {
    try {
      masked[p] = readFileSync(p).length;
    } catch (e) {
      masked[p] = codeOf(e);
    }
  }
}
const kallsyms = readFileSync("/proc/kallsyms", "utf8").trim().split("\n");
let kmsg: string;
try {
  readFileSync("/dev/kmsg");
  kmsg = "READ";
} catch (e) {
  kmsg = codeOf(e);
}
const list = (p: string) => {
  try {
    return readdirSync(p);
  } catch (e) {
    return codeOf(e);
  }
};
report({
  masked,
  kallsyms_nonzero_addresses: kallsyms.filter((l) => l !== "" && !/^0+ /.test(l)).length,
  kmsg,
  debugfs: list("/sys/kernel/debug"),
  tracefs: list("/sys/kernel/tracing"),
});
