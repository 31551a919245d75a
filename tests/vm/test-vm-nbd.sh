#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# In the VM (6.12 kernel): blkcache on two virtio disks served over NBD and
# attached with the kernel's nbd client; ext4 and xfs on /dev/nbd0 (fsync,
# fstrim, fsck, remount: every file intact); the server stops cleanly; and
# ublk_drv loads and gives /dev/ublk-control (what the ublk frontend needs).
# Run: tests/vm/run-vm.sh --disk cache=512M --disk origin=1G -- tests/vm/test-vm-nbd.sh
# vm-args: --disk cache=512M --disk origin=1G --timeout 900
. "$(dirname "$0")/lib-guest.sh"

CACHE=$(disk_by_serial cache) || fail "no cache disk (run with --disk cache=512M)"
ORIGIN=$(disk_by_serial origin) || fail "no origin disk (run with --disk origin=1G)"
SOCK=/tmp/nbd.sock
CTL=/tmp/ctl.sock
MNT=/mnt/nbd
NFILES=20
SERVER_LOG=$T/server.log
FAIL_SHOW+=("$SERVER_LOG")
log "cache $CACHE ($(blockdev --getsize64 "$CACHE") bytes), origin $ORIGIN ($(blockdev --getsize64 "$ORIGIN") bytes)"

bounded "$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format.out" 2>&1 ||
	{ cat "$T/format.out"; fail "blkcache format failed"; }
log "format: $(head -1 "$T/format.out")"

"$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --socket "$SOCK" --control "$CTL" \
	>"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
track_bg "$SERVER_PID"
status_ok() {
	kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited during start-up"
	[ -S "$SOCK" ] && timeout 30 "$BLKCACHE" status --control "$CTL" --json >"$T/status.json" 2>/dev/null
}
wait_for 120 "server not answering on $CTL" status_ok
EXPORT_SIZE=$(jfield "$(cat "$T/status.json")" export_size)
log "server up (pid $SERVER_PID), export_size $EXPORT_SIZE"

load_module nbd
NBD=/dev/nbd0
wait_for 30 "$NBD did not appear after modprobe nbd" test -b "$NBD"
bounded nbd-client -unix "$SOCK" "$NBD" -b 4096 -N blkcache >"$T/nbd-client.out" 2>&1 ||
	{ cat "$T/nbd-client.out"; fail "nbd-client -unix $SOCK $NBD failed"; }
on_exit "nbd-client -d $NBD"
nbd_sized() { [ "$(cat /sys/block/nbd0/size)" -gt 0 ]; }
wait_for 60 "$NBD still has size 0 after nbd-client" nbd_sized
size=$(blockdev --getsize64 "$NBD")
[ "$size" = "$EXPORT_SIZE" ] || fail "blockdev --getsize64 $NBD = $size, status export_size = $EXPORT_SIZE"
log "$NBD: $size bytes, logical block $(blockdev --getss "$NBD"), physical $(blockdev --getpbsz "$NBD")"

# ext4, then xfs: mkfs, files written with fsync, fstrim, fsck clean,
# remount and every checksum.
fs_round() {
	local fs=$1 i kib written
	case $fs in
	ext4) bounded mkfs.ext4 -q -F "$NBD" ;;
	xfs) bounded mkfs.xfs -q -f "$NBD" ;;
	esac >"$T/mkfs.out" 2>&1 || { cat "$T/mkfs.out"; fail "mkfs.$fs $NBD failed"; }
	mkdir -p "$MNT"
	bounded mount "$NBD" "$MNT" || fail "mount $NBD ($fs) failed"
	on_exit "umount $MNT"
	for ((i = 1; i <= NFILES; i++)); do
		kib=$(( (RANDOM % 1024) + 1 + (i == 1 ? 8192 : 0) ))   # 1 KiB..1 MiB; one of 9 MiB
		bounded dd if=/dev/urandom of="$MNT/f$i" bs=1K count="$kib" conv=fsync status=none ||
			fail "$fs: writing $MNT/f$i failed"
	done
	bounded dd if=/dev/urandom of="$MNT/gone" bs=1M count=16 conv=fsync status=none
	rm "$MNT/gone"
	(cd "$MNT" && sha256sum f*) >"$T/sums.$fs" || fail "sha256sum failed"
	written=$(du -sk "$MNT" | cut -f1)
	bounded fstrim -v "$MNT" >"$T/fstrim.out" 2>&1 || { cat "$T/fstrim.out"; fail "$fs: fstrim failed"; }
	bounded umount "$MNT" || fail "umount $MNT ($fs) failed"
	log "$fs: $NFILES files written with fsync (${written} KiB), $(cat "$T/fstrim.out"), unmounted"
	case $fs in
	ext4) bounded e2fsck -fn "$NBD" ;;
	xfs) bounded xfs_repair -n "$NBD" ;;
	esac >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "$fs: fsck of $NBD is not clean"; }
	bounded mount "$NBD" "$MNT" || fail "second mount of $NBD ($fs) failed"
	(cd "$MNT" && bounded sha256sum --quiet -c "$T/sums.$fs") || fail "$fs: a file changed across the remount"
	bounded umount "$MNT" || fail "second umount ($fs) failed"
	log "$fs: fsck clean, remounted, all $NFILES checksums match"
}
fs_round ext4
fs_round xfs
discards=$(jfield "$(timeout 30 "$BLKCACHE" status --control "$CTL" --json)" discards)
[ "$discards" -gt 0 ] || fail "fstrim sent no discard to the server"

bounded nbd-client -d "$NBD" >"$T/nbd-d.out" 2>&1 || { cat "$T/nbd-d.out"; fail "nbd-client -d $NBD failed"; }
nbd_gone() { [ "$(cat /sys/block/nbd0/size)" -eq 0 ]; }
wait_for 60 "$NBD still connected after nbd-client -d" nbd_gone

kill -TERM "$SERVER_PID"
rc=0
wait_bounded "$SERVER_PID" 120 || rc=$?
[ $rc -ne 255 ] || fail "server did not exit within 120 s of SIGTERM"
[ $rc -eq 0 ] || fail "server exited with status $rc after SIGTERM (want 0)"
grep -q 'clean shutdown complete' "$SERVER_LOG" || fail "server log lacks 'clean shutdown complete'"
log "server stopped cleanly"
bounded "$BLKCACHE" check --cache "$CACHE" --origin "$ORIGIN" >"$T/check.out" 2>&1 ||
	{ cat "$T/check.out"; fail "blkcache check failed after the clean stop"; }
log "blkcache check: $(tail -1 "$T/check.out")"

# What the ublk frontend needs from this kernel.
load_module ublk_drv
wait_for 30 "/dev/ublk-control did not appear after modprobe ublk_drv" test -c /dev/ublk-control
echo "ublk: modprobe ublk_drv ok, /dev/ublk-control is char device $(stat -c '%t:%T' /dev/ublk-control) (hex major:minor)"

checked "export $EXPORT_SIZE B via nbd.ko; ext4 and xfs: $NFILES fsynced files each, fstrim ($discards discards), fsck clean, intact after remount; clean SIGTERM stop; ublk_drv + /dev/ublk-control present"
