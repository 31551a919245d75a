#!/bin/bash
# Cache modes switched with 'blkcache mode', checked with real clients and
# against the origin file itself (the exported offset is the file offset):
#  writethrough: right after a write is acknowledged (no FLUSH, client still
#    connected) the origin file holds it; dirty_blocks stays 0; it is cached
#    clean (read back hits).  Negative control: in writeback mode (paused) the
#    origin file does not hold a fresh write.
#  writearound: the data reaches the origin, reads back correctly (also over a
#    previously cached range: no stale copy), cached_blocks does not grow.
#  passthrough: dirty data written in writeback mode stays readable although
#    the origin lacks it; new writes reach the origin; reads promote nothing
#    (while the same reads in writeback mode do).
#  'mode bogus' fails with exit 1 and a clear message.
#  Under load: fio randrw crc32c iodepth 16 while the mode cycles through all
#    four, each mode serving at least 200 of fio's requests before the next
#    switch (at least 8 switches, driven by the server's request counters,
#    not by time), and every mode counted blocks; 0 errors; then flush, the
#    origin alone verifies, and a verify-only pass after a restart finds 0
#    errors.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
make_images 1G 64M
start_server

# nbdw OFFSET LEN BYTE EXPECT: write LEN bytes of BYTE at OFFSET through NBD
# (no FLUSH, no FUA), then, still connected, read the origin file there;
# EXPECT 'has' or 'lacks': whether the origin file must already hold the data.
# Reads the data back through NBD too.
cat >"$T/nbdw.py" <<'EOF'
import nbd, sys
sock, origin = sys.argv[1], sys.argv[2]
off, ln, val, expect = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5], 0), sys.argv[6]
data = bytes([val]) * ln
h = nbd.NBD()
h.connect_unix(sock)
h.pwrite(data, off)
with open(origin, "rb") as f:
    f.seek(off)
    got = f.read(ln)
has = got == data
back = h.pread(ln, off)
h.shutdown()
print("write %d bytes of 0x%02x at %d: origin file %s it; NBD read back %s" %
      (ln, val, off, "holds" if has else "does not hold", "ok" if back == data else "WRONG"))
if back != data:
    sys.exit(1)
if expect == "has" and not has:
    sys.exit(1)
if expect == "lacks" and has:
    sys.exit(1)
EOF
nbdw() { py "$T/nbdw.py" "$SOCK" "$ORIGIN" "$@"; }

# origin_has OFFSET LEN BYTE: the origin file holds LEN bytes of BYTE at OFFSET.
origin_has() {
	"$PY" -c 'import sys
off, ln, v = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0)
f = open(sys.argv[1], "rb"); f.seek(off)
sys.exit(0 if f.read(ln) == bytes([v]) * ln else 1)' "$ORIGIN" "$@"
}

# nbd_reads OFFSET COUNT PASSES: read COUNT 4 KiB blocks, 64 KiB apart, PASSES times.
nbd_reads() {
	py - "$SOCK" "$@" <<'EOF' || fail "nbd reads failed"
import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
off, n, passes = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for p in range(passes):
    for i in range(n):
        h.pread(4096, off + i * 65536)
h.shutdown()
EOF
}

# mode_to MODE: switch with the CLI; require exit 0 and the status to agree.
mode_to() {
	ctl_ok mode "$1"
	echo "$CTL_OUT"
	echo "$CTL_OUT" | grep -q "^mode: $1" || fail "'blkcache mode $1' printed: $CTL_OUT"
	[ "$(status_field mode)" = "$1" ] || fail "status says mode $(status_field mode) after 'mode $1'"
}

[ "$(status_field mode)" = writeback ] || fail "a fresh server is not in writeback mode"

# ---- writethrough ----
mode_to writethrough
snap wt0
nbdw $((100 * MIB)) $((64 * 1024)) 0x74 has || fail "writethrough: the origin file lacks an acknowledged write"
nbdw $((100 * MIB + 128 * 1024 + 512)) 1536 0x75 has || fail "writethrough: the origin file lacks a partial-block write"
qemu-io -f raw "$URI" -c "write -q -P 0x76 $((101 * MIB)) 256k" >"$T/wt-qio.out" 2>&1 ||
	{ cat "$T/wt-qio.out"; fail "qemu-io write failed"; }
