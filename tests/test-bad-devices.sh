#!/bin/bash
# Wrong, damaged or foreign devices are refused with a message that names the
# problem; one damaged superblock copy is survivable; bad NBD requests get an
# error and leave the connection usable.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
checks=0

# expect_refused WHAT REGEX cmd...: the command must exit non-zero (within
# 120 s: a bound for a hang, a refusal takes milliseconds) and its stderr must
# match REGEX (extended, case-insensitive).
expect_refused() {
	local what=$1 re=$2 rc=0
	shift 2
	timeout -k 10 120 "$@" >"$T/refused.out" 2>&1 || rc=$?
	check_no_sanitizer "$T/refused.out"
	if [ $rc -eq 0 ] || [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		cat "$T/refused.out"
		fail "$what: was not refused (exit $rc)"
	fi
	if ! grep -qiE -- "$re" "$T/refused.out"; then
		cat "$T/refused.out"
		fail "$what: exit $rc, but the message does not match /$re/"
	fi
	log "$what: refused (exit $rc): $(head -c 300 "$T/refused.out" | tr '\n' ' ')"
	checks=$((checks + 1))
}

# serve_args CACHE ORIGIN: a serve command line on throw-away sockets.
serve_cmd() {
	echo "$BLKCACHE" serve --cache "$1" --origin "$2" --socket "$T/x.sock" --control "$T/x.ctl"
}

# flip FILE OFFSET: xor one byte with 0x5a.
flip() {
	py - "$1" "$2" <<'EOF'
import sys, os
f = open(sys.argv[1], "r+b"); off = int(sys.argv[2])
f.seek(off); b = f.read(1)[0]; f.seek(off); f.write(bytes([b ^ 0x5a]))
f.flush(); os.fsync(f.fileno())
EOF
}

# put_u32 FILE OFFSET VALUE
put_u32() {
	py - "$1" "$2" "$3" <<'EOF'
import sys, os, struct
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); f.write(struct.pack("<I", int(sys.argv[3])))
f.flush(); os.fsync(f.fileno())
EOF
}

make_images 512M 32M
uuid=$(grep -oE 'origin UUID [0-9a-f-]{36}' "$T/format.out" | awk '{print $3}')
[ -n "$uuid" ] || fail "format output does not name the origin UUID"
start_server
qio "$T/w.out" "write -q -P 0x3c $((2 * MIB + 512)) $((3 * MIB))" "flush"
stop_server
DATA_READ="read -q -P 0x3c $((2 * MIB + 512)) $((3 * MIB))"

# ---- (a) wrong origin ----
truncate -s 512M "$T/o2"          # same size, no label
# shellcheck disable=SC2046
expect_refused "same-size unlabelled origin" "$uuid.*(wrong origin|belongs to)|(wrong origin|belongs to).*$uuid" \
	$(serve_cmd "$CACHE" "$T/o2")
truncate -s 32M "$T/c2"           # same size, labelled by another cache
"$BLKCACHE" format --cache "$T/c2" --origin "$T/o2" >/dev/null || fail "formatting a second pair failed"
# shellcheck disable=SC2046
expect_refused "same-size origin of another cache" "$uuid.*(wrong origin|belongs to|right origin)|(belongs to|wrong origin).*$uuid" \
	$(serve_cmd "$CACHE" "$T/o2")
truncate -s 600M "$T/o3"          # different size
# shellcheck disable=SC2046
expect_refused "different-size origin" "629145600|536870912" $(serve_cmd "$CACHE" "$T/o3")
# shellcheck disable=SC2046
expect_refused "missing origin" "$T/nonexistent|no such file" $(serve_cmd "$CACHE" "$T/nonexistent")
# The refusals must not have touched the pair: it still serves its data.
start_server
qio "$T/r.out" "$DATA_READ"
stop_server

# ---- (b) garbage cache device ----
head -c $((32 * MIB)) /dev/urandom > "$T/garbage"
# shellcheck disable=SC2046
expect_refused "random-bytes cache" "not a blkcache cache" $(serve_cmd "$T/garbage" "$ORIGIN")
truncate -s 32M "$T/zeroes"
# shellcheck disable=SC2046
expect_refused "all-zero cache" "not a blkcache cache" $(serve_cmd "$T/zeroes" "$ORIGIN")

# ---- (c) format refuses to overwrite without --force ----
expect_refused "format over a formatted cache" "--force" \
	"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN"
# An origin cached in place carries nothing that says so; one labelled with
# --origin-label does, and another cache for it is refused.
truncate -s 64M "$T/lo" "$T/lc"
"$BLKCACHE" format --cache "$T/lc" --origin "$T/lo" --origin-label >/dev/null || fail "format --origin-label failed"
expect_refused "format of another cache for a labelled origin" "already attached.*--force" \
	"$BLKCACHE" format --cache "$T/zeroes" --origin "$T/lo"
# Neither refusal changed anything.
start_server
qio "$T/r.out" "$DATA_READ"
stop_server
expect_refused "format with a 3 MiB segment size" "segment size" \
	"$BLKCACHE" format --cache "$T/zeroes" --origin "$T/o3" --segment-size 3M
