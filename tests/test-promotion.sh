#!/bin/bash
# Read promotion policy, measured with status counter deltas:
#  n-hit filter: with promote_hits 3 a block read (missed) twice is not
#    cached, the third miss promotes it, the fourth read hits;
#  sequential cutoff: with promote_hits 1 a warmed 8 MiB random working set
#    (hit ratio >= 0.9) survives a sequential read of 3x the cache (fio
#    rw=read bs=128k): hit ratio still >= 0.9, bypass_sequential_bytes grew;
#  control: with sequential_cutoff 0 the same stream on another hot set is
#    promoted and evicts most of the hot set (the hit ratio drops below
#    0.5) -- so the first experiment can fail.
# Nothing here depends on the machine's speed.  Promotion takes only the
# room the log has at hand (a read miss that finds every buffer being
# written is not promoted: promote_dropped_blocks), so how many blocks one
# pass promotes depends on how fast the cache device takes segments
# compared with the reads.  So the warm-up repeats hot passes until the hot
# set hits (bounded), and the control repeats the stream until the ring
# has turned over twice since the hot set was last read (reclaimed_segments,
# bounded): by then the stream has gone through the whole log, whatever
# share of each pass was promoted.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
CACHE_MIB=64
make_images 1G ${CACHE_MIB}M
start_server

# nbd_reads OFFSET COUNT: read COUNT 4 KiB blocks, 64 KiB apart (no stream).
nbd_reads() {
	py - "$SOCK" "$@" <<'EOF' || fail "nbd reads failed"
import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
off, n = int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    h.pread(4096, off + i * 65536)
h.shutdown()
EOF
}

# ---- n-hit: promote_hits 3 (fresh server: no miss history) ----
ctl_ok set promote_hits 3
N=16
NOFF=$((600 * MIB))
snap n0
for pass in 1 2 3 4; do
	nbd_reads $NOFF $N
	snap n$pass
	prev=$((pass - 1))
	pr=$(sdelta n$prev n$pass promoted_blocks)
	by=$(sdelta n$prev n$pass bypass_nhit_blocks)
	hit=$(sdelta n$prev n$pass read_hit_blocks)
	cb=$(sdelta n$prev n$pass cached_blocks)
	log "n-hit pass $pass: promoted $pr, bypass_nhit $by, hits $hit, cached_blocks +$cb"
	case $pass in
	1|2) [ "$pr" = 0 ] && [ "$by" = $N ] && [ "$hit" = 0 ] && [ "$cb" = 0 ] ||
		fail "promote_hits 3: read #$pass of $N blocks: promoted $pr, bypass_nhit $by, hits $hit, cached +$cb (want 0, $N, 0, 0)";;
	3) [ "$pr" = $N ] && [ "$hit" = 0 ] && [ "$cb" = $N ] ||
		fail "promote_hits 3: read #3 of $N blocks: promoted $pr, hits $hit, cached +$cb (want $N, 0, $N)";;
	4) [ "$hit" = $N ] && [ "$pr" = 0 ] ||
		fail "promote_hits 3: read #4 of $N promoted blocks: hits $hit, promoted $pr (want $N, 0)";;
	esac
done
[ "$(sdelta n0 n4 bypass_sequential_bytes)" = 0 ] || fail "scattered 4 KiB reads counted as sequential"
log "n-hit: promote_hits 3 caches a block at its third miss, not before"

# ---- read promotion of a stream ----
ctl_ok set promote_hits 1
[ "$(ctl_ok get sequential_cutoff; echo "$CTL_OUT" | head -1 | awk '{print $2}')" = $((4 * MIB)) ] ||
	fail "sequential_cutoff is not the 4 MiB default: $CTL_OUT"

# hot_pass TAG OFFSET: one random 4 KiB pass (iodepth 8) over the 8 MiB at OFFSET.
hot_pass() {
	fio_checked "$1" 120 --name=hot --ioengine=nbd --uri="$URI" --rw=randread --bs=4k --iodepth=8 \
		--offset="$2" --size=8M --randseed=$((RANDOM + 1))
}
# seq_read TAG OFFSET: a sequential read of 3x the cache at OFFSET.
seq_read() {
	fio_checked "$1" 120 --name=seq --ioengine=nbd --uri="$URI" --rw=read --bs=128k --iodepth=4 \
		--offset="$2" --size=$((3 * CACHE_MIB))M
}

# warm NAME OFFSET: hot passes until one hits >= 0.95 of its blocks (at
# most 10; each pass promotes what the log has room for).
warm() {
	local n=$1 hot=$2 i hr=0
	for i in 1 2 3 4 5 6 7 8 9 10; do
		snap "$n.w$i.0"
		hot_pass "$n.warm$i" "$hot"
		snap "$n.w$i.1"
		hr=$(hit_ratio_between "$n.w$i.0" "$n.w$i.1")
		fge "$hr" 0.95 && break
	done
	log "$n: warmed in $i hot passes (last pass hit ratio $hr)"
}

