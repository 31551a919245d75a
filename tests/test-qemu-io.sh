#!/bin/bash
# qemu-io against the NBD export: pattern writes of many sizes (512 B .. 4 MiB)
# at 512-aligned offsets that are not 4 KiB aligned, overlapping overwrites,
# FUA writes, write-zeroes, discards of whole 4 KiB blocks, a random overlap
# phase and enough filler to wrap the cache ring (writeback runs).  A model of
# the expected contents (per 512-byte sector) yields 'read -P' commands that
# are run three times: live, after a clean restart, and after kill -9 +
# restart.
. "$(dirname "$0")/lib.sh"

SEED=${BLKCACHE_SEED:-$RANDOM}
log "seed $SEED (set BLKCACHE_SEED to reproduce)"
make_images 1G 32M --data-crc   # reads also check every cached block's CRC32C
start_server

# Generate the write commands and the verifying read commands.
py - "$SEED" "$T/writes.cmds" "$T/reads.cmds" <<'EOF'
import random, sys
seed, wpath, rpath = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rnd = random.Random(seed)
S = 512
K, M = 1024, 1024 * 1024
model = {}          # sector -> byte value (absent: 0)
touched = set()     # sectors touched by any command
cmds = []

def w(off, ln, pat, fua=False):
    assert off % S == 0 and ln % S == 0 and 0 < pat < 256
    cmds.append("write -q %s-P 0x%02x %d %d" % ("-f " if fua else "", pat, off, ln))
    for s in range(off // S, (off + ln) // S):
        model[s] = pat
        touched.add(s)

def z(off, ln):
    cmds.append("write -q -z %d %d" % (off, ln))
    for s in range(off // S, (off + ln) // S):
        model.pop(s, None)
        touched.add(s)

def discard(off, ln):
    assert off % 4096 == 0 and ln % 4096 == 0
    cmds.append("discard -q %d %d" % (off, ln))
    for s in range(off // S, (off + ln) // S):
        model.pop(s, None)
        touched.add(s)

def up4k(x):
    return (x + 4095) // 4096 * 4096

sizes = [512, 1024, 3584, 4096, 4608, 7680, 8192, 12800, 65536, 66048,
         131072 + 512, 1 * M, 1 * M + 3584, 4 * M]
slot = 8 * M
for i, ln in enumerate(sizes):
    off = M + i * slot + S * (2 * i + 1)          # 512-aligned, never 4K-aligned
    assert off % 4096
    w(off, ln, 0x10 + i, fua=(i % 4 == 3))
# Overlapping overwrites: inside, across the start, across the end.
for i, ln in enumerate(sizes):
    off = M + i * slot + S * (2 * i + 1)
    if ln >= 4096:
        a = off + (ln // 3) // S * S
        w(a, max(S, (ln // 2) // S * S), 0x40 + i)
    w(off - 3 * S, 4 * S + min(ln, 2 * S), 0x70 + i)            # across the start
    w(off + ln - min(ln, 3 * S), min(ln, 3 * S) + 4096 + S, 0xa0 + i, fua=(i % 2 == 0))  # across the end
# write-zeroes over parts of the bigger extents (unaligned) and discards of
# whole 4 KiB blocks strictly inside them.
for i, ln in enumerate(sizes):
    off = M + i * slot + S * (2 * i + 1)
    if ln >= 12800:
        z(off + 2 * S, 8192 + S)
    if ln >= 65536:
        a = up4k(off + ln // 2)
        n = max(1, (ln // 4) // 4096) * 4096
        discard(a, n)
# Random overlapping phase in a 48 MiB area.
base = 120 * M
for _ in range(80):
    ln = rnd.choice([S, 2 * S, 7 * S, 4096, 4096 + S, 16 * K, 64 * K - S, 256 * K, 1 * M + S])
    off = base + rnd.randrange(0, (48 * M - ln) // S) * S
    r = rnd.random()
    if r < 0.1:
        z(off, ln)
    elif r < 0.2 and ln >= 8192:
        a = up4k(off)
        if a + 4096 <= off + ln:
            discard(a, (off + ln - a) // 4096 * 4096)
    else:
        w(off, ln, rnd.randrange(1, 256), fua=r > 0.9)
cmds.append("flush")
# Filler: 48 MiB of 4 MiB writes far away, more than the 32 MiB cache holds,
# so the ring wraps and the extents above are written back to the origin.
fb = 512 * M + S
for j in range(12):
    w(fb + j * 4 * M, 4 * M, 0xe0 + j)
cmds.append("flush")

# Reads: every touched sector plus 64 KiB on each side, as runs of one value.
margin = 128
iv = sorted(touched)
ranges = []
start = prev = None
for s in iv:
    if start is None:
        start = prev = s
    elif s <= prev + 2 * margin:
        prev = s
    else:
        ranges.append((start, prev)); start = prev = s
ranges.append((start, prev))
reads = []
for a, b in ranges:
    a = max(0, a - margin); b = b + margin
    s = a
    while s <= b:
        v = model.get(s, 0)
        e = s
        while e + 1 <= b and model.get(e + 1, 0) == v:
            e += 1
        reads.append("read -q -P 0x%02x %d %d" % (v, s * S, (e - s + 1) * S))
        s = e + 1
open(wpath, "w").write("\n".join(cmds) + "\n")
open(rpath, "w").write("\n".join(reads) + "\n")
print("generated %d write/zero/discard/flush commands, %d verifying reads over %d ranges"
      % (len(cmds), len(reads), len(ranges)))
EOF

mapfile -t WRITES < "$T/writes.cmds"
mapfile -t READS < "$T/reads.cmds"

qio "$T/qio-write.out" "${WRITES[@]}"
log "${#WRITES[@]} write-side commands done"

# The extents must have gone through the cache and been written back.
j=$(status_json)
for k in writes discards write_zeroes flushes writeback_blocks; do
	v=$(jfield "$j" $k)
	[ "$v" -gt 0 ] || fail "status $k = $v, expected > 0"
done
[ "$(jfield "$j" io_errors)" = 0 ] || fail "io_errors = $(jfield "$j" io_errors)"
log "status: writes $(jfield "$j" writes), discards $(jfield "$j" discards), write_zeroes $(jfield "$j" write_zeroes), writeback_blocks $(jfield "$j" writeback_blocks)"

qio "$T/qio-read1.out" "${READS[@]}"
log "pass 1 (live): ${#READS[@]} pattern reads ok"

# The model check must be able to fail: a deliberately wrong pattern.
read -r _ _ _ pat off len <<<"${READS[0]}"
wrong=$(printf '0x%02x' $(( (pat + 1) % 256 )))
qemu-io -f raw -d unmap "$URI" -c "read -P $wrong $off $len" > "$T/neg.out" 2>&1 || true
grep -q 'Pattern verification failed' "$T/neg.out" ||
	fail "qemu-io did not report a mismatch for a wrong pattern (the check cannot fail?)"

stop_server
start_server
qio "$T/qio-read2.out" "${READS[@]}"
log "pass 2 (after clean restart): ${#READS[@]} pattern reads ok"

# Everything was flushed: it must also survive kill -9.
kill9_server
start_server
qio "$T/qio-read3.out" "${READS[@]}"
log "pass 3 (after kill -9 + restart): ${#READS[@]} pattern reads ok"
stop_server

echo "checked: ${#WRITES[@]} qemu-io write/zero/discard commands, ${#READS[@]} pattern reads x 3 passes (live, clean restart, kill -9 restart), 0 mismatches"
