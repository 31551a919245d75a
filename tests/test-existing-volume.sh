#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Caching an existing volume in place, as an administrator does it:
#  for ext4 and xfs: a filesystem made on an origin file, files written with
#    known content; 'blkcache format' (no --force) tells that the origin holds
#    that filesystem and leaves every byte of the origin unchanged (checksum),
#    exporting its whole size; served, and attached as a kernel block device
#    (nbdfuse -> losetup --direct-io=on): fsck is clean, it mounts, the files
#    are identical; more files written and synced (they stay dirty in the
#    cache: writeback paused, dirty_blocks > 0); 'blkcache flush', 'blkcache
#    detach'; the origin file alone: fsck clean, it mounts, every file is
#    identical.
#  identity: a copy of the origin (same size, another path) is refused with a
#    message naming both paths and the override; serve --origin-moved accepts
#    it and records it (a plain serve then accepts it too); an origin of
#    another size is refused even with --origin-moved; 'blkcache check'
#    reports the mismatch.
#  --origin-label: refused on an origin that holds a filesystem and on one
#    whose last 4 KiB are not zeroes (the message names the reason and the
#    4 KiB); on a zero tail it labels the origin and exports 4 KiB less, as
#    format v1 did, and the cache serves.
#  format version 1: a labelled cache rewritten as version 1 wrote it, with
#    dirty data and a crash, checks clean, recovers, serves its data and
#    stays version 1.
#  cache device signatures: format refuses a cache device holding ext4 or a
#    GPT partition table, naming it (libblkid), and leaves it unchanged;
#    --force formats it.
# Needs root (loop devices, mount) and FUSE; skips (77) without them.
. "$(dirname "$0")/lib.sh"

MNT=$T/mnt
FUSE=$T/fuse
LOOPDEV=""
FUSE_PID=""
mkdir -p "$MNT" "$FUSE"

for tool in mkfs.ext4 mkfs.xfs xfs_repair fsck.ext4 nbdfuse losetup sfdisk; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (loop devices, mount)"; exit 77; }
[ -e /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }

# Unmount and detach whatever is still attached, before lib.sh removes $T.
vol_cleanup() {
	mountpoint -q "$MNT" && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
	[ -n "$LOOPDEV" ] && losetup -d "$LOOPDEV" 2>/dev/null
	mountpoint -q "$FUSE" && { fusermount3 -u "$FUSE" 2>/dev/null || umount -l "$FUSE"; }
	[ -n "$FUSE_PID" ] && kill "$FUSE_PID" 2>/dev/null
	LOOPDEV="" FUSE_PID=""
	return 0
}
trap 'rc=$?; vol_cleanup; (exit $rc); _cleanup' EXIT

# fsck_clean FSTYPE DEV: a read-only check must find nothing to repair.
fsck_clean() {
	if [ "$1" = ext4 ]; then
		fsck.ext4 -fn "$2" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "fsck.ext4 -fn $2 found problems"; }
	else
		xfs_repair -n "$2" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "xfs_repair -n $2 found problems"; }
	fi
}

# write_files PREFIX N: N files of random content in $MNT, checksums appended to $T/files.sum.
write_files() {
	local i
	for i in $(seq 1 "$2"); do
		head -c $(((i % 4 + 1) * 700 * 1024 + i * 512)) /dev/urandom >"$MNT/$1$i"
		(cd "$MNT" && sha256sum "$1$i") >>"$T/files.sum"
	done
	sync -f "$MNT"
}

check_files() {
	(cd "$MNT" && sha256sum --quiet -c "$T/files.sum") || fail "files differ from what was written ($1)"
}

# attach: the export as a kernel block device (nbdfuse -> loop, direct IO).
attach() {
	nbdfuse "$FUSE" "$URI" >"$T/nbdfuse.log" 2>&1 &
	FUSE_PID=$!
	track_bg "$FUSE_PID"
	local i
	for i in $(seq 1 600); do
		[ -f "$FUSE/nbd" ] && break
		kill -0 "$FUSE_PID" 2>/dev/null || { cat "$T/nbdfuse.log"; fail "nbdfuse exited"; }
		sleep 0.05
	done
	[ -f "$FUSE/nbd" ] || fail "nbdfuse did not show $FUSE/nbd within 30 s"
	LOOPDEV=$(losetup --direct-io=on -f --show "$FUSE/nbd") || fail "losetup on the export failed"
}

detach_dev() {
	umount "$MNT" || fail "umount of the export failed"
	losetup -d "$LOOPDEV" || fail "losetup -d failed"
	LOOPDEV=""
	fusermount3 -u "$FUSE" 2>/dev/null || umount "$FUSE"
	wait_bounded "$FUSE_PID" 30 || true
	FUSE_PID=""
}

