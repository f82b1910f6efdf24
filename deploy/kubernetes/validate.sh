#!/usr/bin/env bash
# Validates deploy/kubernetes offline, with no cluster: every object against the Kubernetes JSON
# schemas of the versions below in strict form (unknown fields are errors), custom resources
# and the prometheus-adapter rules by their own checks, and the names that must agree across
# objects (validate.py says what exactly). The schemas come inside the kubernetes-validate
# wheel (pinned with hashes in requirements.txt), installed once into a venv kept in
# /var/cache/ignite-ci/k8s-venv/<tool version>; with root, the validation itself runs in a
# network namespace of its own, to show it needs no network.
#
# Then it proves it can fail: broken copies of the manifests (a misspelt field of a built-in
# kind, a wrong type, a misspelt field of the ServiceMonitor, a Service aiming at a port no
# container names) must each be refused, for the reason planted.
#
# Environment: IGNITE_K8S_VERSIONS (default "1.30.0 1.37.0": the oldest version these
# manifests support, for securityContext.appArmorProfile, and the newest the tool knows),
# IGNITE_K8S_VENV_CACHE (default /var/cache/ignite-ci/k8s-venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
started=$SECONDS
requirements=$here/requirements.txt
metrics_rs=$root/src/server/metrics.rs
read -r -a versions <<<"${IGNITE_K8S_VERSIONS:-1.30.0 1.37.0}"

# The venv: one per tool version, rebuilt when the pinned requirements change (the stamp is
# their digest).
tool=$(sed -n 's/^kubernetes-validate==\([^ ]*\) .*/\1/p' "$requirements")
[[ -n "$tool" ]] || { echo "k8s-validate: no kubernetes-validate pin in $requirements" >&2; exit 1; }
venv=${IGNITE_K8S_VENV_CACHE:-/var/cache/ignite-ci/k8s-venv}/kubernetes-validate-$tool
name=k8s-validate
# shellcheck source=tests/harness.sh
. "$root/tests/harness.sh"
harness_venv "$venv" "$requirements"

# Offline for real where we can: a new network namespace has only a loopback that is down.
offline=()
if [[ $EUID -eq 0 ]] && unshare --net true 2>/dev/null; then
  offline=(unshare --net)
fi
check() {
  "${offline[@]}" "$venv/bin/python" "$here/validate.py" "$1" "$metrics_rs" "${versions[@]}"
}

echo "k8s-validate: kubernetes-validate $tool, Kubernetes ${versions[*]}${offline:+, without network}"
check "$here"
bash -n "$here/sim/pod-sim.sh"

# The broken copies. Each: a file, a sed expression that breaks it, and what the refusal must
# say (so a copy refused for some other reason does not count).
tmp=$(mktemp -d /tmp/ignite-k8s-validate.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cases=(
  "statefulset.yaml|s/^          readinessProbe:/          readinesProbe:/|'readinesProbe' was unexpected"
  "statefulset.yaml|s/^            periodSeconds: 10$/            periodSeconds: ten/|'ten' is not of type 'integer'"
  "autoscaling/servicemonitor.yaml|s/^      scrapeTimeout:/      scrapTimeout:/|spec.endpoints.0.scrapTimeout: not a ServiceMonitor endpoint field"
  "service.yaml|0,/targetPort: http/s//targetPort: htp/|targetPort 'htp' is not a named container port"
)
for case in "${cases[@]}"; do
  IFS='|' read -r file edit expect <<<"$case"
  copy=$tmp/copy
  rm -rf "$copy"
  cp -r "$here" "$copy"
  sed -i "$edit" "$copy/$file"
  if cmp -s "$here/$file" "$copy/$file"; then
    echo "k8s-validate: the edit '$edit' changed nothing in $file; fix the case" >&2
    exit 1
  fi
  if check "$copy" >"$tmp/out" 2>&1; then
    cat "$tmp/out" >&2
    echo "k8s-validate: a broken copy passed ($file: $edit)" >&2
    exit 1
  fi
  if ! grep -qF -- "$expect" "$tmp/out"; then
    cat "$tmp/out" >&2
    echo "k8s-validate: a broken copy failed, but not with \"$expect\" ($file: $edit)" >&2
    exit 1
  fi
  echo "k8s-validate: refused as it must: $(grep -F -- "$expect" "$tmp/out" | head -1)"
done
echo "k8s-validate: passed in $((SECONDS - started)) s"
