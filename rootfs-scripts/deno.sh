#!/usr/bin/env bash
# Builds the Deno rootfs from the npm package @deno/linux-x64-glibc (see runtimes/deno/runtime.yaml).
#
# Inputs (set by ignite, see lib.sh): IGNITE_PACKAGE, IGNITE_OUT, IGNITE_WORK.
# Output: a reproducible .tar.gz holding
#   /usr/local/bin/deno               the runtime (0755), a single self-contained binary
#   /lib64/ld-linux-x86-64.so.2       the program interpreter, and the libraries ldd finds (libc,
#                                     libm, libdl, librt, libpthread and libgcc_s, which Deno
#                                     links directly for unwinding, so nothing is dlopen'ed)
#   /etc/{passwd,group,hosts,nsswitch.conf}, mount points, /.ignite/init (see lib.sh)
#
# Deno keeps its caches in DENO_DIR, which runtime.yaml points into the per-run /tmp, so the
# rootfs needs no cache directory of its own.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ignite_require_env IGNITE_PACKAGE IGNITE_OUT IGNITE_WORK
ignite_require_tools tar gzip ldd find sort cat chmod chown mkdir mktemp readlink grep id env

root="$IGNITE_WORK/rootfs"
rm -rf "$root"

# The npm tarball holds package/deno, package.json and a README; only the binary is needed.
deno=$(ignite_npm_binary package/deno)

ignite_skeleton "$root"
ignite_copy_file "$deno" "$root/usr/local/bin/deno" 0755
ignite_copy_libs "$root" "$deno"
ignite_normalize "$root"
ignite_smoke_test "$root" /usr/local/bin/deno --version
ignite_pack "$root" "$IGNITE_OUT"
