#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# kill -9 loop with two origins on one cache: in every cycle a writer per
# origin streams writes to its own export, each followed by a FLUSH of that
# export, and logs a write once its FLUSH is acknowledged; the server is
# killed at a random moment (the writers are mid-stream), restarted, and
# every logged write of each origin must read back through its export --
# one origin's FLUSH makes its own writes durable, whatever the other does.
# At the end both origins are flushed to their origin files, which alone
# hold every logged write.
. "$(dirname "$0")/lib.sh"

SERVE_NO_ORIGIN=1
CYCLES=5
uri_of() { echo "nbd+unix:///$1?socket=$SOCK"; }
rm -f "$CACHE"
truncate -s 48M "$CACHE"
"$BLKCACHE" format --cache "$CACHE" >/dev/null || fail "format failed"
for n in a b; do
	truncate -s 64M "$T/origin-$n.img"
	"$BLKCACHE" origin add --cache "$CACHE" --origin "$T/origin-$n.img" --name $n --size 45% >/dev/null ||
		fail "origin add $n failed"
done

# writer NAME CYCLE: 64 KiB writes at pseudo-random slots, value = (cycle,
# sequence), each followed by FLUSH; logs "slot cycle seq" once flushed.
writer() {
	py - "$(uri_of "$1")" "$2" "$T/log.$1" >>"$T/writer.$1.out" 2>&1 <<'PYEOF'
import random, struct, sys, nbd
uri, cyc, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
h = nbd.NBD(); h.connect_uri(uri)
K = 64 * 1024
rnd = random.Random(cyc * 7919)
log = open(path, "a", buffering=1)
seq = 0
try:
    while True:
        slot = rnd.randrange(1024)
        h.pwrite(struct.pack("<QQ", cyc, seq) * (K // 16), slot * K)
        h.flush()
        log.write("%d %d %d\n" % (slot, cyc, seq))
        seq += 1
except nbd.Error:
    pass
PYEOF
}

# verify NAME URI: the newest logged write of each slot reads back.
verify() {
	py - "$2" "$T/log.$1" <<'PYEOF'
import struct, sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
K = 64 * 1024
want = {}
for line in open(sys.argv[2]):
    slot, cyc, seq = map(int, line.split())
    want[slot] = (cyc, seq)
for slot, (cyc, seq) in want.items():
    got = struct.unpack_from("<QQ", h.pread(512, slot * K))
    # A later write of the slot may have landed without being logged (its
    # FLUSH was cut short by the kill): never an older one.
    assert got >= (cyc, seq), "slot %d: (%d, %d), want (%d, %d) or later" % (slot, got[0], got[1], cyc, seq)
print("%d slots verified" % len(want))
PYEOF
}

: >"$T/log.a"
: >"$T/log.b"
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
	start_server
	for n in a b; do verify $n "$(uri_of $n)" >/dev/null || fail "cycle $cycle: origin $n lost flushed writes"; done
	before_a=$(wc -l <"$T/log.a")
	before_b=$(wc -l <"$T/log.b")
	writer a $cycle &
	WA=$!
	writer b $cycle &
	WB=$!
	track_bg "$WA"
	track_bg "$WB"
	# Kill once both writers have made progress, then after a random delay
	# (the delay only picks the moment; no verdict depends on it).
	more() { [ "$(wc -l <"$T/log.$1")" -gt "$2" ]; }
	wait_for 120 "writer a made no progress" more a $((before_a + 20))
	wait_for 120 "writer b made no progress" more b $((before_b + 20))
	sleep "$(random_delay 0 500)"
	kill9_server
	wait_bounded "$WA" 30 || true
	wait_bounded "$WB" 30 || true
	log "cycle $cycle: killed with $(wc -l <"$T/log.a") / $(wc -l <"$T/log.b") flushed writes logged"
done
start_server
for n in a b; do verify $n "$(uri_of $n)" || fail "origin $n lost flushed writes"; done
"$BLKCACHE" flush --control "$CTL" >/dev/null || fail "flush failed"
stop_server
for n in a b; do
	nbdkit_start "$T/f.sock" "$T/nbdkit.$n.log" --readonly file "$T/origin-$n.img"
	verify $n "nbd+unix:///?socket=$T/f.sock" >/dev/null || fail "origin file $n lacks flushed writes"
	nbdkit_stop "$NBDKIT_PID"
done
echo "checked: $CYCLES kill -9 cycles with writers on two origins (each write FLUSHed on its own export): every flushed write of each origin read back after every restart, and from its origin file after flush"
