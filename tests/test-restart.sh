#!/bin/bash
# Restarts: (a) data written with qemu-io survives a clean SIGTERM stop and
# restart, and the dirty set is the same afterwards (status --json);
# (b) data written and flushed survives kill -9; data written after the last
# flush reads back per sector as either the old or the new content, never
# anything else; (c) a second server on the same control socket, or on the
# same devices with its own sockets, is refused (and so is format --force)
# with a clear message and the running one is unaffected; (d) SIGTERM while a
# client has 32 writes in flight: a clean shutdown, and every write that was
# acknowledged (no FLUSH at all) is there after the restart.
. "$(dirname "$0")/lib.sh"

make_images 512M 32M
# (a) compares the dirty set before and after a clean restart: writeback
# stays paused in both servers, so that idle writeback (500 ms after the
# last request, whenever that is on this machine) cannot change it.
start_server --set writeback_paused=1

# ---- (a) clean restart ----
qio "$T/a-write.out" \
	"write -q -P 0x61 0 1M" \
	"write -q -P 0x62 1536 12800" \
	"write -q -P 0x63 $((5 * 1024 * 1024 + 512)) 3M" \
	"write -q -P 0x64 $((9 * 1024 * 1024)) 4096" \
	"write -q -z $((1024 * 1024 - 4096)) 8192"
A_READS=(
	"read -q -P 0x61 0 1536"
	"read -q -P 0x62 1536 12800"
	"read -q -P 0x61 14336 $((1024 * 1024 - 4096 - 14336))"
	"read -q -P 0x00 $((1024 * 1024 - 4096)) 8192"
	"read -q -P 0x00 $((1024 * 1024 + 4096)) $((4 * 1024 * 1024 - 4096 + 512))"
	"read -q -P 0x63 $((5 * 1024 * 1024 + 512)) 3M"
	"read -q -P 0x00 $((8 * 1024 * 1024 + 512)) $((1024 * 1024 - 512))"
	"read -q -P 0x64 $((9 * 1024 * 1024)) 4096"
)
qio "$T/a-read0.out" "${A_READS[@]}"
j=$(status_json)
dirty_before=$(jfield "$j" dirty_blocks)
[ "$dirty_before" -gt 0 ] || fail "dirty_blocks = $dirty_before after writing (writes did not go to the cache?)"
stop_server
start_server --set writeback_paused=1
qio "$T/a-read1.out" "${A_READS[@]}"
j=$(status_json)
echo "status after clean restart: $j"
dirty_after=$(jfield "$j" dirty_blocks)
rs=$(jfield "$j" recovered_segments)
[ "$dirty_after" -eq "$dirty_before" ] ||
	fail "dirty_blocks $dirty_before before the clean stop, $dirty_after after restart"
[ "$rs" -gt 0 ] || fail "recovered_segments = $rs after restarting with dirty data"
for k in reads writes io_errors; do
	jfield "$j" $k >/dev/null || fail "status --json lacks $k"
done
[ "$(jfield "$j" writes)" = 0 ] || fail "writes counter not reset after restart"
[ "$(jfield "$j" io_errors)" = 0 ] || fail "io_errors after restart"
log "(a) clean restart: ${#A_READS[@]} pattern reads intact, dirty_blocks $dirty_after, recovered_segments $rs"

# ---- (b) flushed data survives kill -9; unflushed data is old or new per sector ----
py - "$SOCK" "$T/b.state" "$SERVER_PID" <<'EOF' || fail "(b) writing phase failed"
import nbd, os, signal, sys, random
sock = sys.argv[1]
h = nbd.NBD(); h.connect_unix(sock)
rnd = random.Random(7)
MB = 1 << 20
# FUA writes at 24 MiB, then 4 MiB at 16 MiB in varied request sizes and a
# FLUSH, then an unflushed write and (right after) kill -9.
for i in range(16):
    h.pwrite(bytes([0xf0 + i]) * 8192, 24 * MB + i * 65536 + 512, nbd.CMD_FLAG_FUA)
model = bytearray(4 * MB)
off = 16 * MB
n = 0
while off < 20 * MB:
    ln = min(rnd.choice([512, 4096, 12288, 65536, 262144]), 20 * MB - off)
    v = 0x70 + n % 16
    n += 1
    h.pwrite(bytes([v]) * ln, off)
    model[off - 16 * MB:off - 16 * MB + ln] = bytes([v]) * ln
    off += ln
h.flush()
open(sys.argv[2], "wb").write(model)
# Unflushed: overwrite 1 MiB at 17 MiB (inside the flushed range) with 0x55,
# and SIGKILL the server right away, while this client is still connected.
buf = nbd.Buffer.from_bytearray(bytearray(b"\x55" * MB))
h.aio_pwrite(buf, 17 * MB)
os.kill(int(sys.argv[3]), signal.SIGKILL)
EOF
kill9_server
start_server
py - "$SOCK" "$T/b.state" <<'EOF' || fail "(b) data after kill -9 is wrong"
import nbd, sys, random
h = nbd.NBD(); h.connect_unix(sys.argv[1])
MB = 1 << 20
bad = 0
data = h.pread(4 * MB, 16 * MB)
model = open(sys.argv[2], "rb").read()
newer = 0
for s in range(0, 4 * MB, 512):
    off = 16 * MB + s
    old = model[s]
    got = data[s:s + 512]
    if 17 * MB <= off < 18 * MB:
        if got == b"\x55" * 512:
            newer += 1
            continue
    if got != bytes([old]) * 512:
        bad += 1
        if bad <= 5:
            print("sector at %d: got %r..., want 0x%02x%s" % (off, got[:8], old,
                  " or 0x55" if 17 * MB <= off < 18 * MB else ""))
