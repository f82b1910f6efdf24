#!/usr/bin/env bash
# Builds a release of ignite for x86_64 Linux: the static `ignite` and `ignite-init` binaries
# (release profile, exactly the dependency versions of Cargo.lock), install.sh, and SHA256SUMS,
# in OUT/ignite-<version>-x86_64-unknown-linux-gnu/ and as a .tar.gz beside it.
#
#   release/build.sh [OUT]        (OUT defaults to dist/)
#
# The binaries are linked statically (.cargo/config.toml: +crt-static), so they run on any
# x86_64 Linux host whatever its libc; the script refuses to package a binary that is not.
# CARGO_TARGET_DIR is honoured, so a CI cache of the release target directory is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-dist}
target=x86_64-unknown-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[[ -n "$version" ]] || { echo "release/build.sh: no version in Cargo.toml" >&2; exit 1; }
name="ignite-$version-$target"
target_dir=${CARGO_TARGET_DIR:-target}

start=$SECONDS
cargo build --release --locked --target "$target" --bin ignite --bin ignite-init
echo "release build: $((SECONDS - start)) s"

stage="$out/$name"
rm -rf "$stage" "$out/$name.tar.gz" "$out/$name.tar.gz.sha256"
mkdir -p "$stage"
for bin in ignite ignite-init; do
  src="$target_dir/$target/release/$bin"
  # A static executable has no program interpreter (PT_INTERP); a dynamic one names ld.so.
  if readelf -l "$src" | grep -q 'Requesting program interpreter'; then
    echo "release/build.sh: $src is dynamically linked; the release needs static binaries" >&2
    exit 1
  fi
  install -m 0755 "$src" "$stage/$bin"
done
install -m 0755 release/install.sh "$stage/install.sh"
(cd "$stage" && sha256sum ignite ignite-init install.sh >SHA256SUMS)
# Reproducible archive metadata: sorted names, root owner, the commit's time (or 0).
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -C "$out" -cf - "$name" | gzip -n >"$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "release: $out/$name.tar.gz"
cat "$stage/SHA256SUMS"
