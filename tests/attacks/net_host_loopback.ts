// Attack: reach services the host runs on its own loopback (databases, admin APIs, the Docker
// socket's TCP twin...). The test starts a listener on the host's 127.0.0.1 and passes its port.
// Must fail: 127.0.0.1 inside the sandbox is the sandbox's own loopback (its own network
// namespace); nothing listens there, so connect fails with ECONNREFUSED and the host's listener
// never sees a connection.
import { connect } from "node:net";
import { codeOf, input, report } from "./_sys.ts";

const { port } = input();
const outcome = await new Promise<string>((resolve) => {
  const s = connect({ host: "127.0.0.1", port }, () => resolve("connected"));
  s.on("error", (e) => resolve(codeOf(e)));
});
report({ connect: outcome });
