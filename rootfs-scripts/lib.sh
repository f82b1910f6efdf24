# shellcheck shell=bash
# Shared functions for rootfs recipes (rootfs-scripts/<recipe>.sh sources this file).
#
# A recipe turns one downloaded, integrity-checked package into a minimal root filesystem tarball.
# Ignite embeds these scripts into its binary, writes them to a scratch directory and runs
# `bash <recipe>.sh` with:
#   IGNITE_PACKAGE  path of the verified package (.tgz)
#   IGNITE_OUT      path of the .tar.gz to write
#   IGNITE_WORK     empty scratch directory (ignite deletes it afterwards)
#   IGNITE_RECIPE_FILES  the recipe's auxiliary files (sources, files to install): everything
#                   under rootfs-scripts/<recipe>/ in the source tree, embedded like the script
#                   and covered by the recipe's digest
# The environment is otherwise cleared to PATH, LC_ALL=C, TZ=UTC and SOURCE_DATE_EPOCH=0 so that
# two builds produce byte-identical tarballs (the tarball's sha256 names the bundle).
#
# Where it runs: the built-in recipes (bun, deno, node, quickjs) run chrooted into the pinned
# Debian build environment (runtimes/builder/builder.yaml), with the work directory at /ignite,
# a private /tmp, no network and everything else read-only. Every tool they call (bash, GNU tar
# and gzip, ldd, gcc) and every library they copy into a rootfs comes from there, so the
# tarball is the same on any host. Custom recipe scripts run on the host, with its tools.

set -euo pipefail
umask 022

ignite_die() {
    echo "ignite recipe: $*" >&2
    exit 1
}

ignite_log() {
    echo "ignite recipe: $*" >&2
}

# ignite_require_env VAR... — every input must be set and non-empty.
ignite_require_env() {
    local var
    for var in "$@"; do
        [[ -n "${!var:-}" ]] || ignite_die "environment variable $var is not set (ignite sets it when it runs a recipe)"
    done
}

# ignite_require_tools TOOL... — fail up front, naming every missing tool, rather than halfway
# through a build with a cryptic "command not found".
ignite_require_tools() {
    local tool missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        ignite_die "missing tools: ${missing[*]} (a custom recipe runs on the host: on Debian/Ubuntu, apt-get install coreutils findutils tar gzip libc-bin; in the build environment of the built-in recipes, add the package to runtimes/builder/pin.sh)"
    fi
    # --sort=name and --mtime are GNU tar features; busybox/bsdtar would build a different tarball.
    local version
    version=$(tar --version 2>&1) || true
    [[ $version == *'GNU tar'* ]] \
        || ignite_die "GNU tar is required for reproducible tarballs (found: ${version%%$'\n'*})"
}

# ignite_npm_binary MEMBER — extract one file (e.g. package/bin/node) from the npm tarball
# $IGNITE_PACKAGE into $IGNITE_WORK/package and print its path. It must be a regular file: a
# link in the package could point anywhere on the build host.
ignite_npm_binary() {
    local member=$1
    local pkg="$IGNITE_WORK/package"
    rm -rf "$pkg"
    mkdir -p "$pkg"
    tar -xzf "$IGNITE_PACKAGE" -C "$pkg" --no-same-owner --no-same-permissions "$member" >&2 \
        || ignite_die "$IGNITE_PACKAGE does not contain $member"
    [[ -f "$pkg/$member" && ! -L "$pkg/$member" ]] \
        || ignite_die "$member in $IGNITE_PACKAGE is not a regular file"
    printf '%s\n' "$pkg/$member"
}

# ignite_skeleton ROOT — the directories and files every Ignite rootfs has.
#
# Mount points exist up front because the rootfs is shared and mounted read-only: runc must never
# need to create anything in it. /.ignite/init is an empty placeholder onto which ignite
# bind-mounts its static entrypoint at run time.
ignite_skeleton() {
    local root=$1
    mkdir -p "$root"
    local dir
    # /node_modules: the service's installed npm dependencies are mounted there read-only; module
    # resolution (node, bun, deno) walks up from /app and finds them.
    for dir in app node_modules tmp proc sys dev etc .ignite usr/local/bin; do
        mkdir -p "$root/$dir"
    done
    : >"$root/.ignite/init"
    # /etc/resolv.conf: an empty mount point. Runs have no network (an empty file gives glibc its
    # default, a resolver on the sandbox's own loopback, where nothing listens); the dependency
    # install step binds a generated file over it that names its user-mode network's DNS forwarder.
    : >"$root/etc/resolv.conf"

    # Only root and nobody: the sandboxed process runs as 65534 and tools that look up their own
    # user name (os.userInfo(), whoami) get an answer instead of an error.
    cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
    cat >"$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
GROUP
    # localhost must resolve for services that listen on or call themselves (glibc reads this
    # file through the built-in "files" NSS module; nothing is dlopen'ed).
    cat >"$root/etc/hosts" <<'HOSTS'
127.0.0.1 localhost
::1 localhost
HOSTS
    cat >"$root/etc/nsswitch.conf" <<'NSS'
passwd: files
group: files
hosts: files dns
NSS
}

# ignite_copy_file SRC DEST MODE — copy the bytes of SRC (following symlinks: the rootfs gets the
# real file, never a link into the host's layout).
ignite_copy_file() {
    local src=$1 dest=$2 mode=$3
    mkdir -p "$(dirname "$dest")"
    cat -- "$src" >"$dest"
    chmod "$mode" "$dest"
}

