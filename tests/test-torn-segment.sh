#!/bin/bash
# Torn / corrupted newest log segment on the cache device.
#
# On a format v3 cache (a FLUSH seals the open segment; the current format
# makes a FLUSH a round of it instead: tests/test-recovery.c's torn rounds
# and the power-cut checker cover that) several patterns are written, each
# followed by a FLUSH (each flush seals a segment); the last one (768 KiB over a region that already holds an older
# flushed pattern) lands in the newest segment; then kill -9.  The newest
# segment (highest sequence number, found by scanning the ring) is damaged:
#   data    random bytes over three of its data blocks (torn data)
#   tail    its second half zeroed (a write that never completed)
#   header  one bit flipped in the first header block
#   header2 one bit flipped in the second header block (the CRC covers it)
# The server must start, every earlier pattern must be intact, and the damaged
# segment's region must read its NEW content for the entries before the first
# damaged one and its OLD content from there on (a damaged header rejects the
# whole segment), never garbage.  (Control variant "none": undamaged, it
# reads the new pattern.)
# The log must then continue normally: a new flushed write survives
# another kill -9.
. "$(dirname "$0")/lib.sh"

KIB=1024
MIB=$((1024 * 1024))
# Regions (offset, length, pattern): R0 is overwritten last by R5.
R_OFF=(0 $((3 * MIB + 512)) $((6 * MIB)) $((9 * MIB + 4096)) $((12 * MIB)) 0)
R_LEN=($((768 * KIB)) $((100 * KIB)) $((1 * MIB)) $((64 * KIB + 512)) $((300 * KIB)) $((768 * KIB)))
R_PAT=(0x10 0x21 0x32 0x43 0x54 0xe5)
R6_OFF=$((20 * MIB)) R6_LEN=$((128 * KIB)) R6_PAT=0x76

