#!/usr/bin/env bash
# Builds the Bun rootfs from the npm package @oven/bun-linux-x64 (see runtimes/bun/runtime.yaml).
#
# Inputs (set by ignite, see lib.sh): IGNITE_PACKAGE, IGNITE_OUT, IGNITE_WORK.
# Output: a reproducible .tar.gz holding
#   /usr/local/bin/bun                the runtime (0755)
#   /lib64/ld-linux-x86-64.so.2       the program interpreter, and the libraries ldd finds, plus
#   libgcc_s.so.1                     which glibc dlopens for pthread_exit() and backtrace()
#                                     (Bun calls both; without it glibc aborts the process)
#   /etc/{passwd,group,hosts,nsswitch.conf}, mount points, /.ignite/init (see lib.sh)

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ignite_require_env IGNITE_PACKAGE IGNITE_OUT IGNITE_WORK
ignite_require_tools tar gzip ldd find sort cat chmod chown mkdir mktemp readlink grep id env

pkg="$IGNITE_WORK/package"
root="$IGNITE_WORK/rootfs"
rm -rf "$pkg" "$root"
mkdir -p "$pkg"

# The npm tarball holds package/bin/bun, package.json and a README; only the binary is needed.
tar -xzf "$IGNITE_PACKAGE" -C "$pkg" --no-same-owner --no-same-permissions package/bin/bun \
    || ignite_die "$IGNITE_PACKAGE does not contain package/bin/bun"
bun="$pkg/package/bin/bun"
[[ -f "$bun" && ! -L "$bun" ]] || ignite_die "package/bin/bun in $IGNITE_PACKAGE is not a regular file"

ignite_skeleton "$root"
ignite_copy_file "$bun" "$root/usr/local/bin/bun" 0755
ignite_copy_libs "$root" "$bun"
ignite_copy_dlopen_libs "$root" libgcc_s.so.1
ignite_normalize "$root"
ignite_smoke_test "$root" /usr/local/bin/bun --version
ignite_pack "$root" "$IGNITE_OUT"
