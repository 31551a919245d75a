#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Live attach and detach while other origins serve:
#  - three origins a, b, c run fio crc32c verify randrw;
#  - 'blkcache attach d' meanwhile: d gets its own export and serves (data
#    written through it reads back), and a, b, c keep going (their request
#    counters advance after the attach; fio finishes with 0 errors);
#  - 'blkcache detach c' while a writer streams to c: the detach drains c
#    only; afterwards c's origin file alone holds every write c
#    acknowledged, c's export is gone, the others verify;
#  - the share c held is free again (an origin of that size can be added);
#  - restart: a, b, d are served (c is detached), check is consistent.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
SERVE_NO_ORIGIN=1
uri_of() { echo "nbd+unix:///$1?socket=$SOCK"; }
ofile() { echo "$T/origin-$1.img"; }
rm -f "$CACHE"
truncate -s 96M "$CACHE"
"$BLKCACHE" format --cache "$CACHE" >/dev/null || fail "format failed"
for n in a b c d e; do truncate -s 128M "$(ofile $n)"; done
for n in a b c; do
	"$BLKCACHE" origin add --cache "$CACHE" --origin "$(ofile $n)" --name $n --size 25% >/dev/null ||
		fail "origin add $n failed"
done
start_server
ostat() { "$BLKCACHE" status --control "$CTL" --name "$1" --json; }
ofield() { jfield "$(ostat "$1")" "$2"; }
reqs() { local j; j=$(ostat "$1"); echo $(( $(jfield "$j" reads) + $(jfield "$j" writes) )); }

COMMON=(--ioengine=nbd --bsrange=4k-64k --iodepth=8 --verify=crc32c --verify_fatal=0
	--group_reporting=1 --rw=randrw --rwmixread=30 --size=96M --offset=0)
pids=()
for n in a b; do
	( fio_checked "f$n" 600 "${COMMON[@]}" --name="job-$n" --randseed=$((RANDOM + 1)) \
		--uri="$(uri_of $n)" --do_verify=1 ) &
	pids+=($!)
done
# c: a writer that streams 256 KiB writes (chunk i = byte i % 250 + 1) and
# logs each acknowledged chunk, until its export goes away.
py - "$(uri_of c)" "$T/c.acked" >"$T/cw.out" 2>&1 <<'PYEOF' &
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
K = 256 * 1024
log = open(sys.argv[2], "w", buffering=1)
i = 0
try:
    while True:
        h.pwrite(bytes([(i % 250) + 1]) * K, (i % 512) * K)
        log.write("%d\n" % i)
        i += 1
except nbd.Error as e:
    print("c's writer stopped after %d writes: %s" % (i, e))
PYEOF
CW=$!
track_bg "$CW"
wait_for 120 "the load did not start" status_gt writes 100

# attach d while a, b and c run
ra=$(reqs a) rb=$(reqs b)
"$BLKCACHE" attach d "$(ofile d)" --size 20% --control "$CTL" >"$T/attach.out" 2>&1 ||
	{ cat "$T/attach.out"; fail "attach d failed"; }
log "attach: $(cat "$T/attach.out")"
qemu-io -f raw -c "write -q -P 0xd4 0 4M" -c "flush" "$(uri_of d)" >/dev/null || fail "writing to d failed"
qemu-io -f raw -c "read -q -P 0xd4 0 4M" "$(uri_of d)" >/dev/null || fail "d does not read back its data"
more() { [ "$(reqs "$1")" -gt "$2" ]; }
wait_for 120 "a stalled after the attach" more a "$ra"
wait_for 120 "b stalled after the attach" more b "$rb"
log "d attached and serving; a and b kept going ($ra -> $(reqs a), $rb -> $(reqs b) requests)"

# detach c under its writer's load
wait_for 120 "c's writer did not start" test -s "$T/c.acked"
"$BLKCACHE" detach c --control "$CTL" >"$T/detach.out" 2>&1 || { cat "$T/detach.out"; fail "detach c failed"; }
wait_bounded "$CW" 120 || fail "c's writer did not stop after the detach"
cat "$T/cw.out"
n_acked=$(wc -l <"$T/c.acked")
[ "$n_acked" -gt 0 ] || fail "c acknowledged nothing"
py - "$(ofile c)" "$T/c.acked" <<'PYEOF' || fail "c's origin file lacks acknowledged writes after the detach"
import sys
K = 256 * 1024
want = {}
for line in open(sys.argv[2]):
    i = int(line)
    want[i % 512] = (i % 250) + 1
f = open(sys.argv[1], "rb")
for slot, b in want.items():
    f.seek(slot * K)
    assert f.read(K) == bytes([b]) * K, "chunk slot %d" % slot
print("c's origin holds the newest of %d acknowledged writes" % len(want))
PYEOF
! nbdinfo --size "$(uri_of c)" >/dev/null 2>&1 || fail "c's export still answers after the detach"
for p in "${pids[@]}"; do wait "$p" || fail "fio verify on a or b failed"; done
log "c detached under load ($n_acked writes acknowledged, all on its origin); a and b verified"

"$BLKCACHE" origins --control "$CTL" --json >"$T/origins.json" || fail "origins failed"
"$PY" - "$T/origins.json" <<'PYEOF' || fail "origins does not list a, b, d"
import json, sys
names = sorted(o["name"] for o in json.load(open(sys.argv[1]))["origins"])
assert names == ["a", "b", "d"], names
PYEOF
# c's share is free: an origin of that size fits beside a, b and d.
"$BLKCACHE" attach e "$(ofile e)" --size 25% --control "$CTL" >"$T/attach-e.out" 2>&1 ||
	{ cat "$T/attach-e.out"; fail "attach e into c's freed share failed"; }
stop_server
"$BLKCACHE" check --cache "$CACHE" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "check found problems"; }
start_server
nbdinfo --list "$URI" >"$T/list.out"
for n in a b d e; do grep -q "export=\"$n\"" "$T/list.out" || fail "export $n missing after restart"; done
! grep -q 'export="c"' "$T/list.out" || fail "detached c is served again after restart"
qemu-io -f raw -c "read -q -P 0xd4 0 4M" "$(uri_of d)" >/dev/null || fail "d lost its data across the restart"
stop_server
echo "checked: attach d under load (serves, others keep going), detach c under a writer (origin holds all $n_acked acknowledged writes, export gone, a and b verify), freed share reused by e, restart serves a, b, d, e"
