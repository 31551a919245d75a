#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A Ceph RBD image as the origin (rbd:POOL/IMAGE through librbd) on a
# throwaway single-node cluster (tests/lib-ceph.sh, memstore):
#  - blkcache in front of a 1 GiB image: fio crc32c verify randrw over NBD
#    over 3x the cache, 0 errors; the ring wrapped and wrote back;
#  - flush; `rbd export` of the image alone verifies every block;
#  - kill -9 with dirty data on a locked image (exclusive-lock): the
#    restarted server breaks the dead one's lock at once (not after the
#    watch timeout) and writes it all back; the image alone verifies; a
#    second cache in front of the image in use is refused;
#  - identity: the cache records the cluster fsid, pool and image id: the
#    image renamed (or the options changed) is the same origin, another
#    image under the old name is refused and left untouched;
#  - an RBD image as the cache device (a file origin): kill -9, recovered;
#  - a sharded origin: refused on an image with exclusive-lock (each shard
#    opens the image; the lock would refuse all writers but one), served
#    and flushed on one without;
#  - bad specs, a missing image or pool and a cluster that is down get clear
#    errors (bounded by timeout=S).
# Skips (77) only without the Ceph packages.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"
ceph_available || exit 77
ceph_test_origin memstore 3G 1G
make_images 1G 128M
grep -q "exported size 1073741824 bytes" "$T/format.out" || fail "format: $(cat "$T/format.out")"
"$BLKCACHE" check --cache "$CACHE" >"$T/check0.out" 2>&1 || { cat "$T/check0.out"; fail "check after format"; }
start_server

MIB=$((1024 * 1024))
fio_checked v 600 --name=v --ioengine=nbd --uri="$URI" --rw=randrw --bsrange=4k-64k --iodepth=16 \
	--offset=128M --size=384M --verify=crc32c --verify_fatal=1 --do_verify=1 --randseed=1717
[ "$(fio_get v 'j["write"]["io_bytes"]')" -gt $((128 * MIB)) ] || fail "fio wrote less than the cache"
j=$(status_json)
[ "$(jfield "$j" io_errors)" = 0 ] || fail "io_errors $(jfield "$j" io_errors)"
[ "$(jfield "$j" writeback_errors)" = 0 ] || fail "writeback_errors $(jfield "$j" writeback_errors)"
[ "$(jfield "$j" writeback_blocks)" -gt 0 ] || fail "nothing written back to the image"
[ "$(jfield "$j" head_seq)" -gt "$(jfield "$j" segments_total)" ] || fail "the ring did not wrap"
log "fio verify randrw over 384 MiB (3x the cache) through NBD: 0 errors; $(jfield "$j" writeback_blocks) blocks written back"

ctl_ok flush
[ "$(jfield "$(status_json)" dirty_blocks)" = 0 ] || fail "dirty blocks after flush"
stop_server
rbd export rbd/img "$T/img.raw" >"$T/export.out" 2>&1 || { cat "$T/export.out"; fail "rbd export failed"; }
[ "$(stat -c %s "$T/img.raw")" = $((1024 * MIB)) ] || fail "the export is not 1 GiB"
fio_checked e 600 --name=v --filename="$T/img.raw" --ioengine=psync --rw=randrw --bsrange=4k-64k \
	--offset=128M --size=384M --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_only=1 --randseed=1717
[ "$(fio_get e 'j["read"]["io_bytes"]')" -gt 0 ] || fail "the export verify read nothing"
rm -f "$T/img.raw"
log "flush, then rbd export of the image alone: every block verifies"

# kill -9 with dirty data on an image with the exclusive-lock feature (the
# default): the killed server still holds the lock, and librbd in the new
# one takes it once the old client's watch times out; then writeback runs.
start_server
# A first write back makes this server take the image's lock.
qio "$T/lock.out" "write -q -P 7 900M 1M" "flush"
ctl_ok flush
ctl_ok set writeback_paused 1
fio_checked d 300 --name=d --ioengine=nbd --uri="$URI" --rw=randwrite --bs=16k --iodepth=16 \
	--offset=600M --size=32M --verify=crc32c --do_verify=0 --randseed=99 --end_fsync=1
