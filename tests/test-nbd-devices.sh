#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nbd:// devices (libnbd's asynchronous API on the engine's loop):
#  A. origin on an NBD server (nbdkit memory + stats filter): fio randwrite
#     with verify over 3x the cache, flush, then the origin alone verifies;
#     nbdkit's own counters show the writeback merged blocks into fewer,
#     larger origin writes (the merge ratio counted on the origin side).
#  B. cache device on an NBD server (nbdkit memory): writes, kill -9,
#     recovery over NBD, every acknowledged-and-flushed pattern intact;
#     clean restart;
#  C. a slow origin (nbdkit delay filter): writes, flush, the origin alone
#     holds them; a read-only NBD cache device is refused clearly.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))

# ---- A: NBD origin, counted by nbdkit's stats filter ----
OSOCK=$T/origin-nbd.sock
nbdkit_start "$OSOCK" "$T/nbdkit-origin.log" --filter=stats memory $((256 * MIB + 4096)) \
	statsfile="$T/stats.txt" statsappend=false
OPID=$NBDKIT_PID
ORIGIN="nbd+unix:///?socket=$OSOCK"
truncate -s 32M "$CACHE"
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format.out" 2>&1 ||
	{ cat "$T/format.out"; fail "format with an nbd+unix origin failed"; }
grep -q "exported size $((256 * MIB + 4096)) bytes (the whole origin; nothing written to it)" "$T/format.out" ||
	fail "unexpected exported size: $(cat "$T/format.out")"
start_server
SEED=$((2000 + RANDOM))
JOB=(--ioengine=nbd --name=nbdA --rw=randwrite --bsrange=4k-64k --iodepth=16 --offset=0
     --size=96M --randseed=$SEED --verify=crc32c --verify_fatal=0 --group_reporting=1)
fio_checked A 240 "${JOB[@]}" --uri="$URI" --do_verify=1
timeout -k 5 120 "$BLKCACHE" flush --control "$CTL" >/dev/null || fail "blkcache flush failed"
snap A
[ "$(sget A dirty_blocks)" = 0 ] || fail "dirty blocks left after flush"
stop_server
# The origin alone (through nbdkit, not blkcache) verifies.
fio_checked A2 240 "${JOB[@]}" --uri="$ORIGIN" --verify_only=1
nbdkit_stop "$OPID"
[ -s "$T/stats.txt" ] || fail "nbdkit stats filter wrote no statistics"
owrites=$(awk '$1 == "write:" {print $2; exit}' "$T/stats.txt")
ozero=$(awk '$1 == "zero:" {print $2; exit}' "$T/stats.txt")
wbb=$(sget A writeback_blocks)
wbio=$(sget A writeback_ios)
[ -n "$owrites" ] && [ "$owrites" -gt 0 ] || fail "nbdkit counted no origin writes: $(cat "$T/stats.txt")"
# Origin writes = writeback writes (format wrote nothing to it).
[ "$owrites" -le "$wbio" ] ||
	fail "origin saw $owrites writes, blkcache issued $wbio writeback writes"
[ "$owrites" -lt "$wbb" ] ||
	fail "writeback did not merge: $owrites origin writes for $wbb blocks"
ratio=$("$PY" -c "print('%.2f' % ($wbb / $owrites))")
log "A: $wbb blocks written back in $owrites origin writes (nbdkit stats): merge ratio $ratio"

# ---- B: NBD cache device, kill -9 and recovery over NBD ----
CSOCK=$T/cache-nbd.sock
nbdkit_start "$CSOCK" "$T/nbdkit-cache.log" memory 48M
CPID=$NBDKIT_PID
CACHE="nbd+unix:///?socket=$CSOCK"
ORIGIN=$T/origin.img
rm -f "$ORIGIN"
truncate -s 256M "$ORIGIN"
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format2.out" 2>&1 ||
	{ cat "$T/format2.out"; fail "format with an nbd+unix cache failed"; }
start_server --set writeback_paused=1   # the dirty set must be recovered whole
cmds=()
for i in $(seq 0 23); do
	cmds+=("write -q -P $((0x30 + i)) $((i * 3 * MIB + i * 4096)) $((MIB + 512 * i))")
done
cmds+=("flush")
qio "$T/b1.out" "${cmds[@]}"
dirty=$(status_field dirty_blocks)
[ "$dirty" -gt 0 ] || fail "nothing dirty in the NBD cache"
kill9_server
start_server --set writeback_paused=1
[ "$(status_field dirty_blocks)" = "$dirty" ] ||
	fail "recovery over NBD found $(status_field dirty_blocks) dirty blocks, want $dirty"
reads=()
for i in $(seq 0 23); do
	reads+=("read -q -P $((0x30 + i)) $((i * 3 * MIB + i * 4096)) $((MIB + 512 * i))")
done
qio "$T/b2.out" "${reads[@]}"
stop_server
start_server
qio "$T/b3.out" "${reads[@]}"
stop_server
log "B: 24 patterns intact after kill -9 and after a clean restart, recovered over NBD ($dirty dirty blocks)"
nbdkit_stop "$CPID"

# ---- C: slow NBD origin (nbdkit delay filter, 2 ms per request) ----
DSOCK=$T/slow-nbd.sock
nbdkit_start "$DSOCK" "$T/nbdkit-slow.log" --filter=delay memory $((64 * MIB + 4096)) \
	delay-read=2ms delay-write=2ms
DPID=$NBDKIT_PID
ORIGIN="nbd+unix:///?socket=$DSOCK"
CACHE=$T/cache-slow.img
truncate -s 32M "$CACHE"
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format3.out" 2>&1 ||
	{ cat "$T/format3.out"; fail "format with a delayed nbd origin failed"; }
start_server
cmds=()
for i in $(seq 0 63); do
	cmds+=("write -q -P $((0x80 + i % 64)) $(( (i * 37 % 64) * MIB + (i % 7) * 4096 )) 64k")
done
qio "$T/c1.out" "${cmds[@]}" "flush"
timeout -k 5 120 "$BLKCACHE" flush --control "$CTL" >/dev/null || fail "flush to the slow origin failed"
stop_server
reads=()
for i in $(seq 0 63); do
	reads+=("read -q -P $((0x80 + i % 64)) $(( (i * 37 % 64) * MIB + (i % 7) * 4096 )) 64k")
done
URI=$ORIGIN qio "$T/c2.out" "${reads[@]}"
nbdkit_stop "$DPID"
log "C: 64 writes through a 2 ms-per-request NBD origin, flushed; the origin alone holds them"

# A read-only NBD cache device is refused with a clear message.
nbdkit_start "$CSOCK" "$T/nbdkit-ro.log" --readonly memory 48M
CACHE="nbd+unix:///?socket=$CSOCK"
ORIGIN=$T/origin.img
rc=0
out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --force 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "format on a read-only NBD export succeeded"
grep -qi "read-only" <<<"$out" || fail "no clear error for a read-only NBD cache: $out"
log "read-only NBD cache refused: $out"
echo "checked: NBD origin (fio verify 96 MiB, origin alone verifies, merge ratio $ratio = $wbb blocks / $owrites origin writes counted by nbdkit), NBD cache (24 patterns after kill -9 and clean restart), delayed NBD origin (64 writes drained and verified on it), read-only export refused"
