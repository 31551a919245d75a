#!/bin/bash
# A persistent-memory cache device, "pmem:FILE" (the libpmem2 driver), on a
# file that is not DAX (this host has no pmem; the VM test covers DAX):
#  - format and serve take pmem:FILE; serve and status say how it persists
#    (page granularity, fsync), and the server log warns that a non-DAX pmem
#    cache is for testing;
#  - fio verify (randrw, 3x the cache, fsyncs) through NBD: 0 errors;
#  - kill -9 after a FLUSH: everything flushed reads back after restart,
#    three times over;
#  - libpmem2 told the mapping has cache-line granularity
#    (PMEM2_FORCE_GRANULARITY, its test switch): the non-temporal-store path
#    serves fio verify with 0 errors and status says cache-line;
#  - the same cache file opened without "pmem:" (the file driver) is the
#    same cache: data flushed through pmem reads back;
#  - bad input: a missing file, a block device, an empty file: clear errors,
#    nothing written.
. "$(dirname "$0")/lib.sh"

PM=$T/pmem.img
CACHE="pmem:$PM"
truncate -s 128M "$PM"
truncate -s 384M "$ORIGIN"
out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" 2>&1) || { echo "$out"; fail "format on pmem failed"; }
log "format: $out"

start_server
grep -q "cache $CACHE: pmem, page granularity" "$SERVER_LOG" ||
	fail "serve does not say how the pmem cache persists"
grep -q "not DAX-mapped persistent memory" "$SERVER_LOG" ||
	fail "serve does not warn about a non-DAX pmem cache"
pers=$(status_field cache_persistence)
case "$pers" in
*"page granularity"*) ;;
*) fail "status cache_persistence is '$pers'" ;;
esac
"$BLKCACHE" status --control "$CTL" | grep -q "cache persistence pmem, page granularity" ||
	fail "status (human) lacks the cache persistence line"

fio_checked verify 600 --name=v --ioengine=nbd --uri="$URI" --rw=randrw --rwmixread=50 \
	--bsrange=4k-64k --size=380M --iodepth=16 --fsync=64 --verify=crc32c --verify_fatal=0 \
	--randseed=$((1000 + RANDOM))
log "fio verify on the pmem cache: $(fio_get verify 'j["write"]["io_bytes"] >> 20') MiB written, 0 errors"
[ "$(status_field cache_errors)" -eq 0 ] || fail "cache errors on the pmem device"

# kill -9 after a FLUSH, three times: what was flushed survives.
for i in 1 2 3; do
	p=$(printf '0x%02x' $((0x40 + i)))
	qio "$T/k$i.out" "write -q -P $p $((i * 3))M 2M" "write -q -P $p $((100 + i))M 64k" "flush"
	kill9_server
	start_server
	qio "$T/k$i-read.out" "read -q -P $p $((i * 3))M 2M" "read -q -P $p $((100 + i))M 64k"
done
log "flushed writes survived 3 kill -9 restarts"
stop_server

# the cache-line (non-temporal store) path
PMEM2_FORCE_GRANULARITY=CACHE_LINE start_server
grep -q "cache $CACHE: pmem, cache-line granularity" "$SERVER_LOG" ||
	fail "serve does not report the cache-line granularity libpmem2 was told"
fio_checked verify-cl 600 --name=v --ioengine=nbd --uri="$URI" --rw=randwrite \
	--bsrange=4k-64k --size=380M --iodepth=16 --fsync=64 --verify=crc32c --verify_fatal=0 \
	--do_verify=1 --randseed=$((1000 + RANDOM))
qio "$T/cl.out" "write -q -P 0x5a 200M 1M" "flush"
kill9_server
log "cache-line path: fio verify 0 errors"

# the same file through the file driver is the same cache
CACHE=$PM start_server
qio "$T/file.out" "read -q -P 0x5a 200M 1M"
stop_server
log "the file driver reads what the pmem driver flushed"

# bad input
if out=$("$BLKCACHE" serve --cache "pmem:$T/missing.img" --origin "$ORIGIN" --socket "$T/x.sock" \
	--control "$T/x.ctl" 2>&1); then
	fail "serve on a missing pmem file started"
fi
echo "$out" | grep -q "cannot open cache device pmem:$T/missing.img: No such file" ||
	{ echo "$out"; fail "no clear error for a missing pmem file"; }
truncate -s 0 "$T/empty.img"
if out=$("$BLKCACHE" format --cache "pmem:$T/empty.img" --origin "$ORIGIN" --force 2>&1); then
	fail "format on an empty pmem file succeeded"
fi
echo "$out" | grep -qi "pmem:$T/empty.img" || { echo "$out"; fail "no clear error for an empty pmem file"; }
truncate -s 64M "$T/loop.img"
if LOOPDEV=$(losetup -f --show "$T/loop.img" 2>/dev/null); then
	if out=$("$BLKCACHE" format --cache "pmem:$LOOPDEV" --origin "$ORIGIN" --force 2>&1); then
		losetup -d "$LOOPDEV"
		fail "format on pmem:BLOCKDEV succeeded"
	fi
	losetup -d "$LOOPDEV"
	echo "$out" | grep -q "DAX filesystem" || { echo "$out"; fail "no clear error for pmem:BLOCKDEV"; }
	cmp -s "$T/loop.img" <(head -c 64M /dev/zero) || fail "a refused pmem:BLOCKDEV was written"
	log "pmem:BLOCKDEV refused: $(echo "$out" | head -1)"
else
	log "no loop device here: the pmem:BLOCKDEV case is not run"
fi
"$BLKCACHE" check --cache "$CACHE" --origin "$ORIGIN" >"$T/check.out" 2>&1 ||
	{ cat "$T/check.out"; fail "check of the pmem cache failed"; }
echo "checked: pmem:FILE cache (non-DAX, page granularity): format/serve/status say how it persists; fio verify 0 errors (page and cache-line paths); flushed data survives 3 kill -9; same cache through the file driver; missing/empty/block-device pmem refused with clear errors"
