// Attack: make the host's OOM killer pick someone else under memory pressure by lowering the
// sandbox's oom_score_adj (to -1000, "never kill me").
// Must fail: lowering oom_score_adj below its starting value (1000, set by the OCI runtime) needs
// CAP_SYS_RESOURCE: EACCES, and the value stays 1000.
import { readFileSync, writeFileSync } from "node:fs";
import { codeOf, report } from "./_sys.ts";

const attempt = (value: string) => {
  try {
    writeFileSync("/proc/self/oom_score_adj", value);
    return "WRITTEN";
  } catch (e) {
    return codeOf(e);
  }
};
report({
  lower_to_minus_1000: attempt("-1000"),
  lower_to_0: attempt("0"),
  oom_adj_legacy: (() => {
    try {
      writeFileSync("/proc/self/oom_adj", "-17");
      return "WRITTEN";
    } catch (e) {
      return codeOf(e);
    }
  })(),
  now: readFileSync("/proc/self/oom_score_adj", "utf8").trim(),
});
