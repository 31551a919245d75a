#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Origin faults, injected by nbdkit's error filter under an nbd:// origin:
#  - a few % of origin requests fail with EIO: reads that need the origin
#    fail with EIO for the client (the others return the right data); reads
#    served by the cache all succeed;
#  - the origin refuses every write: writeback keeps the dirty data, retries
#    with backoff and says so in status; once the cache is full, new writes
#    wait write_timeout_ms and then fail with EIO, while acknowledged ones
#    stay readable;
#  - the origin heals (but stays 5% flaky): `blkcache flush` drains
#    everything, retrying the writes that fail, and the origin alone holds
#    every acknowledged write.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
OSOCK=$T/origin-nbd.sock
# All requests: 5% EIO while $T/flaky exists.  Writes: 100% EIO while $T/down exists.
nbdkit_start "$OSOCK" "$T/nbdkit.log" --filter=error memory $((256 * MIB + 4096)) \
	error=EIO error-rate=5% error-file="$T/flaky" \
	error-pwrite=EIO error-pwrite-rate=100% error-pwrite-file="$T/down"
OURI="nbd+unix:///?socket=$OSOCK"
ORIGIN=$OURI
truncate -s 32M "$CACHE"
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format.out" 2>&1 ||
	{ cat "$T/format.out"; fail "format failed"; }
# Region R lives on the origin only.
qemu-io -f raw -c "write -q -P 0x42 $((32 * MIB)) 8M" "$OURI" >/dev/null || fail "populating the origin failed"
start_server --set write_timeout_ms=3000 --set writeback_paused=1
qio "$T/w.out" "write -q -P 0x57 0 8M"   # region W: dirty in the cache

# ---- flaky origin: 5% of requests fail ----
touch "$T/flaky"
py - "$URI" $((32 * MIB)) $((8 * MIB)) 0x42 0 $((8 * MIB)) 0x57 <<'PYEOF' || fail "reads with a flaky origin misbehaved"
import sys, errno, nbd
uri, roff, rlen, rpat, woff, wlen, wpat = sys.argv[1], *map(lambda x: int(x, 0), sys.argv[2:])
h = nbd.NBD(); h.connect_uri(uri)
B = 4096
ok = bad = 0
for off in range(roff, roff + rlen, B):      # misses: need the origin
    try:
        d = h.pread(B, off)
        assert d == bytes([rpat]) * B, "wrong data at %d" % off
        ok += 1
    except nbd.Error as e:
        assert e.errnum == errno.EIO, "error %r at %d, want EIO" % (e, off)
        bad += 1
assert bad > 0, "no read failed with a 5% flaky origin"
assert ok > bad, "most reads should succeed (%d ok, %d EIO)" % (ok, bad)
for off in range(woff, woff + wlen, 65536):  # cache hits: never touch the origin
    assert h.pread(65536, off) == bytes([wpat]) * 65536, "cached data wrong at %d" % off