origin_has $((101 * MIB)) $((256 * 1024)) 0x76 || fail "writethrough: the origin file lacks the qemu-io write"
qio "$T/wt-read.out" "read -q -P 0x74 $((100 * MIB)) 64k" "read -q -P 0x76 $((101 * MIB)) 256k"
snap wt1
[ "$(sget wt1 dirty_blocks)" = 0 ] || fail "writethrough: dirty_blocks = $(sget wt1 dirty_blocks)"
[ "$(sdelta wt0 wt1 writethrough_blocks)" -ge 81 ] ||
	fail "writethrough: writethrough_blocks grew by $(sdelta wt0 wt1 writethrough_blocks), want >= 81"
[ "$(sdelta wt0 wt1 writes_absorbed_blocks)" -ge 0 ] || true
[ "$(sdelta wt0 wt1 cached_blocks)" -ge 80 ] ||
	fail "writethrough: cached_blocks grew by $(sdelta wt0 wt1 cached_blocks), want >= 80 (written data cached clean)"
[ "$(sdelta wt0 wt1 read_hit_blocks)" -ge 80 ] ||
	fail "writethrough: reading back written data hit $(sdelta wt0 wt1 read_hit_blocks) blocks, want >= 80"
log "writethrough: origin holds every write at once, dirty_blocks 0, $(sdelta wt0 wt1 cached_blocks) blocks cached clean, read-back hits"

# ---- negative control: writeback (paused) does not put a write on the origin ----
mode_to writeback
ctl_ok set writeback_paused 1
nbdw $((200 * MIB)) $((128 * 1024)) 0x57 lacks || fail "writeback: the origin file already holds a fresh write (control)"
[ "$(status_field dirty_blocks)" -ge 32 ] || fail "writeback: dirty_blocks $(status_field dirty_blocks) after a 128 KiB write"
log "control: in writeback mode a fresh write is only in the cache (dirty)"

# ---- writearound ----
mode_to writearound
snap wa0
nbdw $((300 * MIB)) $((512 * 1024)) 0x61 has || fail "writearound: the origin file lacks an acknowledged write"
# Overwrite a cached (clean, from writethrough) range: the cached copy must go.
nbdw $((100 * MIB)) $((32 * 1024)) 0x62 has || fail "writearound: overwrite of a cached range not on the origin"
snap wa1
[ "$(sdelta wa0 wa1 cached_blocks)" -le 0 ] ||
	fail "writearound: cached_blocks grew by $(sdelta wa0 wa1 cached_blocks)"
[ "$(sdelta wa0 wa1 invalidated_blocks)" -ge 8 ] ||
	fail "writearound: invalidated_blocks grew by $(sdelta wa0 wa1 invalidated_blocks), want >= 8"
[ "$(sdelta wa0 wa1 writearound_blocks)" -ge 136 ] ||
	fail "writearound: writearound_blocks grew by $(sdelta wa0 wa1 writearound_blocks), want >= 136"
qio "$T/wa-read.out" "read -q -P 0x61 $((300 * MIB)) 512k" "read -q -P 0x62 $((100 * MIB)) 32k" \
	"read -q -P 0x74 $((100 * MIB + 32 * 1024)) 32k"
log "writearound: origin holds the writes, they read back (no stale cached copy), cached_blocks $(sget wa0 cached_blocks) -> $(sget wa1 cached_blocks)"

