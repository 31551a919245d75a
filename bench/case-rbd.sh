# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
# bench/case-rbd.sh: case R1 of bench/run (sourced by it after
# lib-bench.sh; uses W, BC, FIO, ENGINE, RT, RAMP, TMO, R1_CACHE, R1_REGION).
#
# R1: a Ceph RBD image as the origin, on a throwaway single-node cluster
# (tests/lib-ceph.sh; R1_STORE=bluestore, the default: the OSD keeps the
# image on a sparse file in the work dir, on a disk as a real cluster does;
# or R1_STORE=memstore: in RAM, on this machine's CPUs, which no RBD
# deployment is) on this machine.  4K QD32 jobs over R1_REGION of a 1 GiB image: random writes,
# random writes with a FLUSH every 64 (fio --fsync=64), random reads of the
# region after it was written (hits for blkcache).  Systems, each on the
# same image:
#   rbd-raw   fio's rbd engine, librbd without cache (rbd_cache=false)
#   rbd-wb    fio's rbd engine, librbd's writeback RAM cache (rbd_cache=true,
#             policy writeback, not writethrough until the first flush):
#             what it holds is lost when the client crashes
#   bc-nbd    blkcache serve (cache: a file in the work dir, O_DIRECT) over NBD
#   bc-inproc the same cache in process (fio engine), bc_origin=rbd:...
# Targets: FLUSH-every-64 writes >= 10x rbd-raw and >= 2x rbd-wb.

# r1_conf NAME SETTINGS...: a copy of the cluster's ceph.conf with a
# [client] section holding SETTINGS; prints its path.
r1_conf() {
	local f=$W/r1-$1.conf s
	shift
	{ cat "$CEPH_CONF"; echo "[client]"; for s in "$@"; do echo "	$s"; done; } >"$f"
	printf '%s\n' "$f"
}

# r1_jobs TAG CONF FIO ENGINE-ARGS...: the three jobs with that fio binary
# (JSON in $W/TAG-{w,f,fill,r}.json).
r1_jobs() {
	local tag=$1 conf=$2 fio=$3 j
	shift 3
	j=(--bs=4k --size="$R1_REGION" --norandommap --randrepeat=0 --time_based --runtime="$RT"
		--ramp_time="$RAMP")
	# QD1: fio marks a sync done only when it completes, and at a deeper
	# queue sends one sync after another until then (through NBD: one per
	# 2 writes), so "every 64" would depend on each system's flush latency.
	CEPH_CONF=$conf FIO=$fio fio_run "$tag-f" "$TMO" "$@" --name=r1f --rw=randwrite --fsync=64 \
		--iodepth=1 "${j[@]}"
	# (first, on a fresh cache: the QD32 job leaves it full of dirty blocks
	# and garbage for writeback and reclaim to work through)
	CEPH_CONF=$conf FIO=$fio fio_run "$tag-w" "$TMO" "$@" --name=r1w --rw=randwrite --iodepth=32 "${j[@]}"
	CEPH_CONF=$conf FIO=$fio fio_run "$tag-fill" "$TMO" "$@" --name=r1fill --rw=write --bs=1m \
		--iodepth=8 --size="$R1_REGION"
	CEPH_CONF=$conf FIO=$fio fio_run "$tag-r" "$TMO" "$@" --name=r1r --rw=randread --iodepth=32 "${j[@]}"
}

r1_iops() { fj "$1" "int(j['$2']['iops'])"; }