# experiment NAME HOT_OFFSET SEQ_OFFSET PASSES: warm, measure, stream (up to
# PASSES times, until the ring turned over twice), measure.
# Sets HR_BEFORE, HR_AFTER, SEQ_PASSES; snapshots NAME.s0 (before the
# stream) and NAME.s1 (after it).
experiment() {
	local n=$1 hot=$2 seq=$3 passes=$4 total reclaimed=0
	warm "$n" "$hot"
	snap "$n.m0"
	hot_pass "$n.meas1" "$hot"
	snap "$n.s0"
	HR_BEFORE=$(hit_ratio_between "$n.m0" "$n.s0")
	total=$(sget "$n.s0" segments_total)
	for SEQ_PASSES in $(seq 1 "$passes"); do
		seq_read "$n.seq$SEQ_PASSES" "$seq"
		snap "$n.s1"
		reclaimed=$(sdelta "$n.s0" "$n.s1" reclaimed_segments)
		[ "$reclaimed" -ge $((2 * total)) ] && break
	done
	hot_pass "$n.meas2" "$hot"
	snap "$n.m1"
	HR_AFTER=$(hit_ratio_between "$n.s1" "$n.m1")
	log "$n: hot set hit ratio $HR_BEFORE before, $HR_AFTER after $SEQ_PASSES sequential read(s) of $((3 * CACHE_MIB)) MiB;" \
		"bypass_sequential_bytes +$(sdelta "$n.s0" "$n.s1" bypass_sequential_bytes)," \
		"promoted +$(sdelta "$n.s0" "$n.s1" promoted_blocks) blocks" \
		"($(sdelta "$n.s0" "$n.s1" promote_dropped_blocks) more dropped for lack of log space)," \
		"reclaimed_segments +$reclaimed of $total"
}

# ---- control first: no cutoff ----
ctl_ok set sequential_cutoff 0
experiment nocut $((976 * MIB)) $((256 * MIB)) 12
fge "$HR_BEFORE" 0.9 || fail "control: the warmed hot set hit ratio is $HR_BEFORE (want >= 0.9)"
[ "$(sdelta nocut.s0 nocut.s1 bypass_sequential_bytes)" = 0 ] ||
	fail "control: bypass_sequential_bytes grew with sequential_cutoff 0"
[ "$(sdelta nocut.s0 nocut.s1 reclaimed_segments)" -ge $((2 * $(sget nocut.s0 segments_total))) ] ||
	fail "control: $SEQ_PASSES sequential reads promoted $(sdelta nocut.s0 nocut.s1 promoted_blocks) blocks" \
		"($(sdelta nocut.s0 nocut.s1 promote_dropped_blocks) dropped for lack of log space) and the ring" \
		"did not turn over twice ($(sdelta nocut.s0 nocut.s1 reclaimed_segments) of $(sget nocut.s0 segments_total) segments reclaimed)"
fge "$HR_AFTER" 0.5 && fail "control: without a cutoff the hot set kept hit ratio $HR_AFTER after the stream went through the log twice (want < 0.5): the cutoff experiment proves nothing"
HR_NOCUT=$HR_AFTER
CONTROL_PASSES=$SEQ_PASSES

# ---- sequential cutoff ----
# The real experiment, with as many passes of the stream as the control
# needed to push it through the log twice.
ctl_ok set sequential_cutoff $((4 * MIB))
experiment cut $((960 * MIB)) 0 "$CONTROL_PASSES"
[ "$SEQ_PASSES" = "$CONTROL_PASSES" ] || fail "cutoff 4M: the ring turned over twice (the stream was promoted)"
fge "$HR_BEFORE" 0.9 || fail "cutoff 4M: the warmed hot set hit ratio is $HR_BEFORE (want >= 0.9)"
fge "$HR_AFTER" 0.9 || fail "cutoff 4M: after a sequential read of 3x the cache the hot set hit ratio is $HR_AFTER (want >= 0.9)"
bs=$(sdelta cut.s0 cut.s1 bypass_sequential_bytes)
[ "$bs" -ge $((SEQ_PASSES * (3 * CACHE_MIB - 8) * MIB)) ] ||
	fail "cutoff 4M: bypass_sequential_bytes grew by $bs over $SEQ_PASSES pass(es) of a $((3 * CACHE_MIB)) MiB stream"
[ "$(sdelta cut.s0 cut.s1 promoted_blocks)" -le $((SEQ_PASSES * 8 * MIB / 4096)) ] ||
	fail "cutoff 4M: $(sdelta cut.s0 cut.s1 promoted_blocks) blocks of the stream were promoted"
HR_CUT=$HR_AFTER

[ "$(status_field io_errors)" = 0 ] || fail "io_errors"
stop_server

echo "checked: promote_hits 3 promotes at the 3rd miss; hot set hit ratio $HR_CUT after $CONTROL_PASSES sequential read(s) of 3x the cache with the 4M cutoff vs $HR_NOCUT without it (before: >= 0.9)"