# ---- passthrough ----
dirty=$(status_field dirty_blocks)
mode_to passthrough
echo "$CTL_OUT" | grep -q "$dirty dirty blocks" || fail "'mode passthrough' did not report the $dirty dirty blocks"
snap pt0
# Dirty data from writeback mode: still readable, although the origin lacks it.
qio "$T/pt-dirty.out" "read -q -P 0x57 $((200 * MIB)) 128k"
origin_has $((200 * MIB)) $((128 * 1024)) 0x57 && fail "passthrough: the dirty data is on the origin already (paused writeback ran?)"
nbdw $((400 * MIB)) $((256 * 1024)) 0x70 has || fail "passthrough: the origin file lacks an acknowledged write"
# Overwrite part of the dirty range: origin and NBD get the new data.
nbdw $((200 * MIB + 64 * 1024)) 4096 0x71 has || fail "passthrough: overwrite of a dirty block not on the origin"
qio "$T/pt-read.out" "read -q -P 0x57 $((200 * MIB)) 64k" "read -q -P 0x71 $((200 * MIB + 64 * 1024)) 4k" \
	"read -q -P 0x57 $((200 * MIB + 68 * 1024)) 60k" "read -q -P 0x70 $((400 * MIB)) 256k"
# Reads of uncached data, three times: nothing is promoted.
nbd_reads $((500 * MIB)) 32 3
snap pt1
for k in promoted_blocks bypass_sequential_bytes bypass_nhit_blocks; do
	[ "$(sdelta pt0 pt1 $k)" = 0 ] || fail "passthrough: $k grew by $(sdelta pt0 pt1 $k)"
done
[ "$(sdelta pt0 pt1 cached_blocks)" -le 0 ] || fail "passthrough: cached_blocks grew by $(sdelta pt0 pt1 cached_blocks)"
[ "$(sdelta pt0 pt1 passthrough_blocks)" -ge 64 ] ||
	fail "passthrough: passthrough_blocks grew by $(sdelta pt0 pt1 passthrough_blocks), want >= 64"
[ "$(sget pt1 dirty_blocks)" -gt 0 ] || fail "passthrough: the dirty data vanished (paused writeback)"
# Control: the same reads of other uncached data in writeback mode promote.
mode_to writeback
snap pt2
nbd_reads $((520 * MIB)) 32 3
snap pt3
[ "$(sdelta pt2 pt3 promoted_blocks)" -ge 32 ] ||
	fail "control: 3 reads of 32 uncached blocks in writeback mode promoted $(sdelta pt2 pt3 promoted_blocks) (want 32)"
log "passthrough: dirty data readable, writes on the origin, reads promote nothing (writeback mode: $(sdelta pt2 pt3 promoted_blocks) promoted)"

# ---- bad modes ----
ctl mode bogus
echo "$CTL_OUT"
[ "$CTL_RC" -eq 1 ] || fail "'mode bogus' exited $CTL_RC (want 1)"
echo "$CTL_OUT" | grep -q "unknown mode 'bogus'" || fail "'mode bogus': unclear message"
echo "$CTL_OUT" | grep -q "writethrough" || fail "'mode bogus' does not list the known modes"
ctl mode
[ "$CTL_RC" -eq 2 ] || fail "'mode' without MODE exited $CTL_RC (want 2)"
ctl mode WriteBack
[ "$CTL_RC" -eq 1 ] || fail "'mode WriteBack' exited $CTL_RC (want 1)"
[ "$(status_field mode)" = writeback ] || fail "a refused mode changed the mode"

# ---- flush: the paused dirty data reaches the origin ----
ctl_ok flush
[ "$(status_field dirty_blocks)" = 0 ] || fail "dirty_blocks $(status_field dirty_blocks) after flush"
origin_has $((200 * MIB)) $((64 * 1024)) 0x57 && origin_has $((200 * MIB + 64 * 1024)) 4096 0x71 &&
	origin_has $((200 * MIB + 68 * 1024)) $((60 * 1024)) 0x57 || fail "after flush the origin lacks the dirty data"
ctl_ok set writeback_paused 0
log "flush (while paused): exit 0, dirty 0, origin holds the data"

# ---- mode switches under load ----
SEED=$((1000 + RANDOM))
JOB=(--name=modes --ioengine=nbd --rw=randrw --rwmixread=50 --bsrange=4k-64k --iodepth=16
	--verify=crc32c --verify_fatal=0 --offset=512M --size=256M --randseed=$SEED)
