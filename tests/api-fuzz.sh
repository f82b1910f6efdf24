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

# The venv is reused while the pinned requirements are unchanged (the stamp is their digest).
venv=$cache/venv
stamp=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]]; then
  echo "api-fuzz: creating $venv"
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --require-hashes --no-deps -r "$requirements"
  echo "$stamp" >"$venv/.requirements"
fi
"$venv/bin/st" --version

work=$(mktemp -d /tmp/ignite-api-fuzz.XXXXXX)
server=
stop() {
  local status=$?
  if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    # Bounded: the server drains for --shutdown-timeout (5 s below), then exits.
    for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if ((status != 0)) && [[ -s "$work/server.log" ]]; then
    echo "api-fuzz: last server log lines:" >&2
    tail -20 "$work/server.log" >&2
  fi
  # A server that had to be killed may leave session mounts: `ignite cleanup` removes them.
  "$bin" cleanup --state-dir "$work/state" >/dev/null 2>&1 || true
  rm -rf "$work" || echo "api-fuzz: could not remove $work" >&2
  echo "api-fuzz: $( ((status == 0)) && echo passed || echo FAILED) in $((SECONDS - started)) s"
  exit "$status"
}
trap stop EXIT
trap 'exit 130' INT TERM

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