for i in range(16):
    off = 24 * MB + i * 65536 + 512
    if h.pread(8192, off) != bytes([0xf0 + i]) * 8192:
        bad += 1
        print("FUA write %d lost" % i)
print("flushed 4 MiB + 16 FUA writes checked after kill -9: %d bad sectors; "
      "%d of 2048 unflushed sectors hold the newer data" % (bad, newer))
sys.exit(1 if bad else 0)
EOF
qio "$T/b-reads-a.out" "${A_READS[@]}"
log "(b) kill -9: flushed and FUA data intact, unflushed data old-or-new, (a) data intact"

# ---- (c) a second server with the same control socket is refused ----
rc=0
"$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --socket "$T/other.sock" --control "$CTL" \
	>"$T/second.out" 2>&1 || rc=$?
cat "$T/second.out"
check_no_sanitizer "$T/second.out"
[ $rc -ne 0 ] || fail "a second server on the same control socket started (exit 0)"
grep -qiE 'in use|already' "$T/second.out" || fail "the refusal does not say the control socket is in use"
server_answers || fail "the running server stopped answering after the refused second start"
j=$(status_json) || fail "the running server's control socket stopped working"
# Its own sockets do not help: the devices are locked by the running server,
# and the refusal happens before anything is read or written.
rc=0
"$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --socket "$T/other2.sock" --control "$T/other2.ctl" \
	>"$T/third.out" 2>&1 || rc=$?
cat "$T/third.out"
check_no_sanitizer "$T/third.out"
[ $rc -ne 0 ] || fail "a second server on the same devices started (exit 0)"
grep -q 'in use by another process' "$T/third.out" || fail "the refusal does not say the device is in use"
grep -q 'recovery' "$T/third.out" && fail "the refused server ran recovery on a device in use"
"$BLKCACHE" format --force --cache "$CACHE" --origin "$ORIGIN" >"$T/fourth.out" 2>&1 && \
	fail "format --force of a cache in use succeeded"
grep -q 'in use by another process' "$T/fourth.out" || fail "format of a device in use: unclear message"
server_answers || fail "the running server stopped answering after the refused starts"
qio "$T/c-reads.out" "${A_READS[@]}"
stop_server
start_server
qio "$T/c-reads2.out" "${A_READS[@]}"
stop_server
log "(c) second server (same control socket / same devices) and format --force refused; the first one kept working"

# ---- (d) clean shutdown under load keeps every acknowledged write ----
# SIGTERM comes once the client has had a random number (1-1000) of its
# writes acknowledged (it says so in $T/acked.first), while it keeps 32 in
# flight: counted in acknowledgements, not in seconds, so that it always
# lands during the load.
start_server
ACKS=$((1 + RANDOM % 1000))
"$PY" - "$SOCK" "$T/acked" "$ACKS" >"$T/load.out" 2>&1 <<'EOF' &
import nbd, sys
sock, logp, signal_after, depth = sys.argv[1], sys.argv[2], int(sys.argv[3]), 32
h = nbd.NBD(); h.connect_unix(sock)
CH = 65536
inflight = {}   # cookie -> (index, buffer)
done, failed, idx = [], 0, 0
try:
    while idx < 6144 or inflight:
        while len(inflight) < depth and idx < 6144:
            buf = nbd.Buffer.from_bytearray(bytearray((b"%08d" % idx) * (CH // 8)))
            c = h.aio_pwrite(buf, 64 * 1024 * 1024 + idx * CH)
            inflight[c] = (idx, buf)
            idx += 1
        h.poll(-1)
        for c in list(inflight):
            try:
                if h.aio_command_completed(c):
                    done.append(inflight.pop(c)[0])
                    if len(done) == signal_after:
                        open(logp + ".first", "w").write("%d\n" % len(done))
            except nbd.Error:
                inflight.pop(c); failed += 1
except nbd.Error as e:
    print("connection ended:", e)
open(logp, "w").write("".join("%d\n" % i for i in done))
print("issued %d, acknowledged %d, failed %d" % (idx, len(done), failed))
EOF
loader=$!
track_bg $loader
wait_for 120 "(d) the load client had fewer than $ACKS writes acknowledged" test -s "$T/acked.first"
stop_server
lrc=0
wait_bounded $loader 60 || lrc=$?
cat "$T/load.out"
[ $lrc -eq 0 ] || fail "(d) the load client failed (exit $lrc)"
nacked=$(wc -l < "$T/acked")
[ "$nacked" -gt 0 ] || fail "(d) no write was acknowledged before SIGTERM"
start_server
py - "$SOCK" "$T/acked" <<'EOF' || fail "(d) acknowledged writes were lost by the clean shutdown"
import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
CH = 65536
bad = 0
idx = [int(x) for x in open(sys.argv[2])]
for i in idx:
    if h.pread(CH, 64 * 1024 * 1024 + i * CH) != (b"%08d" % i) * (CH // 8):
        bad += 1
        if bad <= 5:
            print("acknowledged write %d is missing" % i)
print("%d acknowledged writes checked after a clean shutdown under load: %d missing" % (len(idx), bad))
sys.exit(1 if bad else 0)
EOF
stop_server
log "(d) SIGTERM under load: clean exit, all $nacked acknowledged writes present"

echo "checked: clean restart (${#A_READS[@]} ranges, dirty set $dirty_after blocks preserved), kill -9 (4 MiB flushed + 16 FUA writes intact, unflushed sectors old-or-new), duplicate server refused, SIGTERM under load ($nacked acknowledged unflushed writes kept); 0 mismatches"