[ "$(jfield "$(status_json)" dirty_blocks)" -gt 0 ] || fail "no dirty blocks before the kill"
kill9_server
start_server
grep -q "a blkcache of this host that is gone: broken" "$SERVER_LOG" ||
	fail "the restarted server did not take over the killed one's lock"
t0=$(date +%s)
ctl_ok flush
[ "$(jfield "$(status_json)" dirty_blocks)" = 0 ] || fail "dirty blocks after the flush"
log "kill -9 with dirty data on a locked image: the restarted server broke the dead one's lock, flushed in $(($(date +%s) - t0)) s"
# A second cache in front of the image while this server holds it: refused.
truncate -s 64M "$T/c3.img"
out=$(timeout 120 "$BLKCACHE" format --cache "$T/c3.img" --origin "rbd:rbd/img?conf=$CEPH_CONF" 2>&1) &&
	fail "a second cache was formatted in front of an image in use"
grep -q "another client holds it" <<<"$out" || fail "second cache: unclear refusal: $out"
grep -q "librbd" <<<"$out" && fail "librbd printed to the terminal: $out"
log "a second cache in front of the image in use: refused ($(tail -1 <<<"$out"))"
stop_server
rbd export rbd/img "$T/img.raw" >"$T/export.out" 2>&1 || { cat "$T/export.out"; fail "rbd export failed"; }
fio_checked e2 600 --name=d --filename="$T/img.raw" --ioengine=psync --rw=randwrite --bs=16k \
	--offset=600M --size=32M --verify=crc32c --do_verify=1 --verify_only=1 --randseed=99
rm -f "$T/img.raw"

# Identity: options changed, image renamed: the same origin.
ORIGIN="rbd:rbd/img?conf=$CEPH_CONF&timeout=10"
start_server
grep -q "same volume" "$SERVER_LOG" || fail "options changed: no 'same volume' in the log"
stop_server
rbd rename rbd/img rbd/img2 || fail "rbd rename failed"
ORIGIN="rbd:rbd/img2?conf=$CEPH_CONF"
start_server
grep -q "same volume" "$SERVER_LOG" || fail "renamed image: no 'same volume' in the log"
stop_server
rbd create --size 1G rbd/img || fail "rbd create failed"
out=$(timeout 60 "$BLKCACHE" serve --cache "$CACHE" --origin "rbd:rbd/img?conf=$CEPH_CONF" --socket "$T/x.sock" 2>&1) &&
	fail "serve accepted another image under the recorded name"
grep -q "is not the origin of cache" <<<"$out" && grep -q "image" <<<"$out" ||
	fail "another image: unclear refusal: $out"
[ -z "$(rbd diff rbd/img)" ] || fail "the refused image was written to"
log "identity: renamed image and changed options accepted; another image under the old name refused, untouched"

# An RBD image as the cache device too (symmetry): a file origin behind it,
# data written, the server killed, recovered from the image's log.
rbd create --size 128M rbd/cachevol || fail "rbd create failed"
ORIGIN=$T/origin-b.img
truncate -s 256M "$ORIGIN"
CACHE_SAVE=$CACHE
CACHE="rbd:rbd/cachevol?conf=$CEPH_CONF"
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >"$T/format-b.out" 2>&1 ||
	{ cat "$T/format-b.out"; fail "format with an rbd: cache device failed"; }
start_server
qio "$T/b1.out" "write -q -P 0x5a 1M 4M" "flush"
kill9_server
start_server
qio "$T/b2.out" "read -q -P 0x5a 1M 4M"
[ "$(jfield "$(status_json)" recovered_segments)" -gt 0 ] || fail "nothing recovered from the rbd: cache"
ctl_ok flush
stop_server
cmp -n $((5 * 1048576)) <(dd if="$ORIGIN" bs=1M count=5 status=none) \
	<(head -c 1M /dev/zero; head -c 4M /dev/zero | tr '\0' '\132') || fail "the origin behind an rbd: cache differs"
