#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Staged acks (serve --staged-acks=DIR): a write acknowledged without any
# FLUSH survives kill -9 of the server.  Six cycles: a libnbd client writes
# 4 KiB blocks one at a time (each acknowledged before the next; it logs
# every ack after it arrives), the server is killed with SIGKILL after a
# random number of acks (half the time while the client is still writing,
# half the time once it wrote everything and waits), and restarted: the
# server says it replayed the staging file and every logged block reads back
# as written.  A cycle with --buffered-acks shows the test can tell: an
# acknowledged write is lost there.  At the end every cycle's blocks are
# verified again, a clean stop leaves no staging file, and a staging
# directory not on tmpfs is refused with a clear error.
. "$(dirname "$0")/lib.sh"

[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] || {
	echo "SKIP: /dev/shm is not a tmpfs here"
	exit 77
}
SD=$(mktemp -d /dev/shm/blkcache-it.XXXXXX)
trap 'rc=$?; rm -rf "$SD"; (exit $rc); _cleanup' EXIT  # and lib.sh's cleanup
CYCLES=6
BLOCKS=120        # per cycle, below one segment (1 MiB = 256 blocks): all staged
make_images 256M 64M

# writer CYCLE N: write blocks CYCLE*BLOCKS .. +N-1, print each acked index,
# then wait to be killed (the server's death ends it).
writer() {
	py - "$SOCK" "$1" "$2" <<'EOF'
import nbd, sys, time
sock, cycle, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pace = 0.01 if cycle % 2 == 0 else 0  # even cycles: likely still writing at the kill
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + sock)
for i in range(n):
    blk = cycle * 120 + i
    h.pwrite(((b"c%03d-b%06d-" % (cycle, blk)) * 316)[:4096], blk * 4096)
    print(i, flush=True)
    time.sleep(pace)  # only paces the load: the verdict counts the logged acks
try:
    while True:
        h.pread(4096, 0)
        time.sleep(0.05)  # idles until the server dies; decides nothing
except nbd.Error:
    pass
EOF
}

# verify CYCLE N: blocks of the cycle's first N writes read back as written.
verify() {
	py - "$SOCK" "$1" "$2" <<'EOF'
import nbd, sys
sock, cycle, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + sock)
bad = [i for i in range(n)
       if h.pread(4096, (cycle * 120 + i) * 4096) != ((b"c%03d-b%06d-" % (cycle, cycle * 120 + i)) * 316)[:4096]]
h.shutdown()
if bad:
    sys.exit("cycle %d: %d of %d acknowledged blocks lost (first: write %d)" % (cycle, len(bad), n, bad[0]))
EOF
}

declare -A ACKED
run_cycle() { # CYCLE ACK-OPTION
	local c=$1 opt=$2 stop n
	start_server "$opt"
	if [ "$opt" != --buffered-acks ]; then
		status_is acks staged || fail "status does not say the acks are staged: $(status_json)"
	fi
	stop=$((10 + RANDOM % (BLOCKS - 10)))
	[ $((c % 2)) -eq 0 ] || stop=$BLOCKS
	writer "$c" "$BLOCKS" >"$T/acks.$c" 2>"$T/writer.$c.log" &
	local wpid=$!
	track_bg "$wpid"
	wait_for 120 "the writer's first $stop acks" \
		bash -c "[ \$(wc -l <'$T/acks.$c') -ge $stop ]"
	kill9_server
	wait "$wpid" 2>/dev/null || true
	n=$(wc -l <"$T/acks.$c")
	ACKED[$c]=$n
	start_server "$opt"
	log "cycle $c ($opt): $n writes acknowledged before kill -9"
}

for c in $(seq 1 $CYCLES); do
	run_cycle "$c" "--staged-acks=$SD"
	status_gt staged_replayed 0 || fail "cycle $c: the restarted server replayed nothing: $(status_json)"
	grep -q 'staging: replayed' "$SERVER_LOG" || fail "cycle $c: no replay in the server log"
	verify "$c" "${ACKED[$c]}" || fail "cycle $c: acknowledged writes lost by kill -9"
	stop_server
done

# Negative control: buffered acks lose what the RAM buffer held.
c=$((CYCLES + 1))
run_cycle "$c" --buffered-acks
if verify "$c" "${ACKED[$c]}" 2>/dev/null; then
	fail "buffered acks kept all ${ACKED[$c]} acknowledged writes across kill -9: the test cannot tell"
fi
stop_server

start_server "--staged-acks=$SD"
for c in $(seq 1 $CYCLES); do
	verify "$c" "${ACKED[$c]}" || fail "cycle $c: lost later"
done
stop_server
[ -z "$(ls -A "$SD")" ] || fail "a clean stop left files in the staging directory: $(ls "$SD")"

# A staging directory that is not on tmpfs is refused, clearly.
if [ "$(stat -f -c %T "$T")" != tmpfs ]; then
	rc=0
	out=$("$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --socket "$SOCK" --control "$CTL" \
		--staged-acks="$T" 2>&1) || rc=$?
	[ "$rc" -ne 0 ] || fail "serve accepted a staging directory on disk"
	echo "$out" | grep -q "not on tmpfs" || fail "unclear refusal of a disk staging directory: $out"
fi
echo "checked: $CYCLES kill -9 cycles with staged acks (${ACKED[*]} acknowledged writes, no FLUSH) all intact after restart and again at the end; buffered acks lose writes; clean stop removes the file; disk directory refused"
