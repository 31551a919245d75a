#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# In the VM (6.12 kernel, ublk_drv): blkcache served as /dev/ublkbN.  The
# device's geometry and queue flags; fio verify (randrw 4k-64k, QD32, 3x the
# cache, crc32c) with 0 errors, and verify-only after a restart; ext4 and xfs
# (mkfs, files written with fsync, fstrim, fsck clean, remount and verify);
# a clean SIGTERM stop deletes the device.
# vm-args: --disk cache=256M --disk origin=1G --timeout 1800
. "$(dirname "$0")/lib-guest.sh"
. "$(dirname "$0")/lib-serve.sh"

CACHE=$(disk_by_serial cache) || fail "no cache disk"
ORIGIN=$(disk_by_serial origin) || fail "no origin disk"
MNT=/mnt/ublk
NFILES=20

load_module ublk_drv
wait_for 30 "/dev/ublk-control did not appear" test -c /dev/ublk-control
bounded "$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format.out" 2>&1 ||
	{ cat "$T/format.out"; fail "blkcache format failed"; }

serve_start --ublk=0
[ "$UBLK_DEV" = /dev/ublkb0 ] || fail "serve --ublk=0 made $UBLK_DEV"
EXPORT_SIZE=$(jfield "$(cat "$T/status.json")" export_size)
[ "$(jfield "$(cat "$T/status.json")" ublk_device)" = /dev/ublkb0 ] || fail "status does not show /dev/ublkb0"

# ---- geometry and queue flags ----
q=/sys/block/ublkb0/queue
size=$(blockdev --getsize64 "$UBLK_DEV"); ss=$(blockdev --getss "$UBLK_DEV"); pbsz=$(blockdev --getpbsz "$UBLK_DEV")
[ "$size" = "$EXPORT_SIZE" ] || fail "--getsize64 $size, export_size $EXPORT_SIZE"
[ "$ss" = 512 ] || fail "--getss $ss, want 512"
[ "$pbsz" = 4096 ] || fail "--getpbsz $pbsz, want 4096"
[ "$(cat $q/write_cache)" = "write back" ] || fail "queue/write_cache is '$(cat $q/write_cache)'"
[ "$(cat $q/fua)" = 1 ] || fail "queue/fua is $(cat $q/fua)"
[ "$(cat $q/discard_max_bytes)" -gt 0 ] || fail "no discard (queue/discard_max_bytes 0)"
[ "$(cat $q/write_zeroes_max_bytes)" -gt 0 ] || fail "no write zeroes"
[ "$(cat $q/rotational)" = 0 ] || fail "queue/rotational is $(cat $q/rotational)"
log "$UBLK_DEV: $size bytes, ss $ss, pbsz $pbsz, write back + fua, discard $(cat $q/discard_max_bytes) B"

# ---- fio verify: 3x the cache, then verify-only after a restart ----
vsize=$(( $(blockdev --getsize64 "$CACHE") * 3 ))
fio_job() {
	bounded fio --name=v --filename="$UBLK_DEV" --ioengine=libaio --direct=1 --iodepth=32 \
		--rw=randrw --bsrange=4k-64k --size="$vsize" --verify=crc32c --verify_fatal=1 \
		--randseed=1234 --output-format=json --output="$T/fio-$1.json" "${@:2}" \
		>"$T/fio-$1.out" 2>&1
}
fio_job write --do_verify=1 || { cat "$T/fio-write.out"; fail "fio write+verify failed"; }
e1=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]; print(j["error"])' "$T/fio-write.json")
[ "$e1" = 0 ] || fail "fio reported error $e1"
log "fio randrw verify over $vsize bytes: 0 errors"
serve_stop
serve_start --ublk=0
fio_job verify --verify_only=1 || { cat "$T/fio-verify.out"; fail "fio verify-only after the restart failed"; }
log "after the restart: verify-only 0 errors"

# ---- ext4 and xfs ----
fs_round() {
	local fs=$1 i kib
	case $fs in
	ext4) bounded mkfs.ext4 -q -F "$UBLK_DEV" >"$T/mkfs.out" 2>&1 ;;
	xfs) bounded mkfs.xfs -q -f "$UBLK_DEV" >"$T/mkfs.out" 2>&1 ;;
	esac || { cat "$T/mkfs.out"; fail "mkfs.$fs failed"; }
	mkdir -p "$MNT"
	bounded mount "$UBLK_DEV" "$MNT" || fail "mount ($fs) failed"
	for ((i = 1; i <= NFILES; i++)); do
		kib=$(( (RANDOM % 1024) + 1 ))
		bounded dd if=/dev/urandom of="$MNT/f$i" bs=1K count="$kib" conv=fsync status=none ||
			fail "$fs: writing f$i failed"
	done
	bounded dd if=/dev/urandom of="$MNT/gone" bs=1M count=32 conv=fsync status=none
	rm "$MNT/gone"
	(cd "$MNT" && sha256sum f*) >"$T/sums.$fs"
	bounded fstrim -v "$MNT" >"$T/fstrim.out" 2>&1 || { cat "$T/fstrim.out"; fail "$fs: fstrim failed"; }
	bounded umount "$MNT" || fail "umount ($fs) failed"
	case $fs in
	ext4) bounded e2fsck -fn "$UBLK_DEV" >"$T/fsck.out" 2>&1 ;;
	xfs) bounded xfs_repair -n "$UBLK_DEV" >"$T/fsck.out" 2>&1 ;;
	esac || { cat "$T/fsck.out"; fail "$fs: fsck not clean"; }
	bounded mount "$UBLK_DEV" "$MNT" || fail "remount ($fs) failed"
	(cd "$MNT" && bounded sha256sum --quiet -c "$T/sums.$fs") || fail "$fs: a file changed across the remount"
	bounded umount "$MNT"
	log "$fs: $NFILES fsynced files, $(cat "$T/fstrim.out"), fsck clean, intact after remount"
}
fs_round ext4
fs_round xfs
st=$(status_json) || fail "status failed"
reqs=$(jfield "$st" ublk_requests)
errs=$(jfield "$st" ublk_errors)
[ "$errs" = 0 ] || fail "ublk_errors $errs"
[ "$(jfield "$st" discards)" -gt 0 ] || fail "no discard reached the engine"
serve_stop
[ ! -e /sys/block/ublkb0 ] || fail "/dev/ublkb0 still exists after a clean stop"
bounded "$BLKCACHE" check --cache "$CACHE" --origin "$ORIGIN" >"$T/check.out" 2>&1 ||
	{ cat "$T/check.out"; fail "blkcache check failed"; }
checked "/dev/ublkb0: size/ss/pbsz, write back+fua, discard, write zeroes, non-rotational; fio randrw 4k-64k QD32 crc32c verify over $vsize B 0 errors, verify-only after restart 0 errors; ext4 and xfs: fsync, fstrim, fsck clean, intact after remount; $reqs ublk requests, 0 errors; device deleted at SIGTERM; check clean"
