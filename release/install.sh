#!/usr/bin/env bash
# Installs an ignite release: verifies the files beside this script against SHA256SUMS, copies
# `ignite` and `ignite-init` into PREFIX/bin (ignite looks for ignite-init beside itself), and
# installs runc, the OCI runtime ignite drives, if no runc is on PATH.
#
#   ./install.sh [--prefix PREFIX] [--no-runc]
#
#   --prefix PREFIX   install into PREFIX/bin (default /usr/local, so /usr/local/bin)
#   --no-runc         do not look for or install runc
#
# runc comes from the distribution: with apt-get (Debian, Ubuntu) it is installed
# (`apt-get install runc`); on other distributions nothing is installed and the script stops
# with the command to run there (dnf, zypper, apk or pacman all package runc as `runc`).
# Run it as root for the default prefix and for runc; a prefix you can write to needs no root.
set -euo pipefail

prefix=/usr/local
want_runc=1
while (($#)); do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --no-runc) want_runc=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
[[ -f "$here/SHA256SUMS" ]] || { echo "install.sh: no SHA256SUMS beside $0; run it from the unpacked release" >&2; exit 1; }
# Every file the release lists must be present and match; nothing unlisted is installed.
if ! (cd "$here" && sha256sum --check --strict --quiet SHA256SUMS); then
  echo "install.sh: the release files do not match SHA256SUMS; download the release again" >&2
  exit 1
fi
for bin in ignite ignite-init; do
  grep -Eq "^[0-9a-f]{64}  $bin\$" "$here/SHA256SUMS" || { echo "install.sh: SHA256SUMS does not list $bin" >&2; exit 1; }
done

bindir="$prefix/bin"
mkdir -p "$bindir"
for bin in ignite-init ignite; do
  # Copied under a temp name and renamed: a running ignite is never overwritten in place.
  install -m 0755 "$here/$bin" "$bindir/.$bin.install-$$"
  mv -f "$bindir/.$bin.install-$$" "$bindir/$bin"
done
echo "installed $("$bindir/ignite" --version) into $bindir"

if ((want_runc)) && ! command -v runc >/dev/null; then
  if command -v apt-get >/dev/null; then
    echo "runc not found: installing it with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null
  else
    for pm in dnf zypper apk pacman; do
      if command -v "$pm" >/dev/null; then
        case "$pm" in
          dnf) cmd="dnf install runc" ;;
          zypper) cmd="zypper install runc" ;;
          apk) cmd="apk add runc" ;;
          pacman) cmd="pacman -S runc" ;;
        esac
        echo "install.sh: runc is missing and this script installs it only with apt-get; install it with: $cmd" >&2
        exit 1
      fi
    done
    echo "install.sh: runc is missing; install runc (https://github.com/opencontainers/runc) and put it on PATH" >&2
    exit 1
  fi
fi
if ((want_runc)); then
  echo "using $(runc --version | sed -n 1p) ($(command -v runc))"
fi
echo "next: $bindir/ignite doctor"
