#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Soak under reclaim, re-append, promotion and writeback pressure: a
# stronger, bounded form of the reproducer of the "a read returns another
# block's data" corruption (bench/soak is the long form).  A 64 MiB cache
# fronts a 1 GiB origin; 7 concurrent NBD connections, each on its own
# region, together 288 MiB (4.5x the cache), run in two phases of
# BLKCACHE_SOAK_SECONDS (default 40) s with a clean restart in between:
#   j0..j4  one fio process, one job (= one NBD connection) each, 48 MiB
#           regions, time_based randrw, iodepth 16, verify=crc32c with
#           verify_backlog=1024 (blocks are verified while the mix runs)
#           and verify_fatal=1:
#             j0  the reproducer's job: 40 % reads, bsrange 4k-64k
#             j1  60 % reads, bsrange 4k-64k
#             j2  512-byte multiples at 512-byte offsets: bsrange=512-64k
#                 blockalign=512 (fio --bs_unaligned is not usable: it makes
#                 sizes that are not multiples of 512, which NBD refuses with
#                 EINVAL; without it fio picks multiples of the minimum)
#             j3  large IOs up to 1 MiB (bssplit; spans segments)
#             j4  a FLUSH every 32 writes (fsync=32: partly filled segments)
#   P       fio randwrite with a fixed seed over 32 MiB (size-based, not
#           time-based), verified after writing in phase 1; replayed with
#           verify_only right after the restart and again at the end.
#   Z       a python libnbd client mixing writes (10 % FUA), write-zeroes
#           (half with NO_HOLE), trims, FLUSH and reads at 512-byte
#           offsets and sizes over 16 MiB, every read compared with its
#           in-memory model (a trim zeroes the whole 4 KiB blocks it covers
#           and leaves partial blocks alone, as documented); the model is
#           saved at the end of phase 1, the region must equal it after the
#           restart, and the whole region is compared at the end of each phase.
#   M       between the phases: `blkcache flush`, writeback paused, a 4 MiB
#           qemu-io pattern written, so that it is only in the cache log;
#           the server restarts still paused (--set writeback_paused=true).
# Trims and write-zeroes are done by Z because fio 3.33 cannot mix them into
# a verified nbd job: trim_percentage/trim_verify_zero abort fio on an
# assertion (fio_ro_check), rw=randtrimwrite only trims and never writes or
# verifies, and fio's nbd engine has no write-zeroes command.
#
# The cache mode is switched while the load runs, at 40 %, 60 %, 70 % and
# 80 % of each phase, so that 60 % of it runs in writeback mode, where the
# ring fills and reclaim and re-append are hardest (the sleeps only pace the
# load; they decide nothing): phase 1 writeback -> writethrough ->
# writearound -> passthrough -> writeback, phase 2 writeback -> passthrough
# -> writearound -> writethrough -> writeback.
#
# Asserts: every fio job exits 0 with error 0 and no verify message on
# stderr; Z finds no mismatch (live, after the restart, whole region at the
# end of each phase); P's verify_only passes read back all 32 MiB after the
# restart and at the end; after the restart M's 1024 blocks are dirty, the
# origin file still has zeroes there and the export reads M back (so it
# came from the recovered log), and again at the end; after a final
# `blkcache flush` dirty_blocks is 0 and the origin file alone holds M and
# exactly Z's model of its region (trims and zeroes included); each mode
# switch is reported by status; in each
# phase the ring wrapped (head_seq > segments_total), reclaimed_segments > 0
# and writeback_blocks > 0; over the run reappended_blocks, promoted_blocks,
# writethrough_blocks, writearound_blocks, passthrough_blocks, discards and
# write_zeroes > 0; io_errors, writeback_errors, cache_errors,
# data_crc_errors, write_timeouts and nbd_protocol_errors are 0 and the
# server never went degraded; >= 7 NBD connections per phase; recovery
# replayed segments at the restart; both shutdowns are clean; and
# `blkcache check` of the final cache and origin passes.  Negative control:
# one 4 KiB block of Z's region overwritten behind Z's back is reported by
# Z (P's verify_only mechanism has its control in test-fio-verify.sh).
# Only the amount of IO depends on the machine's speed: the first 40 % of
# a phase alone (writeback mode, 16 s) writes 5x the cache at 20 MB/s, and
# each mode window (>= 4 s) sees thousands of writes, so none of the
# counters asserted > 0 can stay 0 on a slow (ASan) build (with 8 s phases
# pinned to one core they are still in the thousands).  cache_full_waits
# is reported, not asserted (a fast origin can keep up).
# BLKCACHE_SOAK_SEED=N repeats the seeds, BLKCACHE_SOAK_SECONDS=N sets the
# phase length.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
SECS=${BLKCACHE_SOAK_SECONDS:-40}
SEED=${BLKCACHE_SOAK_SEED:-$((RANDOM * 32768 + RANDOM))}
FIO_BOUND=$((SECS + 240))
P_OFF=256M P_SIZE=32M
Z_OFF=$((320 * MIB)) Z_SIZE=$((16 * MIB))
M_OFF=$((352 * MIB)) M_LEN=$((4 * MIB))
log "seed $SEED, 2 phases of $SECS s"

