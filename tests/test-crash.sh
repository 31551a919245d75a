#!/bin/bash
# Crash loop: every FLUSH-acknowledged write must survive kill -9 of the server.
#
# Each cycle runs fio (ioengine=nbd, randwrite, iodepth=1, fsync=1: every write
# is followed by an NBD FLUSH before the next write is issued, verify=crc32c,
# verify_state_save=1) on its own 16 MiB slot, optionally with a background
# writer hammering another region (ring wrap, writeback, cache-full waits),
# kills the server with SIGKILL after a random 0.5-3 s, restarts it, and runs
# fio verify_only with the saved state.  At the end all slots are verified
# again (they must survive later crashes, recoveries and writeback too).
#
# fio 3.33's saved state counts the last completed write as verifiable even
# when its FLUSH failed (the connection died), and fio issues one more write
# after a failed flush.  So the state is patched to exclude the last two
# writes: with iodepth=1 and fsync=1 every write before those had its FLUSH
# acknowledged (the state file CRC is recomputed; the patcher first checks it
# reproduces fio's own CRC).  The verify pass must read exactly N-2 blocks.
# fio is rate-limited (400 writes/s) so that it is normally still writing when
# the kill comes; if it did finish its slot first, all of it is verified (the
# rate only paces the load: no verdict depends on it).
# Every cycle uses its own slot (zeroed first if reused): fio's crc32c check
# does not notice a stale but self-consistent fio block from an older run.
#
# BLKCACHE_CRASH_CYCLES=N (default 20) sets the number of cycles.
. "$(dirname "$0")/lib.sh"

CYCLES=${BLKCACHE_CRASH_CYCLES:-20}
MIB=$((1024 * 1024))
SLOT=$((16 * MIB))
NSLOTS=24                      # slots in [0, 384 MiB); background load above
make_images 512M 32M --data-crc   # reads also check every cached block's CRC32C
start_server

# patch_state FILE: print "N VERIFY" (issued writes, blocks to verify) and
# rewrite FILE so that fio verifies only writes 0..N-3.
patch_state() {
	py - "$1" <<'EOF'
import os, struct, sys
sys.path.insert(0, os.path.join(os.environ["BLKCACHE_SRC"], "tests"))
import cachetool
path = sys.argv[1]
def crc32c(data):
    return cachetool.crc32c(data) ^ 0xffffffff  # fio_crc32c: init ~0, no final inversion
d = open(path, "rb").read()
ver, size, crc = struct.unpack_from("<QQQ", d, 0)
p = bytearray(d[24:])
def die(msg):
    sys.stderr.write("verify state %s: %s\n" % (path, msg)); sys.exit(1)
if ver != 3:
    die("version %d, this test understands fio's version 3 (fio 3.33)" % ver)
if size != len(p) or crc32c(bytes(p)) != crc:
    die("size/CRC do not match (size %d, have %d bytes)" % (size, len(p)))
# struct thread_io_list (v3): u64 no_comps, u32 depth, u32 nofiles, u64 numberio,
# u64 index, rand state (56 bytes), char name[64], file_comp comps[no_comps]
no_comps, depth, nofiles, numberio = struct.unpack_from("<QIIQ", p, 0)
base = 8 + 4 + 4 + 8 + 8 + 56 + 64
name = bytes(p[8 + 4 + 4 + 8 + 8 + 56:base]).rstrip(b"\0").decode()
# fio keeps room for depth completions; no_comps of them are filled (0 when
# the kill came before the first write completed).
if depth != 1 or nofiles != 1 or name != "crash" or no_comps > depth or \
        len(p) not in (base + 16 * no_comps, base + 16 * depth):
    die("unexpected layout: depth %d nofiles %d name %r comps %d len %d"
        % (depth, nofiles, name, no_comps, len(p)))
newn = max(0, numberio - 1)
q = bytearray(p[:base])
struct.pack_into("<QIIQ", q, 0, 0, depth, nofiles, newn)
open(path, "wb").write(struct.pack("<QQQ", 3, len(q), crc32c(bytes(q))) + bytes(q))
print(numberio, max(0, numberio - 2))
EOF
}

# fio_crash_opts SLOT SEED: the job definition shared by writer and verifier.
fio_crash_opts() {
	echo --name=crash --ioengine=nbd --uri="$URI" --rw=randwrite --bsrange=4k-16k \
		--iodepth=1 --fsync=1 --verify=crc32c --offset=$(($1 * SLOT)) --size=$SLOT \
		--randseed="$2" --group_reporting=1 --rate_iops=400
}

# verify_slot DIR SLOT SEED WANT: verify-only with the (patched) state in DIR
# (if there is one); require no error and exactly WANT blocks read back.
verify_slot() {
	local dir=$1 slot=$2 seed=$3 want=$4 rc=0 got load=0
	[ -f "$dir/local-crash-0-verify.state" ] && load=1
	# shellcheck disable=SC2046
	(cd "$dir" && fio $(fio_crash_opts "$slot" "$seed") --do_verify=1 --verify_only=1 --verify_state_save=0 \
		--verify_state_load=$load --output-format=json --output="$dir/verify.json") \
		2>"$dir/verify.err" || rc=$?
	if [ $rc -ne 0 ] || grep -qE 'verify|bad magic|crc' "$dir/verify.err"; then
		head -n 20 "$dir/verify.err"
		fail "slot $slot: fio verify-only failed (exit $rc): FLUSH-acknowledged data lost or corrupted"
	fi
	got=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["read"]["total_ios"])' \
		"$dir/verify.json")
	[ "$got" -eq "$want" ] || fail "slot $slot: fio verified $got blocks, expected $want"
}