truncate -s 4M "$T/tiny"
expect_refused "format of a too-small cache" "too small" \
	"$BLKCACHE" format --cache "$T/tiny" --origin "$T/o3"

# ---- (d) one damaged superblock copy is survivable; both are not ----
for copy in 0 1; do
	flip "$CACHE" $((copy * 4096 + 200))
	start_server
	qio "$T/r.out" "$DATA_READ"
	grep -qiE "copy $copy|superblock" "$SERVER_LOG" ||
		log "note: the server log does not mention the damaged superblock copy $copy"
	stop_server
	log "superblock copy $copy damaged: server started, data intact"
	checks=$((checks + 1))
done
cp "$CACHE" "$T/cache.saved"
flip "$CACHE" 200
flip "$CACHE" $((4096 + 200))
# shellcheck disable=SC2046
expect_refused "both superblock copies damaged" "both" $(serve_cmd "$CACHE" "$ORIGIN")
grep -qiE 'copy 0' "$T/refused.out" && grep -qiE 'copy 1' "$T/refused.out" ||
	fail "the message does not describe both copies"
cp "$T/cache.saved" "$CACHE"

# ---- (e) on-disk format version mismatch ----
put_u32 "$CACHE" 8 99
put_u32 "$CACHE" $((4096 + 8)) 99
# shellcheck disable=SC2046
expect_refused "format version 99" "version 99" $(serve_cmd "$CACHE" "$ORIGIN")
cp "$T/cache.saved" "$CACHE"

# ---- (f) bad NBD requests ----
start_server
qio "$T/r.out" "$DATA_READ"
py - "$SOCK" <<'EOF' || fail "bad NBD requests were not handled"
import nbd, sys
h = nbd.NBD()
h.set_strict_mode(0)
h.connect_unix(sys.argv[1])
size = h.get_size()
ref = h.pread(4096, 0)
cases = [
    ("read beyond the end",         lambda: h.pread(4096, size)),
    ("read crossing the end",       lambda: h.pread(8192, size - 4096)),
    ("read far beyond the end",     lambda: h.pread(512, size + (1 << 40))),
    ("write beyond the end",        lambda: h.pwrite(b"x" * 4096, size)),
    ("write crossing the end",      lambda: h.pwrite(b"x" * 8192, size - 4096)),
    ("trim beyond the end",         lambda: h.trim(4096, size)),
    ("zero beyond the end",         lambda: h.zero(4096, size)),
    ("read at a misaligned offset", lambda: h.pread(4096, 100)),
    ("read of a misaligned length", lambda: h.pread(1000, 0)),
    ("write at a misaligned offset", lambda: h.pwrite(b"y" * 4096, 4096 + 3)),
    ("write of a misaligned length", lambda: h.pwrite(b"y" * 1000, 8192)),
    ("read larger than the maximum", lambda: h.pread(64 << 20, 0)),
]
bad = 0
for name, fn in cases:
    try:
        fn()
        print("%-32s NOT rejected" % name); bad += 1
    except nbd.Error as e:
        print("%-32s rejected: %s" % (name, e.string.split(": ")[-1]))
    # The same connection still works and the data is unchanged.
    if h.pread(4096, 0) != ref:
        print("  ... and afterwards a normal read returns different data"); bad += 1
    h.pwrite(b"\x42" * 4096, 1 << 20)
    h.flush()
    if h.pread(4096, 1 << 20) != b"\x42" * 4096:
        print("  ... and afterwards a write/read round trip fails"); bad += 1
# The last block and the exact end are fine.
h.pwrite(b"\x99" * 4096, size - 4096)
assert h.pread(4096, size - 4096) == b"\x99" * 4096
h.shutdown()
print("%d bad requests: %d handled wrongly" % (len(cases), bad))
sys.exit(1 if bad else 0)
EOF
checks=$((checks + 12))
# The data next to the misaligned writes is intact; the server is healthy.
qio "$T/r.out" "$DATA_READ" "read -q -P 0x99 $(( $(export_size_for $((512 * MIB))) - 4096 )) 4096"
server_answers || fail "server stopped answering after the bad requests"
stop_server

# ---- (c, continued) format --force takes over a formatted cache ----
out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --force 2>&1) ||
	{ echo "$out"; fail "format --force failed"; }
echo "$out" > "$T/force.out"
check_no_sanitizer "$T/force.out"
newuuid=$(grep -oE 'origin UUID [0-9a-f-]{36}' "$T/force.out" | awk '{print $3}')
[ -n "$newuuid" ] && [ "$newuuid" != "$uuid" ] || fail "format --force did not create a new identity ($out)"
start_server
[ "$(nbdinfo --size "$URI")" = "$(export_size_for $((512 * MIB)))" ] || fail "wrong size after format --force"
qio "$T/f.out" "write -q -P 0x5e 0 64k" "flush" "read -q -P 0x5e 0 64k"
stop_server
log "format --force: new origin UUID $newuuid, serves"
checks=$((checks + 1))

echo "checked: $checks refusals/recoveries (wrong origin x4, garbage/zero cache, format without --force x2, format --force, bad segment size, tiny cache, one damaged superblock copy x2, both copies, version 99, 12 bad NBD requests), data intact throughout"
