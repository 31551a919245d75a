#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The guest side of bench/vm: in one boot, on the same two virtio disks,
# fio 4 KiB QD16 random writes then random reads (of what was written: hits
# for the caches) over the same working set, for: the raw cache disk, the
# raw origin, dm-writecache, dm-cache (smq, writeback), bcache (writeback),
# blkcache over ublk and blkcache over nbd.ko.  One table with ratios to the
# raw cache disk and to dm-writecache goes to $VM_OUT/bench-vm.txt (and .tsv).
# Timing is this script's business only: nothing here passes or fails a test.
. "$BLKCACHE_SRC/tests/vm/lib-guest.sh"

CACHE=$(disk_by_serial cache) || fail "no cache disk"
ORIGIN=$(disk_by_serial origin) || fail "no origin disk"
RT=${BENCH_RUNTIME:-10}
WS=${BENCH_WS:-256M}
ONLY=${BENCH_ONLY:-raw-cache,raw-origin,dm-writecache,dm-cache,bcache,blkcache-ublk,blkcache-nbd}
# BENCH_UBLK_ARGS: more serve options for blkcache-ublk (e.g. --buffered-acks)
CTL=/tmp/ctl.sock
SOCK=/tmp/nbd.sock
RES=$T/results.tsv
: >"$RES"
export DM_DISABLE_UDEV=1

# Zeroes at the start of each disk (the caches' superblocks), no signatures.
wipe() {
	local d
	for d in "$@"; do
		dd if=/dev/zero of="$d" bs=1M count=16 oflag=direct status=none
		wipefs -aq "$d" 2>/dev/null
	done
}

# fio_iops DEV RW: IOPS of one 4 KiB QD16 run over the working set.
fio_iops() {
	bounded fio --name=b --filename="$1" --ioengine=libaio --direct=1 --iodepth=16 --bs=4k \
		--rw="$2" --size="$WS" --time_based --runtime="$RT" --randseed=42 \
		--output-format=json --output="$T/fio.json" >/dev/null 2>&1 || { echo 0; return; }
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]
print(int(j["write" if sys.argv[2]=="randwrite" else "read"]["iops"]))' "$T/fio.json" "$2"
}

measure() { # SYSTEM DEV
	local w r
	w=$(fio_iops "$2" randwrite)
	r=$(fio_iops "$2" randread)
	printf '%s\t%s\t%s\n' "$1" "$w" "$r" >>"$RES"
	log "$1: randwrite $w IOPS, randread $r IOPS"
}

want() { [[ ",$ONLY," == *",$1,"* ]]; }

sectors() { blockdev --getsz "$1"; }

sys_raw() { wipe "$CACHE" "$ORIGIN"; want raw-cache && measure raw-cache "$CACHE"; want raw-origin && measure raw-origin "$ORIGIN"; }

sys_dm_writecache() {
	want dm-writecache || return 0
	wipe "$CACHE" "$ORIGIN"
	load_module dm_writecache
	dmsetup create bwc --table "0 $(sectors "$ORIGIN") writecache s $ORIGIN $CACHE 4096 0" ||
		fail "dm-writecache setup failed"
	measure dm-writecache /dev/mapper/bwc
	dmsetup remove bwc || fail "removing dm-writecache failed"
}

sys_dm_cache() {
	want dm-cache || return 0
	local meta=32768 csz
	wipe "$CACHE" "$ORIGIN"
	load_module dm_cache_smq
	csz=$(( $(sectors "$CACHE") - meta ))
	dmsetup create bcmeta --table "0 $meta linear $CACHE 0" &&
	dmsetup create bcdata --table "0 $csz linear $CACHE $meta" &&
	dd if=/dev/zero of=/dev/mapper/bcmeta bs=1M count=1 oflag=direct status=none &&
	dmsetup create bcache_dm --table "0 $(sectors "$ORIGIN") cache /dev/mapper/bcmeta /dev/mapper/bcdata $ORIGIN 512 1 writeback smq 0" ||
		fail "dm-cache setup failed"
	measure dm-cache /dev/mapper/bcache_dm
	dmsetup remove bcache_dm; dmsetup remove bcdata; dmsetup remove bcmeta
}

