#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Cache device faults, injected by nbdkit's error filter under an nbd://
# cache device: reads from the cache device fail with EIO while $T/rfail
# exists.
#  - a clean cached block the device cannot return is read from the origin
#    (right data, no error); a dirty one fails that request with EIO;
#  - repeated errors switch the engine to degraded mode, loudly (status,
#    metrics, log): new writes go to the origin and are not cached, read
#    misses are not promoted, and dirty data is drained;
#  - once the device answers again, the drain completes and the origin alone
#    holds everything.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
CSOCK=$T/cache-nbd.sock
nbdkit_start "$CSOCK" "$T/nbdkit.log" --filter=error memory 48M \
	error-pread=EIO error-pread-rate=100% error-pread-file="$T/rfail"
CACHE="nbd+unix:///?socket=$CSOCK"
truncate -s 256M "$ORIGIN"
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format.out" 2>&1 ||
	{ cat "$T/format.out"; fail "format failed"; }
PORT=$(free_tcp_port)
start_server --set writeback_paused=1 --metrics "127.0.0.1:$PORT"
# C: written, then written back (clean in the cache); W: dirty in the cache.
qio "$T/c.out" "write -q -P 0x43 $((16 * MIB)) 4M" "flush"
timeout -k 5 60 "$BLKCACHE" flush --control "$CTL" >/dev/null || fail "flush failed"
qio "$T/w.out" "write -q -P 0x57 0 4M" "flush"
snap before
[ "$(sget before dirty_blocks)" -eq 1024 ] || fail "W is not dirty ($(sget before dirty_blocks))"
[ "$(sget before cached_blocks)" -ge 2048 ] || fail "C and W are not cached"
[ "$(sget before degraded)" = false ] || fail "degraded before any error"

touch "$T/rfail"
qio "$T/c2.out" "read -q -P 0x43 $((16 * MIB)) 4M"   # clean: from the origin instead
py - "$URI" <<'PYEOF' || fail "dirty data behind a failing cache device did not fail cleanly"
import sys, errno, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
for off in (0, 1 << 20, 3 << 20):
    try:
        h.pread(4096, off)
        sys.exit("dirty block at %d read without error from a failing device" % off)
    except nbd.Error as e:
        assert e.errnum == errno.EIO, repr(e)
h.shutdown()
PYEOF
snap deg
[ "$(sget deg degraded)" = true ] || fail "not degraded after $(sget deg cache_errors) cache errors"
[ "$(sget deg cache_errors)" -ge 3 ] || fail "cache_errors $(sget deg cache_errors)"
grep -q "DEGRADED mode" "$SERVER_LOG" || fail "the log does not say DEGRADED"
"$BLKCACHE" status --control "$CTL" | grep -q "DEGRADED" || fail "human status does not say DEGRADED"
curl -s "http://127.0.0.1:$PORT/metrics" >"$T/metrics.txt" || fail "metrics endpoint failed"
grep -q "^blkcache_degraded 1$" "$T/metrics.txt" || fail "metrics: blkcache_degraded is not 1"
log "degraded after $(sget deg cache_errors) cache errors; clean data served from the origin, dirty reads EIO"

# Degraded: new writes reach the origin at once and are not cached.
qio "$T/n.out" "write -q -P 0x4e $((64 * MIB)) 4M"
cmp -s <(head -c $((4 * MIB)) /dev/zero | tr '\0' '\116') \
	<(dd if="$ORIGIN" bs=1M skip=64 count=4 status=none) ||
	fail "a write in degraded mode did not go to the origin"
snap deg2
[ "$(sget deg2 cached_blocks)" -le "$(sget deg cached_blocks)" ] ||
	fail "degraded mode cached new writes ($(sget deg cached_blocks) -> $(sget deg2 cached_blocks))"
qio "$T/n2.out" "read -q -P 0x4e $((64 * MIB)) 4M" "read -q -P 0 $((96 * MIB)) 1M" \
	"read -q -P 0 $((96 * MIB)) 1M" "read -q -P 0 $((96 * MIB)) 1M"
[ "$(status_field promoted_blocks)" = "$(sget deg promoted_blocks)" ] || fail "degraded mode promoted read misses"
log "degraded: writes go to the origin, nothing new cached or promoted"

# The device answers again: the dirty data drains (degraded mode forces writeback).
rm -f "$T/rfail"
wait_for 180 "dirty data not drained in degraded mode (writeback paused must not hold it)" \
	status_is dirty_blocks 0
stop_server
ORIGIN_QIO=(-f raw -r "$ORIGIN")
qemu-io "${ORIGIN_QIO[@]}" -c "read -q -P 0x57 0 4M" -c "read -q -P 0x43 $((16 * MIB)) 4M" \
	-c "read -q -P 0x4e $((64 * MIB)) 4M" >"$T/final.out" 2>&1 || { cat "$T/final.out"; fail "origin check failed"; }
grep -qiE "fail|error" "$T/final.out" && { cat "$T/final.out"; fail "the origin alone does not hold W, C and N"; }
echo "checked: failing cache reads: clean blocks from the origin, dirty reads EIO; degraded after $(sget deg cache_errors) errors (status, log, metrics); degraded writes reach the origin uncached, no promotion; drained after the device healed; origin alone holds all data"
