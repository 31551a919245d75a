#!/bin/bash
# The RAM cache device, "mem:FILE" (a mapped file, IO by memory copy; for
# benchmarks and for running a cache faster than any disk):
#  - format and serve take mem:FILE on /dev/shm; serve's banner and status
#    say what it is (no durability);
#  - fio verify (randrw, 3x the cache, so reclaim and writeback run) through
#    NBD: 0 errors, every device IO counted in the cache device's queue;
#  - a clean restart finds everything (the file keeps the cache between
#    processes); the same file through the file driver is the same cache;
#  - on a file not on tmpfs it warns; a missing file, an empty file and a
#    block device are refused with clear errors and nothing written.
. "$(dirname "$0")/lib.sh"

SHM=$(mktemp -d /dev/shm/blkcache-mem.XXXXXX) || { echo "SKIP: no /dev/shm"; exit 77; }
_mem_cleanup() {
	local rc=$?
	rm -rf "$SHM"
	(exit "$rc")
	_cleanup
}
trap _mem_cleanup EXIT
MEMF=$SHM/cache.img
CACHE="mem:$MEMF"
truncate -s 96M "$MEMF"
truncate -s 288M "$ORIGIN"
out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" 2>&1) || { echo "$out"; fail "format on mem: failed"; }

start_server
grep -q "cache $CACHE: RAM (mem:)" "$SERVER_LOG" || fail "serve does not say the cache is RAM"
case "$(status_field cache_persistence)" in
"RAM (mem:)"*) ;;
*) fail "status cache_persistence is '$(status_field cache_persistence)'" ;;
esac
grep -q "not on tmpfs" "$SERVER_LOG" && fail "a mem: file on /dev/shm was warned about"

fio_checked verify 600 --name=v --ioengine=nbd --uri="$URI" --rw=randrw --rwmixread=50 \
	--bsrange=4k-64k --size=284M --iodepth=16 --fsync=64 --verify=crc32c --verify_fatal=0 \
	--randseed=$((1000 + RANDOM))
log "fio verify on the mem: cache: $(fio_get verify 'j["write"]["io_bytes"] >> 20') MiB written, 0 errors"
status_json >"$T/st.json"
"$PY" - "$T/st.json" <<'PY' || fail "the mem: cache's counters are implausible"
import json, sys
s = json.load(open(sys.argv[1]))
q = s["cache_queue"]
assert s["cache_errors"] == 0, s["cache_errors"]
assert s["reclaimed_segments"] > 0, "3x the cache was written: segments must be reclaimed"
assert q["submitted"] > 0 and sum(q["histogram"].values()) == q["submitted"], q
assert q["inflight"] == 0 or q["inflight"] <= q["max_inflight"], q
print("mem: %d cache device IOs, avg %.1f in flight" % (q["submitted"], q["avg_inflight"]))
PY
qio "$T/w.out" "write -q -P 0x6d 10M 3M" "write -q -P 0x6e 200M 64k" "flush"
stop_server
start_server
qio "$T/r.out" "read -q -P 0x6d 10M 3M" "read -q -P 0x6e 200M 64k"
stop_server
CACHE=$MEMF start_server
qio "$T/f.out" "read -q -P 0x6d 10M 3M" "read -q -P 0x6e 200M 64k"
stop_server
log "a restart and the file driver read what the mem: cache held"
"$BLKCACHE" check --cache "$CACHE" --origin "$ORIGIN" >"$T/check.out" 2>&1 ||
	{ cat "$T/check.out"; fail "check of the mem: cache failed"; }

# not on tmpfs: a warning
truncate -s 96M "$T/disk.img"
"$BLKCACHE" format --cache "mem:$T/disk.img" --origin "$ORIGIN" --force >"$T/fmt2.out" 2>&1 ||
	{ cat "$T/fmt2.out"; fail "format on a mem: disk file failed"; }
if [ "$(stat -f -c %T "$T")" != tmpfs ]; then
	grep -q "not on tmpfs" "$T/fmt2.out" || { cat "$T/fmt2.out"; fail "no warning for a mem: file off tmpfs"; }
fi

# bad input
if out=$("$BLKCACHE" format --cache "mem:$SHM/missing.img" --origin "$ORIGIN" 2>&1); then
	fail "format on a missing mem: file succeeded"
fi
echo "$out" | grep -q "mem:$SHM/missing.img: No such file" || { echo "$out"; fail "no clear error for a missing mem: file"; }
truncate -s 0 "$SHM/empty.img"
if out=$("$BLKCACHE" format --cache "mem:$SHM/empty.img" --origin "$ORIGIN" --force 2>&1); then
	fail "format on an empty mem: file succeeded"
fi
echo "$out" | grep -q "the file is empty" || { echo "$out"; fail "no clear error for an empty mem: file"; }
truncate -s 64M "$T/loop.img"
if LOOPDEV=$(losetup -f --show "$T/loop.img" 2>/dev/null); then
	out=$("$BLKCACHE" format --cache "mem:$LOOPDEV" --origin "$ORIGIN" --force 2>&1) && rc=0 || rc=$?
	losetup -d "$LOOPDEV"
	[ "$rc" -ne 0 ] || fail "format on mem:BLOCKDEV succeeded"
	echo "$out" | grep -q "takes a regular file" || { echo "$out"; fail "no clear error for mem:BLOCKDEV"; }
	cmp -s "$T/loop.img" <(head -c 64M /dev/zero) || fail "a refused mem:BLOCKDEV was written"
else
	log "no loop device here: the mem:BLOCKDEV case is not run"
fi
echo "checked: mem:FILE cache: serve/status say RAM; fio verify 0 errors with reclaim; queue counted; restart and file driver read the data; off-tmpfs warning; missing/empty/block device refused"
