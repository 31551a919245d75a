#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The guest side of bench/vm-pmem: on one emulated NVDIMM (/dev/pmem0,
# fsdax) and one origin disk, fio 4 KiB random writes, QD1 fsync=1 and QD16,
# for the raw /dev/pmem0, dm-writecache in pmem mode and blkcache (pmem:
# cache file on ext4 -o dax, served through ublk).  One table with ratios
# to dm-writecache goes to $VM_OUT/bench-vm-pmem.txt (and .tsv).  Timing is
# this script's business only: nothing here passes or fails a test.
. "$BLKCACHE_SRC/tests/vm/lib-guest.sh"

ORIGIN=$(disk_by_serial origin) || fail "no origin disk"
RT=${BENCH_RUNTIME:-10}
WS=${BENCH_WS:-128M}
PM=/mnt/pmem
CTL=/tmp/ctl.sock
RES=$T/results.tsv
: >"$RES"
export DM_DISABLE_UDEV=1

load_module nfit
load_module nd_pmem
bounded ndctl create-namespace -f -e namespace0.0 -m fsdax >"$T/ndctl.out" 2>&1 ||
	{ cat "$T/ndctl.out"; fail "ndctl create-namespace failed"; }
wait_for 60 "/dev/pmem0 did not appear" test -b /dev/pmem0

wipe() { dd if=/dev/zero of="$1" bs=1M count=16 oflag=direct status=none; wipefs -aq "$1" 2>/dev/null; }

# fio_iops DEV MODE: IOPS of one run (qd1: psync fsync=1; qd16: libaio),
# and in $T/cpu.txt the guest CPU per IO: fio's (usr+sys), and with $SERVE
# set the server's (its utime+stime over the run) -- where the time goes
# under TCG, next to the IOPS.
SERVE=""
proc_cpu() { [ -n "$SERVE" ] && awk '{print $14 + $15}' "/proc/$SERVE/stat" || echo 0; }
fio_iops() {
	local c0 c1
	local a=(--ioengine=psync --iodepth=1 --fsync=1)
	[ "$2" = qd16 ] && a=(--ioengine=libaio --iodepth=16)
	bounded fio --name=b --filename="$1" --direct=1 --bs=4k --rw=randwrite --size="$WS" \
		--time_based --runtime="$RT" --randseed=42 "${a[@]}" \
		--output-format=json --output="$T/fio.json" >/dev/null 2>&1 &
	c0=$(proc_cpu)
	wait $! || { echo 0; echo "- -" >"$T/cpu.txt"; return; }
	c1=$(proc_cpu)
	python3 - "$T/fio.json" "$c0" "$c1" "$(getconf CLK_TCK)" "$T/cpu.txt" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
n = max(j["write"]["total_ios"], 1)
rt = j["job_runtime"] / 1000.0
fio_us = (j["usr_cpu"] + j["sys_cpu"]) / 100.0 * rt * 1e6 / n
srv_us = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6 / n
open(sys.argv[5], "w").write("%.0f %s\n" % (fio_us, "%.0f" % srv_us if srv_us else "-"))
print(int(j["write"]["iops"]))
PY
}

measure() { # SYSTEM DEV
	local q1 q16 c1 c16
	q1=$(fio_iops "$2" qd1)
	c1=$(cat "$T/cpu.txt")
	q16=$(fio_iops "$2" qd16)
	c16=$(cat "$T/cpu.txt")
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$q1" "$q16" "$c1" "$c16" >>"$RES"
	log "$1: QD1 fsync=1 $q1 IOPS, QD16 $q16 IOPS (guest CPU us/IO, fio server: $c1 / $c16)"
}

# raw /dev/pmem0
wipe /dev/pmem0
measure raw-pmem /dev/pmem0

# dm-writecache, pmem mode, on /dev/pmem0 (DAX)
wipe /dev/pmem0
wipe "$ORIGIN"
load_module dm_writecache
# Its pmem mode ("p") needs the kernel to hand it the DAX device; where it
# refuses, its SSD mode ("s") on the same /dev/pmem0 is measured instead,
# and the table says which one ran.
WC=dm-writecache-p
if ! dmsetup create bwc --table "0 $(blockdev --getsz "$ORIGIN") writecache p $ORIGIN /dev/pmem0 4096 0" \
	2>"$T/dmwc.err"; then
	log "dm-writecache pmem mode refused: $(dmesg | grep -m1 -o 'writecache: .*' || cat "$T/dmwc.err")"
	WC=dm-writecache-s
	dmsetup remove bwc 2>/dev/null
	wipe /dev/pmem0
	dmsetup create bwc --table "0 $(blockdev --getsz "$ORIGIN") writecache s $ORIGIN /dev/pmem0 4096 0" ||
		fail "dm-writecache setup failed"
