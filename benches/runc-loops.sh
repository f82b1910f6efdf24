#!/usr/bin/env bash
# The OCI runtime's own ceiling on this host: LOOPS back-to-back `runc run` loops of the spec
# ignite generates for examples/hello (benches/runc-spec.sh), side by side for SECONDS, as the
# baseline for `benches/http.sh` (ignite serve's executions per second under load).
# Usage (as root): benches/runc-loops.sh [SECONDS] [LOOPS]   (default: 20 s, 2 loops)
#   — prints the runs per second; IGNITE=path overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
loops=${2:-2}
ignite=${IGNITE:-ignite}
command -v runc >/dev/null || { echo "runc missing: apt-get install runc" >&2; exit 1; }

work=$(mktemp -d /tmp/ignite-runc-loops.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
. benches/runc-spec.sh
runc_bundle "$ignite" examples/hello "$work/template"
for i in $(seq "$loops"); do
    # One bundle per loop: the loops' containers run at the same time, each in a cgroup of its own.
    mkdir -p "$work/b$i"
    cp "$work/template"/* "$work/b$i/"
    python3 - "$work/template/config.json" "$work/b$i/config.json" "$i" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["linux"]["cgroupsPath"] = spec["linux"]["cgroupsPath"] + "-loop" + sys.argv[3]
json.dump(spec, open(sys.argv[2], "w"))
PY
done

# Microseconds from bash's own clock ($EPOCHREALTIME): no process is started to read it.
now_us() { echo "${EPOCHREALTIME/./}"; }
started=$(now_us)
end=$((started + secs * 1000000))
for i in $(seq "$loops"); do
    (
        n=0
        while ((${EPOCHREALTIME/./} < end)); do
            runc --root "$work/runc" run --bundle "$work/b$i" "ignite-loop-$$-$i" >/dev/null 2>"$work/err$i" \
                || { echo "runc run failed:" >&2; cat "$work/err$i" >&2; exit 1; }
            n=$((n + 1))
        done
        echo "$n" >"$work/count$i"
    ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
pids=()
# From the first start to the last run's end (the runs in flight at the deadline finish).
elapsed=$(awk -v s="$started" -v e="$(now_us)" 'BEGIN { print (e - s) / 1e6 }')
total=0
for i in $(seq "$loops"); do total=$((total + $(cat "$work/count$i"))); done
awk -v n="$total" -v s="$elapsed" -v l="$loops" \
    'BEGIN { printf "%d back-to-back runc run loops: %d runs in %.1f s = %.1f runs/s\n", l, n, s, n / s }'
