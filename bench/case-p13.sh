# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
# bench/case-p13.sh: case P13 of bench/run (sourced by it after
# lib-bench.sh; uses its variables: W, BC, RT, RAMP, TMO, MEM_CACHE,
# MEM_ORIGIN, P13_CACHE, P13_REGION).
#
# P13: NBD with 4 connections.  blkcache serve on RAM devices (mem: cache
# and origin, files on /dev/shm), writeback paused, 1 shard and 2 shards
# (format --shards 2, on the same cache device), vs nbdkit memory with the
# same fio jobs: 4 jobs (4 NBD connections) of 4K QD32, random writes, then
# random reads of the region after a sequential fill (all hits).

# p13_format CACHE ORIGIN [FORMAT-ARGS...]: bc_format with extra options
# (--shards N); the output line in FORMAT_OUT.
p13_format() {
	local cache=$1 origin=$2
	shift 2
	FORMAT_OUT=$(timeout -k 5 120 "$BC" format --cache "$cache" --origin "$origin" --force "$@" 2>&1) ||
		die "blkcache format --cache $cache --origin $origin $* failed: $FORMAT_OUT"
	printf '%s\n' "$FORMAT_OUT" >>"$W/format.log"
}

# p13_system TAG URI [bc]: the three jobs against URI (fio JSON in
# $W/TAG-{w,fill,r}.json); with "bc", the server's status before and after
# each of them in $W/TAG-s{0,1,2,3}.json.
p13_system() {
	local tag=$1 uri=$2 bc=${3:-} j
	j=(--ioengine=nbd --uri="$uri" --bs=4k --iodepth=32 --numjobs=4 --group_reporting
		--size="$P13_REGION" --norandommap --randrepeat=0 --time_based --runtime="$RT" --ramp_time="$RAMP")
	[ -z "$bc" ] || bc_status "$W/$tag-s0.json"
	fio_run "$tag-w" "$TMO" --name=p13w --rw=randwrite "${j[@]}"
	[ -z "$bc" ] || bc_status "$W/$tag-s1.json"
	# Read hits: the whole region written first (one connection, 1 MiB).
	fio_run "$tag-fill" "$TMO" --name=p13fill --ioengine=nbd --uri="$uri" --rw=write --bs=1m --iodepth=8 \
		--size="$P13_REGION"
	[ -z "$bc" ] || bc_status "$W/$tag-s2.json"
	fio_run "$tag-r" "$TMO" --name=p13r --rw=randread "${j[@]}"
	[ -z "$bc" ] || bc_status "$W/$tag-s3.json"
}

# p13_delta TAG KEY A B: status counter KEY of $W/TAG-sB.json minus -sA.json.
p13_delta() {
	echo $(($(sj "$W/$1-s$4.json" "$2") - $(sj "$W/$1-s$3.json" "$2")))
}

# p13_layout TAG FORMAT-ARGS...: format the RAM devices, serve with
# writeback paused, run the jobs, stop; dies if a read missed the cache.
p13_layout() {
	local tag=$1 miss
	shift
	p13_format "mem:$MEM_CACHE" "mem:$MEM_ORIGIN" "$@"
	serve_start "$tag" "mem:$MEM_CACHE" "mem:$MEM_ORIGIN" --set writeback_paused=1
	p13_system "$tag" "$SERVE_URI" bc
	serve_stop
	miss=$(($(p13_delta "$tag" read_miss_blocks 2 3) + $(p13_delta "$tag" read_partial_blocks 2 3)))
	[ "$miss" = 0 ] ||
		die "P13: randread over the filled region missed the cache ($miss blocks; $W/$tag-s*.json)"
}

case_P13() {
	say "P13: 4 NBD connections (fio numjobs=4), 4K QD32: blkcache 1 and 2 shards (mem: devices) vs nbdkit memory"
	local es mw mr w1 r1 w2 r2 t n1 n2
	# Allocated, not sparse: no run pays for tmpfs allocating its pages.
	head -c "$P13_CACHE" /dev/zero >"$MEM_CACHE" || die "cannot make $MEM_CACHE"
	truncate -s "$P13_CACHE" "$MEM_ORIGIN"
	p13_layout p13-1
	es=$(export_size)
	p13_layout p13-2 --shards 2
	[ "$(sj "$W/p13-2-s0.json" shards)" = 2 ] || die "P13: the server of format --shards 2 reports $(sj "$W/p13-2-s0.json" shards) shards"
	rm -f "$MEM_CACHE" "$MEM_ORIGIN"
	nbdkit_start p13mem memory "$es"
	p13_system p13-mem "$(nbdkit_uri p13mem)"
	nbdkit_stop p13mem
	mw=$(fj p13-mem-w 'int(j["write"]["iops"])')
	mr=$(fj p13-mem-r 'int(j["read"]["iops"])')
	w1=$(fj p13-1-w 'int(j["write"]["iops"])')
	r1=$(fj p13-1-r 'int(j["read"]["iops"])')
	w2=$(fj p13-2-w 'int(j["write"]["iops"])')
	r2=$(fj p13-2-r 'int(j["read"]["iops"])')
	for t in p13-1 p13-2; do
		printf -v "n${t#p13-}" '%s' "cache-full/buffer waits $(p13_delta $t cache_full_waits 0 1)/$(p13_delta $t buffer_waits 0 1), reclaimed segments $(p13_delta $t reclaimed_segments 0 1)"
	done
	row P13 nbdkit-memory - "write IOPS 4K QD32 x4 conns" "$mw" - - ref \
		"fio ioengine=nbd numjobs=4 (4 connections) group_reporting, unix socket, $P13_REGION region"
	row P13 bc-nbd mem "write IOPS 4K QD32 x4 conns, 1 shard" "$w1" nbdkit-memory "$mw" "ratio>=1.0" \
		"mem: cache $P13_CACHE and origin (/dev/shm), writeback paused; $n1"
	row P13 bc-nbd mem "write IOPS 4K QD32 x4 conns, 2 shards" "$w2" nbdkit-memory "$mw" "ratio>=1.0" \
		"format --shards 2 on the same cache; $n2"
	row P13 nbdkit-memory - "read IOPS 4K QD32 x4 conns" "$mr" - - ref "after a sequential fill of the region"
	row P13 bc-nbd mem "read hit IOPS 4K QD32 x4 conns, 1 shard" "$r1" nbdkit-memory "$mr" "ratio>=1.0" \
		"after a sequential fill; read_miss_blocks delta $(p13_delta p13-1 read_miss_blocks 2 3) (all hits), read_hit_blocks $(p13_delta p13-1 read_hit_blocks 2 3)"
	row P13 bc-nbd mem "read hit IOPS 4K QD32 x4 conns, 2 shards" "$r2" nbdkit-memory "$mr" "ratio>=1.0" \
		"read_miss_blocks delta $(p13_delta p13-2 read_miss_blocks 2 3) (all hits), read_hit_blocks $(p13_delta p13-2 read_hit_blocks 2 3)"
}