# ignite_copy_libs ROOT BINARY — copy exactly the shared libraries BINARY needs, as ldd resolves
# them where the recipe runs (the build environment, for the built-in recipes), to the same
# paths inside ROOT.
#
# Every library is stored as a real file at the path ldd reports (e.g.
# /lib/x86_64-linux-gnu/libc.so.6) — the directories the loader searches by default —
# and the program interpreter at its exact PT_INTERP path (/lib64/ld-linux-x86-64.so.2). On
# merged-/usr hosts those host paths are symlinks, some absolute; copying real files keeps the
# rootfs free of links into the host's layout.
#
# Note that ldd runs the binary's loader; the binary was integrity-checked before the recipe ran.
ignite_copy_libs() {
    local root=$1 binary=$2
    local out line name path
    if ! out=$(ldd "$binary" 2>&1); then
        # "not a dynamic executable": a static binary needs nothing.
        if grep -q 'not a dynamic executable' <<<"$out"; then
            return 0
        fi
        ignite_die "ldd $binary failed: $out"
    fi
    while IFS= read -r line; do
        line=${line#"${line%%[![:space:]]*}"}
        case $line in
            *'=> not found'*)
                ignite_die "shared library needed by $binary is missing on this host: $line" ;;
            *' => '/*)
                name=${line%% => *}
                path=${line#* => }
                path=${path%% (*}
                ignite_copy_file "$path" "$root$path" 0644
                ignite_log "library $name <- $(readlink -f "$path")" ;;
            /*)
                # The program interpreter (no "=>"): the kernel execs it, so it must be executable.
                path=${line%% (*}
                ignite_copy_file "$path" "$root$path" 0755
                ignite_log "interpreter $path <- $(readlink -f "$path")" ;;
            *'statically linked'*|linux-vdso.so.*|linux-gate.so.*|'')
                ;;
            *)
                ignite_die "unexpected ldd output for $binary: $line" ;;
        esac
    done <<<"$out"
}

# ignite_copy_dlopen_libs ROOT SONAME... — libraries that glibc loads with dlopen at run time, so
# ldd cannot see them. They are looked up beside the binary's libc, where the loader will search.
ignite_copy_dlopen_libs() {
    local root=$1
    shift
    local libc_dir soname
    libc_dir=$(find "$root" -name 'libc.so.6' -printf '%h\n' -quit)
    [[ -n "$libc_dir" ]] || ignite_die "libc.so.6 is not in the rootfs; run ignite_copy_libs first"
    libc_dir=${libc_dir#"$root"}
    for soname in "$@"; do
        [[ -e "$libc_dir/$soname" ]] \
            || ignite_die "$soname not found in $libc_dir on this host (on Debian/Ubuntu: apt-get install libgcc-s1)"
        ignite_copy_file "$libc_dir/$soname" "$root$libc_dir/$soname" 0644
        ignite_log "dlopen library $soname <- $(readlink -f "$libc_dir/$soname")"
    done
}

# ignite_normalize ROOT — root-owned, dirs 0755, no setuid/setgid/sticky and no group/other write
# bit anywhere, whatever umask or package modes said.
ignite_normalize() {
    local root=$1
    find "$root" -type d -exec chmod 0755 {} +
    find "$root" -type f -perm /0111 -exec chmod 0755 {} +
    find "$root" -type f ! -perm /0111 -exec chmod 0644 {} +
    if [[ $(id -u) == 0 ]]; then
        chown -hR 0:0 "$root"
    fi
    local odd
    odd=$(find "$root" ! -type f ! -type d ! -type l -print -quit)
    [[ -z "$odd" ]] || ignite_die "rootfs contains a special file: $odd"
    odd=$(find "$root" -type l -lname '/*' -print -quit)
    [[ -z "$odd" ]] || ignite_die "rootfs contains an absolute symlink: $odd -> $(readlink "$odd")"
}

# ignite_smoke_test ROOT ARGV... — run the runtime inside the new rootfs once, so that a rootfs
# missing a library fails the build with the loader's message instead of failing every run.
# Needs root (chroot); skipped otherwise.
ignite_smoke_test() {
    local root=$1
    shift
    if [[ $(id -u) != 0 ]] || ! command -v chroot >/dev/null 2>&1; then
        ignite_log "not root or no chroot: skipping the smoke test"
        return 0
    fi
    local out chroot
    chroot=$(command -v chroot)
    out=$(env -i PATH=/usr/local/bin HOME=/tmp "$chroot" "$root" "$@" 2>&1) \
        || ignite_die "smoke test failed: chroot rootfs $* said: $out"
    ignite_log "smoke test: $* -> $out"
}

# ignite_pack ROOT OUT — write ROOT as a reproducible .tar.gz: entries sorted by name, mtime 0,
# numeric owner 0:0, no xattrs/ACLs, GNU format (no PAX timestamps), gzip without name or time.
# gzip -1: the tarball only lives in the local cache, and on a ~100 MB runtime -1 takes a third of
# the time of -6 for a tarball 7% larger (measured with Bun 1.4.5: 3.5 s vs 8.8 s).
ignite_pack() {
    local root=$1 out=$2
    local list
    list=$(mktemp "${IGNITE_WORK}/list.XXXXXX")
    (cd "$root" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$list"
    tar --create --file=- --directory="$root" \
        --no-recursion --verbatim-files-from --files-from="$list" \
        --format=gnu --mtime=@0 --owner=0 --group=0 --numeric-owner \
        --no-acls --no-xattrs --no-selinux \
        | gzip -n -1 >"$out.partial"
    mv -f "$out.partial" "$out"
    rm -f "$list"
}
