#!/usr/bin/env bash
# Where a cold run's time goes, from the kernel's scheduler tracepoints (no instrumentation in
# ignite, no syscall tracing): RUNS interleaved pairs of `ignite run examples/hello --quiet`
# and a plain `runc run` of the same spec (benches/runc-spec.sh), recorded with
# `perf record -a -e sched:sched_process_{exec,exit,fork}`, then split at each process's exec
# and exit. Prints a markdown table of medians (min after the slash), in ms.
# Usage (as root): benches/cold-phases.sh [RUNS]   (default 30; needs perf: apt-get install
# linux-perf); IGNITE=path overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
ignite=${IGNITE:-ignite}
command -v perf >/dev/null || { echo "perf missing: apt-get install linux-perf" >&2; exit 1; }
command -v runc >/dev/null || { echo "runc missing: apt-get install runc" >&2; exit 1; }
ignite=$(command -v "$ignite")

work=$(mktemp -d /tmp/ignite-cold-phases.XXXXXX)
trap 'rm -rf "$work"' EXIT
. benches/runc-spec.sh
runc_bundle "$ignite" examples/hello "$work/bundle"
cat >"$work/pairs.sh" <<SH
for i in \$(seq $runs); do
    "$ignite" run examples/hello --quiet >/dev/null
    runc --root "$work/runc" run --bundle "$work/bundle" ignite-phases-\$\$ >/dev/null
done
SH
# Two unmeasured pairs first: caches, the cold-start record.
bash -c "$(sed "s/seq $runs/seq 2/" "$work/pairs.sh")"
perf record -q -a -o "$work/perf.data" \
    -e sched:sched_process_exec -e sched:sched_process_exit -e sched:sched_process_fork \
    -- bash "$work/pairs.sh" 2>/dev/null
perf script -i "$work/perf.data" -F pid,tid,time,event,trace 2>/dev/null >"$work/events.txt"

python3 - "$work/events.txt" "$ignite" <<'PY'
import re, statistics, sys
events, ignite = sys.argv[1], sys.argv[2]
parent, execs, exits = {}, {}, {}
for line in open(events):
    m = re.match(r"\s*(\d+)/(\d+)\s+([\d.]+):\s+sched:(\w+):\s*(.*)", line)
    if not m:
        continue
    pid, tid, t, ev, rest = int(m[1]), int(m[2]), float(m[3]) * 1000, m[4], m[5]
    if ev == "sched_process_fork":
        parent[int(re.search(r"child_pid=(\d+)", rest)[1])] = pid
    elif ev == "sched_process_exec":
        execs.setdefault(pid, []).append((t, re.search(r"filename=(\S+)", rest)[1]))
    elif ev == "sched_process_exit" and pid == tid:
        exits[pid] = t

def under(root):
    """Every process that descends from root (through forks), with root."""
    out, grew = {root}, True
    while grew:
        grew = False
        for child, p in parent.items():
            if p in out and child not in out:
                out.add(child)
                grew = True
    return out

def first_exec(procs, suffix):
    hits = [(t, pid) for pid in procs for t, f in execs.get(pid, []) if f.endswith(suffix)]
    return min(hits) if hits else None

phases = {}
def add(kind, name, ms):
    phases.setdefault(name, {}).setdefault(kind, []).append(ms)

ignite_pids = {pid for pid, ex in execs.items() if any(f == ignite for _, f in ex)}
for pid, ex in execs.items():
    for t0, f in ex:
        if f == ignite:
            kind, top = "ignite run", pid
        elif f.endswith("/runc") and parent.get(pid) not in ignite_pids:
            kind, top = "plain runc run", pid
        else:
            continue
        procs = under(top)
        runc = first_exec(procs, "/runc") if kind == "ignite run" else (t0, pid)
        init = first_exec(procs, "/.ignite/init")
        bun = first_exec(procs, "/bin/bun")
        if not (runc and init and bun) or top not in exits or runc[1] not in exits or bun[1] not in exits:
            continue
        init_exit = exits.get(init[1])
        if kind == "ignite run":
            add(kind, "ignite start → runc exec", runc[0] - t0)
        add(kind, "runc exec → entrypoint exec (runc's create)", init[0] - runc[0])
        add(kind, "entrypoint exec → bun exec", bun[0] - init[0])
        add(kind, "bun exec → bun exit", exits[bun[1]] - bun[0])
        if init_exit:
            add(kind, "bun exit → entrypoint exit (counters read, release)", init_exit - exits[bun[1]])
            add(kind, "entrypoint exit → runc exit (runc's teardown)", exits[runc[1]] - init_exit)
        if kind == "ignite run":
            add(kind, "runc exit → ignite exit (report, records, cleanup)", exits[top] - exits[runc[1]])
        add(kind, "total", exits[top] - t0)

def cell(xs):
    return f"{statistics.median(xs):.1f} / {min(xs):.1f}" if xs else "—"
n = {kind: len(phases.get("total", {}).get(kind, [])) for kind in ("ignite run", "plain runc run")}
print(f"| phase (median / min, ms) | ignite run (n={n['ignite run']}) | plain runc run (n={n['plain runc run']}) |")
print("|---|---|---|")
for name, by in phases.items():
    print(f"| {name} | {cell(by.get('ignite run', []))} | {cell(by.get('plain runc run', []))} |")
PY
