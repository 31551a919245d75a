#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# In the VM, on an emulated NVDIMM (qemu nvdimm, nfit + nd_pmem): a real
# DAX filesystem (ext4, mount -o dax) holds the cache file, served as
# "pmem:FILE" through ublk.
#  - the mapping is DAX (MAP_SYNC): serve and status say cache-line (or
#    byte) granularity, the log says it fills segments in place;
#  - fio verify through /dev/ublkb0 (randrw 4k-64k, QD16, 3x the cache,
#    crc32c): 0 errors;
#  - kill -9 while fio writes with fsync=1 (verify state kept), 3 times; the
#    server started again with the same ID takes the device over; fio then
#    verifies every write it completed: 0 errors;
#  - ext4 on /dev/ublkb0: files written with fsync are intact after a kill -9
#    and a restart, and fsck is clean.
# vm-args: --disk origin=1G --nvdimm 512 --timeout 2400
. "$(dirname "$0")/lib-guest.sh"
. "$(dirname "$0")/lib-serve.sh"

ORIGIN=$(disk_by_serial origin) || fail "no origin disk"
PM=/mnt/pmem
MNT=/mnt/ublk
CACHE_FILE=$PM/cache.img
CACHE=pmem:$CACHE_FILE
NFILES=20

# ---- the DAX filesystem on the NVDIMM ----
load_module nfit
load_module nd_pmem
have_ndctl() { command -v ndctl >/dev/null; }
have_ndctl || fail "ndctl is not in the VM image"
bounded ndctl create-namespace -f -e namespace0.0 -m fsdax >"$T/ndctl.out" 2>&1 ||
	{ cat "$T/ndctl.out"; fail "ndctl create-namespace failed"; }
wait_for 60 "/dev/pmem0 did not appear" test -b /dev/pmem0
grep -q '"mode":"fsdax"' "$T/ndctl.out" || { cat "$T/ndctl.out"; fail "no fsdax namespace"; }
# 4 KiB blocks (DAX needs the page size; mke2fs would pick 1 KiB this small).
bounded mkfs.ext4 -q -F -b 4096 /dev/pmem0 >"$T/mkfs-pmem.out" 2>&1 || { cat "$T/mkfs-pmem.out"; fail "mkfs on /dev/pmem0 failed"; }
mkdir -p "$PM"
bounded mount -o dax /dev/pmem0 "$PM" || fail "mount -o dax failed"
on_exit "umount -l $PM"
grep -E " $PM .*dax" /proc/mounts >/dev/null || fail "$PM is not mounted with dax: $(grep " $PM " /proc/mounts)"
log "NVDIMM: /dev/pmem0 ($(blockdev --getsize64 /dev/pmem0) bytes), ext4 mounted -o dax"

# Written, not sparse (a sparse one works, slowly: see the pmem driver).
bounded dd if=/dev/zero of="$CACHE_FILE" bs=1M count=192 oflag=direct status=none
load_module ublk_drv
wait_for 30 "/dev/ublk-control did not appear" test -c /dev/ublk-control
bounded "$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format.out" 2>&1 ||
	{ cat "$T/format.out"; fail "blkcache format on pmem failed"; }
serve_start --ublk=0
grep -qE "cache $CACHE: pmem, (cache-line|byte) granularity \(DAX" "$SERVER_LOG" ||
	fail "serve did not get a DAX mapping of $CACHE_FILE"
grep -q "log: persistent memory: segments are filled in place" "$SERVER_LOG" ||
	fail "the pmem log is not in use"
pers=$(jfield "$(status_json)" cache_persistence)
case $pers in *DAX*) ;; *) fail "status cache_persistence: '$pers'" ;; esac
log "served: $pers"

# ---- fio verify: 3x the cache ----
vsize=$((192 * 3))M
bounded fio --name=v --filename="$UBLK_DEV" --ioengine=libaio --direct=1 --iodepth=16 \
	--rw=randrw --bsrange=4k-64k --size="$vsize" --verify=crc32c --verify_fatal=1 \
	--randseed=4321 --output-format=json --output="$T/fio-v.json" >"$T/fio-v.out" 2>&1 ||
	{ cat "$T/fio-v.out"; fail "fio verify on the pmem cache failed"; }
