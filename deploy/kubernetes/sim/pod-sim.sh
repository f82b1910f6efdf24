#!/usr/bin/env bash
# Runs ignite inside a runc container shaped like a Kubernetes pod, to see which privileges it
# needs there: the measurements behind docs/kubernetes.md "Privileges". By hand, as root, on a
# host that runs ignite (not in CI: it takes the host's root filesystem as the container's).
#
#   deploy/kubernetes/sim/pod-sim.sh VARIANT [IGNITE_BIN_DIR]
#
# Each variant is a container with its own pid, mount, IPC and UTS namespaces (the network is
# the host's: the experiment is about privileges), the host's root filesystem read-only as its
# root, the host's /var/lib/ignite (the bundle cache, as the hostPath) and tmpfs /run and /tmp
# (as the emptyDirs). Inside, `ignite doctor` and `ignite run examples/hello` run.
#
#   privileged  every capability this host grants, no seccomp, no masked or read-only /proc
#               paths, writable /sys and cgroupfs, the host's /dev: what `privileged: true` is
#   masked      the same with the masked and read-only /proc paths of a non-privileged pod
#   caps-only   every capability and no seccomp, but masked paths and a read-only /sys and
#               cgroupfs: `capabilities: {add: [ALL]}` with seccomp/AppArmor Unconfined
#   default     containerd's default capabilities, masked paths, read-only /sys and cgroupfs
#
# Leaves nothing behind: runc removes the container and its cgroup, and the bind of / exists
# only in a private mount namespace.
set -euo pipefail
variant=${1:?usage: pod-sim.sh privileged|masked|caps-only|default [IGNITE_BIN_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
bin=${2:-$repo/target/x86_64-unknown-linux-gnu/debug}
[[ -x "$bin/ignite" && -x "$bin/ignite-init" ]] || { echo "pod-sim: no ignite and ignite-init in $bin" >&2; exit 1; }
[[ $EUID -eq 0 ]] || { echo "pod-sim: needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/ignite-pod-sim.XXXXXX)
trap 'runc --root "$work/runc" delete --force "pod-sim-$$" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/bundle" "$work/rootfs"
(cd "$work/bundle" && runc spec)

inside='set -u
echo "pod-sim: uid $(id -u), $(grep CapEff /proc/self/status)"
ignite doctor >/tmp/doctor 2>&1; echo "pod-sim: ignite doctor exit $?"; grep -E "(fail|warn)\)" /tmp/doctor || true
ignite run examples/hello --input "{\"name\":\"pod\"}"; echo "pod-sim: ignite run exit $?"'

VARIANT=$variant BIN=$bin REPO=$repo ROOTFS=$work/rootfs INSIDE=$inside python3 - "$work/bundle/config.json" <<'EOF'
import json, os, sys
variant, path = os.environ["VARIANT"], sys.argv[1]
s = json.load(open(path))
# Every capability this process has (a container running this script may lack some).
have = int([l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1], 16)
names = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
         "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
         "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
         "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
         "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
         "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
every = ["CAP_" + n for i, n in enumerate(names) if have >> i & 1]
default = ["CAP_" + n for n in ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
           "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]]
caps = default if variant == "default" else every
s["process"].update(terminal=False, args=["/bin/sh", "-c", os.environ["INSIDE"]], cwd=os.environ["REPO"],
                    noNewPrivileges=False,
                    env=[f"PATH={os.environ['BIN']}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                         "IGNITE_LOG=warn"])
s["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
s["root"] = {"path": os.environ["ROOTFS"], "readonly": True}
s["hostname"] = "pod-sim"
s["linux"]["namespaces"] = [n for n in s["linux"]["namespaces"] if n["type"] != "network"]
s["linux"]["cgroupsPath"] = f"/ignite-pod-sim-{os.getpid()}"
writable = variant in ("privileged", "masked")
ro = [] if writable else ["ro"]
mounts = [m for m in s["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup", "/dev")]
mounts += [
    {"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev"] + ro},
    {"destination": "/var/lib/ignite", "type": "bind", "source": "/var/lib/ignite", "options": ["rbind", "rw"]},
    {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
]
if variant == "privileged" or variant == "masked":
    mounts.append({"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind", "rw"]})
    s["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
else:
    mounts += [m for m in s["mounts"] if m["destination"] == "/dev"]
if not writable:
    # Each cgroup hierarchy is a mount of its own: every one read-only, as in a pod.
    for line in open("/proc/self/mountinfo"):
        mp = line.split()[4]
        if mp.startswith("/sys/fs/cgroup/"):
            mounts.append({"destination": mp, "type": "bind", "source": mp,
                           "options": ["bind", "ro", "nosuid", "noexec", "nodev"]})
s["mounts"] = mounts
if variant == "privileged":
    s["linux"]["maskedPaths"] = []
    s["linux"]["readonlyPaths"] = []
json.dump(s, open(path, "w"), indent=1)
EOF

echo "pod-sim: variant $variant"
unshare -m --propagation private sh -c \
  "mount --rbind / '$work/rootfs' && exec timeout 150 runc --root '$work/runc' run --bundle '$work/bundle' pod-sim-$$"