case_R1() {
	local store=${R1_STORE:-bluestore}
	[ "$store" = memstore ] || [ "$store" = bluestore ] || die "R1_STORE: memstore or bluestore, not '$store'"
	say "R1: Ceph RBD origin (single-node $store cluster): librbd without cache and with its writeback cache vs blkcache (NBD, in process), 4K"
	. "$SRC/tests/lib-ceph.sh"
	if ! ceph_available 2>"$W/r1-ceph.err"; then
		say "R1 skipped: $(cat "$W/r1-ceph.err")"
		return 0
	fi
	ceph_start "$W/ceph" "$store" 3G 2>"$W/r1-ceph.err" || die "R1: the Ceph cluster did not start: $(tail -5 "$W/r1-ceph.err")"
	local raw wb bc img="rbd:rbd/r1?conf=$CEPH_CONF" cache=$W/r1-cache.img t
	local rbdargs=(--ioengine=rbd --clientname=admin --pool=rbd --rbdname=r1)
	# fio's rbd engine: Debian's fio has it (the one built for the in-process
	# engine may not: it is configured without librbd where that is missing).
	local sysfio
	sysfio=$(command -v fio) && "$sysfio" --enghelp=rbd >/dev/null 2>&1 ||
		die "R1: no fio with the rbd engine (Debian's fio package has it)"
	rbd create --size 1G rbd/r1 || die "R1: rbd create failed"
	raw=$(r1_conf raw "rbd cache = false")
	wb=$(r1_conf wb "rbd cache = true" "rbd cache policy = writeback" \
		"rbd cache writethrough until flush = false")
	r1_jobs r1-raw "$raw" "$sysfio" "${rbdargs[@]}"
	r1_jobs r1-wb "$wb" "$sysfio" "${rbdargs[@]}"
	fallocate -l "$R1_CACHE" "$cache" 2>/dev/null || truncate -s "$R1_CACHE" "$cache"
	bc_format "$cache" "$img"
	serve_start r1 "$cache" "$img"
	r1_jobs r1-nbd "$CEPH_CONF" "$FIO" --ioengine=nbd --uri="$SERVE_URI"
	bc_status "$W/r1-nbd-status.json"
	serve_stop
	bc_format "$cache" "$img"
	engine_args "$cache" "$img"
	r1_jobs r1-inproc "$CEPH_CONF" "$FIO" "${ENG[@]}"
	rm -f "$cache"
	ceph_stop
	for t in w f r; do
		local m k=write ref=ref
		case $t in
		w) m="4K randwrite QD32 IOPS" ;;
		f) m="4K randwrite QD1, FLUSH every 64, IOPS" ;;
		r) m="4K randread QD32 IOPS (region written first: blkcache hits)"; k=read ;;
		esac
		row R1 rbd-raw rbd "$m" "$(r1_iops "r1-raw-$t" $k)" - - ref "fio rbd engine, rbd_cache=false, $store OSD"
		row R1 rbd-wb rbd "$m" "$(r1_iops "r1-wb-$t" $k)" rbd-raw "$(r1_iops "r1-raw-$t" $k)" - \
			"librbd writeback RAM cache: lost on a client crash"
		bc="ratio>=10"
		[ $t = f ] || bc=-
		row R1 bc-nbd rbd "$m" "$(r1_iops "r1-nbd-$t" $k)" rbd-raw "$(r1_iops "r1-raw-$t" $k)" "$bc" \
			"cache: $R1_CACHE file (O_DIRECT); crash-safe"
		row R1 bc-inproc rbd "$m" "$(r1_iops "r1-inproc-$t" $k)" rbd-raw "$(r1_iops "r1-raw-$t" $k)" "$bc" \
			"the same cache, fio engine in process"
		if [ $t = f ]; then
			row R1 bc-nbd rbd "$m vs librbd writeback cache" "$(r1_iops "r1-nbd-$t" $k)" rbd-wb \
				"$(r1_iops "r1-wb-$t" $k)" "ratio>=2" "blkcache keeps acknowledged FLUSHes across a crash"
			row R1 bc-inproc rbd "$m vs librbd writeback cache" "$(r1_iops "r1-inproc-$t" $k)" rbd-wb \
				"$(r1_iops "r1-wb-$t" $k)" "ratio>=2" ""
		fi
	done
	# The read job's blocks came from the cache, not the image.
	[ "$(sj "$W/r1-nbd-status.json" read_miss_blocks)" -lt $(( $(sj "$W/r1-nbd-status.json" read_hit_blocks) / 10 + 1 )) ] ||
		say "R1: note: blkcache's reads missed the cache often ($W/r1-nbd-status.json)"
}
