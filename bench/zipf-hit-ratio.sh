#!/bin/bash
# Read hit ratio under a skewed random workload, for several promotion
# policies: fio ioengine=nbd rw=randread random_distribution=zipf:1.2 bs=4k
# over a 2 GiB origin with a 256 MiB cache.  For every configuration a fresh
# cache is formatted and served, the tunables are set, a warmup run fills the
# cache, and the hit ratio of a measurement run (another seed) is taken from
# 'blkcache status --json' deltas.  Prints a table.  Not a test.
# (fio seeds its zipf generator from the job's file name when randrepeat is
# on, whatever --randseed says: the two runs differ by job name, so that the
# measured sequence is not a replay of the warmup, and every configuration
# sees the same two sequences.)
# Usage: bench/zipf-hit-ratio.sh [BUILD_DIR] [WARMUP_IOS] [MEASURE_IOS]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
WARM=${2:-262144}
MEAS=${3:-131072}
BLKCACHE="$BUILD/cli/blkcache"
ORIGIN_SIZE=2G
CACHE_SIZE=256M
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
T=$(mktemp -d /tmp/bc-zipf-XXXXXX)
SPID=""
cleanup() {
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

SOCK=$T/bc.sock
CTL=$T/ctl.sock
URI="nbd+unix:///?socket=$SOCK"
FIO=(fio --ioengine=nbd --uri="$URI" --rw=randread --random_distribution=zipf:1.2
	--bs=4k --iodepth=16 --norandommap --size=2044M)

# run_config LABEL TUNABLE=VALUE...: prints one table row.
run_config() {
	local label=$1 kv t0 t1
	shift
	rm -f "$T/origin.img" "$T/cache.img"
	truncate -s $ORIGIN_SIZE "$T/origin.img"
	truncate -s $CACHE_SIZE "$T/cache.img"
	"$BLKCACHE" format --cache "$T/cache.img" --origin "$T/origin.img" >/dev/null
	"$BLKCACHE" serve --cache "$T/cache.img" --origin "$T/origin.img" --socket "$SOCK" \
		--control "$CTL" 2>"$T/serve.log" &
	SPID=$!
	for _ in $(seq 100); do nbdinfo --size "$URI" >/dev/null 2>&1 && break; sleep 0.1; done
	for kv in "$@"; do
		"$BLKCACHE" set "${kv%%=*}" "${kv#*=}" --control "$CTL" >/dev/null
	done
	t0=$(date +%s)
	(cd "$T" && "${FIO[@]}" --name=warmup --number_ios="$WARM" --output="$T/warm.out" >/dev/null)
	"$BLKCACHE" status --json --control "$CTL" >"$T/s0.json"
	(cd "$T" && "${FIO[@]}" --name=measure --number_ios="$MEAS" --output-format=json \
		--output="$T/meas.json" >/dev/null)
	"$BLKCACHE" status --json --control "$CTL" >"$T/s1.json"
	t1=$(date +%s)
	kill "$SPID"
	wait "$SPID" || true
	SPID=""
	"$PY" - "$label" "$T/s0.json" "$T/s1.json" "$T/meas.json" $((t1 - t0)) "$*" <<'EOF'
import json, sys
label, a, b, m, secs, kv = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), \
    json.load(open(sys.argv[4]))["jobs"][0], sys.argv[5], sys.argv[6]
d = lambda k: b[k] - a[k]
n = d("read_hit_blocks") + d("read_partial_blocks") + d("read_miss_blocks")
print("%-50s %8d %8d %8d %7.4f %9d %9d %8d %8d %4ss" % (
    label + (" (" + kv + ")" if kv else ""), n, d("read_hit_blocks"), d("read_miss_blocks"),
    d("read_hit_blocks") / n if n else 0.0, d("promoted_blocks"), d("bypass_nhit_blocks"),
    b["cached_blocks"], int(m["read"]["iops"]), secs))
EOF
}

echo "date:     $(date -u +%Y-%m-%dT%H:%MZ)"
echo "blkcache: $("$BLKCACHE" --version 2>/dev/null || echo "$BLKCACHE")"
echo "devices:  origin $ORIGIN_SIZE (sparse file), cache $CACHE_SIZE (file), default format"
echo "workload: ${FIO[*]} --name=JOB --number_ios=N"
echo "          warmup $WARM IOs (--name=warmup), then measured $MEAS IOs (--name=measure); hit ratio ="
echo "          read_hit_blocks / (hit + partial + miss) over the measured run (status --json deltas)"
echo
printf '%-50s %8s %8s %8s %7s %9s %9s %8s %8s %5s\n' configuration blocks hits misses ratio promoted \
	nhit_skip cached iops time
run_config "no filters" promote_hits=1 sequential_cutoff=0
run_config "n-hit 2" promote_hits=2 sequential_cutoff=0
run_config "n-hit 3" promote_hits=3 sequential_cutoff=0
run_config "defaults"
echo
echo "(cached = cached_blocks at the end, of $((256 * 1024 / 4)) cache blocks; promoted / nhit_skip:"
echo " read misses promoted / not promoted by the n-hit filter during the measured run)"
