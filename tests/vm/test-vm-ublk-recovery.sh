#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# In the VM: restart under a mounted filesystem.  ext4 on /dev/ublkb0, a
# writer that writes files with fsync in a loop; the server is killed with
# -9 and started again with the same device ID 5 times; the writer never
# sees an IO error and keeps making progress after each restart; after
# unmount fsck is clean and every file whose fsync returned is intact.
# Acks are staged (the default: buffers in /dev/shm, replayed after the
# kill; the replays are counted and must be > 0), except that restart 3 uses
# --written-acks (and still replays what the killed staged server left).
# A second writer overwrites a preallocated file with O_DIRECT and no fsync:
# every block whose write returned must read back after all the kills
# (acknowledged, never flushed: what staged acks keep across a kill).  A
# last kill after 16 such writes and nothing else must replay them.
# vm-args: --disk cache=256M --disk origin=1G --timeout 1800
. "$(dirname "$0")/lib-guest.sh"
. "$(dirname "$0")/lib-serve.sh"

CACHE=$(disk_by_serial cache) || fail "no cache disk"
ORIGIN=$(disk_by_serial origin) || fail "no origin disk"
MNT=/mnt/ublk
CYCLES=${VM_RECOVERY_CYCLES:-5}
STEP=5                  # files the writer must complete between events

load_module ublk_drv
wait_for 30 "/dev/ublk-control did not appear" test -c /dev/ublk-control
bounded "$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format.out" 2>&1 ||
	{ cat "$T/format.out"; fail "blkcache format failed"; }
serve_start --ublk=0
bounded mkfs.ext4 -q -F "$UBLK_DEV" >"$T/mkfs.out" 2>&1 || { cat "$T/mkfs.out"; fail "mkfs.ext4 failed"; }
mkdir -p "$MNT"
# commit=600,lazytime: nothing but the writers' fsyncs sends a FLUSH, so the
# final kill below surely finds staged writes (see there).
bounded mount -o commit=600,lazytime "$UBLK_DEV" "$MNT" || fail "mount failed"
on_exit "umount -l $MNT"

# The writer: file i is listed in $T/done (on tmpfs, not on the device)
# only after its fsync returned.  It stops at $T/stop; any failed write
# ends it with status 1.
writer() {
	local i=0 kib
	while [ ! -e "$T/stop" ]; do
		i=$((i + 1))
		kib=$(( (RANDOM % 256) + 4 ))
		dd if=/dev/urandom of="$T/buf" bs=1K count="$kib" status=none || return 2
		dd if="$T/buf" of="$MNT/f$i" bs=1K conv=fsync status=none || { echo "write f$i failed" >"$T/writer.err"; return 1; }
		echo "$(sha256sum <"$T/buf" | cut -d' ' -f1)  f$i" >>"$T/done"
	done
	return 0
}
# The direct writer: block i of $MNT/direct gets pattern "d<i>-" with
# O_DIRECT (no FLUSH); i is listed in $T/direct.done once dd returned.
dpattern() { yes "d$1-" | head -c 4096; }
direct_writer() {
	local i=0
	while [ ! -e "$T/stop" ] && [ $i -lt 2000 ]; do
		dpattern $i >"$T/dbuf"
		dd if="$T/dbuf" of="$MNT/direct" bs=4096 seek=$i count=1 oflag=direct conv=notrunc \
			status=none || { echo "direct write $i failed" >"$T/direct.err"; return 1; }
		echo $i >>"$T/direct.done"
		i=$((i + 1))
	done
	return 0
}
bounded dd if=/dev/zero of="$MNT/direct" bs=1M count=8 conv=fsync status=none || fail "preallocating the direct file failed"
: >"$T/direct.done"
direct_writer &
DWRITER=$!
track_bg "$DWRITER"
: >"$T/done"
writer &
WRITER=$!
track_bg "$WRITER"
done_count() { wc -l <"$T/done"; }
progress_from() {
	kill -0 "$WRITER" 2>/dev/null || fail "the writer stopped: $(cat "$T/writer.err" 2>/dev/null)"
	[ "$(done_count)" -ge "$1" ]
}

