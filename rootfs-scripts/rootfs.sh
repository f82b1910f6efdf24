#!/usr/bin/env bash
# Turns a prebuilt root filesystem tarball into an Ignite rootfs. For custom runtimes that ship
# their own rootfs: `recipe: rootfs` in runtime.yaml, with the tarball as the version's package
# (pinned by its integrity like any package; `url: file:rootfs.tar.gz` or an https URL).
#
# Inputs (set by ignite, see lib.sh): IGNITE_PACKAGE, IGNITE_OUT, IGNITE_WORK.
# IGNITE_PACKAGE is a tar archive of the runtime's root filesystem (plain, gzip, bzip2, xz or
# zstd: whatever GNU tar recognises) holding the runtime binary at the path the definition's
# `command` names and every library it loads. The recipe:
#   - refuses members that are not files, directories or links (device nodes, fifos, …), and
#     absolute or `..` names;
#   - extracts it as plain data (owners and modes from the archive are not applied);
#   - rewrites absolute symlinks (/bin/sh -> /bin/busybox) as relative ones, which resolve the
#     same way inside the container and cannot point into the host while ignite unpacks;
#   - lays Ignite's skeleton over it: the mount points must be real directories (or absent),
#     and Ignite's /etc/passwd, /etc/group, /etc/hosts, /etc/nsswitch.conf and /.ignite/init
#     replace the archive's;
#   - normalises modes and packs it reproducibly, like every other recipe.
# The result is unpacked by ignite's own hostile-archive-proof unpacker, like every bundle.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ignite_require_env IGNITE_PACKAGE IGNITE_OUT IGNITE_WORK
ignite_require_tools tar gzip find sort chmod chown mkdir mktemp readlink realpath ln rm grep id

root="$IGNITE_WORK/rootfs"
rm -rf "$root"
mkdir -p "$root"

# Members are checked before anything is extracted: GNU tar would create device nodes and fifos
# when run as root. --absolute-names lists names as stored, where tar would otherwise strip a
# leading / or ../ before showing them.
listing=$(tar --list --verbose --absolute-names --file="$IGNITE_PACKAGE") \
    || ignite_die "$IGNITE_PACKAGE is not a tar archive that GNU tar can read"
odd=$(grep -v '^[-dlh]' <<<"$listing" | head -n 1 || true)
[[ -z "$odd" ]] || ignite_die "the rootfs tarball holds something other than files, directories and links: $odd"
names=$(tar --list --absolute-names --file="$IGNITE_PACKAGE")
odd=$(grep -E '^/|(^|/)\.\.(/|$)' <<<"$names" | head -n 1 || true)
[[ -z "$odd" ]] || ignite_die "the rootfs tarball holds an absolute or '..' name: $odd"

tar -xf "$IGNITE_PACKAGE" -C "$root" --no-same-owner --no-same-permissions \
    || ignite_die "failed to extract $IGNITE_PACKAGE"

# `find` reports each link at its physical place, so the relative path climbs through real
# directories only and resolves exactly as the absolute target does from the container's "/".
while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    [[ $target == /* ]] || continue
    inside=/${link#"$root"/}
    relative=$(realpath --canonicalize-missing --no-symlinks --relative-to="$(dirname "$inside")" "$target")
    ln -sfn "$relative" "$link"
    ignite_log "symlink $inside -> $target rewritten as $relative"
done < <(find "$root" -type l -print0)

# The skeleton writes into these paths: a link there would redirect the write, possibly out of
# the rootfs, so links to files are replaced and anything else that is not a directory refused.
for dir in app node_modules tmp proc sys dev etc .ignite usr usr/local usr/local/bin; do
    if [[ -L "$root/$dir" || (-e "$root/$dir" && ! -d "$root/$dir") ]]; then
        ignite_die "/$dir in the rootfs tarball must be a directory (or absent): Ignite mounts onto or writes into it"
    fi
done
for file in etc/passwd etc/group etc/hosts etc/nsswitch.conf .ignite/init; do
    if [[ -d "$root/$file" && ! -L "$root/$file" ]]; then
        ignite_die "/$file in the rootfs tarball is a directory; Ignite writes its own file there"
    fi
    rm -f "$root/$file"
done

ignite_skeleton "$root"
ignite_normalize "$root"
ignite_pack "$root" "$IGNITE_OUT"
