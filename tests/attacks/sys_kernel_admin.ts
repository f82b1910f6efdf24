// Attack: every administrative system call a root-less, capability-less process could still try:
// kernel modules, kexec, reboot, swap, the kernel log, process accounting, quotas, I/O port
// access, the clock, the host and domain name, vhangup, device nodes, the LDT, other processes'
// memory policy, and becoming root (setuid(0), capset).
// Must fail: none of these is in the seccomp allowlist except setuid/setgid/capset and mknod,
// which the kernel refuses without capabilities (EPERM either way).
import { NR, buffer, call, cstr, report } from "./_sys.ts";

const AT_FDCWD = -100;
const capHeader = buffer(8);
capHeader.view.setUint32(0, 0x20080522, true); // _LINUX_CAPABILITY_VERSION_3, pid 0 (self)
const capData = buffer(24);
capData.view.setUint32(0, 0xffffffff, true); // effective: everything
capData.view.setUint32(4, 0xffffffff, true); // permitted
report({
  init_module: call(175, 0, 0, cstr("")),
  finit_module: call(313, 0, cstr(""), 0),
  delete_module: call(176, cstr("ext4"), 0),
  kexec_load: call(246, 0, 0, 0, 0),
  kexec_file_load: call(320, 0, 0, 0, 0, 0),
  reboot: call(169, 0xfee1dead, 672274793, 0x4321fedc, 0),
  swapon: call(167, cstr("/tmp/swap"), 0),
  syslog_read_all: call(103, 3, 0, 0),
  acct: call(163, cstr("/tmp/acct")),
  quotactl: call(179, 0, 0, 0, 0),
  iopl: call(172, 3),
  ioperm: call(173, 0, 1024, 1),
  settimeofday: call(164, buffer(16).addr, 0),
  clock_settime: call(227, 0, buffer(16).addr),
  adjtimex: call(159, buffer(208).addr),
  sethostname: call(170, cstr("owned"), 5),
  setdomainname: call(171, cstr("owned"), 5),
  vhangup: call(153),
  mknod_block_device: call(259, AT_FDCWD, cstr("/tmp/sda"), 0o60600, 0x800),
  mknod_char_device: call(259, AT_FDCWD, cstr("/tmp/mem"), 0o20600, 0x101),
  modify_ldt: call(154, 1, buffer(16).addr, 16),
  migrate_pages_of_init: call(256, 1, 64, buffer(8).addr, buffer(8).addr),
  setuid_root: call(NR.setuid, 0),
  setgid_root: call(NR.setgid, 0),
  capset_all: call(NR.capset, capHeader.addr, capData.addr),
});