replayed=0
for ((c = 1; c <= CYCLES; c++)); do
	n=$(done_count)
	wait_for 600 "the writer made no progress before kill $c" progress_from $((n + STEP))
	serve_kill
	n=$(done_count)
	acks=staged
	if [ "$c" -eq 3 ]; then
		acks=written
		serve_start --ublk=0 --written-acks
	else
		serve_start --ublk=0
	fi
	[ "$(jfield "$(cat "$T/status.json")" ublk_recovered)" = true ] ||
		fail "restart $c did not take the device over (ublk_recovered false)"
	[ "$(jfield "$(cat "$T/status.json")" acks)" = $acks ] ||
		fail "restart $c: acks $(jfield "$(cat "$T/status.json")" acks), want $acks"
	replayed=$((replayed + $(jfield "$(cat "$T/status.json")" staged_replayed)))
	wait_for 600 "the writer made no progress after restart $c" progress_from $((n + STEP))
	log "cycle $c: killed and recovered; $(done_count) files fsynced so far"
done

touch "$T/stop"
rc=0
wait_bounded "$WRITER" 600 || rc=$?
[ $rc -eq 0 ] || fail "the writer ended with status $rc: $(cat "$T/writer.err" 2>/dev/null)"
rc=0
wait_bounded "$DWRITER" 600 || rc=$?
[ $rc -eq 0 ] || fail "the direct writer ended with status $rc: $(cat "$T/direct.err" 2>/dev/null)"
ndirect=$(wc -l <"$T/direct.done")
while read -r i; do
	dd if="$MNT/direct" bs=4096 skip="$i" count=1 iflag=direct status=none | cmp -s - <(dpattern "$i") ||
		fail "direct block $i (written with O_DIRECT, no fsync, acknowledged) lost across the kills"
done <"$T/direct.done"
total=$(done_count)
# A last kill with writes surely staged: the writers are done, and 16
# O_DIRECT overwrites of allocated blocks issue no FLUSH (no metadata to
# commit, lazytime, commit=600), so they are acknowledged from the staging
# file and only the replay can bring them back.
for ((i = 2000; i < 2016; i++)); do
	dpattern $i >"$T/dbuf"
	bounded dd if="$T/dbuf" of="$MNT/direct" bs=4096 seek=$i count=1 oflag=direct conv=notrunc \
		status=none || fail "direct write $i before the last kill failed"
done
serve_kill
serve_start --ublk=0
last=$(jfield "$(cat "$T/status.json")" staged_replayed)
[ "$last" -ge 16 ] || fail "the last restart replayed $last staged entries, want >= 16 (the 16 unflushed writes)"
replayed=$((replayed + last))
for ((i = 2000; i < 2016; i++)); do
	dd if="$MNT/direct" bs=4096 skip="$i" count=1 iflag=direct status=none | cmp -s - <(dpattern "$i") ||
		fail "direct block $i (acknowledged, never flushed) lost by the last kill"
done
bounded umount "$MNT" || fail "umount failed"
bounded e2fsck -fn "$UBLK_DEV" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck not clean"; }
bounded mount "$UBLK_DEV" "$MNT" || fail "remount failed"
(cd "$MNT" && bounded sha256sum --quiet -c "$T/done") || fail "an fsynced file is not intact"
bounded umount "$MNT"
serve_stop
if dmesg | grep -q "I/O error, dev ublkb0"; then
	fail "the kernel logged IO errors on the device: $(dmesg | grep 'I/O error, dev ublkb0' | tail -3)"
fi
checked "$CYCLES kill -9 restarts under mounted ext4 with an fsync writer: device taken over each time, $replayed staged entries replayed, writers never failed, $total fsynced files and $ndirect O_DIRECT blocks (no fsync) intact, e2fsck clean"
