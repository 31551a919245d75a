#!/bin/bash
# A cache of the previous on-disk format (version 2: one origin, no origin
# table), written by the previous release's code path (format
# --format-version 2), keeps being served unchanged: its superblock stays
# version 2 through serve, crash recovery, flush and clean shutdown; serve
# without --origin and 'origin add' say why not; check reads it.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
make_images 256M 64M --format-version 2
grep -q "format version 2" "$T/format.out" || fail "format --format-version 2 did not say so"
version() { py "$BLKCACHE_SRC/tests/cachetool.py" info "$CACHE" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["sb"]["version"])'; }
[ "$(version)" = 2 ] || fail "the new cache is version $(version), want 2"

rc=0
"$BLKCACHE" serve --cache "$CACHE" --socket "$SOCK" --control "$CTL" >"$T/noorigin.out" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "serves one origin (format version 2): give it" "$T/noorigin.out" ||
	fail "serve of a v2 cache without --origin: exit $rc, $(cat "$T/noorigin.out")"

start_server --set writeback_paused=1
qio "$T/w1" "write -P 0x5a 0 8M" "write -P 0x6b 16M 4M" "flush" "write -P 0x7c 32M 1M"
[ "$(status_field dirty_blocks)" -gt 0 ] || fail "no dirty blocks before the crash"
kill9_server
[ "$(version)" = 2 ] || fail "serve rewrote the superblock as version $(version)"
start_server
[ "$(status_field recovered_segments)" -gt 0 ] || fail "nothing recovered after kill -9"
qio "$T/r1" "read -P 0x5a 0 8M" "read -P 0x6b 16M 4M"
log "v2 cache: flushed writes intact after kill -9 and recovery"
"$BLKCACHE" flush --control "$CTL" >"$T/flush.out" 2>&1 || { cat "$T/flush.out"; fail "flush failed"; }
[ "$(status_field dirty_blocks)" = 0 ] || fail "dirty blocks after flush"
stop_server
[ "$(version)" = 2 ] || fail "the superblock is version $(version) after serving, want 2"
"$BLKCACHE" check --cache "$CACHE" --origin "$ORIGIN" --json >"$T/check.json" || fail "check of the v2 cache found problems"
j=$(cat "$T/check.json")
[ "$(jfield "$j" format_version)" = 2 ] && [ "$(jfield "$j" clean_shutdown)" = true ] ||
	fail "check: format_version $(jfield "$j" format_version), clean $(jfield "$j" clean_shutdown)"
# The origin alone holds what was flushed.
cmp -n $((8 * MIB)) "$ORIGIN" <(head -c $((8 * MIB)) /dev/zero | tr '\0' '\132') ||
	fail "the origin does not hold the first 8 MiB after flush"
start_server
qio "$T/r2" "read -P 0x5a 0 8M" "read -P 0x6b 16M 4M"
stop_server
echo "checked: a format v2 cache (previous code path) served, recovered after kill -9, flushed and shut down as version 2; serve without --origin refused with a reason; check reads it"
