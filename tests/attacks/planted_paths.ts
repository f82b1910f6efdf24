// Attack: plant paths for host-side code to follow. In /tmp: symlinks to the host's secrets and
// to the entrypoint's root (/proc/1/root), a fifo, names with "..", newlines and escape
// sequences; the same names printed on stdout and stderr, where a careless host tool might use
// them as paths. Then report whether any of the links resolves to something inside the sandbox.
// Must fail: /tmp is a tmpfs inside the sandbox's own mount namespace that no host code ever
// reads, and links resolve inside the sandbox (/etc/shadow does not exist in the rootfs,
// /proc/1/root is closed: EACCES); the output only ever lands escaped inside ignite's JSON report.
// The test checks that nothing appeared, changed or vanished on the host.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { NR, codeOf, cstr, errname, input, report, sys } from "./_sys.ts";

const { canary } = input(); // a host path the sandbox must not reach
const links: Record<string, string> = {
  shadow: "/etc/shadow",
  canary,
  init_root: "/proc/1/root/etc/passwd",
  up: "../../../../../../../../etc/passwd",
  state: "/run/ignite",
};
for (const [name, target] of Object.entries(links)) symlinkSync(target, `/tmp/${name}`);
mkdirSync("/tmp/..\u2025..", { recursive: true });
writeFileSync("/tmp/name\nwith newline\u001b[31m", "x");
const fifo = errname(sys(259 /* mknodat */, -100, cstr("/tmp/fifo"), 0o10644, 0));
const own = readFileSync("/etc/passwd", "utf8"); // the rootfs's, not the host's
const resolved: Record<string, string | number> = {};
for (const name of Object.keys(links)) {
  try {
    const text = readFileSync(`/tmp/${name}`, "utf8");
    resolved[name] = text === own ? "the sandbox's /etc/passwd" : `read ${text.length} bytes`;
  } catch (e) {
    resolved[name] = codeOf(e);
  }
}
for (const p of [canary, "../../../../etc/shadow", "/proc/1/root/etc/shadow"]) {
  console.log(`path: ${p}`);
  console.error(`path: ${p}`);
}
report({ fifo, resolved });