make_images 1G 64M
SEGS=0

# The trim/zero client (Z): python3 z.py URI OFFSET SIZE SEED SECS MODEL_IN|- MODEL_OUT
cat >"$T/z.py" <<'PYEOF'
import json, random, sys, time
import nbd

uri, off0, size, seed, secs, model_in, model_out = sys.argv[1:8]
off0, size, seed, secs = int(off0), int(size), int(seed), float(secs)
h = nbd.NBD()
h.connect_uri(uri)
hist = []  # (op, region offset, length) of every request, for diagnostics


def read_all():
    buf = bytearray()
    for o in range(0, size, 1 << 20):
        buf += h.pread(min(1 << 20, size - o), off0 + o)
    return buf


def check(off, got, what):
    exp = model[off:off + len(got)]
    if got == exp:
        return
    i = next(k for k in range(len(got)) if got[k] != exp[k])
    j = i
    while j < len(got) and got[j] != exp[j]:
        j += 1
    a = off + i
    print("Z MISMATCH (%s): export offset %d (region +%d): a run of %d differing bytes; got %s.. want %s.."
          % (what, off0 + a, a, j - i, bytes(got[i:i + 16]).hex(), bytes(exp[i:i + 16]).hex()))
    print("  last requests covering it:", [x for x in hist if x[1] <= a < x[1] + x[2]][-8:])
    sys.exit(1)


if model_in == "-":
    model = read_all()
else:
    model = bytearray(open(model_in, "rb").read())
    check(0, read_all(), "whole region against the saved model")
