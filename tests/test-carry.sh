#!/bin/bash
# Carry-forward: a random-overwrite working set that fits the cache is
# absorbed without writing it to the origin.  A 64 MiB cache, fio 4 KiB
# random writes over a 24 MiB region (38 % of the cache), 8 times the
# cache written, no FLUSH, writeback only by the watermarks (no idle timer):
#  - reclaim carried dirty segments forward (carried_segments/blocks > 0) and
#    the ring wrapped several times, while the origin got a small part of
#    what the client wrote;
#  - every block reads back right (fio crc32c verify), after a kill -9 and
#    recovery too;
#  - after a FLUSH the segments before it are of an older epoch: they are
#    written back, not carried (writeback_blocks grows), and carrying
#    resumes only once written_back_seq has passed them;
#  - a drain (blkcache flush) puts everything on the origin: the origin
#    image alone verifies, the server stopped.
# Semantic checks only: what was carried, reclaimed and verified.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
make_images 256M 64M
start_server --set writeback_idle_ms=0

SEED=$((2000 + RANDOM))
log "fio seed $SEED"
JOB=(--name=carry --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=32 --offset=0
	--size=24M --io_size=512M --randseed=$SEED --norandommap --verify=crc32c --verify_fatal=0)

snap A0
fio_checked A 600 "${JOB[@]}" --do_verify=1
snap A1
client=$(( $(fio_get A 'j["write"]["io_bytes"]') / 4096 ))
carried=$(sdelta A0 A1 carried_segments)
cblocks=$(sdelta A0 A1 carried_blocks)
wb=$(sdelta A0 A1 writeback_blocks)
total=$(sget A1 segments_total)
head=$(sget A1 head_seq)
log "A: $client blocks written, $carried segments carried ($cblocks blocks), $wb blocks written back," \
	"head_seq $head of $total segments"
[ "$client" -eq $((512 * MIB / 4096)) ] || fail "fio wrote $client blocks, want $((512 * MIB / 4096))"
[ "$head" -gt $((4 * total)) ] || fail "head_seq $head: the ring did not wrap 4 times ($total segments)"
[ "$carried" -gt 0 ] && [ "$cblocks" -gt 0 ] || fail "nothing was carried forward"
# Without carry-forward every reclaimed segment's live blocks are written
# back; the working set is 6144 blocks, so the origin must see far fewer
# than the client wrote.
[ "$wb" -lt $((client / 4)) ] || fail "$wb blocks written back for $client written: not absorbed"
[ "$(sget A1 io_errors)" = 0 ] || fail "io_errors = $(sget A1 io_errors)"

# A crash: the carried blocks come back from the log.
kill9_server
start_server --set writeback_idle_ms=0
fio_checked A2 300 "${JOB[@]}" --do_verify=1 --verify_only=1
[ "$(fio_get A2 'j["read"]["io_bytes"]')" -ge $((24 * MIB)) ] || fail "verify-only after kill -9 read too little"
log "after kill -9: recovered $(status_field recovered_segments) segments, region A verifies"

# A FLUSH: the segments before it may only be written back (their
# superseded versions are part of what the FLUSH made durable).  Then twice
# the cache more: the ring wraps, so those segments must go.
qio "$T/flush.out" "flush"
snap F0
old=$(( $(sget F0 head_seq) - 1 )) # the newest segment of the epoch before the FLUSH
fio_checked F 300 "${JOB[@]}" --io_size=128M --do_verify=0
snap F1
fc=$(sdelta F0 F1 carried_segments)
fw=$(sdelta F0 F1 writeback_blocks)
log "after a FLUSH (segments <= $old before it), 128 MiB more: carried $fc segments, written back" \
	"$fw blocks, written_back_seq $(sget F1 written_back_seq)"
[ "$fw" -gt 0 ] || fail "nothing written back after the FLUSH: segments before it were carried?"
[ "$(sget F1 written_back_seq)" -ge "$old" ] || fail "written_back_seq $(sget F1 written_back_seq) < $old"
[ "$fc" -gt 0 ] || fail "carrying did not resume after the epoch before the FLUSH was written back"

# Drain: the origin alone holds everything, byte for byte what the cache
# served.
ctl_ok flush
[ "$(status_field dirty_blocks)" = 0 ] || fail "dirty_blocks $(status_field dirty_blocks) after flush"
nbdcopy "$URI" "$T/served.img" || fail "nbdcopy of the export failed"
stop_server
cmp "$T/served.img" "$ORIGIN" || fail "the origin differs from what the cache served after the drain"
fio_checked O 300 --name=carry --ioengine=psync --filename="$ORIGIN" --rw=randwrite --bs=4k --offset=0 \
	--size=24M --io_size=128M --randseed=$SEED --norandommap --verify=crc32c --verify_fatal=0 \
	--do_verify=1 --verify_only=1
log "origin image alone: identical to what was served, and verifies"

echo "checked: $carried segments carried ($cblocks blocks) of $head written, $wb of $client blocks" \
	"written back, verified through the cache, after kill -9, and on the origin after a drain"
