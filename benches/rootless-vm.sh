#!/usr/bin/env bash
# Cold-run cost of rootless mode: whole-process wall time of `ignite run examples/hello` (preflight
# skipped; then with a network-enabled policy) as root and as the rootless user tester, interleaved
# pairs, under runc and crun, in the host matrix's cgroup v2 + systemd VM; a run with an output
# directory (--out) under crun; then `ignite bench` rootless under crun. The VM runs under
# QEMU's software emulation: compare the two modes (a ratio), not the milliseconds with a host.
#
#   IGNITE_VM_GUEST=benches/rootless-vm.sh IGNITE_VM_ROOTLESS= tests/hosts/run.sh doctor
#
# (run.sh builds the binaries and boots the VM; this script replaces its guest.) With
# IGNITE_VM_BENCH_ONLY=out it times only the runs with an output directory. Under runc the
# rootless run is refused (runc would leave the user's groups on the program): its times are
# those of the refusal, printed for the record.
set -uo pipefail
. /mnt/job/vars.sh
mkdir -p "$REPO" /mnt/cache
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=1048576,cache=loose repo "$REPO" || exit 90
mkdir -p "$BIN_DIR"; mount -t tmpfs -o size=2g ignite-bin "$BIN_DIR"; cp /mnt/job/bin/* "$BIN_DIR"/; chmod 755 "$BIN_DIR"
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=1048576 cache /mnt/cache || exit 90
mkdir -p /var/lib/ignite
cp -a /mnt/cache/index /mnt/cache/bundles /mnt/cache/rootfs /var/lib/ignite/ || exit 91
H=/home/tester/.local/share/ignite; mkdir -p $H
cp -al /var/lib/ignite/index /var/lib/ignite/bundles /var/lib/ignite/rootfs $H/; chown -R tester: /home/tester/.local
cp -r "$REPO/examples" /tmp/examples; chmod -R o+rX /tmp/examples
I=$BIN_DIR/ignite
as_tester() { runuser -u tester -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/tester USER=tester XDG_RUNTIME_DIR=/run/user/1000 "$@"; }
as_root() { runuser -u root -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$@"; }
ms() { local a b; a=$(date +%s%N); "$@" >/dev/null 2>&1 || echo "FAILED: $*" >&2; b=$(date +%s%N); echo $(( (b - a) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Prints the pairs in root=() and rl=() as LABEL's root and rootless times and their ratio.
report_pairs() {
  echo "$1 root ms: ${root[*]} (median $(median "${root[@]}"))"
  echo "$1 rootless ms: ${rl[*]} (median $(median "${rl[@]}"))"
  awk -v a="$(median "${rl[@]}")" -v b="$(median "${root[@]}")" -v l="$1" 'BEGIN { printf "%s rootless / root: %.2f\n", l, a / b }'
}
out_pairs() {
  # A run with an output directory: rootless, the OCI runtime mounts its tmpfs in the container
  # and ignite reads it back through its helper before the sandbox ends.
  local n=0
  root=(); rl=()
  mkdir -p /tmp/o && chmod 1777 /tmp/o
  as_root "$I" --oci-runtime crun run --skip-preflight /tmp/examples/hello --out /tmp/o/w-root >/dev/null 2>&1
  as_tester "$I" --oci-runtime crun run --skip-preflight /tmp/examples/hello --out /tmp/o/w-tester >/dev/null 2>&1
  for _ in $(seq "${OUT_PAIRS:-9}"); do
    n=$((n + 1))
    root+=("$(ms as_root "$I" --oci-runtime crun run --skip-preflight /tmp/examples/hello --out /tmp/o/r$n)")
    rl+=("$(ms as_tester "$I" --oci-runtime crun run --skip-preflight /tmp/examples/hello --out /tmp/o/t$n)")
  done
  report_pairs "crun --out"
}
if [[ ${BENCH_ONLY:-} == out ]]; then
  out_pairs
  exit 0
fi
echo "runc rootless (refused):"
as_tester "$I" --oci-runtime runc run --skip-preflight /tmp/examples/hello 2>&1 | tail -1
for oci in crun runc; do
  root=(); rl=()
  as_root "$I" --oci-runtime "$oci" run --skip-preflight /tmp/examples/hello >/dev/null 2>&1   # warm-up
  [[ $oci == crun ]] && as_tester "$I" --oci-runtime "$oci" run --skip-preflight /tmp/examples/hello >/dev/null 2>&1
  for _ in $(seq "${PAIRS:-15}"); do
    root+=("$(ms as_root "$I" --oci-runtime "$oci" run --skip-preflight /tmp/examples/hello)")
    [[ $oci == crun ]] && rl+=("$(ms as_tester "$I" --oci-runtime "$oci" run --skip-preflight /tmp/examples/hello)")
  done
  echo "$oci root ms: ${root[*]} (median $(median "${root[@]}"))"
  if [[ $oci == crun ]]; then
    echo "$oci rootless ms: ${rl[*]} (median $(median "${rl[@]}"))"
    awk -v a="$(median "${rl[@]}")" -v b="$(median "${root[@]}")" 'BEGIN { printf "crun rootless / root: %.2f\n", a / b }'
  fi
done
# A run with a network (security.network.enabled: true): rootless, ignite also forks the holder
# of the network's user namespace and writes its maps.
mkdir -p /tmp/examples/hello-net
cp /tmp/examples/hello/* /tmp/examples/hello-net/
printf 'security:\n  network:\n    enabled: true\n' >/tmp/examples/hello-net/ignite.policy.yaml
chmod -R o+rX /tmp/examples
root=(); rl=()
as_root "$I" --oci-runtime crun run --skip-preflight /tmp/examples/hello-net >/dev/null 2>&1
as_tester "$I" --oci-runtime crun run --skip-preflight /tmp/examples/hello-net >/dev/null 2>&1
for _ in $(seq "${NET_PAIRS:-9}"); do
  root+=("$(ms as_root "$I" --oci-runtime crun run --skip-preflight /tmp/examples/hello-net)")
  rl+=("$(ms as_tester "$I" --oci-runtime crun run --skip-preflight /tmp/examples/hello-net)")
done
report_pairs "crun network"
out_pairs
echo "=== ignite bench rootless (crun, bun, cold and warm, 3 runs)"
as_tester "$I" bench --runtime bun --oci crun --runs 3 2>&1 | tail -12
