// Attack: perf_event_open: hardware counters and kernel tracepoints are side channels into other
// tenants and the kernel, and the subsystem has a long list of privilege-escalation bugs. Tries a
// software counter on this process, a hardware counter on every process of a CPU, and a
// tracepoint.
// Must fail: perf_event_open is not in the seccomp allowlist (EPERM), whatever the event.
import { NR, buffer, call, report } from "./_sys.ts";

function attr(type: number, config: number) {
  const a = buffer(128);
  a.view.setUint32(0, type, true);
  a.view.setUint32(4, 128, true);
  a.view.setBigUint64(8, BigInt(config), true);
  return a.addr;
}
report({
  software_self: call(NR.perf_event_open, attr(1, 0), 0, -1, -1, 0),
  hardware_all_cpu0: call(NR.perf_event_open, attr(0, 0), -1, 0, -1, 0),
  tracepoint: call(NR.perf_event_open, attr(2, 1), -1, 0, -1, 0),
});
