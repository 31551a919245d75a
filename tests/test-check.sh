#!/bin/bash
# blkcache check: a fresh format, a clean stop and kill -9 crashes (also with
# writes in flight, and with written acks: rounds) check consistent (exit 0);
# each kind of damage is found at the right location with exit 1; a cache
# held by a running server is refused; --json parses; random bit flips never
# crash the checker and are always found when they hit live metadata.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
TOOL="$BLKCACHE_SRC/tests/cachetool.py"
checks=0

# run_check OUT args...: blkcache check, output in OUT, status in $CK_RC.
CK_RC=0
run_check() {
	local out=$1
	shift
	CK_RC=0
	timeout -k 5 120 "$BLKCACHE" check "$@" >"$out" 2>&1 || CK_RC=$?
	check_no_sanitizer "$out"
	[ $CK_RC -lt 124 ] || { cat "$out"; fail "check $* died or hung (status $CK_RC)"; }
}

# expect_check WHAT WANT_RC OUT args...: run check, require exit status WANT_RC.
expect_check() {
	local what=$1 want=$2 out=$3
	shift 3
	run_check "$out" "$@"
	if [ "$CK_RC" -ne "$want" ]; then
		cat "$out"
		fail "$what: check exited $CK_RC, want $want"
	fi
	checks=$((checks + 1))
}

# expect_line OUT REGEX WHAT: some output line matches REGEX (extended).
expect_line() {
	grep -qE -- "$2" "$1" || { cat "$1"; fail "$3: no line matches /$2/"; }
}

