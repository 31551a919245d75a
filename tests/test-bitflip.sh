#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Corruption detection: flip bits at random offsets of a cache device
# formatted with --data-crc (both superblock copies, segment headers, data
# blocks of the live log), start the server on it each time, and read every
# block back.  Each block must hold a version that was really written to it
# (or zero: never written), or fail with EIO -- never garbage, never another
# block's data, and EIO only when the server counted a checksum failure.
# A flipped superblock copy falls back to the other (always reported); a
# flipped segment header ends the replayed log there (reported when the
# segment was still in the log); a flipped data block is caught by its
# CRC32C when it is read or written back (clean: read from the origin
# instead; dirty: EIO).  BLKCACHE_FLIPS=N sets the number of flips (30).
. "$(dirname "$0")/lib.sh"

FLIPS=${BLKCACHE_FLIPS:-30}
NB=1024
HIST="$(dirname "$0")/origin-history.py"
make_images 64M 32M --segment-size 256K --data-crc
# Paused: v2/v3 must stay dirty in the pristine image however long the
# client takes (idle writeback would otherwise write back whatever it got to
# after 500 ms); 'blkcache flush' below drains v1 all the same.
start_server --set writeback_paused=1
"$BLKCACHE" status --control "$CTL" | grep -q "data checksums verified on read" ||
	fail "status does not show --data-crc"

# check.py MODE URI: the per-block check (write the history / verify it).
cat >"$T/check.py" <<'PYEOF'
import sys, random, errno, importlib.util, nbd
spec = importlib.util.spec_from_file_location("hist", sys.argv[1])
hist = importlib.util.module_from_spec(spec); spec.loader.exec_module(hist)
mode, uri, nb, seed = sys.argv[2], sys.argv[3], int(sys.argv[4]), 7
BS = 4096
h = nbd.NBD(); h.connect_uri(uri)
rng = random.Random(seed)
v2 = rng.sample(range(nb), nb * 6 // 10)
v3 = rng.sample(range(nb), nb * 3 // 10)
if mode == "write":
    for v, blocks in ((1, range(nb)), (2, v2), (3, v3)):
        for b in blocks:
            h.pwrite(hist.block_data(seed, b, v), b * BS)
        h.flush()
        if v == 1:
            print("v1 written", flush=True)
            sys.stdin.readline()   # the shell drains the cache here
    sys.exit(0)
written = {b: {0, 1} for b in range(nb)}
for b in v2: written[b].add(2)
for b in v3: written[b].add(3)
eio = bad = 0
for b in range(nb):
    try:
        d = h.pread(BS, b * BS)
    except nbd.Error as e:
        if e.errnum != errno.EIO:
            print("block %d: unexpected error %r" % (b, e)); bad += 1
        eio += 1
        continue
    try:
        v = hist.parse_block(seed, b, d)
    except ValueError as err:
        print("VIOLATION:", err); bad += 1
        continue
    if v not in written[b]:
        print("VIOLATION: block %d holds version %d, never written to it" % (b, v)); bad += 1
print("eio %d bad %d" % (eio, bad))
sys.exit(1 if bad else 0)
PYEOF

# History: v1 everywhere, written back (clean); then v2, v3 on random subsets (dirty).
coproc WR { "$PY" "$T/check.py" "$HIST" write "$URI" $NB; }
read -r line <&"${WR[0]}"
[ "$line" = "v1 written" ] || fail "history writer: $line"
timeout -k 5 60 "$BLKCACHE" flush --control "$CTL" >/dev/null || fail "flush failed"
echo go >&"${WR[1]}"
wait "$WR_PID" || fail "writing v2/v3 failed"
py "$T/check.py" "$HIST" verify "$URI" $NB >"$T/base.out" || { cat "$T/base.out"; fail "baseline check failed"; }
grep -q "^eio 0 bad 0" "$T/base.out" || fail "baseline: $(cat "$T/base.out")"
snap base
stop_server
cp "$CACHE" "$T/cache.pristine"
cp "$ORIGIN" "$T/origin.pristine"
[ "$(sget base dirty_blocks)" -gt 0 ] || fail "nothing dirty: the flips would not test dirty data"

# Regions of the cache image: superblocks [0, 8K); ring from 1 MiB, 256 KiB
# segments whose first 4 KiB block is the header (geometry from format).
RING=$((1024 * 1024)); SEGSZ=$((256 * 1024))
USED=$(( $(sget base head_seq) ))   # segments 1..head_seq-1 were written
[ "$USED" -gt 2 ] || fail "too few segments written ($USED)"
stats_sb=0 stats_hdr=0 stats_data=0 det_sb=0 det_hdr=0 det_data=0 eios=0
for ((k = 1; k <= FLIPS; k++)); do
	cp "$T/cache.pristine" "$CACHE"
	cp "$T/origin.pristine" "$ORIGIN"
	seg=$(( RANDOM % (USED - 1) ))            # ring position of a written segment
	case $((k % 3)) in
	0) off=$(( (RANDOM % 2) * 4096 + RANDOM % 160 )); what=superblock; stats_sb=$((stats_sb + 1));;
	1) off=$(( RING + seg * SEGSZ + RANDOM % 4096 )); what=header; stats_hdr=$((stats_hdr + 1));;
	2) off=$(( RING + seg * SEGSZ + 4096 + (RANDOM * 32768 + RANDOM) % (SEGSZ - 4096) )); what=data; stats_data=$((stats_data + 1));;
	esac
	bit=$((RANDOM % 8))
	"$PY" - "$CACHE" "$off" "$bit" <<'PYEOF'
import sys
p, off, bit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ (1 << bit)]))
PYEOF
	start_server
	rc=0
	py "$T/check.py" "$HIST" verify "$URI" $NB >"$T/flip$k.out" || rc=$?
	snap "f$k"
	crc=$(sget "f$k" data_crc_errors)
	e=$(sed -n 's/^eio \([0-9]*\) bad.*/\1/p' "$T/flip$k.out")
	if [ "$rc" -ne 0 ]; then
		cat "$T/flip$k.out"
		fail "flip $k ($what, offset $off bit $bit): a block read back wrong"
	fi
	if [ "${e:-0}" -gt 0 ] && [ "$crc" -eq 0 ]; then
		fail "flip $k ($what, offset $off): $e reads failed with EIO but no checksum error was counted"
	fi
	case $what in
	superblock)
		grep -q "superblock copy .* is invalid" "$SERVER_LOG" ||
			fail "flip $k: a damaged superblock copy (offset $off) went unreported"
		det_sb=$((det_sb + 1));;
	header)
		! grep -q "segment header at ring position .* is damaged" "$SERVER_LOG" ||
			det_hdr=$((det_hdr + 1));;
	data)
		[ "$crc" -eq 0 ] || det_data=$((det_data + 1));;
	esac
	eios=$((eios + ${e:-0}))
	kill9_server
done
[ $((det_hdr + det_data)) -gt 0 ] || fail "no segment header or data flip was ever detected"
echo "checked: $FLIPS random bit flips, $NB blocks read after each: 0 wrong blocks; superblock $det_sb/$stats_sb reported (fell back to the other copy), segment header $det_hdr/$stats_hdr reported (log ends there; others hit segments already written back), data $det_data/$stats_data caught by CRC (others hit superseded or unread blocks); $eios EIO reads, each backed by a counted checksum failure"
