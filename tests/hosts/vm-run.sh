#!/usr/bin/env bash
# Boots the host-matrix VM (vm-image.sh) under QEMU, runs one job script in it as root and
# powers it off. The image is opened with snapshot=on: nothing a job does survives it.
#
#   tests/hosts/vm-run.sh IMAGE_DIR JOB_DIR [TAG=HOST_DIR[:GUEST_DIR]]...
#
# JOB_DIR holds job.sh; it is shared read-write as the 9p tag `job` (mounted at /mnt/job), and
# the job's output comes back there as job.out, its exit status as job.rc. Each TAG=HOST_DIR is
# shared read-only; the job mounts it (see guest.sh). Exit status: the job's (255 if it never
# reported one). Environment: IGNITE_VM_MEM (MiB, 6144), IGNITE_VM_CPUS (the host's CPUs),
# IGNITE_VM_TIMEOUT (s, 3600), IGNITE_VM_ACCEL (tcg; kvm where /dev/kvm boots stock kernels),
# IGNITE_VM_NET (1: QEMU's user-mode network, through the host's connections; 0: none).
set -uo pipefail
image=${1:?usage: vm-run.sh IMAGE_DIR JOB_DIR [TAG=HOST_DIR]...}
job=${2:?usage: vm-run.sh IMAGE_DIR JOB_DIR [TAG=HOST_DIR]...}
shift 2
[[ -f $job/job.sh ]] || { echo "vm-run.sh: $job/job.sh is missing" >&2; exit 2; }
rm -f "$job/job.rc" "$job/job.out"
shares=()
n=0
for s in "$@"; do
  n=$((n + 1))
  shares+=(-virtfs "local,path=${s#*=},mount_tag=${s%%=*},security_model=none,readonly=on,id=ro$n")
done
case ${IGNITE_VM_ACCEL:-tcg} in
  kvm) accel=(-machine pc,accel=kvm -cpu host) ;;
  *) accel=(-machine q35 -accel tcg,thread=multi,tb-size=512 -cpu max) ;;
esac
# QEMU's user-mode network (the host's connections, no privileges); IGNITE_VM_NET=0: none.
net=(-nic user,model=virtio-net-pci)
[[ ${IGNITE_VM_NET:-1} == 0 ]] && net=(-nic none)
start=$(date +%s.%N)
qemu-system-x86_64 "${accel[@]}" -m "${IGNITE_VM_MEM:-6144}" -smp "${IGNITE_VM_CPUS:-$(nproc)}" \
  -no-reboot -display none -monitor none -serial "file:$job/console.log" \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
  -append "console=ttyS0 root=/dev/vda rw systemd.unified_cgroup_hierarchy=1 loglevel=4" \
  -drive "file=$image/rootfs.img,format=raw,if=virtio,snapshot=on" \
  -virtfs "local,path=$job,mount_tag=job,security_model=none,id=job" \
  "${net[@]}" "${shares[@]}" >"$job/qemu.log" 2>&1 &
qemu=$!
# Stop the VM with this script (Ctrl-C, a CI timeout): no qemu is left behind.
trap 'kill "$qemu" 2>/dev/null; sleep 1; kill -9 "$qemu" 2>/dev/null' EXIT INT TERM
deadline=$((SECONDS + ${IGNITE_VM_TIMEOUT:-3600}))
while kill -0 "$qemu" 2>/dev/null; do
  if ((SECONDS >= deadline)); then
    echo "vm-run.sh: the VM did not finish within ${IGNITE_VM_TIMEOUT:-3600} s; stopped it" >&2
    break
  fi
  sleep 0.5
done
trap - EXIT INT TERM
kill "$qemu" 2>/dev/null
wait "$qemu" 2>/dev/null
boot=$(grep -a -o 'VMJOB-START uptime=[0-9.]*' "$job/console.log" | head -1 | cut -d= -f2)
echo "vm: booted to the job in ${boot:-?} s; wall $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s" >&2
if [[ ! -f $job/job.rc ]]; then
  echo "vm-run.sh: the job reported no exit status; the console's last lines:" >&2
  tail -30 "$job/console.log" >&2
  [[ -s $job/qemu.log ]] && cat "$job/qemu.log" >&2
  exit 255
fi
exit "$(cat "$job/job.rc")"
