#!/bin/bash
# fio 4 KiB random writes, QD32, through NBD: blkcache vs nbdkit memory,
# side by side in one run.  Prints IOPS and the ratio.
# Usage: bench/nbd-randwrite.sh [BUILD_DIR] [RUNTIME_S]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
RT=${2:-15}
BLKCACHE="$BUILD/cli/blkcache"
T=$(mktemp -d /tmp/bc-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT

wait_sock() { for _ in $(seq 100); do nbdinfo --size "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server did not start" >&2; exit 1; }
iops() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(int(j["jobs"][0]["write"]["iops"]))' "$1"; }
runfio() {
	fio --name=rw --ioengine=nbd --uri="$1" --rw=randwrite --bs=4k --iodepth=32 \
	    --size=1g --time_based --runtime="$RT" --ramp_time=2 --norandommap --randrepeat=0 \
	    --output-format=json --output="$2" >/dev/null
}

truncate -s 2G "$T/origin.img"
truncate -s 1G "$T/cache.img"
"$BLKCACHE" format --cache "$T/cache.img" --origin "$T/origin.img" >/dev/null
"$BLKCACHE" serve --cache "$T/cache.img" --origin "$T/origin.img" --socket "$T/bc.sock" \
	--control "$T/ctl.sock" 2>"$T/serve.log" &
pids+=($!)
wait_sock "nbd+unix:///?socket=$T/bc.sock"
nbdkit --foreground --unix "$T/mem.sock" memory 2G &
pids+=($!)
wait_sock "nbd+unix:///?socket=$T/mem.sock"

runfio "nbd+unix:///?socket=$T/bc.sock" "$T/bc.json"
runfio "nbd+unix:///?socket=$T/mem.sock" "$T/mem.json"
a=$(iops "$T/bc.json"); b=$(iops "$T/mem.json")
echo "date:          $(date -u +%Y-%m-%dT%H:%MZ)"
echo "job:           fio ioengine=nbd rw=randwrite bs=4k iodepth=32 runtime=${RT}s (unix socket)"
printf '%-24s %10s IOPS\n' "blkcache (1 GiB cache)" "$a" "nbdkit memory" "$b"
python3 -c "import sys; print('ratio blkcache/nbdkit-memory: %.2f' % (int(sys.argv[1])/max(1,int(sys.argv[2]))))" "$a" "$b"