e=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["error"])' "$T/fio-v.json")
[ "$e" = 0 ] || fail "fio reported error $e"
log "fio randrw verify over $vsize: 0 errors"

# ---- kill -9 under fsync=1 writes, 3 times; fio verifies what it completed ----
for k in 1 2 3; do
	rm -f "$T"/*.state
	(cd "$T" && exec fio --name=k$k --filename="$UBLK_DEV" --ioengine=psync --direct=1 \
		--rw=randwrite --bs=4k --size=128M --offset=$((k * 128))M --io_size=16M --fsync=1 \
		--verify=crc32c --do_verify=0 --verify_state_save=1 --randseed=$((77 + k)) \
		>"$T/fio-k$k.out" 2>&1) &
	FIO=$!
	track_bg "$FIO"
	# Kill once the server has taken some of fio's FLUSHes (a condition, not a delay).
	f0=$(jfield "$(status_json)" flushes)
	wait_for 300 "fio made no progress" sh -c "[ \$($BLKCACHE status --control $CTL --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"flushes\"])') -ge $((f0 + 200)) ]"
	serve_kill
	serve_start --ublk=0
	wait_bounded "$FIO" 600 || { cat "$T/fio-k$k.out"; fail "fio did not finish after restart $k"; }
	(cd "$T" && bounded fio --name=k$k --filename="$UBLK_DEV" --ioengine=psync --direct=1 \
		--rw=randwrite --bs=4k --size=128M --offset=$((k * 128))M --io_size=16M \
		--verify=crc32c --verify_only=1 --verify_state_load=1 --randseed=$((77 + k)) \
		>"$T/fio-k$k-verify.out" 2>&1) || { cat "$T/fio-k$k-verify.out"; fail "verify after kill $k failed"; }
	! grep -qE "^verify: bad|err= *[1-9]" "$T/fio-k$k-verify.out" ||
		{ cat "$T/fio-k$k-verify.out"; fail "verify after kill $k"; }
	log "kill -9 $k under fsync=1 writes: fio finished on the new server, verify 0 errors"
done

# ---- ext4 on top: fsynced files survive kill -9 ----
bounded mkfs.ext4 -q -F "$UBLK_DEV" >"$T/mkfs.out" 2>&1 || { cat "$T/mkfs.out"; fail "mkfs.ext4 failed"; }
mkdir -p "$MNT"
bounded mount "$UBLK_DEV" "$MNT" || fail "mount failed"
for ((i = 1; i <= NFILES; i++)); do
	bounded dd if=/dev/urandom of="$MNT/f$i" bs=1K count=$(( (RANDOM % 512) + 1 )) conv=fsync status=none ||
		fail "writing f$i failed"
done
(cd "$MNT" && sha256sum f*) >"$T/sums"
serve_kill
serve_start --ublk=0
(cd "$MNT" && bounded sha256sum --quiet -c "$T/sums") || fail "a fsynced file changed across kill -9"
bounded umount "$MNT" || fail "umount failed"
bounded e2fsck -fn "$UBLK_DEV" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "fsck not clean after kill -9"; }
bounded mount "$UBLK_DEV" "$MNT" || fail "remount failed"
(cd "$MNT" && bounded sha256sum --quiet -c "$T/sums") || fail "a fsynced file changed across the remount"
bounded umount "$MNT"
st=$(status_json) || fail "status failed"
[ "$(jfield "$st" ublk_errors)" = 0 ] || fail "ublk_errors $(jfield "$st" ublk_errors)"
serve_stop
bounded "$BLKCACHE" check --cache "$CACHE_FILE" --origin "$ORIGIN" >"$T/check.out" 2>&1 ||
	{ cat "$T/check.out"; fail "blkcache check failed"; }
checked "pmem:FILE on ext4 -o dax on an emulated NVDIMM: DAX mapping ($pers); fio randrw crc32c verify over $vsize 0 errors; 3 kill -9 under fsync=1 writes, fio verify of every completed write 0 errors; ext4: $NFILES fsynced files intact after kill -9, fsck clean; check clean"
