#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Fault isolation between origins of one cache: origin b is an nbd:// origin
# behind nbdkit's error filter; while it refuses every write,
#  - b's writers fill b's share of the cache, then wait write_timeout_ms and
#    get EIO; everything b acknowledged stays (status: writeback failing);
#  - origins a and c keep writing, reading and writing back: fio crc32c
#    verify randrw on both (each more than its share) finishes with 0 errors,
#    their writeback advances and never fails;
#  - b heals: 'flush b' drains it and b's origin alone holds every write b
#    acknowledged.
# (Throughput ratios before/after the fault are measured by bench/origins.)
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
SERVE_NO_ORIGIN=1
OSOCK=$T/origin-b.sock
nbdkit_start "$OSOCK" "$T/nbdkit.log" --filter=error memory $((128 * MIB)) \
	error-pwrite=EIO error-pwrite-rate=100% error-pwrite-file="$T/down"
OURI="nbd+unix:///?socket=$OSOCK"
uri_of() { echo "nbd+unix:///$1?socket=$SOCK"; }
rm -f "$CACHE"
truncate -s 64M "$CACHE"
truncate -s 128M "$T/origin-a.img" "$T/origin-c.img"
"$BLKCACHE" format --cache "$CACHE" >/dev/null || fail "format failed"
for n in a b c; do
	o=$T/origin-$n.img
	[ $n != b ] || o=$OURI
	"$BLKCACHE" origin add --cache "$CACHE" --origin "$o" --name $n --size 30% >"$T/add.$n" 2>&1 ||
		{ cat "$T/add.$n"; fail "origin add $n failed"; }
done
start_server --set write_timeout_ms=3000
ostat() { "$BLKCACHE" status --control "$CTL" --name "$1" --json; }
ofield() { jfield "$(ostat "$1")" "$2"; }
share_b=$(( $(ofield b segments_total) * MIB ))

touch "$T/down"
# b's writer: 1 MiB writes (chunk i filled with byte i+1) until one fails;
# it must fail with EIO, after write_timeout_ms, once b's share is full.
py - "$(uri_of b)" >"$T/bw.out" 2>&1 <<'PYEOF' &
import errno, sys, time, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
M = 1 << 20
i = 0
while i < 120:
    t0 = time.monotonic()
    try:
        h.pwrite(bytes([(i % 250) + 1]) * M, i * M)
    except nbd.Error as e:
        assert e.errnum == errno.EIO, "write %d: %r, want EIO" % (i, e)
        print("acked %d waited %.3f" % (i, time.monotonic() - t0))
        sys.exit(0)
    i += 1
print("never failed after %d MiB" % i)
sys.exit(1)
PYEOF
BW=$!
track_bg "$BW"

# a and c, meanwhile: verified randrw, each writing more than its share.
COMMON=(--ioengine=nbd --bsrange=4k-64k --iodepth=16 --verify=crc32c --verify_fatal=0
	--group_reporting=1 --rw=randrw --rwmixread=30 --size=96M --offset=0)
wb_a0=$(ofield a writeback_blocks)
wb_c0=$(ofield c writeback_blocks)
pids=()
for n in a c; do
	( fio_checked "f$n" 600 "${COMMON[@]}" --name="job-$n" --randseed=$((RANDOM + 1)) \
		--uri="$(uri_of "$n")" --do_verify=1 ) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "fio verify on a healthy origin failed while b is down"; done
rc=0
wait_bounded "$BW" "$CLIENT_TIMEOUT" || rc=$?
cat "$T/bw.out"
[ $rc -eq 0 ] || fail "b's writer did not end with EIO (exit $rc)"
acked=$(awk '/^acked/ {print $2}' "$T/bw.out")
waited=$(awk '/^acked/ {print $4}' "$T/bw.out")
fge "$waited" 2.5 || fail "b's failed write came back after $waited s, before write_timeout_ms (3 s)"
[ $((acked * MIB)) -le "$share_b" ] || fail "b acknowledged $acked MiB, more than its share ($((share_b / MIB)) MiB)"
[ "$acked" -gt 0 ] || fail "b acknowledged nothing before its share was full"
jb=$(ostat b)
[ "$(jfield "$jb" writeback_failing)" -ge 1 ] || fail "b's status does not say its writeback fails"
[ "$(jfield "$jb" write_timeouts)" -ge 1 ] || fail "b's write_timeouts not counted"
for n in a c; do
	j=$(ostat $n)
	[ "$(jfield "$j" writeback_failing)" = 0 ] || fail "origin $n's writeback fails because of b"
	[ "$(jfield "$j" write_timeouts)" = 0 ] || fail "origin $n had write timeouts because of b"
done
[ "$(ofield a writeback_blocks)" -gt "$wb_a0" ] && [ "$(ofield c writeback_blocks)" -gt "$wb_c0" ] ||
	fail "a's or c's writeback did not advance while b was down"
log "b down: $acked MiB acknowledged then EIO after ${waited}s; a and c verified and wrote back meanwhile"

# b heals: it drains, and its origin alone holds what it acknowledged.
rm -f "$T/down"
"$BLKCACHE" flush b --control "$CTL" >"$T/flush.out" 2>&1 || { cat "$T/flush.out"; fail "flush b failed"; }
[ "$(ofield b dirty_blocks)" = 0 ] || fail "b has dirty blocks after flush"
py - "$OURI" "$acked" <<'PYEOF' || fail "b's origin lacks acknowledged writes"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
M = 1 << 20
for i in range(int(sys.argv[2])):
    assert h.pread(M, i * M) == bytes([(i % 250) + 1]) * M, "chunk %d" % i
print("b's origin holds all %s acknowledged MiB" % sys.argv[2])
PYEOF
stop_server
echo "checked: b down (100% write EIO): b's writers got EIO after write_timeout_ms once its share was full; a and c verified randrw and wrote back meanwhile; b healed, flushed, its origin alone holds all $acked acknowledged MiB"
