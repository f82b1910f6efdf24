// Attack: weaken the process's own hardening through personality(2): ADDR_NO_RANDOMIZE (no ASLR
// for what it executes next), READ_IMPLIES_EXEC (every readable mapping executable), PER_LINUX32
// and UNAME26 (legacy personas with their own bugs).
// Must fail: personality is allowed only to query (0xffffffff) or to reset to PER_LINUX (0); every
// other value gets EPERM, and the persona stays PER_LINUX.
import { NR, call, report } from "./_sys.ts";

report({
  addr_no_randomize: call(NR.personality, 0x0040000),
  read_implies_exec: call(NR.personality, 0x0400000),
  per_linux32: call(NR.personality, 0x0008),
  uname26: call(NR.personality, 0x0020000),
  reset_per_linux: call(NR.personality, 0),
  query: call(NR.personality, 0xffffffff),
});
