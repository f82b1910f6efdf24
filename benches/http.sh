#!/usr/bin/env bash
# Load on the HTTP API: `POST /services/hello/execute` (examples/hello, bun) with wrk at several
# concurrencies, against one `ignite serve` (rate limit off, default slots and queue). Prints a
# markdown table: requests/s, latency percentiles, status mix, and the server's RSS before and
# after; then checks that no sandbox was left behind.
# Usage (as root): benches/http.sh [SECONDS] [CONCURRENCY...]   (default: 20 s; 1 8 32)
# Needs wrk (apt-get install wrk), runc and the bun bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift || true
levels=("$@")
((${#levels[@]})) || levels=(1 8 32)
ignite=${IGNITE:-ignite}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }

work=$(mktemp -d /tmp/ignite-http-bench.XXXXXX)
server=
cleanup() {
    [[ -n "$server" ]] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/services" "$work/state"
cp -r examples/hello "$work/services/hello"
chmod -R a+rX "$work"

IGNITE_LOG=warn "$ignite" serve --services "$work/services" --state-dir "$work/state" --port 0 \
    --rate-limit 0 >"$work/listen" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/listen" && break; sleep 0.1; done
addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listening"])' "$work/listen")
rss() { awk '/VmRSS/ {print $2/1024}' "/proc/$server/status"; }
rss_before=$(rss)

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"input":{}}'
wrk.headers["Content-Type"] = "application/json"
statuses = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init() statuses = {} end
function response(status) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local mix = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do mix[code] = (mix[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(mix) do table.insert(parts, code .. ": " .. n) end
  table.sort(parts)
  io.write(string.format("RESULT %.1f %.1f %.1f %.1f %.1f %d %d %s\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, table.concat(parts, ", ")))
end
LUA

rows=()
for c in "${levels[@]}"; do
    threads=$((c < 2 ? c : 2))
    out=$(wrk -t"$threads" -c"$c" -d"${secs}s" --timeout 30s -s "$work/post.lua" "http://$addr/services/hello/execute")
    read -r _ rps p50 p95 p99 max socket_errors timeouts mix <<<"$(grep '^RESULT' <<<"$out")"
    rows+=("| $c | $rps | $p50 ms | $p95 ms | $p99 ms | $max ms | $mix | $socket_errors / $timeouts |")
done
rss_after=$(rss)

echo "| concurrency | requests/s | p50 | p95 | p99 | max | statuses | socket errors / timeouts |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
printf 'server RSS: %.1f MiB before, %.1f MiB after\n' "$rss_before" "$rss_after"

kill -TERM "$server"
wait "$server" || true
server=
left=$(find "$work/state/runs" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
containers=$(runc --root "$work/state/oci/runc" list -q 2>/dev/null | wc -l)
echo "left behind after shutdown: $left run dirs, $containers containers"
