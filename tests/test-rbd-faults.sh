#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Cluster faults with a Ceph RBD image as the origin (bluestore, which keeps
# its data across an OSD restart; origin ops bounded by timeout=3):
#  - the OSD stopped under load: hits are still served (verified), new
#    writes are absorbed, writeback reports failing with a backoff and keeps
#    every dirty block; writes go on until the cache is full and then wait;
#  - the OSD restarted: the waiting writes complete, writeback drains, the
#    failing state clears, and after a flush `rbd export` of the image alone
#    verifies every region written before, during and after the outage.
# Skips (77) only without the Ceph packages.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ceph.sh"
ceph_available || exit 77
ceph_test_origin bluestore 4G 1G timeout=3
make_images 1G 64M
# Writes wait for space as long as the outage lasts (the default would fail
# them after a minute).
start_server --set write_timeout_ms=900000

# job TAG OFFSET SIZE extra...: 16k random writes with crc32c headers, to
# $TGT (the NBD export; the exported image file at the end).
TGT="--ioengine=nbd --uri=$URI"
job() {
	echo --name="$1" $TGT --rw=randwrite --bs=16k --iodepth=8 \
		--offset="$2" --size="$3" --verify=crc32c --randseed=$((${#1} * 31 + 7)) "${@:4}"
}
# shellcheck disable=SC2046
fio_checked a 300 $(job a 0 16M) --do_verify=1 --end_fsync=1
ctl_ok flush
log "region A written, verified and flushed to the image"

# Under load, the OSD stops.
# shellcheck disable=SC2046
# (paced, so that it does not push region A out of the cache)
command fio $(job load 512M 8M) --time_based --runtime=3600 --verify=0 --rate_iops=200 \
	>"$T/load.out" 2>&1 &
LOAD=$!
track_bg "$LOAD"
w0=$(status_field writes)
wait_for 120 "the load sent no writes" status_gt writes $((w0 + 100))
ceph_osd_stop || fail "the OSD did not stop"
# The load stops: idle writeback (writeback_idle_ms) then tries the origin.
kill "$LOAD" 2>/dev/null; wait_bounded "$LOAD" 60 || true
wait_for 120 "writeback never reported failing with the OSD down" status_is writeback_failing 1
# The state may flap (a FLUSH of nothing succeeds with the OSD down and
# resets it): wait for the backoff rather than read it once.
wait_for 120 "no writeback backoff (writeback_retry_ms stays 0)" status_gt writeback_retry_ms 0
j=$(status_json)
[ "$(jfield "$j" writeback_errors)" -gt 0 ] || fail "writeback_failing but no writeback_errors"
log "OSD stopped under load: writeback failing ($(jfield "$j" writeback_last_error)), retry in $(jfield "$j" writeback_retry_ms) ms, $(jfield "$j" dirty_blocks) dirty blocks kept"

h0=$(status_field read_hit_blocks)
# shellcheck disable=SC2046
fio_checked ar 300 $(job a 0 16M) --do_verify=1 --verify_only=1
[ "$(status_field read_hit_blocks)" -gt "$h0" ] || fail "region A was not read from the cache"
# shellcheck disable=SC2046
fio_checked b 300 $(job b 64M 8M) --do_verify=1 --end_fsync=1
log "OSD down: region A read back from the cache and verified; region B (8 MiB) absorbed and verified"

# Writes until the cache is full: they then wait for the origin.
# shellcheck disable=SC2046
command fio $(job c 128M 160M) --do_verify=0 --end_fsync=1 --output="$T/c.out" >"$T/c.err" 2>&1 &
CJOB=$!
track_bg "$CJOB"
wait_for 300 "the cache never filled with the OSD down" status_gt cache_full_waits 0
kill -0 "$CJOB" 2>/dev/null || fail "the writer of region C finished with the OSD down: nothing waited"
log "cache full with the OSD down: $(status_field dirty_blocks) dirty blocks, writes wait"

ceph_osd_start || fail "the OSD did not come back"
rc=0
wait_bounded "$CJOB" 600 || rc=$?
[ $rc -eq 0 ] || { cat "$T/c.err"; fail "the writer of region C failed or hung after the OSD came back (status $rc)"; }
wait_for 300 "writeback still failing after the OSD came back" status_is writeback_failing 0
ctl_ok flush
j=$(status_json)
[ "$(jfield "$j" dirty_blocks)" = 0 ] || fail "dirty blocks after the flush"
[ "$(jfield "$j" io_errors)" = 0 ] || fail "io_errors $(jfield "$j" io_errors)"
[ "$(jfield "$j" write_timeouts)" = 0 ] || fail "writes timed out"
log "OSD back: region C's writes completed, writeback drained ($(jfield "$j" writeback_errors) failed attempts retried), flushed"
stop_server
rbd export rbd/img "$T/img.raw" >"$T/export.out" 2>&1 || { cat "$T/export.out"; fail "rbd export failed"; }
TGT="--ioengine=psync --filename=$T/img.raw"
for r in "a 0 16M" "b 64M 8M" "c 128M 160M"; do
	read -r tag off sz <<<"$r"
	# shellcheck disable=SC2046
	fio_checked "e$tag" 300 $(job "$tag" "$off" "$sz") --do_verify=1 --verify_only=1
	[ "$(fio_get "e$tag" 'j["read"]["io_bytes"]')" -gt 0 ] || fail "region $tag: nothing verified"
done
echo "checked: RBD origin, OSD stopped under load: hits served and verified, writes absorbed, writeback failing with backoff, writes wait when the cache is full; OSD restarted: waiting writes done, writeback drained, flushed; rbd export of the image alone verifies the regions written before, during and after the outage"
