#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Embedding libblkcache the way a third party does: install the build tree
# into a temporary root, build examples/embed.c against it through
# pkg-config only (no source-tree headers, no build-tree library), run it,
# and check what the installed library exposes:
#   - the example builds with -Wall -Wextra -Werror (-std=c11) and passes
#     (RAM devices through the public ops, format, write, flush, close,
#     reopen, verify, drain), in poll(2) mode and in bc_loop_run_once mode;
#   - it resolves libblkcache.so.0 from the temporary root;
#   - the installed library exports exactly the functions declared in the
#     installed headers (no internal symbol such as bc_seglog_seal);
#   - pkg-config --modversion equals BLKCACHE_VERSION_STRING and bc_version().
# In a sanitizer build (b_sanitize) the example gets the same -fsanitize
# flags, since the library needs the sanitizer runtimes from the program.
. "$(dirname "$0")/lib.sh"

BUILD=${BLKCACHE_BUILD:?run through tests/run.sh}
SRC=${BLKCACHE_SRC:?run through tests/run.sh}
for tool in meson pkg-config cc nm; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

# ---- install into $T/root ----
ROOT=$T/root
meson install -C "$BUILD" --no-rebuild --quiet --destdir "$ROOT" >"$T/install.log" 2>&1 ||
	{ tail -n 20 "$T/install.log"; fail "meson install --destdir failed"; }
pc=$(find "$ROOT" -name libblkcache.pc | head -n 1)
[ -n "$pc" ] || fail "no libblkcache.pc installed under $ROOT"
PCDIR=$(dirname "$pc")
log "installed into $ROOT (pkg-config file ${pc#"$ROOT"})"

# pkg-config sees our .pc first (the system ones for liburing etc. after
# it); the sysroot makes -I/-L point into $ROOT.
export PKG_CONFIG_PATH=$PCDIR
export PKG_CONFIG_SYSROOT_DIR=$ROOT
CFLAGS_PC=$(pkg-config --cflags libblkcache) || fail "pkg-config --cflags libblkcache failed"
LIBS_PC=$(pkg-config --libs libblkcache) || fail "pkg-config --libs libblkcache failed"
INCDIR=$(pkg-config --variable=includedir libblkcache)
LIBDIR=$(pkg-config --variable=libdir libblkcache)
case "$INCDIR" in "$ROOT"/*) ;; *) fail "includedir $INCDIR is not in $ROOT";; esac
case "$LIBDIR" in "$ROOT"/*) ;; *) fail "libdir $LIBDIR is not in $ROOT";; esac
[[ " $CFLAGS_PC " == *" -I$INCDIR "* ]] || fail "cflags '$CFLAGS_PC' lack -I$INCDIR"
[[ " $LIBS_PC " == *" -L$LIBDIR "* ]] || fail "libs '$LIBS_PC' lack -L$LIBDIR"
for h in engine device loop log target check version; do
	[ -f "$INCDIR/blkcache/$h.h" ] || fail "header blkcache/$h.h is not installed"
done
LIB=$LIBDIR/libblkcache.so.0
[ -e "$LIB" ] || fail "$LIB is not installed"
log "pkg-config: cflags '$CFLAGS_PC' libs '$LIBS_PC'"

# ---- version ----
hver=$(sed -n 's/^#define BLKCACHE_VERSION_STRING "\(.*\)"$/\1/p' "$INCDIR/blkcache/version.h")
mver=$(pkg-config --modversion libblkcache)
[ -n "$hver" ] || fail "no BLKCACHE_VERSION_STRING in the installed version.h"
[ "$mver" = "$hver" ] || fail "pkg-config --modversion is '$mver', BLKCACHE_VERSION_STRING is '$hver'"
log "version $mver (pkg-config and version.h agree)"

# ---- exported symbols = functions declared in the installed headers ----
nm -D --defined-only "$LIB" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u \
	>"$T/exported.txt"
py - "$INCDIR/blkcache" >"$T/declared.txt" <<'EOF' || fail "cannot read the installed headers"
import glob, re, sys
names = set()
for h in glob.glob(sys.argv[1] + "/*.h"):
    s = open(h).read()
    s = re.sub(r"/\*.*?\*/", " ", s, flags=re.S)          # comments
    s = re.sub(r"^\s*#(?:[^\n]*\\\n)*[^\n]*", " ", s, flags=re.M)  # preprocessor lines
    s = re.sub(r"static\s+inline[^{]*\{[^}]*\}", " ", s)   # inline helpers: not exported
    names |= set(re.findall(r"\b(bc_\w+)\s*\(", s))
print("\n".join(sorted(names)))
EOF
nexp=$(wc -l <"$T/exported.txt")
ndecl=$(wc -l <"$T/declared.txt")
[ "$ndecl" -ge 40 ] || fail "only $ndecl functions found in the installed headers (parse error?)"
extra=$(comm -23 "$T/exported.txt" "$T/declared.txt")
missing=$(comm -13 "$T/exported.txt" "$T/declared.txt")
[ -z "$extra" ] || fail "the library exports symbols no installed header declares: ${extra//$'\n'/ }"
[ -z "$missing" ] || fail "declared in the installed headers but not exported (an embedder cannot link them): ${missing//$'\n'/ }"
for s in bc_seglog_seal bc_index_init bc_sb_read bc_dev_file_ops; do
	! grep -qx "$s" "$T/exported.txt" || fail "internal symbol $s is exported"
