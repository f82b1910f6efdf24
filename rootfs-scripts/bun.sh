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

root="$IGNITE_WORK/rootfs"
rm -rf "$root"

# The npm tarball holds package/bin/bun, package.json and a README; only the binary is needed.
bun=$(ignite_npm_binary package/bin/bun)

ignite_skeleton "$root"
ignite_copy_file "$bun" "$root/usr/local/bin/bun" 0755
ignite_copy_libs "$root" "$bun"
ignite_copy_dlopen_libs "$root" libgcc_s.so.1
ignite_normalize "$root"
ignite_smoke_test "$root" /usr/local/bin/bun --version
ignite_pack "$root" "$IGNITE_OUT"
