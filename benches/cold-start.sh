#!/usr/bin/env bash
# Cold-start cost of a sandboxed run, three ways, with hyperfine (apt-get install hyperfine):
#   1. bare:   the bundle's bun binary running hello.ts directly on the host
#   2. runc:   a hand-written `runc run` of the same bundle and the same config.json ignite generates
#   3. ignite: `ignite run` of the same service (warm bundle cache)
# Usage (as root): benches/cold-start.sh [RUNS]   — prints a markdown table; IGNITE=path overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
ignite=${IGNITE:-ignite}
svc=examples/hello
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install hyperfine" >&2; exit 1; }
command -v runc >/dev/null || { echo "runc missing: apt-get install runc" >&2; exit 1; }

work=$(mktemp -d /tmp/ignite-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The exact spec ignite would run, runnable by a plain `runc run` (benches/runc-spec.sh).
. benches/runc-spec.sh
runc_bundle "$ignite" "$svc" "$work/bundle"
rootfs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root"]["path"])' "$work/bundle/config.json")
bun="$rootfs/usr/local/bin/bun"

# -N: no intermediate shell, so only the commands themselves are timed. runc run removes its
# container on exit, so one id serves every iteration.
hyperfine -N --style basic --warmup 5 --runs "$runs" --export-json "$work/result.json" \
  -n "bare bun hello.ts" "$bun $svc/hello.ts" \
  -n "runc run (same bundle + spec)" "runc --root $work/runc run --bundle $work/bundle ignite-bench-$$" \
  -n "ignite run" "$ignite run $svc --quiet" >&2

python3 - "$work/result.json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
runc = next(r for r in rs if r["command"].startswith("runc"))["median"]
print("| command | median | mean ± σ | min | median vs runc run |")
print("|---|---|---|---|---|")
for r in rs:
    print(f'| {r["command"]} | {r["median"]*1000:.1f} ms | {r["mean"]*1000:.1f} ± {r["stddev"]*1000:.1f} ms | {r["min"]*1000:.1f} ms | {r["median"]/runc:.2f}× |')
PY
