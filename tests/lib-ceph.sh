# SPDX-License-Identifier: BSD-3-Clause
# Throwaway single-node Ceph cluster (one mon, one osd, no mgr, no cephx) on
# 127.0.0.1 for tests.  Everything (conf, data, sockets, logs) lives in DIR.
#
#   . "$(dirname "$0")/lib-ceph.sh"
#   ceph_available || exit 77       # skip if the Ceph binaries are missing
#   trap ceph_stop EXIT              # (or call ceph_stop from your own trap)
#   ceph_start "$T/ceph" [memstore|bluestore] [SIZE]
#                     create a cluster in DIR (new or empty; default memstore,
#                     SIZE default 4G: the bluestore sparse file / memstore
#                     capacity), wait until the osd is up and in, create and
#                     init pool "rbd"; exports CEPH_DIR and CEPH_CONF (read by
#                     ceph, rbd, rados, librados/librbd and fio's rbd engine).
#                     On failure: message + log tails on stderr, daemons
#                     stopped, returns 1.
#   ceph_stop         stop mon and osd (SIGTERM, bounded wait, SIGKILL);
#                     idempotent, safe from an EXIT trap.
#   ceph_osd_stop     SIGTERM the osd (it tells the mon it is going down).
#   ceph_osd_kill     SIGKILL the osd (the mon still believes it up).
#   ceph_osd_start    restart the osd; waits until it is up again in a newer
#                     osdmap and every PG of pool rbd answers.
#   ceph_fsid         print the cluster fsid.
#   ceph_test_origin STORE SIZE IMAGE_SIZE [SPEC_OPTS]
#                     for tests built on lib.sh ($T, fail, _cleanup): set the
#                     EXIT trap (ceph_stop, kill everything started with $T
#                     in its command line, then lib.sh's cleanup), start the
#                     cluster in $T/ceph, create image rbd/img of IMAGE_SIZE
#                     and set BLKCACHE_ORIGIN and ORIGIN to
#                     rbd:rbd/img?conf=$CEPH_CONF[&SPEC_OPTS].
#
# Environment: CEPH_WAIT_TIMEOUT=S bounds every wait (default 60).
# memstore loses all data when the osd restarts (ceph_osd_start then replaces
# pool rbd by a new empty one); bluestore keeps it.
# Without 'rados osd op timeout' a client's IO to a stopped osd blocks until
# the osd is back; the conf sets only 'client mount timeout = 30'.

CEPH_DIR=${CEPH_DIR:-}
CEPH_MON_PID=""
CEPH_OSD_PID=""
CEPH_FSID=""
CEPH_STORE=""

_ceph_msg() { echo "lib-ceph: $*" >&2; }

ceph_available() {
	local b
	for b in ceph-mon ceph-osd ceph rbd rados monmaptool; do
		if ! command -v "$b" >/dev/null 2>&1; then
			_ceph_msg "$b not found (install ceph-mon ceph-osd ceph-common)"
			return 1
		fi
	done
	return 0
}

# _ceph CMD...: ceph CLI with this cluster's conf, bounded in time.
_ceph() { timeout 40 ceph -c "$CEPH_DIR/ceph.conf" "$@"; }

_ceph_free_port() {
	local p n
	p=$((20000 + RANDOM % 20000))
	for n in $(seq 1 200); do
		if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return 0
		fi
		p=$((p + 1 + RANDOM % 7))
		[ "$p" -lt 40000 ] || p=$((20000 + RANDOM % 1000))
	done
	return 1
}

_ceph_write_conf() { # store size port
	local store=$1 size=$2 port=$3 d=$CEPH_DIR
	cat >"$d/ceph.conf" <<EOF
[global]
fsid = $CEPH_FSID
mon host = 127.0.0.1:$port
public network = 127.0.0.1/32
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = $d/keyring
run dir = $d/run
admin socket = $d/run/\$name.\$pid.\$cctid.asok
log file = $d/log/\$name.log
pid file = $d/run/\$name.pid
crash dir = $d/crash
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
client mount timeout = 30
[mon]
admin socket = $d/run/\$name.asok
mon data = $d/mon/\$name
paxos propose interval = 0.1
mon cluster log file = $d/log/cluster.log
mon data avail crit = 0
[osd]
admin socket = $d/run/\$name.asok
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd data = $d/osd/\$id
osd objectstore = $store
osd memory target = 939524096
bdev aio poll ms = 20
bluestore block create = true
bluestore block size = $size
bluestore fsck on mount = false
memstore device bytes = $size
memstore page set = true
memstore page size = 4096
EOF
	: >"$d/keyring"
}

