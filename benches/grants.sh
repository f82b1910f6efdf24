#!/usr/bin/env bash
# What a policy's grants add to a run: `ignite run` of the hello example with the default policy,
# with security.network.enabled: true, with security.filesystem.readOnly: false, and with both.
# Each round runs the four in a random order, so that noise from the rest of the machine spreads
# over them evenly (hyperfine would run each one's runs back to back).
# Usage (as root): benches/grants.sh [ROUNDS]   — prints a markdown table; IGNITE=path overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-60}
ignite=${IGNITE:-ignite}

work=$(mktemp -d /tmp/ignite-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
declare -A policy=(
  [default]=""
  [network]=$'security:\n  network:\n    enabled: true\n'
  [writable]=$'security:\n  filesystem:\n    readOnly: false\n'
  [both]=$'security:\n  network:\n    enabled: true\n  filesystem:\n    readOnly: false\n'
)
variants=(default network writable both)
for v in "${variants[@]}"; do
  cp -r examples/hello "$work/$v"
  [[ -z ${policy[$v]} ]] || printf '%s' "${policy[$v]}" > "$work/$v/ignite.policy.yaml"
  chmod -R a+rX "$work/$v"
  for _ in 1 2 3; do "$ignite" run "$work/$v" --quiet > /dev/null; done
done

for ((i = 0; i < rounds; i++)); do
  for v in $(printf '%s\n' "${variants[@]}" | shuf); do
    start=$(date +%s%N)
    "$ignite" run "$work/$v" --quiet > /dev/null
    echo "$v $(( $(date +%s%N) - start ))" >> "$work/times"
  done
done

python3 - "$work/times" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    v, ns = line.split()
    times.setdefault(v, []).append(int(ns) / 1e6)
base = statistics.median(times["default"])
print("| policy | median | interquartile range | min | vs default |")
print("|---|---|---|---|---|")
for v, label in [("default", "default (read-only root, loopback only)"), ("network", "`network.enabled: true`"),
                 ("writable", "`readOnly: false`"), ("both", "both")]:
    xs = sorted(times[v])
    m = statistics.median(xs)
    print(f"| {label} | {m:.1f} ms | {xs[len(xs)//4]:.1f}–{xs[3*len(xs)//4]:.1f} ms | {xs[0]:.1f} ms | {m - base:+.1f} ms |")
PY