fi
measure "$WC" /dev/mapper/bwc
dmsetup remove bwc || fail "removing dm-writecache failed"

# blkcache: its cache file on ext4 -o dax on /dev/pmem0, through ublk
wipe /dev/pmem0
wipe "$ORIGIN"
bounded mkfs.ext4 -q -F -b 4096 /dev/pmem0 >"$T/mkfs.out" 2>&1 || { cat "$T/mkfs.out"; fail "mkfs failed"; }
mkdir -p "$PM"
bounded mount -o dax /dev/pmem0 "$PM" || fail "mount -o dax failed"
on_exit "umount -l $PM"
# Written, not sparse: with MAP_SYNC every first store to an unallocated
# page makes ext4 allocate and commit its journal before the store goes on.
bounded dd if=/dev/zero of="$PM/cache.img" bs=1M count=768 oflag=direct status=none
bounded "$BLKCACHE" format --cache "pmem:$PM/cache.img" --origin "$ORIGIN" >/dev/null 2>&1 ||
	fail "blkcache format failed"
load_module ublk_drv
"$BLKCACHE" serve --cache "pmem:$PM/cache.img" --origin "$ORIGIN" --control "$CTL" --ublk=0 \
	>"$T/serve.log" 2>&1 &
SERVE=$!
track_bg "$SERVE"
FAIL_SHOW+=("$T/serve.log")
wait_for 120 "/dev/ublkb0 did not appear" test -b /dev/ublkb0
wait_for 120 "blkcache serve not ready" timeout 30 "$BLKCACHE" status --control "$CTL" --json
grep -q "DAX" "$T/serve.log" || fail "blkcache did not get a DAX mapping"
measure blkcache-pmem /dev/ublkb0
"$BLKCACHE" status --control "$CTL" 2>&1 | sed 's/^/  /'
kill -TERM "$SERVE"
wait_bounded "$SERVE" 300 || fail "blkcache serve did not stop cleanly"

python3 - "$RES" "$VM_OUT/bench-vm-pmem" "$RT" "$WS" "$(uname -r)" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
vals = {r[0]: (int(r[1]), int(r[2]), r[3].split(), r[4].split()) for r in rows}
wc = vals.get("dm-writecache-p") or vals.get("dm-writecache-s")
def ratio(a, b): return "%.2f" % (a / b) if b else "-"
out = ["bench/vm-pmem: fio 4 KiB randwrite, %s s per run, working set %s, kernel %s (qemu TCG, emulated NVDIMM)" % (sys.argv[3], sys.argv[4], sys.argv[5]),
       "guest CPU us per IO: fio's own (usr+sys) / the server's (blkcache only)",
       "%-16s %12s %10s %10s %11s %14s %14s" % ("system", "QD1 fsync=1", "QD16", "QD1/dm-wc", "QD16/dm-wc", "QD1 cpu/IO", "QD16 cpu/IO")]
tsv = ["system\tqd1_fsync_iops\tqd16_iops\tqd1_dmwc\tqd16_dmwc\tqd1_fio_us\tqd1_server_us\tqd16_fio_us\tqd16_server_us"]
for name, (a, b, c1, c16) in vals.items():
    cols = [ratio(a, wc[0]) if wc else "-", ratio(b, wc[1]) if wc else "-"]
    cpu = ["/".join(c1), "/".join(c16)]
    out.append("%-16s %12d %10d %10s %11s %14s %14s" % (name, a, b, *cols, *cpu))
    tsv.append("\t".join([name, str(a), str(b)] + cols + c1 + c16))
open(sys.argv[2] + ".txt", "w").write("\n".join(out) + "\n")
open(sys.argv[2] + ".tsv", "w").write("\n".join(tsv) + "\n")
print("\n".join(out))
PY
checked "bench/vm-pmem: $(wc -l <"$RES") systems measured"
