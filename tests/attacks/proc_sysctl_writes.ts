// Attack: reconfigure the host kernel through /proc: /proc/sysrq-trigger (crash or reboot the
// host; "h" is used here, which only prints help, in case the write ever went through), the
// sysrq switch, core_pattern (a "|program" runs as root on the host at the next crash: a classic
// container escape), modprobe and hotplug helpers, and a few other sysctls.
// Must fail: /proc/sys and /proc/sysrq-trigger are mounted read-only in the sandbox and the files
// are root's, writable only by root (EACCES for uid 65534); files the host kernel does not have
// are ENOENT. The test checks the host's values are unchanged.
import { writeFileSync } from "node:fs";
import { codeOf, report } from "./_sys.ts";

const write = (path: string, value: string) => {
  try {
    writeFileSync(path, value);
    return "WRITTEN";
  } catch (e) {
    return codeOf(e);
  }
};
report({
  sysrq_trigger: write("/proc/sysrq-trigger", "h"),
  sysrq: write("/proc/sys/kernel/sysrq", "1"),
  core_pattern: write("/proc/sys/kernel/core_pattern", "|/tmp/pwn"),
  modprobe: write("/proc/sys/kernel/modprobe", "/tmp/pwn"),
  hotplug: write("/proc/sys/kernel/hotplug", "/tmp/pwn"),
  randomize_va_space: write("/proc/sys/kernel/randomize_va_space", "0"),
  drop_caches: write("/proc/sys/vm/drop_caches", "3"),
  hostname: write("/proc/sys/kernel/hostname", "owned"),
});