print("origin misses: %d ok, %d EIO; %d cached reads all ok" % (ok, bad, wlen // 65536))
h.shutdown()
PYEOF
rm -f "$T/flaky"
[ "$(status_field io_errors)" -gt 0 ] || fail "io_errors not counted"

# ---- origin refuses writes: writeback keeps retrying, nothing is dropped ----
touch "$T/down"
dirty0=$(status_field dirty_blocks)
ctl_ok set writeback_paused 0
# This flush must still be waiting at the checks below (it cannot finish
# while the origin refuses writes): its bound is far beyond them, so that it
# cannot end by its own timeout first, however slow the machine.
timeout -k 5 "$CLIENT_TIMEOUT" "$BLKCACHE" flush --control "$CTL" >/dev/null 2>&1 &
FLUSH_PID=$!
track_bg "$FLUSH_PID"
# Two failed attempts in a row: the first retry comes after a 250 ms backoff.
wait_for 120 "status does not report the failing writeback" status_ge writeback_failing 2
snap down
[ "$(sget down writeback_failing)" -ge 2 ] || fail "status does not report the failing writeback"
[ "$(sget down writeback_last_error)" = "Input/output error" ] ||
	fail "writeback_last_error is '$(sget down writeback_last_error)'"
[ "$(sget down dirty_blocks)" -ge "$dirty0" ] || fail "dirty blocks dropped while the origin fails"
"$BLKCACHE" status --control "$CTL" | grep -q "WRITEBACK FAILING" || fail "human status does not say WRITEBACK FAILING"
kill -0 "$FLUSH_PID" 2>/dev/null || fail "blkcache flush returned while the origin refuses writes"
log "origin down: writeback failing $(sget down writeback_failing) times in a row, retry in $(sget down writeback_retry_ms) ms, $(sget down dirty_blocks) dirty blocks kept"

# Fill the cache: writes beyond it wait write_timeout_ms (3 s), then EIO.
py - "$URI" $((64 * MIB)) 48 > "$T/fill.out" <<'PYEOF' || { cat "$T/fill.out"; fail "filling the cache misbehaved"; }
import sys, errno, time, nbd
uri, base, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MB = 1 << 20
h = nbd.NBD(); h.connect_uri(uri)
bufs, cookies = [], []
t0 = time.monotonic()
for i in range(n):
    b = nbd.Buffer.from_bytearray(bytearray([0x60 + i % 32]) * MB)
    bufs.append(b)
    cookies.append(h.aio_pwrite(b, base + i * MB))
while h.aio_in_flight() > 0:
    h.poll(-1)
acked, failed = [], []
for i, c in enumerate(cookies):
    try:
        h.aio_command_completed(c)
        acked.append(i)
    except nbd.Error as e:
        assert e.errnum == errno.EIO, "write %d: %r, want EIO" % (i, e)
        failed.append(i)
el = time.monotonic() - t0
assert acked and failed, "want some writes acked and some timed out: %d acked, %d failed" % (len(acked), len(failed))
assert el >= 2.5, "writes failed after %.1f s, before write_timeout_ms" % el
for i in acked:   # acknowledged data reads back
    assert h.pread(MB, base + i * MB) == bytes([0x60 + i % 32]) * MB, "acked write %d lost" % i
print(" ".join(map(str, acked)))
print("acked %d, EIO after %.1f s: %d" % (len(acked), el, len(failed)), file=sys.stderr)
h.shutdown()
PYEOF
ACKED=$(head -1 "$T/fill.out")
[ "$(status_field write_timeouts)" -gt 0 ] || fail "write_timeouts not counted"
log "cache full with the origin down: $(echo $ACKED | wc -w) writes acknowledged, $(status_field write_timeouts) failed after write_timeout_ms"

# ---- the origin heals (still 5% flaky): everything drains ----
errs0=$(status_field writeback_errors)
touch "$T/flaky"
rm -f "$T/down"
wait_bounded "$FLUSH_PID" 120 || true
timeout -k 5 120 "$BLKCACHE" flush --control "$CTL" >/dev/null || fail "flush after healing failed"
rm -f "$T/flaky"
snap healed
log "healed, 5% flaky: drained with $(( $(sget healed writeback_errors) - errs0 )) failed writeback IOs retried"
[ "$(sget healed dirty_blocks)" = 0 ] || fail "dirty blocks left after healing + flush"
[ "$(sget healed writeback_failing)" = 0 ] || fail "status still reports writeback failing"
stop_server
# The origin alone holds W, R and every acknowledged write.
reads=("read -q -P 0x57 0 8M" "read -q -P 0x42 $((32 * MIB)) 8M")
for i in $ACKED; do
	reads+=("read -q -P $((0x60 + i % 32)) $((64 * MIB + i * MIB)) 1M")
done
URI=$OURI qio "$T/final.out" "${reads[@]}"
echo "checked: flaky origin (misses EIO or right data, hits all ok), origin down (writeback failing reported, dirty kept, flush waits), cache full (acked writes kept, $(sget healed write_timeouts) writes EIO after write_timeout_ms), healed: drained, origin alone holds W, R and $(echo $ACKED | wc -w) acknowledged writes"