# in_place FSTYPE SIZE: the whole scenario for one filesystem.
in_place() {
	local fs=$1 size=$2 out j
	rm -f "$ORIGIN" "$CACHE" "$T/files.sum"
	truncate -s "$size" "$ORIGIN"
	truncate -s 64M "$CACHE"
	if [ "$fs" = ext4 ]; then mkfs.ext4 -q -L bcdata "$ORIGIN"; else mkfs.xfs -q -L bcdata "$ORIGIN"; fi
	mount -o loop "$ORIGIN" "$MNT" || fail "cannot mount the fresh $fs origin"
	write_files before 6
	umount "$MNT"
	local sum0 sum1
	sum0=$(sha256sum <"$ORIGIN")
	out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" 2>&1) || fail "format failed: $out"
	log "format: $out"
	sum1=$(sha256sum <"$ORIGIN")
	[ "$sum0" = "$sum1" ] || fail "$fs: format changed the origin"
	grep -q "holds $fs filesystem (label bcdata" <<<"$out" ||
		fail "$fs: format did not say that the origin holds a $fs filesystem: $out"
	grep -q "not changed" <<<"$out" || fail "$fs: format did not say the origin is not changed: $out"

	start_server --set writeback_paused=1
	[ "$(nbdinfo --size "$URI")" = "$(stat -c %s "$ORIGIN")" ] ||
		fail "$fs: the export is $(nbdinfo --size "$URI") bytes, the origin $(stat -c %s "$ORIGIN")"
	attach
	fsck_clean "$fs" "$LOOPDEV"
	mount "$LOOPDEV" "$MNT" || fail "$fs: the export does not mount"
	check_files "$fs through the cache"
	write_files after 5
	check_files "$fs through the cache, after writing more"
	detach_dev
	j=$(status_json)
	[ "$(jfield "$j" dirty_blocks)" -gt 0 ] || fail "$fs: no dirty blocks: the new files did not stay in the cache"
	[ "$(jfield "$j" io_errors)" = 0 ] || fail "$fs: io_errors $(jfield "$j" io_errors)"
	log "$fs: $(jfield "$j" dirty_blocks) dirty blocks before flush"
	ctl_ok flush
	ctl_ok detach
	wait_server_exit 60
	fsck_clean "$fs" "$ORIGIN"
	mount -o loop "$ORIGIN" "$MNT" || fail "$fs: the origin does not mount after detach"
	check_files "$fs on the origin alone after detach"
	umount "$MNT"
	log "$fs: cached in place, unchanged by format; $(wc -l <"$T/files.sum") files identical on the origin after detach"
}

in_place ext4 256M
in_place xfs 512M

# ---- identity ----
rm -f "$ORIGIN" "$CACHE"
truncate -s 64M "$ORIGIN" "$CACHE"
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >/dev/null || fail "format failed"
cp "$ORIGIN" "$T/copy.img"
OTHER_ORIGIN=$T/copy.img
if out=$("$BLKCACHE" serve --cache "$CACHE" --origin "$OTHER_ORIGIN" --socket "$SOCK" --control "$CTL" 2>&1); then
	fail "serve accepted a copy of the origin at another path"
fi
grep -q "$T/copy.img" <<<"$out" && grep -q "$ORIGIN" <<<"$out" && grep -q -- "--origin-moved" <<<"$out" ||
	fail "the refusal does not name both origins and --origin-moved: $out"
log "copy refused: $out"
out=$("$BLKCACHE" check --cache "$CACHE" --origin "$OTHER_ORIGIN" 2>&1) && fail "check accepted the copy: $out"
grep -q "not the one this cache recorded" <<<"$out" || fail "check does not report the wrong origin: $out"
truncate -s 65M "$T/bigger.img"
out=$("$BLKCACHE" serve --cache "$CACHE" --origin "$T/bigger.img" --socket "$SOCK" --control "$CTL" --origin-moved 2>&1) &&
	fail "serve --origin-moved accepted an origin of another size"
grep -q "68157440 bytes" <<<"$out" && grep -q "67108864 bytes" <<<"$out" || fail "the size refusal does not name both sizes: $out"
ORIGIN_SAVED=$ORIGIN
ORIGIN=$OTHER_ORIGIN
start_server --origin-moved
grep -q "accepting" "$SERVER_LOG" || fail "serve --origin-moved did not say it accepted the moved origin"
qio "$T/q1" "write -P 0x5a 0 64k" "read -P 0x5a 0 64k"
stop_server
start_server
qio "$T/q2" "read -P 0x5a 0 64k"
stop_server
ORIGIN=$ORIGIN_SAVED
"$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --socket "$SOCK" --control "$CTL" >/dev/null 2>&1 &&
	fail "after --origin-moved the old origin is still accepted"
log "identity: copy refused, accepted with --origin-moved and recorded; other size refused"