done
unver=$(nm -D --defined-only "$LIB" | awk '$2 != "A" && $3 !~ /@@?BLKCACHE_/ { print $3 }')
[ -z "$unver" ] || fail "exported symbols without the BLKCACHE_ version: ${unver//$'\n'/ }"
log "exports: $nexp symbols, all bc_* and versioned, = the $ndecl functions declared in the headers"

# ---- the example includes only <blkcache/...> and libc headers ----
EX=$SRC/examples/embed.c
[ -f "$EX" ] || fail "$EX is missing"
# ISO C and POSIX headers (what an embedder's libc provides).
LIBC_HEADERS=" assert.h ctype.h errno.h fcntl.h inttypes.h limits.h poll.h pthread.h signal.h
 stdarg.h stdbool.h stddef.h stdint.h stdio.h stdlib.h string.h time.h unistd.h sys/types.h
 sys/uio.h sys/stat.h sys/time.h "
nincs=0
while read -r inc; do
	case "$inc" in
	"<blkcache/"*">") [ -f "$INCDIR/${inc:1:-1}" ] || fail "embed.c includes $inc, which is not installed";;
	"<"*">") [[ "$LIBC_HEADERS" == *[[:space:]]"${inc:1:-1}"[[:space:]]* ]] ||
		fail "embed.c includes $inc: only <blkcache/...> and libc headers";;
	*) fail "embed.c includes $inc: only <blkcache/...> and libc headers";;
	esac
	nincs=$((nincs + 1))
done < <(sed -n 's/^#[[:space:]]*include[[:space:]]*\([<"][^>"]*[>"]\).*/\1/p' "$EX")
[ "$nincs" -gt 5 ] || fail "found only $nincs #include lines in $EX"

# ---- build it (sanitizer flags as the library was built) ----
opt() {
	meson introspect --buildoptions "$BUILD" | "$PY" -c 'import json, sys
v = [o["value"] for o in json.load(sys.stdin) if o["name"] == sys.argv[1]]
v = v[0] if v else ""
print(",".join(v) if isinstance(v, list) else v)' "$1"
}
SAN=$(opt b_sanitize) || fail "meson introspect --buildoptions $BUILD failed"
SANFLAGS=()
case "$SAN" in
"" | none) ;;
*) SANFLAGS=(-fsanitize="$SAN" -fno-omit-frame-pointer);;
esac
# shellcheck disable=SC2086 # pkg-config output is a list of words
cc -std=c11 -Wall -Wextra -Werror -O2 -g "${SANFLAGS[@]}" $CFLAGS_PC -o "$T/embed" "$EX" $LIBS_PC \
	>"$T/cc.log" 2>&1 || { cat "$T/cc.log"; fail "examples/embed.c does not build against the installed tree"; }
log "built examples/embed.c: cc -std=c11 -Wall -Wextra -Werror ${SANFLAGS[*]} \$(pkg-config --cflags --libs libblkcache)"

export LD_LIBRARY_PATH=$LIBDIR
so=$(ldd "$T/embed" | awk '$1 == "libblkcache.so.0" { print $3 }')
[ "$(readlink -f "$so")" = "$(readlink -f "$LIB")" ] ||
	fail "the example loads libblkcache.so.0 from '$so', not from $LIBDIR"

# ---- run it ----
runs=0
for mode in "" --run-once; do
	out=$T/embed${mode:+.run-once}
	rc=0
	timeout -k 10 "$CLIENT_TIMEOUT" "$T/embed" ${mode:+"$mode"} >"$out.out" 2>"$out.err" || rc=$?
	check_no_sanitizer "$out.err"
	if [ $rc -ne 0 ]; then
		tail -n 30 "$out.err"
		fail "embed ${mode:-(poll mode)} exited with status $rc"
	fi
	summary=$(cat "$out.out")
	[[ "$summary" =~ ^embed:\ 96\ requests\ .*flushed,\ closed,\ reopened,\ 16\.0\ MiB\ verified ]] ||
		fail "unexpected output from embed $mode: '$summary'"
	[ "$(wc -l <"$out.out")" -eq 1 ] || fail "embed $mode printed more than its summary line"
	grep -qx "embed: libblkcache $hver (headers $hver)" "$out.err" ||
		fail "embed $mode: bc_version() or its headers are not $hver: $(head -n 1 "$out.err")"
	# The per-loop logger: the example's own bc_loop_log() lines for both
	# engine instances, and at least one message of the library itself.
	grep -q '^embed: libblkcache info: engine opened' "$out.err" ||
		fail "embed $mode: no 'engine opened' message from the per-loop logger"
	grep -q '^embed: libblkcache info: engine reopened' "$out.err" ||
		fail "embed $mode: no 'engine reopened' message from the per-loop logger"
	grep '^embed: libblkcache info: ' "$out.err" | grep -qv ': engine \(re\)\{0,1\}opened: ' ||
		fail "embed $mode: no message of the library reached the per-loop logger"
	! grep -qE 'FAILED|libblkcache (error|warning)' "$out.err" ||
		{ cat "$out.err"; fail "embed $mode reported errors or warnings"; }
	log "embed ${mode:-(poll mode)}: $summary"
	runs=$((runs + 1))
done

echo "checked: installed tree (meson install --destdir), example built with pkg-config only${SANFLAGS:+ (${SANFLAGS[0]})} and -Werror, $runs runs (poll, run_once): format/write/flush/close/reopen/verify/drain on RAM devices; $nexp exports = declared API, version $mver"
