#!/usr/bin/env bash
# Runs inside the host-matrix VM as root (vm-run.sh copies it in as job.sh). It mounts the
# repository (with its built test binaries) at the same path as on the build host, copies the
# runtime bundles in, records the host's facts, then runs every test binary listed in
# /mnt/job/tests.list under each OCI runtime in $OCIS, the way `cargo test` would (from the
# repository's root, CI=true so a missing prerequisite fails instead of skipping). After each
# OCI runtime it checks that nothing was left behind: no containers, no sandbox cgroups.
set -uo pipefail
# shellcheck source=/dev/null
. /mnt/job/vars.sh
mkdir -p "$REPO" /mnt/cache
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=1048576,cache=loose repo "$REPO" || exit 90
# The binaries the tests run (`ignite` at the path compiled into them) come from this job's
# copy, not from the repository's target directory, and are read from memory: every run
# executes ignite and ignite-init, and reading them through 9p each time costs seconds.
mkdir -p "$BIN_DIR" 2>/dev/null
mount -t tmpfs -o size=2g ignite-bin "$BIN_DIR" || exit 90
cp /mnt/job/bin/* "$BIN_DIR"/ || exit 90
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=1048576 cache /mnt/cache || exit 90
mkdir -p /var/lib/ignite
t=$SECONDS
# The built bundles and their unpacked trees (unpacking them here would cost minutes).
cp -a /mnt/cache/index /mnt/cache/bundles /mnt/cache/rootfs /var/lib/ignite/ || exit 91
echo "bundles copied in $((SECONDS - t)) s"
# The host's mount points, to check that no suite takes any away (a helper that unmounts in
# the wrong namespace takes /sys/fs/cgroup with it).
mounts() { awk '{ print $5 }' /proc/self/mountinfo | sort; }
mounts >/tmp/mounts.before

# The network (QEMU's user-mode stack, DHCP): the grants suite needs it.
for _ in $(seq 60); do ip route | grep -q '^default' && break; sleep 0.5; done
echo "== host facts"
echo "kernel $(uname -r); PID 1 $(cat /proc/1/comm); $(systemctl --version | head -1)"
echo "/sys/fs/cgroup: $(stat -fc %T /sys/fs/cgroup); controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "runc: $(runc --version | head -1); crun: $(crun --version | head -1)"
echo "this job's cgroup: $(cat /proc/self/cgroup)"
echo "network: $(ip -4 -brief address show scope global | tr -s ' ' | tr '\n' ';') $(ip route | grep '^default')"

status=0
mkdir -p /mnt/job/logs
for oci in ${OCIS//,/ }; do
  [[ -n ${ROOT_SUITES// /} ]] || break
  echo "== $oci"
  while read -r name _; do
    [[ -n $name ]] || continue
    [[ " $ROOT_SUITES " == *" $name "* ]] || continue
    exe=$BIN_DIR/$name
    skip=SKIP_${oci^^}
    if [[ " ${!skip:-} " == *" $name "* ]]; then
      echo "$oci $name: not run under $oci (run.sh says why)"
      continue
    fi
    # Suites that need systemd as PID 1 mark their tests #[ignore] (so that `cargo test` on an
    # ordinary host lists them as ignored); here, where systemd is PID 1, they run.
    only=()
    [[ " service_unit " == *" $name "* ]] && only=(--ignored)
    t=$SECONDS
    # The suite's stdin is /dev/null, never this loop's list: a program it starts that reads a
    # regular-file stdin (as `ignite run` does) must not take the suites that follow.
    # Programs run 5–10 times slower under QEMU's software emulation than on the host: tests
    # whose time limits must leave a runtime time to start scale them (IGNITE_TEST_SLOWDOWN).
    (cd "$REPO" && CI=true IGNITE_TEST_OCI_RUNTIME=$oci IGNITE_TEST_SLOWDOWN=${SLOWDOWN:-8} RUST_BACKTRACE=1 \
      timeout --kill-after=10 "${SUITE_TIMEOUT:-1500}" "$exe" --test-threads="${TEST_THREADS:-2}" "${only[@]}") \
      </dev/null >"/mnt/job/logs/$oci-$name.log" 2>&1
    rc=$?
    result=$(grep -a '^test result:' "/mnt/job/logs/$oci-$name.log" | tail -1)
    echo "$oci $name: rc=$rc in $((SECONDS - t)) s: ${result:-no result (see logs/$oci-$name.log)}"
    ((rc == 0)) || status=1
    gone=$(mounts | comm -23 /tmp/mounts.before -)
    if [[ -n $gone ]]; then
      echo "LOST MOUNTS after $oci $name: $gone"
      status=1
    fi
  done </mnt/job/tests.list
  # Nothing may outlive the suites: no container in the runtime's state, no sandbox cgroup.
  left=$(find /sys/fs/cgroup -name '*ig-*' -type d 2>/dev/null)
  if [[ -n $left ]]; then
    echo "LEFTOVER cgroups after $oci:"
    echo "$left"
    status=1
  fi
done

# ---- Rootless: the same binaries as user tester (uid 1000: subordinate ids 100000+65536, a
# lingering systemd user manager with cpu, memory and pids delegated; see vm-image.sh), with its
# own bundle cache and state under its XDG directories, as a user would have them.
if [[ -n ${ROOTLESS_SUITES// /} ]]; then
  home=/home/tester
  t=$SECONDS
  mkdir -p "$home/.local/share/ignite"
  # Hard links of root's copy (the root stage is over): the user's own files in seconds, as if it
  # had imported them.
  cp -al /var/lib/ignite/index /var/lib/ignite/bundles /var/lib/ignite/rootfs "$home/.local/share/ignite/" || exit 91
  chown -R tester:tester "$home/.local"
  echo "rootless: bundles linked into $home/.local/share/ignite in $((SECONDS - t)) s"
  # The tests' `ignite` is read from the job's tmpfs, which the user must be able to enter.
  chmod 755 "$BIN_DIR"
  mounts >/tmp/mounts.before
  # The build host's extra CA certificates, for the dependency installs (run.sh copies them).
  ca=()
  if [[ -f /mnt/job/ca.pem ]]; then
    install -m 644 /mnt/job/ca.pem /etc/ignite-test-ca.pem
    ca=(NODE_EXTRA_CA_CERTS=/etc/ignite-test-ca.pem)
  fi
  for oci in ${ROOTLESS_OCIS//,/ }; do
    echo "== rootless $oci"
    for name in $ROOTLESS_SUITES; do
      exe=$BIN_DIR/$name
      # Tests of what rootless mode refuses (a writable root, sessions:
      # tests/hosts/rootless-skip lists them with the reason); rootless.rs proves each
      # refusal instead.
      skips=()
      while read -r suite test _; do
        [[ $suite == "$name" ]] && skips+=(--skip "$test")
      done < <(grep -v '^#' "$REPO/tests/hosts/rootless-skip" | grep .)
      only=()
      [[ $name == rootless ]] && only=(--ignored)
      t=$SECONDS
      runuser -u tester -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" USER=tester LOGNAME=tester \
        XDG_RUNTIME_DIR=/run/user/1000 CI=true IGNITE_TEST_ROOTLESS=1 IGNITE_TEST_OCI_RUNTIME="$oci" "${ca[@]}" \
        IGNITE_TEST_SLOWDOWN="${SLOWDOWN:-8}" RUST_BACKTRACE=1 \
        bash -c 'cd "$1" && shift && exec timeout --kill-after=10 "$@"' _ "$REPO" "${SUITE_TIMEOUT:-1500}" \
        "$exe" --test-threads="${TEST_THREADS:-2}" "${only[@]}" "${skips[@]}" \
        </dev/null >"/mnt/job/logs/rootless-$oci-$name.log" 2>&1
      rc=$?
      result=$(grep -a '^test result:' "/mnt/job/logs/rootless-$oci-$name.log" | tail -1)
      echo "rootless $oci $name: rc=$rc in $((SECONDS - t)) s: ${result:-no result (see logs/rootless-$oci-$name.log)}"
      ((rc == 0)) || status=1
    done
    left=$(find /sys/fs/cgroup -name '*ig-*' -type d 2>/dev/null)
    if [[ -n $left ]]; then
      echo "LEFTOVER cgroups after rootless $oci:"
      echo "$left"
      status=1
    fi
    procs=$(ps -eo uid=,pid=,comm= | awk '$1 >= 100000 && $1 < 165536')
    if [[ -n $procs ]]; then
      echo "LEFTOVER processes of run uids after rootless $oci:"
      echo "$procs"
      status=1
    fi
    # Nor any process of the user's but its systemd manager and its bus: no slirp4netns, no
    # namespace holder, no OCI runtime.
    mine=$(ps -u tester -o pid=,comm= | awk '$2 !~ /^(systemd|\(sd-pam\)|dbus-daemon|dbus-broker.*)$/')
    if [[ -n $mine ]]; then
      echo "LEFTOVER processes of tester after rootless $oci:"
      echo "$mine"
      status=1
    fi
    gone=$(mounts | comm -23 /tmp/mounts.before -)
    [[ -z $gone ]] || { echo "LOST MOUNTS after rootless $oci: $gone"; status=1; }
  done
  left=$(find /run/user/1000/ignite -mindepth 2 -maxdepth 2 2>/dev/null | grep -v '/oci/\|oci-versions' || true)
  [[ -z $left ]] || echo "rootless state in the default directory (tests use their own): $left"
fi
exit "$status"