sys_bcache() {
	want bcache || return 0
	local cset dev
	wipe "$CACHE" "$ORIGIN"
	load_module bcache
	make-bcache --wipe-bcache -C "$CACHE" -B "$ORIGIN" >"$T/make-bcache.out" 2>&1 ||
		{ cat "$T/make-bcache.out"; fail "make-bcache failed"; }
	echo "$CACHE" >/sys/fs/bcache/register 2>/dev/null
	echo "$ORIGIN" >/sys/fs/bcache/register 2>/dev/null
	wait_for 60 "bcache0 did not appear" test -e /sys/block/bcache0
	dev=/dev/bcache0
	[ -b $dev ] || mknod $dev b "$(cut -d: -f1 /sys/block/bcache0/dev)" "$(cut -d: -f2 /sys/block/bcache0/dev)"
	cset=$(basename "$(readlink -f /sys/block/bcache0/bcache/cache)" 2>/dev/null)
	[ -e /sys/block/bcache0/bcache/cache ] || {
		cset=$(ls /sys/fs/bcache | grep -E '^[0-9a-f-]{36}$' | head -1)
		echo "$cset" >/sys/block/bcache0/bcache/attach
	}
	echo writeback >/sys/block/bcache0/bcache/cache_mode
	echo 0 >/sys/block/bcache0/bcache/sequential_cutoff
	measure bcache $dev
	echo 1 >/sys/block/bcache0/bcache/stop
	for cset in /sys/fs/bcache/*-*; do [ -e "$cset/unregister" ] && echo 1 >"$cset/unregister"; done
	wait_for 60 "bcache0 did not go away" test ! -e /sys/block/bcache0
}

blkcache_up() { # extra serve args
	wipe "$CACHE" "$ORIGIN"
	bounded "$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" >/dev/null 2>&1 || fail "blkcache format failed"
	"$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --control "$CTL" "$@" >"$T/serve.log" 2>&1 &
	SERVE=$!
	track_bg "$SERVE"
	FAIL_SHOW+=("$T/serve.log")
	wait_for 120 "blkcache serve not ready" timeout 30 "$BLKCACHE" status --control "$CTL" --json
}
blkcache_down() {
	# The engine's counters after the runs, for the record (guest log).
	"$BLKCACHE" status --control "$CTL" 2>&1 | sed 's/^/  /'
	kill -TERM "$SERVE"
	wait_bounded "$SERVE" 300 || fail "blkcache serve did not stop cleanly"
}

sys_blkcache_ublk() {
	want blkcache-ublk || return 0
	load_module ublk_drv
	blkcache_up --ublk=0 ${BENCH_UBLK_ARGS:-}
	wait_for 60 "/dev/ublkb0 did not appear" test -b /dev/ublkb0
	measure blkcache-ublk /dev/ublkb0
	blkcache_down
}

sys_blkcache_nbd() {
	want blkcache-nbd || return 0
	load_module nbd
	blkcache_up --socket "$SOCK"
	bounded nbd-client -unix "$SOCK" /dev/nbd0 -b 4096 -N blkcache >/dev/null 2>&1 || fail "nbd-client failed"
	wait_for 60 "/dev/nbd0 has no size" test "$(cat /sys/block/nbd0/size)" -gt 0
	measure blkcache-nbd /dev/nbd0
	nbd-client -d /dev/nbd0 >/dev/null 2>&1
	blkcache_down
}

sys_raw
sys_dm_writecache
sys_dm_cache
sys_bcache
sys_blkcache_ublk
sys_blkcache_nbd

python3 - "$RES" "$VM_OUT/bench-vm" "$RT" "$WS" "$(uname -r)" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
vals = {r[0]: (int(r[1]), int(r[2])) for r in rows}
ref, wc = vals.get("raw-cache"), vals.get("dm-writecache")
def ratio(a, b): return "%.2f" % (a / b) if b else "-"
out = ["bench/vm: fio 4 KiB QD16, %s s per run, working set %s, kernel %s (qemu TCG)" % (sys.argv[3], sys.argv[4], sys.argv[5]),
       "%-15s %10s %10s %9s %9s %9s %9s" % ("system", "write IOPS", "read IOPS", "w/raw", "r/raw", "w/dm-wc", "r/dm-wc")]
tsv = ["system\twrite_iops\tread_iops\tw_raw\tr_raw\tw_dmwc\tr_dmwc"]
for name, (w, r) in vals.items():
    cols = [ratio(w, ref[0]) if ref else "-", ratio(r, ref[1]) if ref else "-",
            ratio(w, wc[0]) if wc else "-", ratio(r, wc[1]) if wc else "-"]
    out.append("%-15s %10d %10d %9s %9s %9s %9s" % (name, w, r, *cols))
    tsv.append("\t".join([name, str(w), str(r)] + cols))
open(sys.argv[2] + ".txt", "w").write("\n".join(out) + "\n")
open(sys.argv[2] + ".tsv", "w").write("\n".join(tsv) + "\n")
print("\n".join(out))
PY
checked "bench/vm: $(wc -l <"$RES") systems measured"