rng = random.Random(seed)
n = {"write": 0, "fua": 0, "zero": 0, "trim": 0, "read": 0, "flush": 0}
wbytes = 0
end = time.monotonic() + secs
while time.monotonic() < end:
    ln = rng.randint(1, 256) * 512
    off = rng.randrange(0, (size - ln) // 512 + 1) * 512
    r = rng.random()
    if r < 0.40:
        data = rng.randbytes(ln)
        fl = 0
        if rng.random() < 0.1:
            fl = nbd.CMD_FLAG_FUA
            n["fua"] += 1
        h.pwrite(data, off0 + off, fl)
        model[off:off + ln] = data
        op = "write"
        wbytes += ln
    elif r < 0.52:
        h.zero(ln, off0 + off, nbd.CMD_FLAG_NO_HOLE if rng.random() < 0.5 else 0)
        model[off:off + ln] = bytes(ln)
        op = "zero"
    elif r < 0.64:
        h.trim(ln, off0 + off)
        a, b = -(-off // 4096) * 4096, (off + ln) // 4096 * 4096
        if b > a:
            model[a:b] = bytes(b - a)
        op = "trim"
    elif r < 0.98:
        check(off, h.pread(ln, off0 + off), "read")
        op = "read"
    else:
        h.flush()
        op = "flush"
    n[op] += 1
    hist.append((op, off, ln))
check(0, read_all(), "whole region at the end")
with open(model_out, "wb") as f:
    f.write(model)
h.shutdown()
n["write_bytes"] = wbytes
print(json.dumps(n))
PYEOF

FIO_COMMON=(--ioengine=nbd --uri="$URI" --iodepth=16 --verify=crc32c --verify_fatal=1)
P_JOB=(--name=P --rw=randwrite --bsrange=4k-64k --offset="$P_OFF" --size="$P_SIZE" --randseed="$SEED")

# load_jobs PHASE: the five time-based jobs of a phase in LOAD.
load_jobs() {
	local s=$((SEED + 1000 * $1))
	LOAD=(--time_based --runtime="$SECS" --verify_backlog=1024
		--name=j0 --rw=randrw --rwmixread=40 --bsrange=4k-64k --offset=0M --size=48M --randseed=$((s + 1))
		--name=j1 --rw=randrw --rwmixread=60 --bsrange=4k-64k --offset=48M --size=48M --randseed=$((s + 2))
		--name=j2 --rw=randrw --rwmixread=40 --bsrange=512-64k --blockalign=512 --offset=96M --size=48M
		--randseed=$((s + 3))
		--name=j3 --rw=randrw --rwmixread=40 --bssplit=4k/40:16k/25:64k/20:256k/10:1m/5 --offset=144M
		--size=48M --randseed=$((s + 4))
		--name=j4 --rw=randrw --rwmixread=30 --bsrange=4k-64k --fsync=32 --offset=192M --size=48M
		--randseed=$((s + 5)))
}

# origin_cmp zero|c3|FILE OFFSET LEN: does the origin file (the exported
# offset is the file offset) hold zeroes, 0xc3 bytes, or FILE there?
origin_cmp() {
	"$PY" - "$ORIGIN" "$@" <<'PYEOF'
import sys
origin, what, off, ln = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(origin, "rb") as f:
    f.seek(off)
    got = f.read(ln)
want = bytes(ln) if what == "zero" else b"\xc3" * ln if what == "c3" else open(what, "rb").read()
if got != want:
    i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
    print("origin differs at offset %d: %s.. want %s.." % (off + i, got[i:i + 16].hex(), want[i:i + 16].hex()))
    sys.exit(1)
PYEOF
}

# switch_mode MODE: change the mode live; status must report it.
switch_mode() {
	ctl_ok mode "$1"
	local m
	m=$(status_field mode)
	[ "$m" = "$1" ] || fail "status reports mode '$m' after 'blkcache mode $1'"
	log "mode $1 ($(head -n 1 <<<"$CTL_OUT"))"
}

# pace_to SECONDS_INTO_PHASE: sleep until then, or until the load ended.
pace_to() {
	while [ $((SECONDS - PHASE_T0)) -lt "$1" ] && kill -0 "$LOAD_PID" 2>/dev/null; do
		sleep 1
	done
}

# wait_rc PID WHAT: wait for a background client; fail unless it exited 0.
wait_rc() {
	local rc=0
	wait "$1" || rc=$?
	[ $rc -eq 0 ] || fail "$2 failed (exit $rc, see above)"
}

# check_health SNAP: the error counters of a status snapshot are all 0.
check_health() {
	local k v
	for k in io_errors writeback_errors cache_errors data_crc_errors write_timeouts nbd_protocol_errors; do
		v=$(sget "$1" $k)
		[ "$v" = 0 ] || fail "$1: $k = $v (want 0)"
	done
	[ "$(sget "$1" degraded)" = false ] || fail "$1: the server went degraded"
}

# p_verify TAG: verify_only replay of P; it must read back all of P.
p_verify() {
	fio_checked "$1" "$FIO_BOUND" "${FIO_COMMON[@]}" "${P_JOB[@]}" --do_verify=1 --verify_only=1
	local v
	v=$(fio_get "$1" 'j["read"]["io_bytes"]')
	[ "$v" -eq $((32 * MIB)) ] || fail "$1: verify-only of P read $v bytes, want $((32 * MIB))"
	log "$1: P verified, $((v / MIB)) MiB"
}

# run_phase N MODE...: the load for SECS seconds, switching to the 4 modes
# given at 40, 60, 70 and 80 % of the phase (Z continues from $T/z.model
# if it exists).
run_phase() {
	local ph=$1 zin=- p_pid="" z_pid i
	shift
	load_jobs "$ph"
	[ -f "$T/z.model" ] && zin=$T/z.model
	PHASE_T0=$SECONDS
	# (SERVER_LOG= : a failure in the subshell leaves the log to the main shell's fail)
	(SERVER_LOG="" fio_checked "load$ph" "$FIO_BOUND" "${FIO_COMMON[@]}" "${LOAD[@]}") &
	LOAD_PID=$!
	track_bg "$LOAD_PID"
	if [ "$ph" = 1 ]; then
		(SERVER_LOG="" fio_checked P1 "$FIO_BOUND" "${FIO_COMMON[@]}" "${P_JOB[@]}" --do_verify=1) &
		p_pid=$!
		track_bg "$p_pid"
	fi
	timeout -k 10 "$FIO_BOUND" "$PY" "$T/z.py" "$URI" $Z_OFF $Z_SIZE $((SEED + 1000 * ph + 9)) "$SECS" \
		"$zin" "$T/z.model.new" >"$T/z$ph.out" 2>&1 &
	z_pid=$!
	track_bg "$z_pid"
	for i in 4 6 7 8; do
		pace_to $((SECS * i / 10))
		kill -0 "$LOAD_PID" 2>/dev/null || break
		switch_mode "$1"
		shift
	done
	wait_rc "$LOAD_PID" "phase $ph fio load (j0..j4)"
	[ -z "$p_pid" ] || wait_rc "$p_pid" "fio P (fixed-seed randwrite)"
	local rc=0
	wait "$z_pid" || rc=$?
	if [ $rc -ne 0 ]; then
		cat "$T/z$ph.out"
		fail "phase $ph: the trim/zero client Z failed (exit $rc)"
	fi
	mv "$T/z.model.new" "$T/z.model"
	log "phase $ph load done after $((SECONDS - PHASE_T0)) s; Z: $(tail -n 1 "$T/z$ph.out")"
	snap "end$ph"
	check_health "end$ph"
	local head recl wb conns
	head=$(sget "end$ph" head_seq)
	recl=$(sget "end$ph" reclaimed_segments)
	wb=$(sget "end$ph" writeback_blocks)
	conns=$(sget "end$ph" nbd_connections_total)
	[ "$head" -gt "$SEGS" ] || fail "phase $ph: head_seq $head <= segments_total $SEGS: the ring did not wrap"
	[ "$recl" -gt 0 ] || fail "phase $ph: reclaimed_segments = 0"
	[ "$wb" -gt 0 ] || fail "phase $ph: writeback_blocks = 0"
	[ "$conns" -ge 7 ] || fail "phase $ph: only $conns NBD connections"
	log "phase $ph status: head_seq $head, reclaimed $recl segments, reappended $(sget "end$ph" reappended_blocks)," \
		"promoted $(sget "end$ph" promoted_blocks), written back $wb blocks, cache-full waits" \
		"$(sget "end$ph" cache_full_waits), dirty $(sget "end$ph" dirty_blocks), $conns connections"
}

start_server
SEGS=$(status_field segments_total)
run_phase 1 writethrough writearound passthrough writeback
[ "$(sget end1 mode)" = writeback ] || fail "phase 1 ended in mode $(sget end1 mode)"

# Dirty data across the restart, deterministically: flush (so that the
# log has room), pause writeback, write a 4 MiB marker M (it exists only in
# the cache log), stop; the server comes back still paused, so M must be
# recovered from the log.
ctl_ok flush
ctl_ok set writeback_paused true
qio "$T/m1.out" "write -q -P 0xc3 $M_OFF $M_LEN" "flush"
stop_server
start_server --set writeback_paused=true
rs=$(status_field recovered_segments)
dirty=$(status_field dirty_blocks)
[ "$rs" -gt 0 ] || fail "recovered_segments = 0 after the restart: the cache came back empty"
[ "$dirty" -ge $((M_LEN / 4096)) ] ||
	fail "only $dirty dirty blocks after the restart; marker M alone has $((M_LEN / 4096))"
origin_cmp zero $M_OFF $M_LEN || fail "the origin holds marker M although writeback was paused"
qio "$T/m2.out" "read -q -P 0xc3 $M_OFF $M_LEN"
log "restarted: recovered $rs segments, $dirty dirty blocks; marker M (only in the log) reads back"
p_verify PV1
ctl_ok set writeback_paused false

run_phase 2 passthrough writearound writethrough writeback
p_verify PV2
qio "$T/m3.out" "read -q -P 0xc3 $M_OFF $M_LEN"

# Flush: then the origin file alone must hold M and Z's region.
ctl_ok flush
[ "$(status_field dirty_blocks)" = 0 ] || fail "dirty blocks left after blkcache flush"
origin_cmp c3 $M_OFF $M_LEN || fail "after flush the origin does not hold marker M"
origin_cmp "$T/z.model" $Z_OFF $Z_SIZE || fail "after flush the origin's copy of Z's region differs from Z's model"
log "flushed: the origin alone holds marker M and Z's region"

# Z's check can fail: overwrite one 4 KiB block of its region behind its
# back; a 0-second pass of Z (whole-region compare only) must report it.
qio "$T/zap.out" "write -q -P 0x5a $((Z_OFF + 100 * 4096)) 4096" "flush"
rc=0
timeout -k 10 "$FIO_BOUND" "$PY" "$T/z.py" "$URI" $Z_OFF $Z_SIZE 1 0 "$T/z.model" "$T/z.neg" \
	>"$T/zneg.out" 2>&1 || rc=$?
if [ $rc -ne 1 ] || ! grep -q 'Z MISMATCH' "$T/zneg.out"; then
	cat "$T/zneg.out"
	fail "Z did not notice an overwritten block (exit $rc): its check cannot fail?"
fi
log "negative control: $(head -n 1 "$T/zneg.out")"
stop_server

rc=0
timeout -k 5 120 "$BLKCACHE" check --cache "$CACHE" --origin "$ORIGIN" >"$T/check.out" 2>&1 || rc=$?
check_no_sanitizer "$T/check.out"
[ $rc -eq 0 ] || { cat "$T/check.out"; fail "blkcache check of the final cache and origin failed (exit $rc)"; }
log "check: $(tail -n 1 "$T/check.out")"

# Totals over both phases.
tot() { "$PY" -c 'import json,sys; print(sum(json.load(open(f))[sys.argv[1]] for f in sys.argv[2:]))' "$1" "$T/snap.end1.json" "$T/snap.end2.json"; }
for k in reappended_blocks promoted_blocks writethrough_blocks writearound_blocks passthrough_blocks discards write_zeroes; do
	[ "$(tot $k)" -gt 0 ] || fail "$k = 0 over the whole run"
done
read -r wmib rmib njobs < <("$PY" -c 'import json,sys
w=r=n=0
for f in sys.argv[1:]:
    for j in json.load(open(f))["jobs"]:
        w+=j["write"]["io_bytes"]; r+=j["read"]["io_bytes"]; n+=1
print(w>>20, r>>20, n)' "$T/load1.json" "$T/load2.json" "$T/P1.json")
echo "summary: 2 x ${SECS}s, 7 connections (5 fio randrw verify jobs incl. 512 B multiples, fixed-seed P, trim/zero client), 8 mode switches, clean restart;" \
	"fio wrote $wmib MiB, read $rmib MiB in $njobs jobs; reclaimed $(tot reclaimed_segments) segments," \
	"reappended $(tot reappended_blocks), promoted $(tot promoted_blocks), written back $(tot writeback_blocks) blocks," \
	"cache-full waits $(tot cache_full_waits); P, Z and the log-only marker M read back after the restart, origin = M + Z model after flush; 0 verify errors, 0 io_errors"