info() { py "$TOOL" info "$1"; }
# jget FILE EXPR: a python expression over `j`, the JSON object in FILE.
jget() { "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---- a fresh format is clean ----
make_images 512M 32M
expect_check "fresh format" 0 "$T/c0.out" --cache "$CACHE" --origin "$ORIGIN"
expect_line "$T/c0.out" "result +clean" "fresh format"
log "fresh format: clean"

# ---- writes, clean stop: clean; keep writeback paused so the log stays live ----
start_server --set writeback_paused=1
for i in 0 1 2 3 4 5; do
	qio "$T/w$i.out" "write -q -P $((0x11 * (i + 1))) $((i * 3 * MIB + 4096 * i)) $((MIB + 512 * i))" "flush"
done
qio "$T/wz.out" "write -q -z 40M 2M" "flush"
stop_server
expect_check "clean stop" 0 "$T/c1.out" --cache "$CACHE" --origin "$ORIGIN"
expect_line "$T/c1.out" "result +clean" "clean stop"
cp "$CACHE" "$T/clean.img"
J=$T/info.json
info "$T/clean.img" >"$J"
nchain=$(jget "$J" 'len(j["chain"])')
[ "$nchain" -ge 5 ] || fail "expected at least 5 segments in the log, found $nchain"
log "clean stop: clean, $nchain segments in the log"

# ---- kill -9: a crash leaves a normal state ----
start_server --set writeback_paused=1
qio "$T/w6.out" "write -q -P 0x77 20M 3M" "flush" "write -q -P 0x78 30M 1M"
kill9_server
expect_check "kill -9 after flushed writes" 0 "$T/c2.out" --cache "$CACHE" --origin "$ORIGIN"
log "kill -9: consistent ($(grep -E 'result' "$T/c2.out"))"
cp "$CACHE" "$T/crash.img"
K=$T/crash.json
info "$T/crash.img" >"$K"

# States a crash can leave, made by hand on copies of the crashed image: the
# newest segment N is not vouched for by anything (no later header, the
# superblock is not clean), so each is a notice and check exits 0.
NSEQ=$(jget "$K" 'j["chain"][-1]["seq"]')
NPOS=$(jget "$K" 'j["chain"][-1]["pos"]')
NOFF=$(jget "$K" 'j["chain"][-1]["offset"]')
[ "$NSEQ" -gt $(( $(jget "$K" 'j["sb"]["last_seq"]') + 1 )) ] ||
	fail "the crashed log should end 2+ segments after the superblock's last_seq"
NDOFF=$(jget "$K" "[e['data_offset'] for e in j['chain'][-1]['entries'] if not e['flags'] & 6][-1]")
cp "$T/crash.img" "$T/sim.img"; py "$TOOL" flip "$T/sim.img" $((NDOFF + 9)) 0x40
expect_check "crash state: torn data in the newest segment" 0 "$T/s.out" --cache "$T/sim.img"
expect_line "$T/s.out" "^notice +segment seq $NSEQ at ring position $NPOS, entry .*torn by a crash" "torn data"
cp "$T/crash.img" "$T/sim.img"; py "$TOOL" flip "$T/sim.img" $((NOFF + 4096 + 17)) 0x02
expect_check "crash state: torn header of the newest segment" 0 "$T/s.out" --cache "$T/sim.img"
expect_line "$T/s.out" "^notice +ring position $NPOS: .*checksum mismatch .*where the log ends" "torn header"
# Segment N-1 never reached the disk, N did (written out of order): N must
# not vouch for N-1, as when N was sealed before N-1 was flushed.
cp "$T/crash.img" "$T/sim.img"
py "$TOOL" set-hdr "$T/sim.img" "$NSEQ" flushed_seq $((NSEQ - 2))
PREV_OFF=$(jget "$K" 'j["chain"][-2]["offset"]')
dd if=/dev/zero of="$T/sim.img" bs=4096 seek=$((PREV_OFF / 4096)) count=1 conv=notrunc status=none
expect_check "crash state: segment written out of order" 0 "$T/s.out" --cache "$T/sim.img"
expect_line "$T/s.out" "^notice +segment seq $NSEQ at ring position $NPOS: a valid header beyond the end of the log" "out of order"
# ... but if N says N-1 had been flushed, losing N-1 is damage.
cp "$T/crash.img" "$T/sim.img"
py "$TOOL" set-hdr "$T/sim.img" "$NSEQ" flushed_seq $((NSEQ - 1))
dd if=/dev/zero of="$T/sim.img" bs=4096 seek=$((PREV_OFF / 4096)) count=1 conv=notrunc status=none
expect_check "lost segment vouched for by a later header" 1 "$T/s.out" --cache "$T/sim.img"
expect_line "$T/s.out" "^ERROR +log \\(end: segment seq $((NSEQ - 1)), ring position .*flushed_seq of segment $NSEQ says segments up to $((NSEQ - 1)) had been written" "vouched loss"
log "simulated crash states: notices (exit 0); the vouched loss: an error"

# ... and with writes in flight at the kill (writeback on in odd rounds).
for round in 1 2 3 4 5 6; do
	if [ $((round % 2)) -eq 1 ]; then start_server; else start_server --set writeback_paused=1; fi
	qemu-io -f raw "$URI" -c "write -P $((round + 0x30)) 0 24M" -c "flush" \
		-c "write -P $((round + 0x40)) 8M 16M" >"$T/bg.out" 2>&1 &
	bgpid=$!
	track_bg $bgpid
	# The kill comes at a random moment after the server has seen the first
	# write (a loaded machine may take a while to start qemu-io); the delay
	# only picks the moment, the check below must hold at any of them.
	wait_for 120 "round $round: the server saw no write from qemu-io" status_gt writes 0
	sleep "$(random_delay 100 700)"
	kill9_server
	wait $bgpid 2>/dev/null || true
	expect_check "kill -9 with writes in flight (round $round)" 0 "$T/c3.out" \
		--cache "$CACHE" --origin "$ORIGIN"
	log "round $round: consistent: $(grep -E 'result' "$T/c3.out" | sed 's/^ *//')"
	grep -E '^notice' "$T/c3.out" | head -3 || true
	# Recovery then brings it back to clean.
	start_server
	stop_server
	expect_check "clean stop after the crash (round $round)" 0 "$T/c4.out" --cache "$CACHE"
	expect_line "$T/c4.out" "result +clean" "clean stop after crash round $round"
done

# ... and with written acks: the open segment is written in rounds, and a
# kill (no FLUSH ever sent) leaves rounds after the newest segment's header;
# check follows them, and recovery keeps every acknowledged write.  On its
# own cache of each format: v3 (check notes the rounds its header does not
# cover yet) and the current one (segments are written in rounds to their
# end all along: no notice).
SAVED=("$CACHE" "$ORIGIN")
for ver in 3 4; do
CACHE=$T/wa$ver.img ORIGIN=$T/wa$ver-origin.img
make_images 64M 32M --format-version $ver
start_server --written-acks
# libnbd: 300 writes one by one, each acknowledged before the next; then it
# keeps the connection open (no FLUSH) until the server is killed.
py - "$URI" "$T/wa$ver.done" >"$T/nbd-wa.out" 2>&1 <<'EOF' &
import sys, time, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
buf = b"\x66" * 4096
for i in range(300):
    h.pwrite(buf, (i * 7919 % 4096) * 4096)
open(sys.argv[2], "w").close()
time.sleep(3600)
EOF
qpid=$!
track_bg $qpid
wait_for 120 "the client did not finish its 300 writes (see $T/nbd-wa.out)" test -e "$T/wa$ver.done"
kill9_server
kill "$qpid" 2>/dev/null || true
wait $qpid 2>/dev/null || true
expect_check "kill -9 with written acks, no FLUSH" 0 "$T/c5.out" --cache "$CACHE" --origin "$ORIGIN"
if [ $ver = 3 ]; then
	expect_line "$T/c5.out" "^notice .*round\(s\) written after the header" "rounds after the header"
elif grep -q "round(s) written after the header" "$T/c5.out"; then
	cat "$T/c5.out"; fail "v4: rounds after the header noted"
fi
start_server
reads=()
for i in $(seq 0 299); do reads+=("read -q -P 0x66 $(((i * 7919 % 4096) * 4096)) 4k"); done
qio "$T/r-wa.out" "${reads[@]}"
stop_server
expect_check "clean stop after the written-acks crash" 0 "$T/c4.out" --cache "$CACHE"
expect_line "$T/c4.out" "result +clean" "clean stop after the written-acks crash"
log "written acks, format v$ver: kill -9 without FLUSH: rounds followed by check, 300 acknowledged writes intact"
done
CACHE=${SAVED[0]} ORIGIN=${SAVED[1]}

# ---- a cache held by a running server is refused ----
start_server
run_check "$T/busy.out" --cache "$CACHE"
[ "$CK_RC" -eq 2 ] || { cat "$T/busy.out"; fail "check of a cache in use exited $CK_RC, want 2"; }
expect_line "$T/busy.out" "cache device .* is in use by a running blkcache serve; stop it or check a copy" "in use"
stop_server
checks=$((checks + 1))
log "in use: refused"

# ---- damage, each on a copy of the clean image ----
W=$T/work.img
fresh() { cp "$T/clean.img" "$W"; }
SB=$(jget "$J" 'j["sb"]')
HB=$(jget "$J" 'j["sb"]["header_blocks"]')
EXPORT_BLOCKS=$(( $(jget "$J" 'j["sb"]["export_size"]') / 4096 ))
mid=$(( nchain / 2 ))
MSEQ=$(jget "$J" "j['chain'][$mid]['seq']")
MPOS=$(jget "$J" "j['chain'][$mid]['pos']")
MOFF=$(jget "$J" "j['chain'][$mid]['offset']")
log "superblock: $SB; middle segment seq $MSEQ at position $MPOS"

fresh; py "$TOOL" flip "$W" 200 0x04
expect_check "superblock copy 0 bit flip" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +superblock copy 0: .*checksum.*falls back to copy 1" "sb copy 0"

fresh; py "$TOOL" flip "$W" $((4096 + 300)) 0x80
expect_check "superblock copy 1 bit flip" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +superblock copy 1: .*checksum.*falls back to copy 0" "sb copy 1"

fresh; py "$TOOL" flip "$W" 200 0x04; py "$TOOL" flip "$W" $((4096 + 300)) 0x80
expect_check "both superblock copies" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +superblock copy 0: .*refuses" "both copies (0)"
expect_line "$T/d.out" "^ERROR +superblock copy 1: .*refuses" "both copies (1)"
expect_line "$T/d.out" "log +not checked" "both copies: no ring check"

fresh; py "$TOOL" put-u32 "$W" 8 99
expect_check "bad version in copy 0" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +superblock copy 0: has on-disk format version 99; this blkcache supports versions 1 to 5" "version"

fresh; py "$TOOL" put-u32 "$W" 8 6; py "$TOOL" put-u32 "$W" $((4096 + 8)) 6
expect_check "bad version in both copies" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +superblock copy 1: has on-disk format version 6" "version (both)"

fresh; py "$TOOL" flip "$W" $((MOFF + 64 + 16 * 3 + 2)) 0x10
expect_check "segment header bit flip mid-chain" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +log \(end: segment seq $MSEQ, ring position $MPOS\): the log ends at segment $((MSEQ - 1)) .*data loss" "header flip"
expect_line "$T/d.out" "beyond the end of the log" "header flip: later segments"

# A data block of the first data entry of the middle segment.
DI=$(jget "$J" "[i for i,e in enumerate(j['chain'][$mid]['entries']) if not e['flags'] & 6][0]")
DBLK=$(jget "$J" "j['chain'][$mid]['entries'][$DI]['block']")
DOFF=$(jget "$J" "j['chain'][$mid]['entries'][$DI]['data_offset']")
fresh; py "$TOOL" flip "$W" $((DOFF + 777)) 0x01
expect_check "data block bit flip" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +segment seq $MSEQ at ring position $MPOS, entry $DI \(origin block $DBLK\), data block: data checksum mismatch" "data flip"

fresh; py "$TOOL" set-entry "$W" "$MSEQ" 0 block $((EXPORT_BLOCKS + 10))
expect_check "entry beyond the export" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +segment seq $MSEQ at ring position $MPOS, entry 0 \(origin block $((EXPORT_BLOCKS + 10))\): blocks .* beyond the exported size .*serve refuses to start" "entry past export"

fresh; py "$TOOL" set-entry "$W" "$MSEQ" "$DI" nblocks 3
expect_check "data entry with nblocks 3" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +segment seq $MSEQ .*entry $DI .*nblocks 3 \(must be 1\)" "nblocks"

fresh; py "$TOOL" set-entry "$W" "$MSEQ" "$DI" flags 0x21
expect_check "unknown entry flags" 1 "$T/d.out" --cache "$W"
expect_line "$T/d.out" "^ERROR +segment seq $MSEQ .*entry $DI .*unknown flag bits 0x20" "flags"

# ---- the origin: its recorded identity (cached in place) ----
truncate -s 512M "$T/o2"
expect_check "another origin of the same size" 1 "$T/d.out" --cache "$T/clean.img" --origin "$T/o2"
expect_line "$T/d.out" "^ERROR +origin label: the origin is not the one this cache recorded: its path is $T/o2, the cache belongs to $ORIGIN" "identity"
truncate -s 600M "$T/o3"
expect_check "origin of another size" 1 "$T/d.out" --cache "$T/clean.img" --origin "$T/o3"
expect_line "$T/d.out" "^ERROR +origin label: the origin is 629145600 bytes" "origin size"
expect_check "the right origin" 0 "$T/d.out" --cache "$T/clean.img" --origin "$ORIGIN"
expect_line "$T/d.out" "origin +$ORIGIN: identity checked" "identity checked"

# ---- the origin label (format --origin-label) ----
truncate -s 64M "$T/lo" "$T/lc" "$T/lo2" "$T/lc2"
"$BLKCACHE" format --cache "$T/lc" --origin "$T/lo" --origin-label >/dev/null || fail "format --origin-label failed"
expect_check "the labelled origin" 0 "$T/d.out" --cache "$T/lc" --origin "$T/lo"
expect_line "$T/d.out" "origin +$T/lo: label checked" "label checked"
expect_check "unlabelled origin" 1 "$T/d.out" --cache "$T/lc" --origin "$T/lo2"
expect_line "$T/d.out" "^ERROR +origin label: no valid label" "unlabelled origin"
"$BLKCACHE" format --cache "$T/lc2" --origin "$T/lo2" --origin-label >/dev/null || fail "second format failed"
expect_check "origin of another cache" 1 "$T/d.out" --cache "$T/lc" --origin "$T/lo2"
expect_line "$T/d.out" "^ERROR +origin label: the label names origin UUID" "foreign origin"

# ---- --json ----
fresh; py "$TOOL" flip "$W" 200 0x04; py "$TOOL" flip "$W" $((DOFF + 5)) 0x01
expect_check "json" 1 "$T/j.out" --cache "$W" --json
py - "$T/j.out" "$MSEQ" "$DI" <<'EOF' || fail "--json output is wrong"
import json, sys
j = json.load(open(sys.argv[1]))
seq, ent = int(sys.argv[2]), int(sys.argv[3])
assert j["consistent"] is False and j["errors"] == len([p for p in j["problems"] if p["severity"] == "error"]), j
assert any(p["area"] == "superblock" and p["sb_copy"] == 0 for p in j["problems"]), j["problems"]
assert any(p["area"] == "data" and p["seq"] == seq and p["entry"] == ent and p["recovery"] == "data loss"
           for p in j["problems"]), j["problems"]
assert j["nr_segments"] == 31 and j["log_segments"] >= 5 and j["dirty_entries"] > 0, j
print("json ok: %d problems" % len(j["problems"]))
EOF
expect_check "json (clean)" 0 "$T/j.out" --cache "$T/clean.img" --origin "$ORIGIN" --json
py -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["clean"] and j["problems"] == [], j' "$T/j.out" ||
	fail "--json of a clean cache is wrong"
expect_check "quiet" 1 "$T/q.out" --cache "$W" --quiet
[ "$(grep -cvE '^ERROR ' "$T/q.out")" -eq 0 ] || { cat "$T/q.out"; fail "--quiet printed more than errors"; }

# ---- usage ----
expect_check "no --cache" 2 "$T/u.out"
expect_check "missing device" 2 "$T/u.out" --cache "$T/nonexistent"
expect_line "$T/u.out" "cannot open cache device" "missing device"
log "damage cases: all found at the right location"

# ---- random bit flips in the metadata ----
LIVE=$(py "$TOOL" live "$T/clean.img")  # small: one pair per live region
NSEG=$(jget "$J" 'j["sb"]["nr_segments"]')
live_hits=0
for it in $(seq 1 30); do
	off=$(py - "$LIVE" "$NSEG" "$HB" "$it" <<'EOF'
import json, random, sys
live, nseg, hb, it = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = random.Random()
if it % 3:
    a, n = r.choice(live)
else:   # anywhere in the metadata: the superblock area or any ring position's header
    p = r.randrange(-1, nseg)
    a, n = (0, 1 << 20) if p < 0 else ((1 << 20) + p * (1 << 20), hb * 4096)
print(a + r.randrange(n))
EOF
)
	bit=$((1 << (RANDOM % 8)))
	fresh
	py "$TOOL" flip "$W" "$off" "$bit"
	inlive=$(py -c 'import json,sys; o=int(sys.argv[2]); print(int(any(a <= o < a + n for a, n in json.loads(sys.argv[1]))))' "$LIVE" "$off")
	run_check "$T/r.out" --cache "$W" --json
	if [ "$CK_RC" -ne 0 ] && [ "$CK_RC" -ne 1 ]; then
		cat "$T/r.out"
		fail "random flip at $off (bit $bit): check exited $CK_RC"
	fi
	py -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/r.out" || fail "random flip at $off: bad JSON"
	if [ "$inlive" = 1 ]; then
		live_hits=$((live_hits + 1))
		[ "$CK_RC" -eq 1 ] || { cat "$T/r.out"; fail "flip at $off (bit $bit) in live metadata not found"; }
	fi
done
checks=$((checks + 30))
log "random flips: 30 (of which $live_hits in live metadata, all found)"

echo "checked: $checks check runs: fresh format and clean stop clean; kill -9 (8 crashes, 6 with writes in flight, 1 with written acks and no FLUSH: rounds followed, 300 acknowledged writes intact) consistent, then clean after recovery; simulated crash states (torn data, torn header, out-of-order segment) are notices, a vouched lost segment an error; in-use refused; superblock copy 0/1/both/version x2, header flip mid-chain, data flip, entry past export, bad nblocks, unknown flags, 3 wrong origins found at the right location; --json/--quiet; 30 random metadata flips ($live_hits live) never crash, live ones always found"