CACHE=$CACHE_SAVE
log "an RBD image as the cache device: written, kill -9, recovered from its log, flushed to the file origin"

# A sharded origin (format --shards 2: the image open once per shard): an
# image with the exclusive-lock feature is refused with what to do; one
# without it is served, written and flushed.
CACHE_SAVE=$CACHE
CACHE=$T/cache-s.img
truncate -s 64M "$CACHE"
rbd create --size 256M rbd/shl || fail "rbd create failed"
ORIGIN="rbd:rbd/shl?conf=$CEPH_CONF"
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --shards 2 >"$T/format-s.out" 2>&1 ||
	{ cat "$T/format-s.out"; fail "format --shards 2 on an rbd: origin failed"; }
out=$(timeout 120 "$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --socket "$T/y.sock" 2>&1) &&
	fail "a sharded origin on an image with exclusive-lock was served"
grep -q "rbd feature disable POOL/IMAGE" <<<"$out" || fail "sharded locked image: unclear refusal: $out"
rbd feature disable rbd/shl fast-diff object-map exclusive-lock || fail "rbd feature disable failed"
start_server
qio "$T/s1.out" "write -q -P 0x21 0 8M" "flush"
ctl_ok flush
[ "$(jfield "$(status_json)" writeback_errors)" = 0 ] || fail "writeback errors on the sharded rbd: origin"
stop_server
rbd export rbd/shl "$T/shl.raw" >/dev/null 2>&1 || fail "rbd export failed"
cmp -n $((8 * 1048576)) "$T/shl.raw" <(head -c 8M /dev/zero | tr '\0' '\041') ||
	fail "the sharded rbd: origin does not hold what was written"
rm -f "$T/shl.raw"
CACHE=$CACHE_SAVE
log "sharded origin: an image with exclusive-lock refused with what to do; without it served, flushed, the image holds the data"

# Clear errors.
expect_err() { # SPEC TEXT
	local o
	o=$(timeout 120 "$BLKCACHE" format --cache "$T/c2.img" --origin "$1" 2>&1) && fail "format accepted $1"
	grep -q -- "$2" <<<"$o" || fail "format $1: want '$2' in: $o"
	grep -q "Segmentation\|AddressSanitizer" <<<"$o" && fail "format $1 crashed: $o"
	return 0
}
truncate -s 64M "$T/c2.img"
expect_err "rbd:rbd/nope?conf=$CEPH_CONF" "cannot open image 'nope' in pool 'rbd'"
expect_err "rbd:nopool/x?conf=$CEPH_CONF" "no pool 'nopool'"
expect_err "rbd:rbd" "want rbd:POOL/IMAGE"
expect_err "rbd:rbd/img?conf=$CEPH_CONF&bogus=1" "unknown or bad option 'bogus=1'"
expect_err "rbd:rbd/img?conf=$T/none.conf" "cannot read $T/none.conf"
ceph_stop
expect_err "rbd:rbd/img?conf=$CEPH_CONF&timeout=3" "cannot reach the cluster"
log "bad specs, a missing image or pool, a missing conf and a stopped cluster: clear errors"
echo "checked: 1 GiB RBD image as origin: fio verify randrw over 3x the cache through NBD 0 errors; flush; rbd export of the image alone verifies; kill -9 with dirty data on a locked image: the dead server's lock broken at restart, flushed, image verifies; a second cache on the image in use refused; renamed image and changed options are the same origin, another image under the old name refused untouched; an RBD image as cache device recovers after kill -9; sharded origin refused with exclusive-lock, served without; clear errors for bad specs, missing image/pool/conf, stopped cluster"
