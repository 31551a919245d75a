#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# In the VM: a filesystem that already lives on the origin is cached in
# place and mounted through /dev/ublkb0 unchanged: its files read back
# through the cache, new files written through it, and after 'blkcache
# detach' the origin alone mounts with every file, fsck clean.
# vm-args: --disk cache=256M --disk origin=512M --timeout 1200
. "$(dirname "$0")/lib-guest.sh"
. "$(dirname "$0")/lib-serve.sh"

CACHE=$(disk_by_serial cache) || fail "no cache disk"
ORIGIN=$(disk_by_serial origin) || fail "no origin disk"
MNT=/mnt/vol

write_files() { # PREFIX N
	local i
	for ((i = 1; i <= $2; i++)); do
		bounded dd if=/dev/urandom of="$MNT/$1$i" bs=4K count=$(( (RANDOM % 64) + 1 )) \
			conv=fsync status=none || fail "writing $1$i failed"
	done
	(cd "$MNT" && sha256sum "$1"*) >>"$T/sums"
}

load_module ublk_drv
wait_for 30 "/dev/ublk-control did not appear" test -c /dev/ublk-control
bounded mkfs.ext4 -q -F "$ORIGIN" >"$T/mkfs.out" 2>&1 || { cat "$T/mkfs.out"; fail "mkfs.ext4 on the origin failed"; }
mkdir -p "$MNT"
bounded mount "$ORIGIN" "$MNT" || fail "mount of the origin failed"
: >"$T/sums"
write_files old 10
bounded umount "$MNT"
before=$(sha256sum <"$ORIGIN" | cut -d' ' -f1)

bounded "$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format.out" 2>&1 ||
	{ cat "$T/format.out"; fail "blkcache format failed"; }
grep -q "ext4" "$T/format.out" || fail "format did not say the origin holds ext4: $(cat "$T/format.out")"
[ "$(sha256sum <"$ORIGIN" | cut -d' ' -f1)" = "$before" ] || fail "format changed the origin"

serve_start --ublk=0
bounded mount "$UBLK_DEV" "$MNT" || fail "mount through $UBLK_DEV failed"
(cd "$MNT" && bounded sha256sum --quiet -c "$T/sums") || fail "the origin's files differ through the cache"
write_files new 10
bounded umount "$MNT"
bounded "$BLKCACHE" detach --control "$CTL" >"$T/detach.out" 2>&1 || { cat "$T/detach.out"; fail "detach failed"; }
rc=0
wait_bounded "$SERVER_PID" 300 || rc=$?
[ $rc -eq 0 ] || fail "server exited with $rc after detach"
SERVER_PID=""
wait_for 60 "/dev/ublkb0 still there after detach" test ! -e /sys/block/ublkb0
bounded e2fsck -fn "$ORIGIN" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "the origin alone is not fsck clean"; }
bounded mount "$ORIGIN" "$MNT" || fail "the origin alone does not mount"
(cd "$MNT" && bounded sha256sum --quiet -c "$T/sums") || fail "a file differs on the origin alone"
bounded umount "$MNT"
checked "ext4 made on the origin, format left it unchanged, mounted through /dev/ublkb0 with its 10 files, 10 more written; after detach the origin alone: fsck clean, all 20 files intact"