# ---- --origin-label ----
rm -f "$ORIGIN" "$CACHE"
truncate -s 64M "$ORIGIN" "$CACHE"
mkfs.ext4 -q "$ORIGIN"
sum0=$(sha256sum <"$ORIGIN")
out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --origin-label 2>&1) &&
	fail "--origin-label accepted an origin that holds ext4"
grep -q "holds ext4 filesystem" <<<"$out" && grep -q "4 KiB smaller" <<<"$out" ||
	fail "the --origin-label refusal does not name the filesystem and the 4 KiB: $out"
rm -f "$ORIGIN"
truncate -s 64M "$ORIGIN"
printf 'data' | dd of="$ORIGIN" bs=1 seek=$((64 * 1024 * 1024 - 10)) conv=notrunc status=none
out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --origin-label 2>&1) &&
	fail "--origin-label accepted an origin whose last 4 KiB hold data"
grep -q "last 4 KiB" <<<"$out" && grep -q "not all zeroes" <<<"$out" && grep -q -- "--force" <<<"$out" ||
	fail "the --origin-label refusal does not name the tail: $out"
tail -c 10 "$ORIGIN" | grep -q data || fail "a refused --origin-label changed the origin's tail"
rm -f "$ORIGIN"
truncate -s 64M "$ORIGIN"
out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --origin-label 2>&1) || fail "--origin-label on a zero tail: $out"
grep -q "minus its label" <<<"$out" || fail "--origin-label: $out"
tail -c 4096 "$ORIGIN" | head -c 8 | grep -q BCORIGIN || fail "--origin-label wrote no label"
start_server
[ "$(nbdinfo --size "$URI")" = $((64 * 1024 * 1024 - 4096)) ] || fail "--origin-label: export is not 4 KiB smaller"
qio "$T/q3" "write -P 0x33 0 4k" "read -P 0x33 0 4k"
stop_server
log "--origin-label: refused on ext4 and on a used tail; on a zero tail labels the origin as v1 did"

# ---- a cache made by format version 1 keeps working, unchanged ----
rm -f "$ORIGIN" "$CACHE"
truncate -s 64M "$ORIGIN" "$CACHE"
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --origin-label --format-version 2 >/dev/null || fail "format --origin-label failed"
start_server --set writeback_paused=1
qio "$T/v1w" "write -P 0x71 1M 2M" "flush"
[ "$(status_field dirty_blocks)" -gt 0 ] || fail "v1: no dirty blocks to recover"
kill9_server
py "$BLKCACHE_SRC/tests/cachetool.py" make-v1 "$CACHE" || fail "cannot rewrite the superblocks as version 1"
sb_versions() { od -An -tu4 -j8 -N4 "$CACHE"; od -An -tu4 -j$((4096 + 8)) -N4 "$CACHE"; }
[ "$(sb_versions | tr -d ' \n')" = 11 ] || fail "v1: the superblocks are not version 1: $(sb_versions)"
"$BLKCACHE" check --cache "$CACHE" --origin "$ORIGIN" >"$T/v1check" 2>&1 || { cat "$T/v1check"; fail "check rejects a version 1 cache"; }
grep -q "label checked" "$T/v1check" || fail "check did not check the v1 label"
start_server
qio "$T/v1r" "read -P 0x71 1M 2M" "write -P 0x72 8M 1M"
stop_server
[ "$(sb_versions | tr -d ' \n')" = 11 ] || fail "v1: serving rewrote the superblocks with another version: $(sb_versions)"
start_server
qio "$T/v1r2" "read -P 0x71 1M 2M" "read -P 0x72 8M 1M"
stop_server
log "format version 1 cache: recovered after a crash, served, superblocks still version 1"

# ---- cache device signatures ----
for sig in ext4 gpt; do
	rm -f "$CACHE" "$ORIGIN"
	truncate -s 64M "$CACHE" "$ORIGIN"
	if [ $sig = ext4 ]; then
		mkfs.ext4 -q "$CACHE"; want="ext4 filesystem"
	else
		echo 'label: gpt' | sfdisk -q "$CACHE" >/dev/null; want="gpt partition table"
	fi
	sum0=$(sha256sum <"$CACHE")
	out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" 2>&1) && fail "format accepted a cache device holding $sig"
	grep -q "holds $want" <<<"$out" && grep -q -- "--force" <<<"$out" || fail "the refusal does not name $want: $out"
	[ "$sum0" = "$(sha256sum <"$CACHE")" ] || fail "a refused format changed the cache device ($sig)"
	"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --force >/dev/null || fail "format --force over $sig failed"
	log "cache device with $sig: refused ($out), --force formats it"
done

echo "summary: ext4 and xfs cached in place (origin unchanged by format, files identical through the cache and on the origin after detach); wrong origin refused, --origin-moved accepts; --origin-label refused on used tails; cache devices with ext4/GPT refused"
