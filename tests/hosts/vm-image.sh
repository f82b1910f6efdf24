#!/usr/bin/env bash
# Builds the host-matrix VM image: Debian 12 with systemd as PID 1 and a pure cgroup v2 tree,
# runc and crun from Debian, nothing else of ignite's (the binaries, tests and bundles come in
# through 9p shares at run time, see vm-run.sh). Everything comes from Debian's archive with
# mmdebstrap; no image is downloaded from anywhere else.
#
#   tests/hosts/vm-image.sh            prints the image directory (builds it first if missing)
#
# The image is cached under $IGNITE_VM_CACHE (/var/cache/ignite-ci/vm) in a directory named by
# the digest of this script, so a change here builds a new image and the old one is removed.
# First build on 2 cores: about 90 s plus the host tools; then nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${IGNITE_VM_CACHE:-/var/cache/ignite-ci/vm}
digest=$(sha256sum "$here/vm-image.sh" | cut -c1-16)
out=$cache/$digest
if [[ -f $out/ready ]]; then
  echo "$out"
  exit 0
fi
[[ $(id -u) == 0 ]] || { echo "vm-image.sh: building the image needs root (mmdebstrap --mode=root)" >&2; exit 1; }

# The Debian archive this host's apt already uses (unless IGNITE_VM_MIRROR names one).
mirror=${IGNITE_VM_MIRROR:-$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'
  } | grep -v -- '-security' | head -1 || true
)}
[[ -n $mirror ]] || { echo "vm-image.sh: no Debian archive in this host's apt sources; set IGNITE_VM_MIRROR" >&2; exit 1; }

# Host tools. qemu-system-x86 must match the host's qemu-utils: on hosts that carry qemu-utils
# from bookworm-backports, bookworm's qemu-system-common conflicts with it, so both come from
# backports there.
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v mkfs.ext4 >/dev/null; then
  echo "vm-image.sh: installing qemu-system-x86, mmdebstrap and e2fsprogs" >&2
  export DEBIAN_FRONTEND=noninteractive
  from=()
  if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q bpo; then
    [[ -f /etc/apt/sources.list.d/bookworm-backports.list ]] ||
      echo "deb $mirror bookworm-backports main" >/etc/apt/sources.list.d/bookworm-backports.list
    from=(-t bookworm-backports)
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${from[@]}" qemu-system-x86 >/dev/null
  apt-get install -y -qq --no-install-recommends mmdebstrap e2fsprogs >/dev/null
fi

start=$SECONDS
tmp=$cache/.build-$$
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

# What the VM runs: systemd + dbus (the cgroup tree's owner and runc's/crun's systemd driver),
# the two OCI runtimes, what ignite's network grants use (ip, slirp4netns), uidmap and a user
# with a lingering systemd manager for rootless work.
pkgs=systemd,systemd-sysv,udev,dbus,dbus-user-session,libpam-systemd,kmod,initramfs-tools
pkgs=$pkgs,linux-image-amd64,runc,crun,iproute2,slirp4netns,uidmap,procps,util-linux,tar,ca-certificates

cat >"$tmp/customize.sh" <<'HOOK'
#!/bin/sh
# Runs once on the new root ($1) before it is packed.
set -e
r=$1
echo vm >"$r/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vm\n' >"$r/etc/hosts"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$r/etc/fstab"
chroot "$r" passwd -d root
chroot "$r" useradd -m -u 1000 -s /bin/bash tester
echo 'tester:100000:65536' >>"$r/etc/subuid"
echo 'tester:100000:65536' >>"$r/etc/subgid"
mkdir -p "$r/var/lib/systemd/linger" && touch "$r/var/lib/systemd/linger/tester"
mkdir -p "$r/etc/systemd/system/user@.service.d"
printf '[Service]\nDelegate=cpu cpuset io memory pids\n' >"$r/etc/systemd/system/user@.service.d/delegate.conf"
# The network QEMU's user-mode stack offers (DHCP; DNS at 10.0.2.3): the grants suite resolves
# and connects to the npm registry from network-enabled sandboxes.
mkdir -p "$r/etc/systemd/network"
printf '[Match]\nName=en*\n[Network]\nDHCP=yes\n' >"$r/etc/systemd/network/20-wired.network"
mkdir -p "$r/etc/systemd/system/multi-user.target.wants"
ln -sf /lib/systemd/system/systemd-networkd.service "$r/etc/systemd/system/multi-user.target.wants/"
echo 'nameserver 10.0.2.3' >"$r/etc/resolv.conf"
# A quiet, quick boot: no timers, no getty on the (absent) screen.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service getty@tty1.service systemd-networkd-wait-online.service; do
  ln -sf /dev/null "$r/etc/systemd/system/$u"
done
# The job runner: mounts the host's share, runs its job.sh as root, writes job.rc, powers off.
cat >"$r/usr/local/sbin/ignite-vm-job" <<'RUN'
#!/bin/bash
mkdir -p /mnt/job
mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576 job /mnt/job || { echo "VMJOB: no job share" >/dev/console; systemctl poweroff --no-block; exit 0; }
echo "VMJOB-START uptime=$(cut -d' ' -f1 /proc/uptime)" >/dev/console
rc=0
bash /mnt/job/job.sh >/mnt/job/job.out 2>&1 || rc=$?
echo "$rc" >/mnt/job/job.rc
echo "VMJOB-END rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)" >/dev/console
sync
systemctl poweroff --no-block
RUN
chmod 755 "$r/usr/local/sbin/ignite-vm-job"
cat >"$r/etc/systemd/system/ignite-vm-job.service" <<'UNIT'
[Unit]
Description=Run the host's job and power off
After=multi-user.target user@1000.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/ignite-vm-job
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/ignite-vm-job.service "$r/etc/systemd/system/multi-user.target.wants/"
printf 'overlay\n9pnet_virtio\n9p\n' >"$r/etc/modules-load.d/ignite-vm.conf"
# A small initrd: only what finds the root disk.
echo 'MODULES=list' >"$r/etc/initramfs-tools/conf.d/ignite-vm.conf"
printf 'virtio_pci\nvirtio_blk\next4\n' >>"$r/etc/initramfs-tools/modules"
chroot "$r" update-initramfs -u -k all
HOOK
chmod 755 "$tmp/customize.sh"

echo "vm-image.sh: building the image from $mirror (about 90 s)" >&2
mmdebstrap --quiet --mode=root --variant=minbase --components=main --include="$pkgs" \
  --customize-hook="$tmp/customize.sh \"\$1\"" \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
  bookworm "$tmp/root" "$mirror" >&2
cp -L "$tmp"/root/boot/vmlinuz-* "$tmp/vmlinuz"
cp -L "$tmp"/root/boot/initrd.img-* "$tmp/initrd.img"
# Its notes (e.g. "Creating regular file") go to stderr: stdout is the image path only.
mkfs.ext4 -q -F -L vmroot -d "$tmp/root" "$tmp/rootfs.img" 6G >&2
rm -rf "$tmp/root" "$tmp/customize.sh"
# Older images go: one image per version of this script.
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$digest" ! -name '.build-*' -exec rm -rf {} +
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "built in $((SECONDS - start)) s" >"$out/ready"
echo "vm-image.sh: $(cat "$out/ready")" >&2
echo "$out"
