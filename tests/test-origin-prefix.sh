#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Origin point-in-time property: kill -9 the server while writeback runs and
# check, on the origin file alone, that every block holds a value from one
# prefix of the write history.
#
# The history is a sequence of FLUSH epochs (tests/origin-history.py): each
# epoch writes a random set of distinct 4 KiB blocks concurrently, then
# FLUSHes.  Writes inside an epoch are unordered (a disk may persist any
# subset), so "a prefix" means: for some epoch E, every block holds its value
# after epochs 1..E-1 or a value written to it in epoch E -- exactly the
# states a real disk can be in after a power cut.  Blocks are written
# several times across epochs, so writeback that merged across a FLUSH, or
# re-applied an older epoch after a restart, would be caught (with
# BLKCACHE_PREFIX_SET="--set writeback_ordered=0 --set writeback_batch=16"
# the first kill already finds a violation).
#
# Writeback is slowed with writeback_rate so that each kill lands while it
# runs (most land inside a batch: the check reports how much of the cut
# epoch reached the origin); after every kill the origin is checked, the server restarts
# (recovery re-applies the interrupted batch) and writeback goes on.  At the
# end `blkcache flush` must leave the origin equal to the whole history, and
# the export must read it back.
. "$(dirname "$0")/lib.sh"

HIST="$(dirname "$0")/origin-history.py"
SEED=${BLKCACHE_PREFIX_SEED:-$((RANDOM * 32768 + RANDOM))}
EPOCHS=240
PER=24
NBLOCKS=2048
KILLS=${BLKCACHE_PREFIX_KILLS:-6}
hist() { timeout -k 10 "$CLIENT_TIMEOUT" "$PY" "$HIST" "$@"; }
log "seed $SEED ($EPOCHS epochs x $PER blocks over $NBLOCKS blocks; $KILLS kills)"

make_images 64M 128M --segment-size 256K
SLOW=(--set writeback_idle_ms=0 --set dirty_low=0 --set dirty_high=1
      --set writeback_rate=${BLKCACHE_PREFIX_RATE:-1M} ${BLKCACHE_PREFIX_SET:-})

start_server "${SLOW[@]}"
hist write "$URI" "$SEED" $EPOCHS $PER $NBLOCKS
[ "$(status_field writeback_batches)" -gt 0 ] ||
	fail "writeback did not run during the writes"

prev_final=-1
mid=0
cut=0
for ((k = 1; k <= KILLS; k++)); do
	if [ -z "$SERVER_PID" ]; then
		start_server "${SLOW[@]}"
	fi
	sleep "$(random_delay 300 1200)"
	wb=$(status_field writeback_blocks)
	dirty=$(status_field dirty_blocks)
	kill9_server
	out=$(hist check "$ORIGIN" "$SEED" $EPOCHS $PER $NBLOCKS) || {
		echo "$out"
		fail "kill $k: the origin alone is not a prefix of the write history (seed $SEED)"
	}
	log "kill $k (writeback had written $wb blocks, $dirty dirty): $out"
	final=$(sed -n 's/.*(\([0-9]*\) blocks at their final value.*/\1/p' <<<"$out")
	range=$(sed -n 's/.*power cut in epochs \([0-9]*\)\.\.\([0-9]*\).*/\1 \2/p' <<<"$out")
	read -r lo hi <<<"$range"
	[ "$dirty" -gt 0 ] || fail "kill $k: nothing was dirty any more; the kill was not during writeback"
	[ "$final" -ge "$prev_final" ] ||
		fail "kill $k: fewer blocks at their final value than after the previous kill ($final < $prev_final): writeback went backwards"
	if [ "$lo" -gt 1 ] && [ "$hi" -lt $EPOCHS ]; then
		mid=$((mid + 1))
	fi
	# "epoch E: N of PER writes present" with 0 < N < PER: the kill cut a batch.
	present=$(sed -n 's/.*epoch [0-9]*: \([0-9]*\) of [0-9]* writes present.*/\1/p' <<<"$out")
	if [ -n "$present" ] && [ "$present" -gt 0 ] && [ "$present" -lt $PER ]; then
		cut=$((cut + 1))
	fi
	prev_final=$final
done
[ "$mid" -gt 0 ] || fail "no kill found the origin part-way through the history"
[ "$cut" -gt 0 ] || fail "no kill landed inside a writeback batch (rerun; seed $SEED)"

start_server
timeout -k 5 300 "$BLKCACHE" flush --control "$CTL" >/dev/null || fail "blkcache flush failed"
[ "$(status_field dirty_blocks)" -eq 0 ] || fail "dirty blocks left after flush"
out=$(hist check "$URI" "$SEED" $EPOCHS $PER $NBLOCKS --final --nbd) || {
	echo "$out"
	fail "the export does not read back the whole history"
}
log "export after restart: $out"
stop_server
out=$(hist check "$ORIGIN" "$SEED" $EPOCHS $PER $NBLOCKS --final) || {
	echo "$out"
	fail "the origin is not complete after flush"
}
log "origin after flush: $out"
echo "summary: $KILLS kills during writeback ($cut inside a batch), origin a prefix of the history every time, 0 violations; complete after flush"
