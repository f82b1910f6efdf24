#!/usr/bin/env bash
# Warm pool latency: p50 of executions answered from a warm sandbox, against the bare runtime
# (`bun hello.ts` with the bundle's own bun binary, same input, straight on the host). WHAT says
# which executions: `service` (default) is `POST /services/hello/execute` (examples/hello);
# `inline` is `POST /v1/execute` with hello.ts's text as `code`; `session` is
# `POST /v1/sessions/ID/execute` with the same code in one session; `all` is the three. Each
# timed request waits (untimed) until every sandbox it may use is parked again, so every timed
# request is a warm hit; the script checks that from the reports. Client: one keep-alive HTTP
# connection from Python. The bare runtime is timed twice: back to back (hot caches), and
# interleaved with the requests in random order after the same wait, which is the comparison
# the ratios use.
# Usage (as root): benches/warm.sh [RUNS] [service|inline|session|all]   — prints a markdown
# table; IGNITE=path overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
what=${2:-service}
case "$what" in service|inline|session|all) ;; *) echo "WHAT: service, inline, session or all (got $what)" >&2; exit 2;; esac
ignite=${IGNITE:-ignite}

work=$(mktemp -d /tmp/ignite-bench.XXXXXX)
state=$(mktemp -d /tmp/ignite-bench-state.XXXXXX)
server=
cleanup() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work" "$state"
}
trap cleanup EXIT
mkdir -p "$work/svc"
cp -r examples/hello "$work/svc/hello"
chmod -R a+rX "$work"

root=$("$ignite" run examples/hello --print-spec | python3 -c 'import json,sys; print(json.load(sys.stdin)["root"]["path"])')
bun="$root/usr/local/bin/bun"
[ -x "$bun" ] || { echo "no bun at $bun" >&2; exit 1; }

IGNITE_STATE_DIR=$state IGNITE_LOG=warn "$ignite" serve --services "$work/svc" --port 0 \
  --rate-limit 0 --pool-min 1 --pool-max 2 >"$work/listening" 2>"$work/server.log" &
server=$!
for _ in $(seq 500); do [ -s "$work/listening" ] && break; sleep 0.02; done
addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listening"])' "$work/listening")

python3 - "$addr" "$runs" "$bun" "$work/svc/hello" "$what" <<'PY'
import http.client, json, os, random, statistics, subprocess, sys, time

addr, runs, bun, svc, what = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
host, port = addr.rsplit(":", 1)
body = json.dumps({"input": {"name": "bench"}})
code = open(os.path.join(svc, "hello.ts")).read()
inline_body = json.dumps({"runtime": "bun", "code": code, "input": {"name": "bench"}})

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "IGNITE_INPUT": body}
bare = []
for i in range(runs + 10):
    t = time.perf_counter()
    subprocess.run([bun, "hello.ts"], cwd=svc, env=env, stdout=subprocess.DEVNULL, check=True)
    if i >= 10:
        bare.append((time.perf_counter() - t) * 1000)

conn = http.client.HTTPConnection(host, int(port))
def call(method, path, data=None):
    conn.request(method, path, data, {"Content-Type": "application/json"} if data else {})
    return conn.getresponse().read().decode()

def parked(service):
    for line in call("GET", "/metrics").splitlines():
        if line.startswith(f'ignite_pool_sandboxes{{service="{service}",state="parked"}}'):
            return float(line.split()[-1])
    return 0.0

# name → (path, body, pool service). Inline code and sessions are both counted as "inline".
targets = {}
if what in ("service", "all"):
    targets["service"] = ("/services/hello/execute", body, "hello")
if what in ("inline", "all"):
    targets["inline"] = ("/v1/execute", inline_body, "inline")
if what in ("session", "all"):
    session = json.loads(call("POST", "/v1/sessions", "{}"))["id"]
    targets["session"] = (f"/v1/sessions/{session}/execute", inline_body, "inline")
# Sandboxes parked when every target's is: hello's, and one per inline kind and session.
want = {"hello": 1 if "service" in targets else 0, "inline": sum(1 for t in targets if t != "service")}

def execute(name):
    path, data, _ = targets[name]
    r = json.loads(call("POST", path, data))
    return r

# The first inline and session runs are cold (nothing is parked for them before they come).
for name in targets:
    if name != "service":
        execute(name)

times = {name: [] for name in targets}
walls, launch, run, alone = {n: [] for n in targets}, {n: [] for n in targets}, {n: [] for n in targets}, []
# Bare runs interleaved with the warm requests, in random order, each after the same wait for
# every parked sandbox: what ran just before a bun start (another bun, a request, idle time)
# moves it by up to a millisecond on a small VM, so the comparison is made under the same
# conditions.
random.seed(1)
for i in range(runs + 10):
    for kind in random.sample(["bare"] + list(targets), len(targets) + 1):
        for _ in range(5000):
            if all(parked(s) >= n for s, n in want.items() if n):
                break
            time.sleep(0.005)
        t = time.perf_counter()
        if kind == "bare":
            subprocess.run([bun, "hello.ts"], cwd=svc, env=env, stdout=subprocess.DEVNULL, check=True)
            if i >= 10:
                alone.append((time.perf_counter() - t) * 1000)
            continue
        r = execute(kind)
        ms = (time.perf_counter() - t) * 1000
        if r.get("status") != "ok" or r["stdout"] != "hello, bench\n" or not r["metrics"].get("warm"):
            sys.exit(f"{kind}: not a warm, correct run: {r}")
        if i >= 10:
            times[kind].append(ms)
            walls[kind].append(r["metrics"]["wallTimeMs"])
            launch[kind].append(r["metrics"]["phases"]["launchMs"])
            run[kind].append(r["metrics"]["phases"]["runMs"])

label = {"service": "POST /services/hello/execute", "inline": "POST /v1/execute (code)",
         "session": "POST /v1/sessions/ID/execute (code)"}
rows = [("bare `bun hello.ts`, interleaved with the requests", alone), ("bare `bun hello.ts`, back to back", bare)]
for name in targets:
    rows += [(f"{label[name]} (warm), client", times[name]),
             ("  report wallTimeMs (checkout → report)", walls[name]),
             ("  phases.launchMs (handover → exec)", launch[name]),
             ("  phases.runMs (exec → exit + counters)", run[name])]
print(f"| {runs} runs | p50 ms | p90 ms | mean ms |")
print("|---|---:|---:|---:|")
for name, xs in rows:
    print(f"| {name} | {pct(xs, 50):.2f} | {pct(xs, 90):.2f} | {statistics.mean(xs):.2f} |")
print()
target = {"service": 1.5, "inline": 2.0, "session": 2.0}
for name in targets:
    print(f"{label[name]}: warm p50 / bare p50 (interleaved) = {pct(times[name], 50) / pct(alone, 50):.2f}"
          f" (target ≤ {target[name]}); back to back = {pct(times[name], 50) / pct(bare, 50):.2f}")
PY
