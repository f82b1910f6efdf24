#!/usr/bin/env bash
# Writes the package pins of runtimes/builder/builder.yaml: the dependency closure of the build
# tools the built-in recipes use, resolved by apt against the Debian release this host's apt
# points at, with each package's pool path, size and sha256 taken from apt's package index.
#
# Run it on a Debian host whose apt sources name the release in RELEASE (default bookworm),
# after `apt-get update`, when a pin has to move (a point release removed a pinned version from
# the archive, or a security fix should reach the bundles):
#   runtimes/builder/pin.sh > /tmp/pins.yaml
# then replace the `packages:` list of runtimes/builder/builder.yaml with its output and rebuild the
# bundles (`ignite runtime pull ...`): their digests change, which is the point.
set -euo pipefail
export LC_ALL=C

# What the recipes run (rootfs-scripts/*.sh): bash and the core tools, GNU tar and gzip for a
# reproducible tarball, ldd, and GCC with glibc's static libraries for QuickJS. libstdc++6 and
# libgcc-s1 are what the runtimes' binaries load.
roots=(bash coreutils findutils grep sed tar gzip libc-bin gcc-12 binutils libc6-dev libstdc++6 libgcc-s1)
# Dependencies apt asks for that no recipe step loads or runs: packaging tools, and the runtime
# libraries of GCC features the recipes do not use (sanitizers, OpenMP, transactional memory),
# and the Sun RPC/Kerberos chain libc6-dev pulls in for headers QuickJS never includes. A build
# that needs one of them fails loudly (a missing tool, library or header), never silently.
exclude=(dpkg base-files debianutils mawk libcc1-0 libasan8 liblsan0 libtsan2 libubsan1 libgomp1 libitm1
    libatomic1 libquadmath0 libgprofng0 libtirpc-dev libnsl-dev rpcsvc-proto libtirpc3 libtirpc-common libnsl2
    libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2 libssl3 libcrypt-dev libcrypt1)

release=${RELEASE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
status=$(mktemp)
sources=$(mktemp)
trap 'rm -f "$status" "$sources"' EXIT
# Only the release and its updates suite from the main archive: every pin is then fetched from
# one mirror (runtimes/builder/builder.yaml's `mirror`, or a snapshot of it). Security fixes
# reach the main archive with each point release; move the pins then. The package lists must
# have been fetched (`apt-get update` with these suites in the host's sources).
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$release" "$mirror" "$release" >"$sources"
apt_opts=(-o Dir::State::status="$status" -o Dir::Etc::SourceList="$sources" -o Dir::Etc::SourceParts=/nonexistent
    -o APT::Install-Recommends=0 -o Debug::NoLocking=1)
# An empty dpkg status: apt resolves the whole closure, as for an empty root.
apt-get install --simulate -qq "${apt_opts[@]}" "${roots[@]}" |
    awk '$1 == "Inst" { gsub(/[()]/, "", $3); print $2, $3 }' |
    sort |
    while read -r name version; do
        for x in "${exclude[@]}"; do
            [[ $name == "$x" ]] && continue 2
        done
        fields=$(apt-cache show "${apt_opts[@]}" "$name=$version" | awk '/^$/ { exit } { print }')
        path=$(awk '/^Filename:/ { print $2 }' <<<"$fields")
        size=$(awk '/^Size:/ { print $2 }' <<<"$fields")
        sha=$(awk '/^SHA256:/ { print $2 }' <<<"$fields")
        [[ -n $path && -n $size && -n $sha ]] || { echo "no index entry for $name $version" >&2; exit 1; }
        printf '  - name: %s\n    version: "%s"\n    path: %s\n    size: %s\n    sha256: %s\n' \
            "$name" "$version" "$path" "$size" "$sha"
    done
