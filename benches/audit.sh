#!/usr/bin/env bash
# The cost of audit mode (apt-get install hyperfine):
#   1. `ignite run` of the hello service with and without --audit (hyperfine, medians)
#   2. the cost of one notified syscall: a Bun program making N `mount` calls through bun:ffi,
#      run with --audit (each call goes to ignite's listener, which denies it with EPERM) and
#      without (each call fails with EPERM inside the kernel's filter); the difference of the
#      medians of the program's execution time (measured by the entrypoint), divided by N.
# Usage (as root): benches/audit.sh [RUNS] [CALLS]   — prints markdown tables; IGNITE=path overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
calls=${2:-10000}
ignite=${IGNITE:-ignite}
svc=examples/hello
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install hyperfine" >&2; exit 1; }
if [ "$calls" -gt 10000 ]; then
  echo "CALLS must stay within the 10000 notifications a run is answered (the cap)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/ignite-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

hyperfine -N --style basic --warmup 5 --runs "$runs" --export-json "$work/run.json" \
  -n "ignite run" "$ignite run $svc --quiet" \
  -n "ignite run --audit" "$ignite run $svc --quiet --audit" >&2

mkdir -p "$work/storm"
cat > "$work/storm/service.yaml" <<YAML
service:
  name: storm
  entry: index.ts
  timeoutMs: 60000
YAML
cat > "$work/storm/index.ts" <<JS
import { dlopen, FFIType } from "bun:ffi";
const libc = dlopen("libc.so.6", { syscall: { args: [FFIType.i64, FFIType.i64], returns: FFIType.i64 } });
for (let i = 0; i < $calls; i++) libc.symbols.syscall(165n, 0n);
JS
chmod -R a+rX "$work"
for mode in plain audit; do
  flag=; [ "$mode" = audit ] && flag=--audit
  "$ignite" run "$work/storm" --quiet $flag >/dev/null  # warm-up
  for _ in $(seq "$runs"); do
    "$ignite" run "$work/storm" --json $flag | python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics"]["executionTimeMs"])'
  done > "$work/$mode.txt"
done

python3 - "$work" "$calls" <<'PY'
import json, statistics, sys
work, calls = sys.argv[1], int(sys.argv[2])
rs = json.load(open(f"{work}/run.json"))["results"]
base = rs[0]["median"]
print("| command | median | mean ± σ | min | median vs without audit |")
print("|---|---|---|---|---|")
for r in rs:
    print(f'| {r["command"]} | {r["median"]*1000:.1f} ms | {r["mean"]*1000:.1f} ± {r["stddev"]*1000:.1f} ms | {r["min"]*1000:.1f} ms | {(r["median"]-base)*1000:+.1f} ms |')
plain = [float(x) for x in open(f"{work}/plain.txt")]
audit = [float(x) for x in open(f"{work}/audit.txt")]
mp, ma = statistics.median(plain), statistics.median(audit)
print()
print(f"| {calls} `mount` calls (program execution time) | median | min | max |")
print("|---|---|---|---|")
print(f"| denied by the filter (EPERM, no audit) | {mp:.1f} ms | {min(plain):.1f} ms | {max(plain):.1f} ms |")
print(f"| notified, denied by ignite (--audit) | {ma:.1f} ms | {min(audit):.1f} ms | {max(audit):.1f} ms |")
print(f"| **per notified call** (difference / {calls}) | **{(ma-mp)*1000/calls:.1f} µs** | {(min(audit)-min(plain))*1000/calls:.1f} µs | |")
PY
