// Attack: a service directory that arrives with symlinks pointing out of it (to a host file, to
// the host's /, and node_modules to a host directory), the way an untrusted upload or an agent's
// generated files might.
// The test creates the links in the service directory before the run; the program reads through
// them. On runtimes that get stripped TypeScript (node), ignite also copies the directory to
// stage it: a copy that followed the links would put the host's files in the sandbox.
// Must fail: links resolve inside the sandbox's own filesystem, where the host paths do not exist
// (ENOENT); the staging copy records links as links and never follows them, and a node_modules
// link is not mounted.
import { readdirSync, readFileSync } from "node:fs";

const { canary } = JSON.parse(process.env.IGNITE_INPUT ?? "{}");
const attempt = (f: () => unknown) => {
  try {
    return f();
  } catch (e: any) {
    return e?.code ?? String(e);
  }
};
console.log(
  JSON.stringify({
    via_link: attempt(() => readFileSync("/app/leak.txt", "utf8")),
    via_root_link: attempt(() => readFileSync(`/app/hostroot${canary}`, "utf8")),
    canary_directly: attempt(() => readFileSync(canary, "utf8")),
    node_modules: attempt(() => readdirSync("/app/node_modules/")),
  }),
);
