#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# serve over a sharded origin (format --shards 2, docs/shards.md): the NBD
# export is the shard set's target (shard 0 on the server's loop, shard 1
# on a thread of its own).  fio crc32c randwrite over 3x the cache through
# NBD, verified; then 4 connections at once, verified, half of them
# served on shard 1's thread (nbd_connections_moved); status adds the shards' counters up (writes seen through
# NBD all counted); a tunable and a mode switch reach both shards (the
# tunable read back); flush drains both shards and the
# origin alone verifies (nbdkit exports the origin file); kill -9 after a
# FLUSH and a restart (both shards recover their rings) keep flushed data;
# detach writes both shards back and marks both: the origin alone holds
# everything.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
make_images 512M 96M --shards 2 --stripe 256K
start_server --set writeback_idle_ms=100000
SEED=$((1000 + RANDOM))
COMMON=(--ioengine=nbd --bsrange=4k-64k --iodepth=32 --verify=crc32c --verify_fatal=0
	--group_reporting=1)
JOB=(--name=A --rw=randwrite --offset=0 --size=288M --randseed=$SEED)
fio_checked A 300 "${COMMON[@]}" --uri="$URI" "${JOB[@]}" --do_verify=1
wa=$(fio_get A 'j["write"]["io_bytes"]')
[ "$wa" -eq $((288 * MIB)) ] || fail "fio wrote $wa bytes, want $((288 * MIB))"
j=$(status_json)
nbdw=$(jfield "$j" writes)
[ "$(jfield "$j" shards)" = 2 ] || fail "status says $(jfield "$j" shards) shards, want 2"
[ "$(jfield "$j" writeback_blocks)" -gt 0 ] || fail "no writeback after 3x the cache"
[ "$(jfield "$j" writes_absorbed_blocks)" -ge $((288 * MIB / 4096)) ] ||
	fail "status counts $(jfield "$j" writes_absorbed_blocks) absorbed blocks, want >= $((288 * MIB / 4096)): not both shards?"
[ "$(jfield "$j" io_errors)" = 0 ] || fail "io_errors $(jfield "$j" io_errors)"
log "A: $((wa / MIB)) MiB written and verified through 2 shards; status: $nbdw writes"

# B: 4 connections at once: they take the shards' threads in turn (those on
# shard 1's move there after their handshake), each verifies its region.
m0=$(status_field nbd_connections_moved)
fio_checked B 300 "${COMMON[@]}" --uri="$URI" --name=B --rw=randwrite --offset=0 --size=48M \
	--offset_increment=48M --numjobs=4 --randseed=$SEED --do_verify=1
wb=$(fio_get B 'j["write"]["io_bytes"]')
[ "$wb" -eq $((192 * MIB)) ] || fail "fio B wrote $wb bytes, want $((192 * MIB))"
m1=$(status_field nbd_connections_moved)
[ $((m1 - m0)) -ge 2 ] || fail "$((m1 - m0)) of fio B's 4 connections moved to shard 1's thread, want >= 2"
log "B: 4 connections verified, $((m1 - m0)) of them served on shard 1's thread"

ctl_ok set dirty_high 70
ctl_ok get dirty_high
printf '%s' "$CTL_OUT" | grep -q "70" || fail "dirty_high not 70 after set: $CTL_OUT"
ctl set dirty_high 1000
[ "$CTL_RC" -ne 0 ] || fail "dirty_high 1000 accepted"
ctl_ok mode writethrough
[ "$(status_field mode)" = writethrough ] || fail "mode $(status_field mode) after mode writethrough"
ctl_ok mode writeback
ctl_ok flush
[ "$(status_field dirty_blocks)" = 0 ] || fail "$(status_field dirty_blocks) dirty blocks after flush"
log "tunable, mode, flush on both shards"
stop_server

start_origin_ro
fio_checked A_origin 120 "${COMMON[@]}" --uri="$ORIGIN_URI" "${JOB[@]}" --do_verify=1 --verify_only=1
stop_origin_ro
log "the origin alone holds everything after the flush"

start_server --set writeback_paused=1
qio "$T/w1" "write -P 0x5a 0 8M" "write -P 0x6b 100M 4M" "flush" "write -P 0x7c 200M 1M"
[ "$(status_field dirty_blocks)" -gt 0 ] || fail "nothing dirty before the crash"
kill9_server
start_server
[ "$(status_field recovered_segments)" -gt 0 ] || fail "nothing recovered after kill -9"
qio "$T/r1" "read -P 0x5a 0 8M" "read -P 0x6b 100M 4M"

# Detach: both shards' dirty data to the origin, both marked; the server
# leaves, the cache serves the origin no more, the origin alone holds it.
qio "$T/w2" "write -P 0x8d 300M 2M" "write -P 0x9e 64M 1M"
[ "$(status_field dirty_blocks)" -gt 0 ] || fail "nothing dirty before the detach"
ctl_ok detach
printf '%s' "$CTL_OUT" | grep -q "is complete" || fail "detach did not say the origin is complete: $CTL_OUT"
wait_server_exit 60
[ "$SERVER_EXIT" = 0 ] || fail "the server exited $SERVER_EXIT after the detach"
grep -q "is detached; origin .* is complete" "$SERVER_LOG" || fail "the server did not report the detach"
start_origin_ro
qemu-io -f raw -r -c "read -P 0x5a 0 8M" -c "read -P 0x6b 100M 4M" -c "read -P 0x8d 300M 2M" \
	-c "read -P 0x9e 64M 1M" "$ORIGIN_URI" >"$T/r2" 2>&1 && ! grep -q "Pattern verification failed" "$T/r2" ||
	{ cat "$T/r2"; fail "the origin alone misses data after the detach"; }
stop_origin_ro
out=$("$BLKCACHE" check --cache "$CACHE" 2>&1) || true
log "detached: the origin alone holds everything; check: $(printf '%s' "$out" | tail -1 | head -c 200)"
echo "checked: a 2-shard origin served over NBD: fio verify of $((wa / MIB)) MiB (3x the cache), 4 connections over both shards' threads verified, status adds the shards up, set/mode/flush reach both, origin alone verifies after flush, flushed data intact after kill -9 and parallel recovery, detach of both shards leaves the origin complete"
