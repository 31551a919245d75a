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
# Writeback is slowed with writeback_rate (so a batch takes a while and a kill
# usually lands inside one: the check reports how much of the cut epoch
# reached the origin).  Nothing here depends on how fast the machine is:
#  - writeback runs during the writes: the writer stops after epoch 20 until
#    a writeback batch has completed, then writes 20 more epochs while
#    writeback goes on; the other 200 epochs are written with writeback
#    paused, so that plenty of dirty data is left for the kills however long
#    the writes took;
#  - every kill comes after writeback has completed 1-3 batches since the
#    (re)start, plus a random 0-300 ms (which only picks the moment); after
#    every kill the origin is checked and the server restarts (recovery
#    re-applies the interrupted batch, writeback goes on);
#  - at least BLKCACHE_PREFIX_KILLS (6) kills, and more, up to 4 times as
#    many, until one kill has found the origin part-way through the history
#    and one has cut a batch (an epoch partly on the origin).
# At the end `blkcache flush` must leave the origin equal to the whole
# history, and the export must read it back.
. "$(dirname "$0")/lib.sh"

HIST="$(dirname "$0")/origin-history.py"
SEED=${BLKCACHE_PREFIX_SEED:-$((RANDOM * 32768 + RANDOM))}
EPOCHS=240
PER=24
NBLOCKS=2048
KILLS=${BLKCACHE_PREFIX_KILLS:-6}
MAXKILLS=$((KILLS * 4))
hist() { timeout -k 10 "$CLIENT_TIMEOUT" "$PY" "$HIST" "$@"; }
log "seed $SEED ($EPOCHS epochs x $PER blocks over $NBLOCKS blocks; $KILLS to $MAXKILLS kills)"

make_images 64M 128M --segment-size 256K
SLOW=(--set writeback_idle_ms=0 --set dirty_low=0 --set dirty_high=1
      --set writeback_rate=${BLKCACHE_PREFIX_RATE:-1M} ${BLKCACHE_PREFIX_SET:-})

# The writer: origin-history.py's write command, stopping after epochs 20
# and 40 ("epoch E", then it waits for "go").

start_server "${SLOW[@]}"
coproc WR { exec timeout -k 10 "$CLIENT_TIMEOUT" "$PY" "$HIST" write "$URI" "$SEED" \
	$EPOCHS $PER $NBLOCKS --stops 20,40; }
exec {wr_out}<&"${WR[0]}" {wr_in}>&"${WR[1]}"
wr_pid=$WR_PID
track_bg "$wr_pid"
# writer_says LINE: the writer's next line must be LINE.
writer_says() {
	local line=""
	read -r line <&"$wr_out" || true
	[ "$line" = "$1" ] || fail "history writer: expected '$1', got '$line'"
}
writer_says "epoch 20"
wait_for 120 "writeback did not run during the writes" status_gt writeback_batches 0
echo go >&"$wr_in"
writer_says "epoch 40"
ctl_ok set writeback_paused 1
log "writeback ran during epochs 1-40 ($(status_field writeback_batches) batches); epochs 41-$EPOCHS with writeback paused"
echo go >&"$wr_in"
writer_says "wrote $EPOCHS epochs x $PER blocks, FLUSH after each"
wait "$wr_pid" || fail "the history writer failed"
exec {wr_out}<&- {wr_in}>&-
dirty=$(status_field dirty_blocks)
[ "$dirty" -gt 0 ] || fail "nothing dirty after writing with writeback paused"
# A clean stop: the next start has an empty rate bucket (no unthrottled burst).
stop_server

prev_final=-1
mid=0
cut=0
k=0
while :; do
	k=$((k + 1))
	[ -n "$SERVER_PID" ] || start_server "${SLOW[@]}"
	want=$((1 + RANDOM % 3))
	wait_for 120 "kill $k: writeback completed fewer than $want batches since the start" \
		status_ge writeback_batches "$want"
	sleep "$(random_delay 0 300)"   # only picks the moment of the kill
	wb=$(status_field writeback_blocks)
	dirty=$(status_field dirty_blocks)
	kill9_server
	out=$(hist check "$ORIGIN" "$SEED" $EPOCHS $PER $NBLOCKS) || {
		echo "$out"
		fail "kill $k: the origin alone is not a prefix of the write history (seed $SEED)"
	}
	log "kill $k (writeback had written $wb blocks since the start, $dirty dirty): $out"
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
	{ [ $k -ge "$KILLS" ] && [ $mid -gt 0 ] && [ $cut -gt 0 ]; } && break
	[ $k -lt $MAXKILLS ] || break
done
[ "$mid" -gt 0 ] || fail "none of $k kills found the origin part-way through the history"
[ "$cut" -gt 0 ] || fail "none of $k kills landed inside a writeback batch (seed $SEED)"

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
echo "summary: $k kills during writeback ($cut inside a batch, $mid part-way through the history), origin a prefix of the history every time, 0 violations; complete after flush"
