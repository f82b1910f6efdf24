#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI document: starts `ignite serve` on loopback with
# an API key, a throwaway state dir and one small bun service, and runs schemathesis (pinned in
# tests/api-fuzz/requirements.txt) against GET /openapi.json. Fails on any 5xx, any status,
# content type, header or body that the document does not describe, and on any authenticated
# route that answers without a key. Needs a built debug binary (cargo build --bins), runc and
# the bun bundle (ignite runtime pull bun), like the integration tests.
#
# Environment: IGNITE_FUZZ_CACHE (venv cache, default /var/cache/ignite-ci/api-fuzz),
# IGNITE_FUZZ_MAX_TIME (seconds for the whole schemathesis run, default 180),
# IGNITE_FUZZ_SEED (a fixed seed reproduces a run).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bin=${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-gnu/debug/ignite
[[ -x "$bin" ]] || { echo "api-fuzz: $bin is missing; run cargo build --bins first" >&2; exit 1; }
requirements=$root/tests/api-fuzz/requirements.txt
config=$root/tests/api-fuzz/schemathesis.toml
cache=${IGNITE_FUZZ_CACHE:-/var/cache/ignite-ci/api-fuzz}
max_time=${IGNITE_FUZZ_MAX_TIME:-180}
started=$SECONDS
name=api-fuzz
# shellcheck source=tests/harness.sh
. "$root/tests/harness.sh"

venv=$cache/venv
harness_venv "$venv" "$requirements"
"$venv/bin/st" --version

harness_scratch state

mkdir -p "$work/services" "$work/state"
cp -r "$root/examples/hello" "$work/services/hello"
key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$key" >"$work/keys"
# Limits set so that the fuzzer's volume does not turn into capacity answers, which are
# documented but would hide everything else: --rate-limit high enough not to throttle it into
# 429s, --max-sessions and --max-sessions-per-key (it has one key) above the sessions it opens
# (each is a tmpfs that only holds what is written; short TTLs return them), --pool-min 0: no
# sandboxes started ahead. 429 and 503 are covered by tests/server.rs.
IGNITE_LOG=warn "$bin" serve --services "$work/services" --state-dir "$work/state" \
  --host 127.0.0.1 --port 0 --api-key-file "$work/keys" --rate-limit 100000 \
  --max-sessions 512 --max-sessions-per-key 512 --session-ttl 30 --session-max-ttl 120 \
  --pool-min 0 --shutdown-timeout 5 >"$work/stdout" 2>"$work/server.log" &
server=$!

addr=
for _ in $(seq 300); do
  addr=$(sed -n 's/^{"listening":"\(.*\)"}$/\1/p' "$work/stdout" | sed -n 1p)
  [[ -n "$addr" ]] && break
  kill -0 "$server" 2>/dev/null || { echo "api-fuzz: the server exited before listening" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$addr" ]] || { echo "api-fuzz: the server did not print its address within 30 s" >&2; exit 1; }
echo "api-fuzz: ignite serve on $addr"

seed=()
[[ -n "${IGNITE_FUZZ_SEED:-}" ]] && seed=(--seed "$IGNITE_FUZZ_SEED")
cd "$work"
# The checks and per-operation example counts are in tests/api-fuzz/schemathesis.toml.
# One worker: CPython 3.11 before 3.11.8 (this machine's python3 is 3.11.7) shares the AST
# constructor's recursion counter between threads (CPython issue gh-106905), and two workers
# parsing source at once (Hypothesis does, to describe its strategies) end the run with
# "SystemError: AST constructor recursion depth mismatch", a failure that says nothing about
# the API. The run is bounded by time, not by work, so one worker costs coverage, not minutes.
"$venv/bin/st" --config-file "$config" run "http://$addr/openapi.json" \
  --header "Authorization: Bearer $key" \
  --max-time "$max_time" --request-timeout 60 --workers 1 --no-color \
  "${seed[@]}"
