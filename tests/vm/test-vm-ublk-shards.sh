#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# In the VM (6.12 kernel, ublk_drv): an origin of 2 shards (format
# --shards 2) served as /dev/ublkb0 -- one hardware queue per shard, queue
# k served on shard k's thread, which hands each request's parts to its own
# shard directly and to the other in batches.  fio crc32c verify randrw
# over 3x the cache with 0 errors; status says 2 shards and counts both;
# fio jobs pinned to each CPU reach both queues (ublk_queue_requests); kill -9 under load, the restarted server
# (both shards recovering in parallel) takes the device over and the
# verified data reads back, and the load fio (SIGTERM) ends: every request
# in flight at the kill came back; ext4 made on it is clean after a clean
# stop.
# vm-args: --disk cache=96M --disk origin=512M --timeout 1800
. "$(dirname "$0")/lib-guest.sh"
. "$(dirname "$0")/lib-serve.sh"

CACHE=$(disk_by_serial cache) || fail "no cache disk"
ORIGIN=$(disk_by_serial origin) || fail "no origin disk"
load_module ublk_drv
wait_for 30 "/dev/ublk-control did not appear" test -c /dev/ublk-control
bounded "$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --shards 2 --stripe 256K \
	>"$T/format.out" 2>&1 || { cat "$T/format.out"; fail "blkcache format failed"; }
grep -q "as 2 shards" "$T/format.out" || fail "format made no shards: $(cat "$T/format.out")"

serve_start --ublk=0
[ "$UBLK_DEV" = /dev/ublkb0 ] || fail "serve --ublk=0 made $UBLK_DEV"
[ "$(jfield "$(cat "$T/status.json")" shards)" = 2 ] || fail "status does not say 2 shards"
fio_job() { # TAG extra...
	bounded fio --name="v$1" --filename="$UBLK_DEV" --ioengine=libaio --direct=1 --iodepth=32 \
		--rw=randrw --bsrange=4k-64k --size=288M --verify=crc32c --verify_fatal=1 \
		--randseed=77 --output-format=json --output="$T/fio-$1.json" "${@:2}" >"$T/fio-$1.out" 2>&1
}
fio_job a --do_verify=1 || { cat "$T/fio-a.out"; fail "fio verify on the sharded ublk device failed"; }
st=$(status_json)
[ "$(jfield "$st" writes_absorbed_blocks)" -gt $((100 * 256)) ] || fail "status counts too few absorbed blocks"
[ "$(jfield "$st" io_errors)" = 0 ] || fail "io_errors $(jfield "$st" io_errors)"
log "fio randrw verify over 3x the cache through 2 shards: 0 errors"

# One hardware queue per shard thread: fio jobs pinned to each CPU reach
# both queues (blk-mq maps CPU k to queue k), and each verifies its region.
bounded fio --name=q --filename="$UBLK_DEV" --ioengine=libaio --direct=1 --iodepth=16 \
	--rw=randwrite --bs=4k --offset=300M --size=48M --offset_increment=48M --numjobs=2 \
	--cpus_allowed=0,1 --cpus_allowed_policy=split --verify=crc32c --verify_fatal=1 \
	--do_verify=1 >"$T/fio-q.out" 2>&1 || { cat "$T/fio-q.out"; fail "fio on both queues failed"; }
python3 - "$(status_json)" <<'PYEOF' || fail "the device does not serve a queue per shard"
import json, sys
j = json.loads(sys.argv[1])
u = j["origins"][0]["ublk"]
assert u["queues"] == 2 and len(u["queue_requests"]) == 2, u
assert all(n > 1000 for n in u["queue_requests"]), u
PYEOF
log "a queue per shard thread: $(jfield "$(status_json)" ublk_queue_requests) requests"

# io_uring: the load is stopped by SIGTERM, and fio 3.33's libaio engine can
# hang when a signal interrupts its last io_getevents (fio PR 1556).
bounded fio --name=load --filename="$UBLK_DEV" --ioengine=io_uring --direct=1 --iodepth=16 \
	--rw=randwrite --bs=4k --offset=300M --size=100M --time_based --runtime=600 \
	--output="$T/load.out" >/dev/null 2>&1 &
pload=$!
w0=$(jfield "$(status_json)" writes)
wait_for 120 "no writes under load" writes_above $((w0 + 2000))
serve_kill
serve_start --ublk=0
python3 - "$T/status.json" <<'PYEOF' || fail "the restarted server did not take the device over"
import json, sys
j = json.load(open(sys.argv[1]))
u = j["origins"][0].get("ublk")
assert u and u["recovered"] and u["device"] == "/dev/ublkb0" and j["shards"] == 2, (u, j.get("shards"))
PYEOF
# The load only had to be running at the kill: stop fio itself ($pload is
# the subshell running it), before the device is used for anything else.
# It ends only once every request it had in flight at the kill has come
# back through the new server.
pkill -f -- '--name=load' || true
wait_bounded "$pload" 30 || true
load_gone() { ! pgrep -f -- '--name=load' >/dev/null; }
deadline=$(($(date +%s) + 60))
while ! load_gone && [ "$(date +%s)" -lt $deadline ]; do sleep 0.2; done
load_gone || fail "the load fio did not stop within 60 s of SIGTERM: in flight $(cat /sys/block/ublkb0/inflight) (block layer), $(jfield "$(status_json)" ublk_inflight) (server)"
fio_job r --do_verify=1 --verify_only=1 || { cat "$T/fio-r.out"; fail "verified data lost after kill -9"; }
log "kill -9 under load: device taken over, verified data intact"

mkfs.ext4 -q -F "$UBLK_DEV" || fail "mkfs.ext4 failed"
mkdir -p /mnt/s && mount "$UBLK_DEV" /mnt/s || fail "mount failed"
for i in $(seq 1 10); do
	head -c 1M /dev/urandom >/mnt/s/f$i && sync /mnt/s/f$i || fail "writing f$i failed"
done
sha=$(cat /mnt/s/f* | sha256sum)
umount /mnt/s || fail "umount failed"
serve_stop
serve_start --ublk=0
e2fsck -fn "$UBLK_DEV" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "e2fsck found problems"; }
mount "$UBLK_DEV" /mnt/s || fail "mount after restart failed"
[ "$(cat /mnt/s/f* | sha256sum)" = "$sha" ] || fail "files differ after restart"
umount /mnt/s
serve_stop
if dmesg | grep -q "I/O error, dev ublkb0"; then
	fail "the kernel logged IO errors on the device: $(dmesg | grep 'I/O error, dev ublkb0' | tail -3)"
fi
checked "a 2-shard origin as /dev/ublkb0, a queue per shard thread: fio randrw verify over 3x the cache 0 errors, status 2 shards, both queues serve; kill -9 under load, taken over, verified data intact, the load's requests all came back (it stopped on SIGTERM); ext4 clean and its files intact after a restart"
