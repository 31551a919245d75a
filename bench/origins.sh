#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Several origins on one cache, side by side in one run:
#  1. aggregate: three fio 4 KiB randwrite jobs (QD32 each) on three exports
#     of one server vs the same three jobs on ONE export of it (ratio);
#  2. isolation: fio on origins a and c before and while origin b (nbd://
#     behind nbdkit's error filter) refuses every write and its writers
#     wait and fail (ratio of a+c IOPS during / before the fault).
# Usage: bench/origins.sh [BUILD_DIR] [RUNTIME_S]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
RT=${2:-10}
BLKCACHE="$BUILD/cli/blkcache"
T=$(mktemp -d /tmp/bc-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT

wait_sock() { for _ in $(seq 200); do nbdinfo --size "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server did not start" >&2; exit 1; }
uri() { echo "nbd+unix:///$1?socket=$T/bc.sock"; }
# fiojobs OUT URI:OFFSET...: one randwrite job per argument, together; total IOPS.
fiojobs() {
	local out=$1 args=() i=0 spec
	shift
	for spec in "$@"; do
		args+=(--name="j$i" --uri="${spec%@*}" --offset="${spec##*@}")
		i=$((i + 1))
	done
	fio --ioengine=nbd --rw=randwrite --bs=4k --iodepth=32 --size=256m --time_based \
	    --runtime="$RT" --ramp_time=2 --norandommap --randrepeat=0 --group_reporting=1 \
	    --output-format=json --output="$out" "${args[@]}" >/dev/null
	python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["jobs"][0]["write"]["iops"]))' "$out"
}
ratio() { python3 -c 'import sys; print("%.2f" % (int(sys.argv[1]) / max(1, int(sys.argv[2]))))' "$1" "$2"; }

truncate -s 2G "$T/cache.img"
for n in a c; do truncate -s 1G "$T/origin-$n.img"; done
nbdkit --foreground --unix "$T/b.sock" --filter=error memory 1G 2>/dev/null \
	error-pwrite=EIO error-pwrite-rate=100% error-pwrite-file="$T/down" &
pids+=($!)
wait_sock "nbd+unix:///?socket=$T/b.sock"
"$BLKCACHE" format --cache "$T/cache.img" >/dev/null
for n in a b c; do
	o=$T/origin-$n.img
	[ $n != b ] || o="nbd+unix:///?socket=$T/b.sock"
	"$BLKCACHE" origin add --cache "$T/cache.img" --origin "$o" --name $n --size 30% >/dev/null
done
"$BLKCACHE" serve --cache "$T/cache.img" --socket "$T/bc.sock" --control "$T/ctl.sock" \
	--set write_timeout_ms=2000 2>"$T/serve.log" &
pids+=($!)
wait_sock "$(uri a)"

one=$(fiojobs "$T/one.json" "$(uri a)@0" "$(uri a)@256m" "$(uri a)@512m")
three=$(fiojobs "$T/three.json" "$(uri a)@0" "$(uri b)@0" "$(uri c)@0")
before=$(fiojobs "$T/before.json" "$(uri a)@0" "$(uri c)@0")
touch "$T/down"
# b's writers: fill b's share, then wait and fail, for the whole run.
fio --name=b --ioengine=nbd --uri="$(uri b)" --rw=randwrite --bs=64k --iodepth=8 --size=900m \
    --time_based --runtime=$((RT + 4)) --continue_on_error=all --output="$T/b.out" >/dev/null 2>&1 &
bpid=$!
during=$(fiojobs "$T/during.json" "$(uri a)@0" "$(uri c)@0")
wait "$bpid" || true
bstat=$("$BLKCACHE" status --control "$T/ctl.sock" --name b --json |
	python3 -c 'import json,sys; j=json.load(sys.stdin); print("b: writeback_failing %d, write_timeouts %d" % (j["writeback_failing"], j["write_timeouts"]))')
rm -f "$T/down"
after=$(fiojobs "$T/after.json" "$(uri a)@0" "$(uri c)@0")
echo "date:          $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cache:         2 GiB file, origins a, b, c with 30% each; a, c files, b nbd:// (nbdkit memory + error filter)"
echo "job:           fio ioengine=nbd rw=randwrite bs=4k iodepth=32 per job, runtime=${RT}s"
printf '%-44s %8s IOPS\n' "3 jobs on export a" "$one" "3 jobs on exports a, b, c" "$three" \
	"a + c, b healthy" "$before" "a + c, b refusing writes ($bstat)" "$during" \
	"a + c, b healed (draining)" "$after"
echo "ratio three exports / one export: $(ratio "$three" "$one")"
echo "ratio a+c during b's fault / before: $(ratio "$during" "$before")"
