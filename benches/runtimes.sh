#!/usr/bin/env bash
# Per-runtime costs, printed as the markdown tables of docs/performance.md, "Per runtime":
#   1. start: the runtime binary running hello directly on the host ("bare", the same binary,
#      arguments and environment ignite's spec uses) vs `ignite run` of the same service
#      (warm bundle cache), medians over RUNS runs with hyperfine;
#   2. bundles: build time (recipe only: the package is already downloaded), first-unpack time,
#      tarball size and unpacked size, measured in a scratch cache.
# Usage (as root): benches/runtimes.sh [RUNS] [RUNTIME...]   (default: 30 runs; bun node deno quickjs)
# Needs hyperfine (apt-get install hyperfine), runc and the bundles (`ignite runtime pull NAME`).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
shift || true
runtimes=("$@")
((${#runtimes[@]})) || runtimes=(bun node deno quickjs)
ignite=${IGNITE:-ignite}
cache=${IGNITE_CACHE_DIR:-/var/lib/ignite}
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install hyperfine" >&2; exit 1; }

work=$(mktemp -d /tmp/ignite-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

start_rows=()
bundle_rows=()
for rt in "${runtimes[@]}"; do
    svc="$work/hello-$rt"
    mkdir -p "$svc"
    printf 'service:\n  name: hello\n  entry: hello.js\n  runtime: %s\n' "$rt" >"$svc/service.yaml"
    echo 'console.log("hello");' >"$svc/hello.js"
    chmod -R a+rX "$svc"
    "$ignite" runtime pull "$rt" >&2

    # The bare command: the spec's own argv (after the entrypoint's `--`) and environment, with
    # the binary taken from the unpacked rootfs and /app pointing at the host directory.
    "$ignite" run "$svc" --print-spec --quiet >"$work/config-$rt.json"
    python3 - "$work/config-$rt.json" "$svc" >"$work/bare-$rt.sh" <<'PY'
import json, shlex, sys
spec = json.load(open(sys.argv[1]))
svc = sys.argv[2]
args = spec["process"]["args"]
argv = args[args.index("--") + 1:]
argv = [a.replace("/app", svc) for a in argv]
argv[0] = spec["root"]["path"] + argv[0]
env = [e for e in spec["process"]["env"] if not e.startswith("IGNITE_INPUT=")] + ["IGNITE_INPUT={}"]
print("env -i " + " ".join(shlex.quote(e) for e in env) + " " + " ".join(shlex.quote(a) for a in argv))
PY
    version=$("$ignite" run "$svc" --json --quiet | python3 -c 'import json,sys; print(json.load(sys.stdin)["runtime"])')
    hyperfine -N --style basic --warmup 3 --runs "$runs" --export-json "$work/start-$rt.json" \
        -n "bare" "$(cat "$work/bare-$rt.sh")" \
        -n "ignite" "$ignite run $svc --quiet" >&2
    start_rows+=("$(python3 - "$work/start-$rt.json" "$version" <<'PY'
import json, sys
rs = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
b, i = rs["bare"]["median"] * 1000, rs["ignite"]["median"] * 1000
print(f"| {sys.argv[2]} | {b:.1f} ms | {i:.1f} ms | +{i - b:.1f} ms | {i / b:.2f}× |")
PY
)")

    # Bundle build and first unpack in a scratch cache that shares only the downloaded package.
    scratch="$work/cache-$rt"
    mkdir -p "$scratch/packages"
    cp -a "$cache/packages/." "$scratch/packages/"
    summary=$(IGNITE_CACHE_DIR="$scratch" "$ignite" runtime pull "$rt" 2>&1 >/dev/null | grep ' ready in ' | tail -1)
    index="$scratch/index/$version.json"
    bundle_rows+=("$(python3 - "$index" "$scratch" "$summary" <<'PY'
import json, os, re, sys
rec = json.load(open(sys.argv[1]))
digest = rec["digest"].replace(":", "-")
root = os.path.join(sys.argv[2], "rootfs", digest)
unpacked = sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(root) for f in fs)
m = lambda k: (re.search(k + r" ([0-9.]+) s", sys.argv[3]) or [None, "–"])[1]
print(f'| {rec["runtime"]}@{rec["version"]} | {m("build")} s | {m("unpack")} s | '
      f'{rec["size"] / 2**20:.1f} MiB | {unpacked / 2**20:.1f} MiB |')
PY
)")
    rm -rf "$scratch"
done

echo "| runtime | bare start (median) | ignite run (median) | overhead | ratio |"
echo "|---|---|---|---|---|"
printf '%s\n' "${start_rows[@]}"
echo
echo "| bundle | build | first unpack | tarball | unpacked |"
echo "|---|---|---|---|---|"
printf '%s\n' "${bundle_rows[@]}"