# Slowed down with thinktime (a deterministic pause per 16 completions; --rate
# would make fio's read/write choice timing-dependent, and the verify-only
# replays below would then not match the run).  The thinktime also caps fio
# at 16 requests per 15 ms, so a switch never lags far behind the request
# count it waits for.
log "load: fio seed $SEED"
snap L0
(fio_checked load 600 "${JOB[@]}" --uri="$URI" --thinktime=15ms --thinktime_blocks=16 --do_verify=1) &
fpid=$!
track_bg $fpid
# The switcher (one process, talking to the control socket itself): switch
# the mode, wait until the server has served K more requests (reads +
# writes), switch again, until fio exits.  The first NSW switches must each
# have had their K requests while fio ran (exit 3 otherwise: load too short).
cat >"$T/switch.py" <<'EOF'
import json, socket, sys, time
ctl, fpid, nsw, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
MODES = ["writethrough", "writearound", "passthrough", "writeback"]
def req(cmd):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(ctl)
    s.sendall(cmd.encode() + b"\n")
    buf = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    j = json.loads(buf)
    if "error" in j:
        sys.exit("%s: %s" % (cmd, j["error"]))
    return j
def fio_running():
    try:
        st = open("/proc/%d/stat" % fpid).read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] != "Z"   # a zombie has exited
def served():
    j = req("status")
    return j["reads"] + j["writes"]
switches = 0
while True:
    req("mode " + MODES[switches % 4])
    switches += 1
    n0 = served()
    while served() < n0 + k:
        if not fio_running():
            print("%d switches; fio ended %d requests after the last one" % (switches, served() - n0))
            sys.exit(0 if switches > nsw else 3)
        time.sleep(0.01)
EOF
rc=0
timeout -k 10 660 "$PY" "$T/switch.py" "$CTL" "$fpid" 8 200 >"$T/switch.out" || rc=$?
cat "$T/switch.out"
switches=$(sed -n 's/^\([0-9]*\) switches.*/\1/p' "$T/switch.out")
frc=0
wait $fpid || frc=$?
[ $frc -eq 0 ] || fail "fio under mode switches failed (see above)"
[ $rc -ne 3 ] || fail "fio ended before 8 mode switches had served 200 requests each: load too short"
[ $rc -eq 0 ] || fail "the mode switcher failed (exit $rc)"
snap L
[ "$(sget L io_errors)" = 0 ] || fail "io_errors = $(sget L io_errors) after the load"
for k in writethrough_blocks writearound_blocks passthrough_blocks; do
	[ "$(sdelta L0 L $k)" -gt 0 ] || fail "load: $k did not grow although every mode served 200 requests"
done
log "load: fio randrw verify ok with $switches mode switches" \
	"(writethrough $(sget L writethrough_blocks), writearound $(sget L writearound_blocks), passthrough $(sget L passthrough_blocks) blocks)"

ctl_ok flush
[ "$(status_field dirty_blocks)" = 0 ] || fail "dirty_blocks $(status_field dirty_blocks) after flush"
stop_server
start_origin_ro
fio_checked load_origin 120 "${JOB[@]}" --uri="$ORIGIN_URI" --do_verify=1 --verify_only=1
stop_origin_ro
lw=$(fio_get load 'j["write"]["io_bytes"]')
vo=$(fio_get load_origin 'j["read"]["io_bytes"]')
[ "$vo" -ge "$lw" ] || fail "verify-only on the origin read $vo bytes, less than the $lw written under load"
log "origin alone after flush: verify-only of $((vo / MIB)) MiB ($((lw / MIB)) MiB written under load), 0 errors"
start_server
fio_checked load_verify 120 "${JOB[@]}" --uri="$URI" --do_verify=1 --verify_only=1
vb=$(fio_get load_verify 'j["read"]["io_bytes"]')
[ "$vb" -ge "$lw" ] || fail "verify-only after restart read $vb bytes, less than the $lw written under load"
[ "$(status_field io_errors)" = 0 ] || fail "io_errors after the verify-only pass"
stop_server

echo "checked: writethrough (origin holds unflushed writes, dirty 0), writearound (origin, no stale copy, cached_blocks not grown), passthrough (dirty data readable, origin writes, no promotion), bad mode refused, fio randrw under $switches mode switches + verify-only on the origin alone and after restart: 0 errors"