# segtool CACHE MODE FIRST_BLOCK NBLOCKS: find the newest segment, check it
# holds exactly blocks FIRST..FIRST+N-1, then damage it according to MODE.
segtool() {
	py - "$@" <<'EOF'
import os, struct, sys
path, mode, first, nblk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
f = open(path, "r+b")
def rd(off, n):
    f.seek(off); return f.read(n)
# Superblock: the copy (offset 0 or 4096) with the right magic and higher seq.
sbs = []
for off in (0, 4096):
    b = rd(off, 4096)
    if b[:8] == b"BLKCACHE":
        sbs.append(b)
assert sbs, "no superblock copy"
sb = max(sbs, key=lambda b: struct.unpack_from("<Q", b, 16)[0])
if struct.unpack_from("<I", sb, 8)[0] >= 3:
    # Format v3: the origin's record in the table (docs/format.md) has the
    # same layout; the test's cache has one origin, in slot 0.
    toff, = struct.unpack_from("<Q", sb, 856)
    recs = [rd(toff + c * 4096, 4096) for c in (0, 1)]
    recs = [r for r in recs if r[:8] == b"BCORIGRC"]
    assert recs, "no origin record"
    sb = max(recs, key=lambda b: struct.unpack_from("<Q", b, 16)[0])
ring_off, = struct.unpack_from("<Q", sb, 80)
seg_size, nseg, hb, db = struct.unpack_from("<IIII", sb, 92)
nonce, = struct.unpack_from("<Q", sb, 128)
print("geometry: ring at %d, %d segments of %d bytes, %d header blocks" % (ring_off, nseg, seg_size, hb))
best = None
for p in range(nseg):
    h = rd(ring_off + p * seg_size, 64)
    if h[:8] != b"BCSEGHDR":
        continue
    n, seq, sn = struct.unpack_from("<IQQ", h, 12)
    if sn != nonce:
        continue
    if best is None or seq > best[1]:
        best = (p, seq, n)
assert best, "no segment header found"
p, seq, n = best
base = ring_off + p * seg_size
hdr = rd(base, hb * 4096)
blocks = []
for i in range(n):
    blk, crc, nb, mask, fl = struct.unpack_from("<QIHBB", hdr, 64 + 16 * i)
    blocks.append(blk)
print("newest segment: position %d, seq %d, %d entries, blocks %d..%d"
      % (p, seq, n, min(blocks) if blocks else -1, max(blocks) if blocks else -1))
if blocks != list(range(first, first + nblk)):
    sys.exit("newest segment does not hold exactly blocks %d..%d in order" % (first, first + nblk - 1))
# Recovery keeps the entries before the first whose data is damaged.
keep = {"none": n, "data": 50, "tail": seg_size // 2 // 4096 - hb, "header": 0, "header2": 0}
if mode == "none":
    pass
elif mode == "data":
    for i in (50, 51, 52):
        f.seek(base + (hb + i) * 4096); f.write(os.urandom(4096))
elif mode == "tail":
    f.seek(base + seg_size // 2); f.write(b"\0" * (seg_size // 2))
elif mode == "header":
    off = base + 64 + 16 * 7 + 3          # inside entry 7
    b = rd(off, 1)[0]; f.seek(off); f.write(bytes([b ^ 0x10]))
elif mode == "header2":
    off = base + 4096 + 1000              # second header block
    b = rd(off, 1)[0]; f.seek(off); f.write(bytes([b ^ 0x01]))
else:
    sys.exit("unknown mode " + mode)
f.flush(); os.fsync(f.fileno())
print("damaged newest segment (seq %d) with mode %s" % (seq, mode))
print("keep %d" % keep.get(mode, 0))
EOF
}

# region_reads I PATTERN: qemu-io read command checking region I holds PATTERN.
region_read() { echo "read -q -P $2 ${R_OFF[$1]} ${R_LEN[$1]}"; }

# "none" is the control: undamaged, the newest segment must be replayed.
variants=(none data tail header header2)
for mode in "${variants[@]}"; do
	log "=== variant $mode ==="
	make_images 512M 32M --format-version 3
	# Paused: the patterns stay in the log (the newest segment's old content
	# in the older ones) even if this machine takes long enough between the
	# last write and the kill for idle writeback (500 ms) to start.
	start_server --set writeback_paused=1
	for i in 0 1 2 3 4 5; do
		qio "$T/w$i.out" "write -q -P ${R_PAT[$i]} ${R_OFF[$i]} ${R_LEN[$i]}" "flush"
	done
	kill9_server
	segtool "$CACHE" "$mode" $((R_OFF[5] / 4096)) $((R_LEN[5] / 4096)) >"$T/seg-$mode.out" ||
		fail "$mode: could not locate/damage the newest segment"
	cat "$T/seg-$mode.out"
	keep=$(awk '$1 == "keep" { print $2 }' "$T/seg-$mode.out")
	[ -n "$keep" ] || fail "$mode: segtool did not say how many entries recovery keeps"
	start_server   # must come up
	# R0's first $keep blocks hold R5's pattern, the rest R0's own.
	reads=()
	[ "$keep" -gt 0 ] && reads+=("read -q -P ${R_PAT[5]} 0 $((keep * 4096))")
	[ $((keep * 4096)) -lt "${R_LEN[0]}" ] &&
		reads+=("read -q -P ${R_PAT[0]} $((keep * 4096)) $((R_LEN[0] - keep * 4096))")
	for i in 1 2 3 4; do
		reads+=("$(region_read $i "${R_PAT[$i]}")")
	done
	# Around the regions: still zero.
	reads+=("read -q -P 0 $((768 * KIB)) $((3 * MIB + 512 - 768 * KIB))")
	qio "$T/r-$mode.out" "${reads[@]}"
	grep -iE 'torn|invalid|reject|checksum|crc' "$SERVER_LOG" || true
	log "$mode: server started, the newest segment's first $keep blocks replayed, the rest old, 4 earlier patterns intact"
	# The log goes on: a new flushed write survives another kill -9.
	qio "$T/w6-$mode.out" "write -q -P $R6_PAT $R6_OFF $R6_LEN" "flush"
	kill9_server
	start_server
	qio "$T/r6-$mode.out" "${reads[@]}" "read -q -P $R6_PAT $R6_OFF $R6_LEN"
	stop_server
	start_server
	qio "$T/r7-$mode.out" "${reads[@]}" "read -q -P $R6_PAT $R6_OFF $R6_LEN"
	stop_server
done

echo "checked: control + $(( ${#variants[@]} - 1 )) damage variants of the newest segment (torn data, zeroed tail, header bit flips in both header blocks): server starts, the damaged segment's intact entries replayed and the rest old (whole segment old for a damaged header), 4 earlier patterns intact, log continues after recovery; 0 mismatches"
