#!/bin/bash
# NBD negotiation as seen by real clients: nbdinfo --json / --list and libnbd
# (INFO before GO, then GO): size, block sizes, flags, export name.
. "$(dirname "$0")/lib.sh"

# An origin size that is not a multiple of 4 KiB: the export is its whole
# 4 KiB blocks (nothing is written to the origin, no label).
OSIZE=$((512 * 1024 * 1024 + 12345))
WANT=$(export_size_for $OSIZE)
make_images $OSIZE 32M
start_server

info=$(nbdinfo --json "$URI") || fail "nbdinfo --json failed"
echo "$info" > "$T/nbdinfo.json"
py - "$T/nbdinfo.json" "$WANT" <<'EOF' || fail "nbdinfo --json reports wrong properties"
import json, sys
j = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
ex = j["exports"]
bad = []
if len(ex) != 1:
    bad.append("expected one export, got %d" % len(ex))
e = ex[0]
exp = {
    "export-size": want,
    "block_size_minimum": 512,
    "block_size_preferred": 4096,
    "can_flush": True, "can_fua": True, "can_trim": True, "can_zero": True,
    "can_multi_conn": True,
    "is_read_only": False,
}
for k, v in exp.items():
    if e.get(k) != v:
        bad.append("%s = %r, want %r" % (k, e.get(k), v))
mx = e.get("block_size_maximum", 0)
if not (isinstance(mx, int) and mx >= 4096 and mx % 4096 == 0):
    bad.append("block_size_maximum = %r" % mx)
for b in bad:
    print("  mismatch:", b)
print("nbdinfo --json: %d properties checked, %d wrong" % (len(exp) + 1, len(bad)))
sys.exit(1 if bad else 0)
EOF

# The size alone (the readiness probe) must agree.
sz=$(nbdinfo --size "$URI")
[ "$sz" = "$WANT" ] || fail "nbdinfo --size = $sz, want $WANT"

# --list shows the export name.
nbdinfo --list "$URI" > "$T/list.out" 2>&1 || { cat "$T/list.out"; fail "nbdinfo --list failed"; }
grep -q 'export="blkcache"' "$T/list.out" || { cat "$T/list.out"; fail "nbdinfo --list does not show export \"blkcache\""; }

# Export name "blkcache" and "" both work; another name is refused.
nbdinfo --size "nbd+unix:///blkcache?socket=$SOCK" >/dev/null || fail "export name 'blkcache' refused"
if nbdinfo --size "nbd+unix:///nosuchexport?socket=$SOCK" >/dev/null 2>&1; then
	fail "export name 'nosuchexport' was accepted"
fi

# libnbd in option mode: INFO then GO must agree on the size; both names.
py - "$SOCK" "$WANT" <<'EOF' || fail "libnbd INFO/GO check failed"
import nbd, sys
sock, want = sys.argv[1], int(sys.argv[2])
for name in ("blkcache", ""):
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.set_export_name(name)
    h.connect_unix(sock)
    assert h.aio_is_negotiating(), "not in option mode"
    h.opt_info()
    s_info = h.get_size()
    mn = h.get_block_size(nbd.SIZE_MINIMUM)
    pr = h.get_block_size(nbd.SIZE_PREFERRED)
    h.opt_go()
    s_go = h.get_size()
    print("export %r: INFO size %d, GO size %d, block sizes %d/%d" % (name, s_info, s_go, mn, pr))
    assert s_info == want, "INFO size %d != %d" % (s_info, want)
    assert s_go == want, "GO size %d != %d" % (s_go, want)
    assert (mn, pr) == (512, 4096), (mn, pr)
    assert h.can_multi_conn() and h.can_flush() and h.can_fua()
    assert h.can_trim() and h.can_zero() and not h.is_read_only()
    # A small round trip on the negotiated connection.
    h.pwrite(b"\xa5" * 4096, 8192)
    h.flush()
    assert h.pread(4096, 8192) == b"\xa5" * 4096
    h.shutdown()
# opt_list through libnbd sees the export.
h = nbd.NBD()
h.set_opt_mode(True)
h.connect_unix(sock)
names = []
h.opt_list(lambda n, d: names.append(n) or 0)
h.opt_abort()
print("opt_list:", names)
assert "blkcache" in names, names
EOF

# Multi-conn: a write on one connection, FLUSH on another, visible on a third.
py - "$SOCK" <<'EOF' || fail "multi-connection consistency check failed"
import nbd, sys
hs = []
for _ in range(3):
    h = nbd.NBD(); h.connect_unix(sys.argv[1]); hs.append(h)
hs[0].pwrite(b"\x5a" * 65536, 1 << 20)
hs[1].flush()
assert hs[2].pread(65536, 1 << 20) == b"\x5a" * 65536
print("multi-conn: write/flush/read across 3 connections ok")
EOF

n=$(status_field nbd_protocol_errors)
[ "$n" = 0 ] || fail "server counted $n protocol errors"

# The last exported MiB, pushed out of the 32 MiB cache by 40 MiB of other
# writes, lands at the same offsets of the origin file, and the origin's
# unexported tail (its last 12345 % 4096 bytes) is untouched (the server
# restarts).
MIB=$((1024 * 1024))
qio "$T/end.out" "write -q -P 0xab $((WANT - MIB)) 1M" "write -q -P 0xcd 4M 40M" "flush"
[ "$(status_field writeback_blocks)" -gt 0 ] || fail "no writeback after 41 MiB through a 32 MiB cache"
stop_server
py - "$ORIGIN" "$WANT" <<'EOF' || fail "origin file does not hold the written-back data at the exported offsets"
import sys
f = open(sys.argv[1], "rb"); want = int(sys.argv[2]); M = 1 << 20
f.seek(want - M); tail = f.read(M)
f.seek(want); rest = f.read()
print("origin: last exported MiB %s, %d bytes after the export %s" % ("ok" if tail == b"\xab" * M else "WRONG",
      len(rest), "untouched" if rest == bytes(len(rest)) else "CHANGED"))
sys.exit(0 if tail == b"\xab" * M and rest == bytes(len(rest)) and len(rest) == 12345 % 4096 else 1)
EOF
start_server
qio "$T/end2.out" "read -q -P 0xab $((WANT - MIB)) 1M" "read -q -P 0xcd 4M 40M"
stop_server
echo "checked: size $WANT via nbdinfo --json/--size and libnbd INFO+GO (2 export names), 10 --json properties, --list, unknown name refused, multi-conn flush, last MiB written back in place, unexported tail untouched; 0 mismatches"