base_seed=$((RANDOM * 7 + 11))
log "$CYCLES cycles, base seed $base_seed"
total_verified=0
declare -A slot_dir slot_seed slot_want
for ((c = 1; c <= CYCLES; c++)); do
	slot=$(( (c - 1) % NSLOTS ))
	seed=$((base_seed + c))
	dir=$T/cycle$c
	mkdir -p "$dir"
	# A reused slot must not hold self-consistent fio blocks of an older cycle.
	if [ -n "${slot_dir[$slot]:-}" ]; then
		qio "$dir/zero.out" "write -q -z $((slot * SLOT)) $SLOT" "flush"
	fi
	bg=""
	if (( c % 2 == 0 )); then
		command fio --name=bg --ioengine=nbd --uri="$URI" --rw=randwrite --bs=64k --iodepth=16 \
			--offset=384M --size=127M --time_based --runtime=60 \
			>"$dir/bg.out" 2>&1 &
		bg=$!
		track_bg "$bg"
	fi
	# shellcheck disable=SC2046
	(cd "$dir" && exec fio $(fio_crash_opts "$slot" "$seed") --do_verify=0 \
		--verify_state_save=1 >"$dir/write.out" 2>&1) &
	fpid=$!
	track_bg "$fpid"
	# Kill at a random moment after fio started writing (a loaded machine
	# may take a while to start fio).  The delay only picks the moment: the
	# verification below holds wherever the kill lands, and a fio that
	# finished its slot first is verified whole.
	w0=$(status_field writes)
	wait_for 120 "cycle $c: fio sent no write to the server" status_gt writes "$w0"
	delay=$(random_delay 500 3000)
	sleep "$delay"
	writes_seen=$(( $(status_field writes) - w0 ))
	kill9_server
	frc=0
	wait_bounded "$fpid" 60 || frc=$?
	[ $frc -ne 255 ] || fail "cycle $c: fio did not exit within 60 s after the server was killed"
	if [ -n "$bg" ]; then wait_bounded "$bg" 60 || true; fi
	[ "$writes_seen" -gt 0 ] || fail "cycle $c: the server saw no writes before the kill"
	state=$dir/local-crash-0-verify.state
	if [ $frc -eq 0 ]; then
		# fio completed the whole slot (every write flushed) before the kill.
		rm -f "$state"
		nio=$(grep -oE 'issued rwts: total=0,[0-9]+' "$dir/write.out" | sed 's/.*,//')
		[ -n "$nio" ] || fail "cycle $c: cannot read the write count of a completed fio run"
		want=$nio
	else
		[ -f "$state" ] || { tail -n 20 "$dir/write.out"; fail "cycle $c: fio saved no verify state"; }
		read -r nio want < <(patch_state "$state") || fail "cycle $c: cannot patch the fio verify state"
	fi
	start_server
	rs=$(status_field recovered_segments)
	verify_slot "$dir" "$slot" "$seed" "$want"
	total_verified=$((total_verified + want))
	slot_dir[$slot]=$dir slot_seed[$slot]=$seed slot_want[$slot]=$want
	log "cycle $c: kill after ${delay}s$([ -n "$bg" ] && echo ' (with background writer)'), fio issued $nio writes, verified $want flushed blocks; recovered_segments $rs"
done

# Everything flushed in earlier cycles must still be there.
for slot in "${!slot_dir[@]}"; do
	verify_slot "${slot_dir[$slot]}" "$slot" "${slot_seed[$slot]}" "${slot_want[$slot]}"
done
log "re-verified ${#slot_dir[@]} slots after all crashes"

# Negative control: zero slot 0 behind fio's back; verification must fail.
if [ "${slot_want[0]}" -gt 0 ]; then
	qio "$T/zap.out" "write -q -z 0 $SLOT" "flush"
	rc=0 load=0
	[ -f "${slot_dir[0]}/local-crash-0-verify.state" ] && load=1
	# shellcheck disable=SC2046
	(cd "${slot_dir[0]}" && fio $(fio_crash_opts 0 "${slot_seed[0]}") --do_verify=1 --verify_only=1 \
		--verify_state_save=0 --verify_state_load=$load --output="$T/neg.out") 2>"$T/neg.err" || rc=$?
	if [ $rc -eq 0 ] || ! grep -q 'verify: bad' "$T/neg.err"; then
		fail "verification of a zeroed slot did not fail (rc $rc): the check cannot fail?"
	fi
	log "negative control: zeroed slot 0 is reported by fio"
fi
j=$(status_json)
[ "$(jfield "$j" io_errors)" = 0 ] || fail "io_errors = $(jfield "$j" io_errors)"
stop_server
[ "$total_verified" -gt 0 ] || fail "no block was verified in $CYCLES cycles"

echo "checked: $CYCLES kill -9 cycles, $total_verified FLUSH-acknowledged fio blocks verified after restart (and again at the end), 0 verify errors"
