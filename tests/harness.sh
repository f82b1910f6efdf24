# Sourced by tests/api-fuzz.sh and tests/mcp-client.sh, which drive a real ignite server with a
# pinned Python client: the client's venv, and a scratch directory whose server, sandboxes and
# files are gone on every exit path (deploy/kubernetes/validate.sh takes the venv part). The caller sets `name` (for messages), `bin` (the ignite
# binary) and `started` ($SECONDS at its start), and keeps its server's pid in `server` and
# its log in "$work/server.log".

# Creates the venv VENV from the hash-pinned REQUIREMENTS, and again only when they change (the
# stamp is their digest).
harness_venv() {
  local venv=$1 requirements=$2 stamp
  stamp=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]]; then
    echo "$name: creating $venv"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --require-hashes --no-deps -r "$requirements"
    echo "$stamp" >"$venv/.requirements"
  fi
}

# Makes the scratch directory `work` and arranges its removal on exit: the server is stopped
# (SIGTERM, then SIGKILL after its drain), `ignite cleanup` runs on each STATE directory (names
# in `work`) a killed server may have left mounts in, and the verdict is printed.
harness_scratch() {
  work=$(mktemp -d "/tmp/ignite-$name.XXXXXX")
  server=
  harness_states=("$@")
  trap harness_stop EXIT
  trap 'exit 130' INT TERM
}

harness_stop() {
  local status=$? state
  if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    # Bounded: the server drains for its --shutdown-timeout (5 s in both scripts), then exits.
    for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if ((status != 0)) && [[ -s "$work/server.log" ]]; then
    echo "$name: last server log lines:" >&2
    tail -20 "$work/server.log" >&2
  fi
  for state in "${harness_states[@]}"; do
    [[ -d $work/$state ]] && "$bin" cleanup --state-dir "$work/$state" >/dev/null 2>&1 || true
  done
  rm -rf "$work" || echo "$name: could not remove $work" >&2
  echo "$name: $( ((status == 0)) && echo passed || echo FAILED) in $((SECONDS - started)) s"
  exit "$status"
}
