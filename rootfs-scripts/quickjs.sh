#!/usr/bin/env bash
# Builds the QuickJS rootfs from source: the QuickJS-ng C sources vendored by the crate
# rquickjs-sys (see runtimes/quickjs/runtime.yaml), compiled with the host's C compiler together
# with Ignite's launcher (quickjs/launcher.c beside this script).
#
# Inputs (set by ignite, see lib.sh): IGNITE_PACKAGE (the .crate, a .tar.gz), IGNITE_OUT,
# IGNITE_WORK, IGNITE_RECIPE_FILES (this recipe's auxiliary files: launcher.c, bootstrap.js).
# Output: a reproducible .tar.gz holding
#   /usr/local/bin/quickjs                the launcher with the engine, a static PIE (0755)
#   /usr/local/lib/quickjs/bootstrap.js   console, process, timers, module loading (0644)
#   /usr/local/lib/quickjs/bootstrap.qbc  the same compiled to QuickJS bytecode, which is what
#                                         runs (parsing the source on every start took 7 ms)
#   /etc/{passwd,group,hosts,nsswitch.conf}, mount points, /.ignite/init (see lib.sh)
#
# Static linking, on purpose: the rootfs then holds no dynamic loader and no shared libraries
# (nothing for LD_* variables or a planted library to influence, nothing to copy from the host's
# layout), the binary starts without relocating libc, and -static-pie keeps address-space layout
# randomisation. The engine needs nothing glibc would load at run time (no NSS, iconv or dlopen).
#
# Reproducible: no -g and no __DATE__/__TIME__; -ffile-prefix-map maps the scratch directory
# (which differs per build) to a fixed name, so assert()'s __FILE__ strings are the same bytes;
# -frandom-seed fixes the names GCC would otherwise randomise; the linker's build id is a hash of
# the contents; SOURCE_DATE_EPOCH is set by ignite.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ignite_require_env IGNITE_PACKAGE IGNITE_OUT IGNITE_WORK IGNITE_RECIPE_FILES
ignite_require_tools tar gzip ldd find sort cat chmod chown mkdir mktemp readlink grep id env nproc

for aux in launcher.c bootstrap.js; do
    [[ -f "$IGNITE_RECIPE_FILES/$aux" ]] || ignite_die "auxiliary file $aux is missing from $IGNITE_RECIPE_FILES"
done

cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 \
    || ignite_die "no C compiler ($cc) on this host: the quickjs runtime is compiled from source (on Debian/Ubuntu: apt-get install gcc libc6-dev)"

src="$IGNITE_WORK/src"
obj="$IGNITE_WORK/obj"
root="$IGNITE_WORK/rootfs"
rm -rf "$src" "$obj" "$root"
mkdir -p "$src" "$obj"

# Fail on a compiler that cannot link a static PIE before spending a minute on the engine.
printf 'int main(void) { return 0; }\n' >"$obj/probe.c"
"$cc" -static-pie -o "$obj/probe" "$obj/probe.c" >"$obj/probe.log" 2>&1 \
    || ignite_die "$cc cannot link a static PIE (glibc's libc.a and rcrt1.o are needed; on Debian/Ubuntu: apt-get install libc6-dev): $(cat "$obj/probe.log")"

# The crate is <name>-<version>/ with the engine under quickjs/; nothing else of it is used.
tar -xzf "$IGNITE_PACKAGE" -C "$src" --no-same-owner --no-same-permissions \
    || ignite_die "$IGNITE_PACKAGE is not a readable .crate (tar.gz)"
engine=$(find "$src" -mindepth 2 -maxdepth 2 -type d -name quickjs -print -quit)
[[ -n "$engine" && -f "$engine/quickjs.c" && -f "$engine/quickjs.h" ]] \
    || ignite_die "$IGNITE_PACKAGE has no <crate>/quickjs/quickjs.c: not an rquickjs-sys crate"
cp "$IGNITE_RECIPE_FILES/launcher.c" "$obj/launcher.c"

cflags=(
    -std=gnu11 -O2 -funsigned-char -fno-strict-aliasing -fwrapv
    -D_GNU_SOURCE -DQUICKJS_NG_BUILD
    -DIGNITE_BOOTSTRAP='"/usr/local/lib/quickjs/bootstrap.js"'
    -I"$engine"
    -fPIE -fstack-protector-strong -fstack-clash-protection -fcf-protection -D_FORTIFY_SOURCE=2
    -ffile-prefix-map="$IGNITE_WORK"=/ignite-build
    -w
)

# The engine's files compile in parallel; quickjs.c alone takes most of the time.
sources=("$engine/quickjs.c" "$engine/libregexp.c" "$engine/libunicode.c" "$engine/dtoa.c" "$obj/launcher.c")
pids=()
for file in "${sources[@]}"; do
    [[ -f "$file" ]] || ignite_die "$file is missing from $IGNITE_PACKAGE"
    base=$(basename "$file" .c)
    "$cc" "${cflags[@]}" -frandom-seed="$base" -c "$file" -o "$obj/$base.o" 2>"$obj/$base.log" &
    pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        ignite_log "compiling $(basename "${sources[$i]}") failed: $(cat "$obj/$(basename "${sources[$i]}" .c).log")"
        failed=1
    fi
done
((failed == 0)) || ignite_die "compilation failed (see above)"

bin="$obj/quickjs"
"$cc" -static-pie -s -Wl,-z,relro,-z,now,-z,noexecstack,--build-id=sha1 -o "$bin" \
    "$obj/launcher.o" "$obj/quickjs.o" "$obj/libregexp.o" "$obj/libunicode.o" "$obj/dtoa.o" -lm \
    2>"$obj/link.log" || ignite_die "linking failed: $(cat "$obj/link.log")"

ignite_skeleton "$root"
ignite_copy_file "$bin" "$root/usr/local/bin/quickjs" 0755
ignite_copy_file "$IGNITE_RECIPE_FILES/bootstrap.js" "$root/usr/local/lib/quickjs/bootstrap.js" 0644
# The bytecode depends only on the source and the engine, so it is as reproducible as the binary.
"$bin" --compile-bootstrap "$IGNITE_RECIPE_FILES/bootstrap.js" "$root/usr/local/lib/quickjs/bootstrap.qbc" \
    || ignite_die "compiling bootstrap.js to bytecode failed"
# A static binary needs no libraries; this fails loudly if the flags above ever stop being static.
ignite_copy_libs "$root" "$bin"
[[ ! -e "$root/lib64" && ! -e "$root/lib" ]] || ignite_die "the launcher is not statically linked"
ignite_normalize "$root"
ignite_smoke_test "$root" /usr/local/bin/quickjs --version
# One real program through the bootstrap (console, process, a relative ES module import, a
# timer), from files that are removed before packing.
echo 'export const answer = 42;' >"$root/tmp/smoke-lib.mjs"
cat >"$root/tmp/smoke.mjs" <<'SMOKE'
import { answer } from "./smoke-lib.mjs";
setTimeout(() => console.log(`quickjs ${process.versions.quickjs} answer=${answer}`), 1);
SMOKE
ignite_smoke_test "$root" /usr/local/bin/quickjs /tmp/smoke.mjs
rm -f "$root/tmp/smoke.mjs" "$root/tmp/smoke-lib.mjs"
ignite_pack "$root" "$IGNITE_OUT"
