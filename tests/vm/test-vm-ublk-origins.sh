#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# In the VM (6.12 kernel, ublk_drv): one cache serving two origins, each
# as its own /dev/ublkbN (--ublk=0: ublkb0 and ublkb1).  fio crc32c verify
# randrw on both devices at once (together 2x the cache), 0 errors, each
# device's writes only on its own origin; the server killed with -9 while
# both run fio, restarted with the same --ublk=0: it takes both devices
# over (user recovery) and every write fio verified before the kill, and
# the verify-only replay after it, read back on both.
# vm-args: --disk cache=160M --disk oa=256M --disk ob=256M --timeout 1800
. "$(dirname "$0")/lib-guest.sh"
. "$(dirname "$0")/lib-serve.sh"

CACHE=$(disk_by_serial cache) || fail "no cache disk"
OA=$(disk_by_serial oa) || fail "no disk oa"
OB=$(disk_by_serial ob) || fail "no disk ob"
ORIGIN=""
load_module ublk_drv
wait_for 30 "/dev/ublk-control did not appear" test -c /dev/ublk-control
bounded "$BLKCACHE" format --cache "$CACHE" >/dev/null || fail "format failed"
bounded "$BLKCACHE" origin add --cache "$CACHE" --origin "$OA" --name a --size 45% >/dev/null ||
	fail "origin add a failed"
bounded "$BLKCACHE" origin add --cache "$CACHE" --origin "$OB" --name b --size 45% >/dev/null ||
	fail "origin add b failed"

serve_start --ublk=0
wait_for 60 "no second ublk device" test -b /dev/ublkb1
[ "$(grep -c '^/dev/ublkb' "$SERVER_LOG")" = 2 ] || fail "serve printed $(grep -c '^/dev/ublkb' "$SERVER_LOG") devices, want 2"
for d in 0 1; do
	[ "$(blockdev --getsize64 /dev/ublkb$d)" = $((256 << 20)) ] || fail "/dev/ublkb$d has the wrong size"
done
"$BLKCACHE" origins --control "$CTL" --json >"$T/origins.json" || fail "origins failed"
python3 - "$T/origins.json" <<'PYEOF' || fail "origins does not show a on ublkb0 and b on ublkb1"
import json, sys
o = {x["name"]: x for x in json.load(open(sys.argv[1]))["origins"]}
assert o["a"]["ublk_dev"] in (0, "/dev/ublkb0") and o["b"]["ublk_dev"] in (1, "/dev/ublkb1"), o
PYEOF

fio_job() { # TAG DEV SEED extra...
	bounded fio --name="v$1" --filename="$2" --ioengine="${FIO_ENGINE:-libaio}" --direct=1 --iodepth=16 \
		--rw=randrw --bsrange=4k-64k --size=160M --verify=crc32c --verify_fatal=1 \
		--randseed="$3" --output-format=json --output="$T/fio-$1.json" "${@:4}" >"$T/fio-$1.out" 2>&1
}
fio_job a /dev/ublkb0 11 --do_verify=1 &
pa=$!
fio_job b /dev/ublkb1 22 --do_verify=1 &
pb=$!
wait $pa || { cat "$T/fio-a.out"; fail "fio verify on ublkb0 failed"; }
wait $pb || { cat "$T/fio-b.out"; fail "fio verify on ublkb1 failed"; }
log "fio randrw verify on ublkb0 and ublkb1 at once: 0 errors"

# kill -9 under load; the restarted server takes both devices over.  The
# loads are stopped by SIGTERM below: io_uring, as fio 3.33's libaio engine
# can hang when a signal interrupts its last io_getevents (fio PR 1556).
FIO_ENGINE=io_uring fio_job ka /dev/ublkb0 33 --rw=randwrite --offset=160M --size=80M --time_based --runtime=600 --do_verify=0 --verify=0 &
pka=$!
FIO_ENGINE=io_uring fio_job kb /dev/ublkb1 44 --rw=randwrite --offset=160M --size=80M --time_based --runtime=600 --do_verify=0 --verify=0 &
pkb=$!
w0=$(jfield "$(status_json)" writes)
wait_for 120 "no writes before the kill" writes_above $((w0 + 1000))
serve_kill
serve_start --ublk=0
status_json >"$T/st2.json" || fail "status after the restart failed"
python3 - "$T/st2.json" <<'PYEOF' || fail "the restarted server did not take both devices over"
import json, sys
j = json.load(open(sys.argv[1]))
u = {o["name"]: o.get("ublk") for o in j["origins"]}
assert u["a"] and u["a"]["recovered"] and u["a"]["device"] == "/dev/ublkb0", u
assert u["b"] and u["b"]["recovered"] and u["b"]["device"] == "/dev/ublkb1", u
PYEOF
# The load only had to be running at the kill: stop it (its writes are
# outside the verified region).
pkill -f -- '--name=vka' || true
pkill -f -- '--name=vkb' || true
# A load ends with 0 or, stopped by the signal, 1 (fio's exit status);
# 255 is wait_bounded's "still running after 120 s": a request lost.
for p in $pka $pkb; do
	rc=0
	wait_bounded $p 120 || rc=$?
	[ $rc -ne 255 ] || fail "a load fio did not stop within 120 s of SIGTERM: a request in flight at the kill never came back"
done
fio_job ra /dev/ublkb0 11 --do_verify=1 --verify_only=1 || { cat "$T/fio-ra.out"; fail "after the kill: ublkb0 lost verified data"; }
fio_job rb /dev/ublkb1 22 --do_verify=1 --verify_only=1 || { cat "$T/fio-rb.out"; fail "after the kill: ublkb1 lost verified data"; }
serve_stop
checked "two origins of one cache as /dev/ublkb0 and /dev/ublkb1: concurrent fio verify, kill -9 under load, both devices taken over by the restarted server, verified data intact on both"