# _ceph_osd_state: print "<epoch> <up|down> <in|out> <up_from>" for osd.0.
_ceph_osd_state() {
	_ceph osd dump 2>/dev/null | awk '
		$1 == "epoch" { e = $2 }
		$1 == "osd.0" { s = $2 " " $3; for (i = 4; i < NF; i++) if ($i == "up_from") u = $(i + 1) }
		END { if (e != "" && s != "") print e, s, u; else exit 1 }'
}

_ceph_tails() {
	local f
	for f in "$CEPH_DIR"/log/*.log "$CEPH_DIR"/log/*.out; do
		[ -s "$f" ] || continue
		echo "--- tail of $f" >&2
		tail -n 15 "$f" >&2
	done
}

_ceph_fail() {
	_ceph_msg "ceph_start: $*"
	_ceph_tails
	ceph_stop
	return 1
}

# _ceph_kill PID SIG: signal PID, wait (bounded, 15 s) for it, then SIGKILL.
# (stderr off: bash would report "Killed" for a SIGKILLed job.)
_ceph_kill() {
	local pid=$1 sig=$2 n
	[ -n "$pid" ] || return 0
	{
		if kill -"$sig" "$pid"; then
			for n in $(seq 1 150); do
				kill -0 "$pid" || break
				sleep 0.1
			done
			kill -KILL "$pid" || true
		fi
		wait "$pid" || true
	} 2>/dev/null
	return 0
}

_ceph_run_osd() {
	ceph-osd -f -c "$CEPH_DIR/ceph.conf" -i 0 \
		</dev/null >>"$CEPH_DIR/log/osd.0.out" 2>&1 &
	CEPH_OSD_PID=$!
}

# _ceph_wait_up MIN_EPOCH: wait until osd.0 is up and in with up_from > MIN_EPOCH.
_ceph_wait_up() {
	local min=$1 t=${CEPH_WAIT_TIMEOUT:-60} st end
	end=$((SECONDS + t))
	while :; do
		if [ -z "$CEPH_OSD_PID" ] || ! kill -0 "$CEPH_OSD_PID" 2>/dev/null; then
			_ceph_msg "ceph-osd exited"
			return 1
		fi
		st=$(_ceph_osd_state) || st=""
		set -- $st
		if [ $# -eq 4 ] && [ "$2" = up ] && [ "$3" = in ] && [ "$4" -gt "$min" ]; then
			return 0
		fi
		[ "$SECONDS" -lt "$end" ] || { _ceph_msg "osd.0 not up+in after ${t}s: ${st:-no osdmap}"; return 1; }
		sleep 0.2
	done
}

# _ceph_wait_pgs: wait until every PG of pool rbd serves ('rados ls' visits
# each PG, so it succeeds once all are active).
_ceph_wait_pgs() {
	local t=${CEPH_WAIT_TIMEOUT:-60} end
	end=$((SECONDS + t))
	until timeout 20 rados -c "$CEPH_DIR/ceph.conf" --rados-osd-op-timeout 5 \
		-p rbd ls >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || { _ceph_msg "pool rbd not serving after ${t}s"; return 1; }
		sleep 0.2
	done
}

# _ceph_make_pool: create pool rbd, 'rbd pool init' it, wait until it serves.
_ceph_make_pool() {
	if ! { _ceph osd pool create rbd 8 8 &&
		timeout "${CEPH_WAIT_TIMEOUT:-60}" rbd -c "$CEPH_DIR/ceph.conf" pool init rbd; } \
		>>"$CEPH_DIR/log/pool.out" 2>&1; then
		_ceph_msg "creating pool rbd failed: $(tail -n 3 "$CEPH_DIR/log/pool.out")"
		return 1
	fi
	_ceph_wait_pgs
}

# _ceph_reset_pool: a restarted memstore osd comes back empty and the mon
# never recreates PGs it has seen created (force-create-pg proved unreliable):
# replace pool rbd by a new, empty one.  Other pools stay broken.
_ceph_reset_pool() {
	local st
	st=$(_ceph --admin-daemon "$CEPH_DIR/run/osd.0.asok" status 2>/dev/null) || st=""
	case $st in *'"num_pgs": 0'[!0-9]*) ;; *) return 0 ;; esac
	_ceph osd pool delete rbd rbd --yes-i-really-really-mean-it >>"$CEPH_DIR/log/pool.out" 2>&1 ||
		{ _ceph_msg "deleting pool rbd failed"; return 1; }
	_ceph_make_pool
}

ceph_start() {
	local dir=${1:-} store=${2:-memstore} size=${3:-4G} port uuid
	if [ -z "$dir" ]; then _ceph_msg "usage: ceph_start DIR [memstore|bluestore] [SIZE]"; return 1; fi
	case $store in memstore | bluestore) ;; *) _ceph_msg "unknown objectstore '$store'"; return 1 ;; esac
	if [ -n "$CEPH_MON_PID$CEPH_OSD_PID" ]; then _ceph_msg "a cluster is already running"; return 1; fi
	mkdir -p "$dir" || return 1
	if [ -n "$(ls -A "$dir")" ]; then _ceph_msg "$dir is not empty"; return 1; fi
	CEPH_DIR=$(cd "$dir" && pwd)
	mkdir -p "$CEPH_DIR"/{mon/mon.a,osd/0,run,log,crash} || return 1
	CEPH_FSID=$(cat /proc/sys/kernel/random/uuid)
	CEPH_STORE=$store
	port=$(_ceph_free_port) || { _ceph_msg "no free port"; return 1; }
	_ceph_write_conf "$store" "$size" "$port" || return 1
	export CEPH_DIR CEPH_CONF=$CEPH_DIR/ceph.conf

	{ monmaptool --create --fsid "$CEPH_FSID" --addv a "[v2:127.0.0.1:$port]" \
		"$CEPH_DIR/run/monmap" &&
		ceph-mon --mkfs -c "$CEPH_CONF" -i a --monmap "$CEPH_DIR/run/monmap"; } \
		>"$CEPH_DIR/log/mkfs.out" 2>&1 ||
		{ _ceph_fail "ceph-mon --mkfs failed"; return 1; }
	ceph-mon -f -c "$CEPH_CONF" -i a </dev/null >>"$CEPH_DIR/log/mon.a.out" 2>&1 &
	CEPH_MON_PID=$!

	uuid=$(cat /proc/sys/kernel/random/uuid)
	# 'osd new' also waits for the mon to form its quorum.
	if ! _ceph osd new "$uuid" >"$CEPH_DIR/log/osd-new.out" 2>&1; then
		_ceph_fail "'ceph osd new' failed: $(tail -n 3 "$CEPH_DIR/log/osd-new.out")"
		return 1
	fi
	ceph-osd --mkfs -c "$CEPH_CONF" -i 0 --osd-uuid "$uuid" \
		>>"$CEPH_DIR/log/mkfs.out" 2>&1 || { _ceph_fail "ceph-osd --mkfs failed"; return 1; }
	_ceph_run_osd
	_ceph_wait_up 0 || { _ceph_fail "osd did not come up"; return 1; }

	_ceph_make_pool || { _ceph_fail "pool rbd not usable"; return 1; }
	return 0
}

ceph_stop() {
	_ceph_kill "$CEPH_OSD_PID" TERM
	CEPH_OSD_PID=""
	_ceph_kill "$CEPH_MON_PID" TERM
	CEPH_MON_PID=""
	return 0
}

ceph_osd_stop() {
	_ceph_kill "$CEPH_OSD_PID" TERM
	CEPH_OSD_PID=""
}

ceph_osd_kill() {
	_ceph_kill "$CEPH_OSD_PID" KILL
	CEPH_OSD_PID=""
}

ceph_osd_start() {
	local st epoch
	if [ -n "$CEPH_OSD_PID" ]; then _ceph_msg "osd already running"; return 1; fi
	if [ -z "$CEPH_MON_PID" ]; then _ceph_msg "no cluster running"; return 1; fi
	st=$(_ceph_osd_state) || { _ceph_msg "cannot read the osdmap"; return 1; }
	epoch=${st%% *}
	_ceph_run_osd
	_ceph_wait_up "$epoch" || { _ceph_tails; return 1; }
	if [ "$CEPH_STORE" = memstore ]; then
		_ceph_reset_pool || { _ceph_tails; return 1; }
	fi
	_ceph_wait_pgs || { _ceph_tails; return 1; }
}

ceph_fsid() {
	if [ -n "$CEPH_FSID" ]; then
		echo "$CEPH_FSID"
	elif [ -n "$CEPH_DIR" ] && [ -r "$CEPH_DIR/ceph.conf" ]; then
		awk '$1 == "fsid" { print $3; exit }' "$CEPH_DIR/ceph.conf"
	else
		return 1
	fi
}

ceph_test_origin() { # store size image_size [spec_opts]
	# (set +e: a failing step must not skip the rest of the cleanup)
	trap 'rc=$?; set +e; ceph_stop; pkill -9 -f -- "$T/" 2>/dev/null; (exit $rc); _cleanup' EXIT
	ceph_start "$T/ceph" "$1" "$2" || fail "the Ceph cluster did not start"
	rbd create --size "$3" rbd/img || fail "rbd create failed"
	BLKCACHE_ORIGIN="rbd:rbd/img?conf=$CEPH_CONF${4:+&$4}"
	ORIGIN=$BLKCACHE_ORIGIN
}
