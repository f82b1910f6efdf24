#!/usr/bin/env bash
# Drives ignite's MCP server end to end with a real client: the official MCP Python SDK (pinned
# in tests/mcp-client/requirements.txt) runs tests/mcp-client/client.py against `ignite mcp`
# over stdio (initialize, tools/list, run_code of a bun hello, run_service on examples/hello, a
# session's create/execute/close, error cases), then against /mcp of `ignite serve` over
# streamable HTTP, without its API key (401) and with it (the same tools); and runs the agent
# loops of docs/agents.md (MCP, and HTTP against the server), which must print what the page
# shows. Needs a built debug binary (cargo build --bins), root, runc and the bun bundle (ignite
# runtime pull bun): missing ones fail under CI=true and skip (said so) otherwise, like the
# integration tests.
#
# Environment: IGNITE_MCP_CLIENT_CACHE (venv cache, default /var/cache/ignite-ci/mcp-client).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bin=${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-gnu/debug/ignite
[[ -x "$bin" ]] || { echo "mcp-client: $bin is missing; run cargo build --bins first" >&2; exit 1; }
requirements=$root/tests/mcp-client/requirements.txt
cache=${IGNITE_MCP_CLIENT_CACHE:-/var/cache/ignite-ci/mcp-client}
started=$SECONDS
name=mcp-client
# shellcheck source=tests/harness.sh
. "$root/tests/harness.sh"

missing=()
[[ $(id -u) == 0 ]] || missing+=("root (the sandboxes need it)")
command -v runc >/dev/null || missing+=("runc (apt-get install runc)")
bun_present=$("$bin" runtime list --json 2>/dev/null | python3 -c '
import json, sys
rt = next((r for r in json.load(sys.stdin)["runtimes"] if r["name"] == "bun"), None)
print(any(v["default"] and v["present"] for v in rt["versions"]) if rt else False)' 2>/dev/null || echo False)
[[ $bun_present == True ]] || missing+=("the bun bundle (ignite runtime pull bun)")
if ((${#missing[@]})); then
  if [[ ${CI:-} == true || ${CI:-} == 1 ]]; then
    printf 'mcp-client: FAILED: missing %s\n' "${missing[@]}" >&2
    exit 1
  fi
  printf 'mcp-client: SKIPPED: missing %s\n' "${missing[@]}"
  exit 0
fi

venv=$cache/venv
harness_venv "$venv" "$requirements"

harness_scratch stdio-state http-state doc-state

mkdir -p "$work/services" "$work/stdio-state" "$work/http-state"
cp -r "$root/examples/hello" "$work/services/hello"
key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$key" >"$work/keys"
IGNITE_LOG=warn "$bin" serve --services "$work/services" --state-dir "$work/http-state" \
  --host 127.0.0.1 --port 0 --api-key-file "$work/keys" --pool-min 0 --shutdown-timeout 5 \
  >"$work/stdout" 2>"$work/server.log" &
server=$!
addr=
for _ in $(seq 300); do
  addr=$(sed -n 's/^{"listening":"\(.*\)"}$/\1/p' "$work/stdout" | sed -n 1p)
  [[ -n "$addr" ]] && break
  kill -0 "$server" 2>/dev/null || { echo "mcp-client: the server exited before listening" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$addr" ]] || { echo "mcp-client: the server did not print its address within 30 s" >&2; exit 1; }

# Bounded as a whole: each call has its own timeout in client.py; this catches anything else.
timeout 600 "$venv/bin/python" "$root/tests/mcp-client/client.py" \
  "$bin" "$work/services" "$work/stdio-state" "http://$addr/mcp" "$key"

# docs/agents.md's agent loop, run as printed (with this ignite and state dir), must print what
# the page says it prints.
mkdir -p "$work/doc-state"
python3 - "$root/docs/agents.md" "$bin" "$work/doc-state" "$work/agent_loop.py" "$work/expected" <<'PY'
import re, sys
page, bin_path, state, script, expected = sys.argv[1:]
text = open(page).read()
code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
marker = 'StdioServerParameters(command="ignite", args=["mcp"])'
assert marker in code, "the example no longer starts `ignite mcp` as this test expects"
code = code.replace(marker, f'StdioServerParameters(command={bin_path!r}, args=["--state-dir", {state!r}, "mcp"])')
open(script, "w").write(code)
out = re.search(r"Its output:\n\n```text\n(.*?)```", text, re.S).group(1)
open(expected, "w").write(out)
PY
timeout 120 "$venv/bin/python" "$work/agent_loop.py" >"$work/actual" 2>"$work/agent_loop.log" \
  || { cat "$work/agent_loop.log" >&2; exit 1; }
if ! diff -u "$work/expected" "$work/actual"; then
  echo "mcp-client: docs/agents.md's agent loop printed something else than the page says (diff above)" >&2
  exit 1
fi
echo "ok: docs/agents.md's agent loop prints what the page says"

# Its HTTP agent loop, run as printed against this server (its address and key), likewise.
python3 - "$root/docs/agents.md" "http://$addr" "$work/http_loop.py" "$work/http_expected" <<'PY'
import re, sys
page, base, script, expected = sys.argv[1:]
text = open(page).read()
code = re.findall(r"```python\n(.*?)```", text, re.S)[1]
marker = 'BASE = "http://127.0.0.1:3000"'
assert marker in code, "the HTTP example no longer sets BASE as this test expects"
open(script, "w").write(code.replace(marker, f"BASE = {base!r}"))
open(expected, "w").write(re.findall(r"Its output:\n\n```text\n(.*?)```", text, re.S)[1])
PY
IGNITE_API_KEY=$key timeout 120 python3 "$work/http_loop.py" >"$work/http_actual" 2>"$work/http_loop.log" \
  || { cat "$work/http_loop.log" >&2; exit 1; }
if ! diff -u "$work/http_expected" "$work/http_actual"; then
  echo "mcp-client: docs/agents.md's HTTP agent loop printed something else than the page says (diff above)" >&2
  exit 1
fi
echo "ok: docs/agents.md's HTTP agent loop prints what the page says"
