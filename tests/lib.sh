# Shared helpers for the blkcache integration tests (tests/test-*.sh).
# Source it first thing:   . "$(dirname "$0")/lib.sh"
#
# Environment (set by tests/run.sh):
#   BLKCACHE        absolute path of the built blkcache binary (required)
#   BLKCACHE_SRC    source tree, BLKCACHE_BUILD build tree (informational)
#   BLKCACHE_KEEP_TMP=1       keep the temporary directory after the test
#   BLKCACHE_READY_TIMEOUT=S  seconds to wait for a server to come up (60)
#   BLKCACHE_CLIENT_TIMEOUT=S upper bound for one client command (300)
#
# No verdict may depend on the machine's speed: wait for the condition a
# test means with wait_for (or wait_bounded), under a generous bound that is
# reached only when something is broken, never "sleep N and expect it
# happened".  A sleep that only paces load or picks a random moment (and
# decides nothing) says so in a comment.
#
# Provides: $T (temp dir, removed on exit), $CACHE $ORIGIN $SOCK $CTL $URI,
# $PY (a python3 that can 'import nbd'; py runs it under a timeout), and the
# functions below.  Every
# process started through these helpers is killed when the script exits.

set -euo pipefail

if [ -z "${BLKCACHE:-}" ] || [ ! -x "${BLKCACHE}" ]; then
	echo "BLKCACHE must name the built blkcache binary (run through tests/run.sh)" >&2
	exit 1
fi

T=$(mktemp -d /tmp/blkcache-it.XXXXXX)
CACHE=$T/cache.img
# BLKCACHE_ORIGIN=DEVICE: the origin is DEVICE (an rbd: image the caller
# made, at least as large as the test's origin) instead of a fresh file.
ORIGIN=${BLKCACHE_ORIGIN:-$T/origin.img}
SOCK=$T/nbd.sock
CTL=$T/ctl.sock
URI="nbd+unix:///?socket=$SOCK"
SERVER_PID=""
SERVER_LOG=""
# SERVE_NO_ORIGIN=1: start_server gives serve no --origin (a cache of several
# origins is served from each origin's recorded device).
SERVE_NO_ORIGIN=""
SERVER_STARTS=0
BG_PIDS=()
READY_TIMEOUT=${BLKCACHE_READY_TIMEOUT:-60}
# Upper bound for one client command, so that a hung server fails the test
# instead of hanging the suite (never reached in a healthy run).
CLIENT_TIMEOUT=${BLKCACHE_CLIENT_TIMEOUT:-300}

# Debian's python3-libnbd lives in the system interpreter; a python3 earlier
# in PATH (pyenv, venv) may not see it, and /usr/bin/nbdsh runs 'python3'.
PY=""
for p in /usr/bin/python3 python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import nbd' >/dev/null 2>&1; then
		PY=$(command -v "$p")
		break
	fi
done
[ -n "$PY" ] || PY=$(command -v python3 || echo /usr/bin/python3)

# Client tools run under a timeout (use 'command fio' to get the bare tool).
fio() { timeout -k 10 "$CLIENT_TIMEOUT" fio "$@"; }
nbdcopy() { timeout -k 10 "$CLIENT_TIMEOUT" nbdcopy "$@"; }
qemu-io() { timeout -k 10 "$CLIENT_TIMEOUT" qemu-io "$@"; }
py() { timeout -k 10 "$CLIENT_TIMEOUT" "$PY" "$@"; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# Print the tail of the current server log.
show_server_log() {
	local n=${1:-40}
	if [ -n "$SERVER_LOG" ] && [ -f "$SERVER_LOG" ]; then
		echo "---- server log ($SERVER_LOG, last $n lines) ----"
		tail -n "$n" "$SERVER_LOG"
		echo "---- end of server log ----"
	fi
}

fail() {
	echo "FAIL: $*"
	show_server_log 40
	exit 1
}

_cleanup() {
	local rc=$?
	set +e
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -9 "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	local p
	for p in "${BG_PIDS[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			kill -9 "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	if [ "${BLKCACHE_KEEP_TMP:-0}" = 1 ]; then
		echo "(kept $T)"
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM HUP

# Remember a background pid so that it is killed at exit.
track_bg() { BG_PIDS+=("$1"); }

# wait_bounded PID SECS: wait for a background child; if it is still running
# after SECS seconds, kill -9 it and return 255; else return its exit status.
wait_bounded() {
	local pid=$1 i rc=0
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		return 255
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return $rc
}

# wait_for SECS WHAT CMD...: poll CMD until it succeeds; fail with WHAT if it
# has not succeeded after SECS seconds (wall time: a generous upper bound for
# something that is really broken, not an expectation of speed).
wait_for() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$(( $(date +%s) + secs ))
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "$what (still not after $secs s)"
		sleep 0.05
	done
}

# status_is KEY VALUE / status_ge KEY N / status_gt KEY N: conditions on a
# field of the running server's status (for wait_for; false if the status
# cannot be read).
status_is() { local v; v=$(status_json 2>/dev/null) && [ "$(jfield "$v" "$1")" = "$2" ]; }
status_ge() { local v; v=$(status_json 2>/dev/null) && [ "$(jfield "$v" "$1")" -ge "$2" ]; }
status_gt() { local v; v=$(status_json 2>/dev/null) && [ "$(jfield "$v" "$1")" -gt "$2" ]; }

# Fail if a log mentions a sanitizer report.
check_no_sanitizer() {
	local f=$1
	if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$f" 2>/dev/null; then
		echo "sanitizer report in $f:"
		grep -E -A25 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$f" | head -60
		SERVER_LOG=""
		fail "sanitizer report in $f"
	fi
}

# make_images ORIGIN_SIZE CACHE_SIZE [format args...]: fresh sparse files, formatted.
make_images() {
	local osz=$1 csz=$2 out
	shift 2
	rm -f "$CACHE"
	if [ -z "${BLKCACHE_ORIGIN:-}" ]; then
		rm -f "$ORIGIN"
		truncate -s "$osz" "$ORIGIN"
	fi
	truncate -s "$csz" "$CACHE"
	# BLKCACHE_FORMAT_EXTRA: more format arguments (before the test's own,
	# which win), e.g. "--shards 2" to run a test over a sharded origin.
	# shellcheck disable=SC2086
	if ! out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" ${BLKCACHE_FORMAT_EXTRA:-} \
		"$@" 2>&1); then
		echo "$out"
		fail "blkcache format failed"
	fi
	case " ${BLKCACHE_FORMAT_EXTRA:-} " in
	*" --shards "*) grep -q "as [0-9]* shards" <<<"$out" ||
		fail "BLKCACHE_FORMAT_EXTRA asks for shards, the format made none: $out" ;;
	esac
	echo "$out" > "$T/format.out"
	check_no_sanitizer "$T/format.out"
	log "format: $out"
}

# Exported size for an origin of SIZE bytes: the origin rounded down to 4 KiB
# (nothing of it is taken: format writes no label by default).
export_size_for() {
	echo $(( ($1 / 4096) * 4096 ))
}

# Is the server of $SERVER_PID answering NBD on $SOCK?
server_answers() {
	[ -S "$SOCK" ] && nbdinfo --size "$URI" >/dev/null 2>&1
}

# wait_ready: poll (bounded) until the socket exists and nbdinfo --size works.
wait_ready() {
	local deadline=$(( $(date +%s) + READY_TIMEOUT ))
	while :; do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			local rc=0
			wait "$SERVER_PID" 2>/dev/null || rc=$?
			SERVER_PID=""
			fail "server exited (status $rc) during start-up"
		fi
		if server_answers; then
			return 0
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			fail "server not ready after ${READY_TIMEOUT}s"
		fi
		sleep 0.05
	done
}

# start_server [extra serve args...]: start in the background and wait until ready.
start_server() {
	[ -z "$SERVER_PID" ] || fail "start_server: a server (pid $SERVER_PID) is already running"
	SERVER_STARTS=$((SERVER_STARTS + 1))
	SERVER_LOG=$T/server.$SERVER_STARTS.log
	local oargs=(--origin "$ORIGIN")
	[ -z "$SERVE_NO_ORIGIN" ] || oargs=()
	"$BLKCACHE" serve --cache "$CACHE" "${oargs[@]}" --socket "$SOCK" --control "$CTL" \
		"$@" >"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	wait_ready
	log "server #$SERVER_STARTS up (pid $SERVER_PID)"
}

# stop_server: SIGTERM, bounded wait, require exit 0 and 'clean shutdown complete'.
stop_server() {
	[ -n "$SERVER_PID" ] || fail "stop_server: no server running"
	local pid=$SERVER_PID rc=0
	kill -TERM "$pid" 2>/dev/null || true
	wait_bounded "$pid" 60 || rc=$?
	SERVER_PID=""
	[ "$rc" -ne 255 ] || fail "server did not exit within 60 s of SIGTERM"
	check_no_sanitizer "$SERVER_LOG"
	[ "$rc" -eq 0 ] || fail "server exited with status $rc after SIGTERM (want 0)"
	grep -q 'clean shutdown complete' "$SERVER_LOG" ||
		fail "server log lacks 'clean shutdown complete'"
	log "server stopped cleanly"
}

# kill9_server: SIGKILL (a crash), reap it.
kill9_server() {
	[ -n "$SERVER_PID" ] || fail "kill9_server: no server running"
	local pid=$SERVER_PID rc=0
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || rc=$?
	SERVER_PID=""
	check_no_sanitizer "$SERVER_LOG"
	[ "$rc" -eq 137 ] || fail "server had already exited (status $rc) before kill -9"
	log "server killed with SIGKILL"
}

# status_json: one JSON object from the running server.
status_json() {
	timeout -k 5 30 "$BLKCACHE" status --control "$CTL" --json
}

# jfield JSON KEY: print one field of a JSON object (numbers, strings, bools).
jfield() {
	"$PY" -c 'import json,sys
o=json.loads(sys.argv[1])
v=o[sys.argv[2]]
print(str(v).lower() if isinstance(v,bool) else v)' "$1" "$2"
}

# status_field KEY: a field of the running server's status.
status_field() {
	local j
	j=$(status_json) || fail "blkcache status --json failed"
	jfield "$j" "$1"
}

# qio OUTFILE cmd...: run qemu-io against $URI with -c for every argument;
# fail on a non-zero exit, "Pattern verification failed", or any error line.
qio() {
	local out=$1
	shift
	local args=() c rc=0
	for c in "$@"; do
		args+=(-c "$c")
	done
	qemu-io -f raw -d unmap "$URI" "${args[@]}" >"$out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] || grep -qiE 'Pattern verification failed|failed|error|cannot|invalid' "$out"; then
		echo "qemu-io exit $rc, output:"
		tail -n 30 "$out"
		fail "qemu-io command list failed (see above)"
	fi
}

# random_delay MIN_MS MAX_MS: print a delay in seconds (for sleep).
random_delay() {
	local ms=$(( $1 + RANDOM % ($2 - $1 + 1) ))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

if ! "$PY" -c 'import nbd' >/dev/null 2>&1; then
	echo "no python3 with the libnbd bindings (python3-libnbd) found" >&2
fi

# ---- helpers for the CLI / policy acceptance tests (appended) ----

# fio_checked TAG SECS fio-args...: run fio (in $T, no verify state files)
# under a SECS-second bound; JSON result in $T/TAG.json, stderr in $T/TAG.err.
# Fails on a timeout (a hung server), a non-zero exit, an error in any job,
# or a verify complaint.
fio_checked() {
	local tag=$1 secs=$2 rc=0
	shift 2
	(cd "$T" && exec timeout -k 10 "$secs" fio "$@" --verify_state_save=0 \
		--output-format=json --output="$T/$tag.json") 2>"$T/$tag.err" || rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		fail "fio $tag did not finish within $secs s (hung server / deadlock?)"
	fi
	if [ $rc -ne 0 ] || grep -qiE 'verify|bad magic|crc|error' "$T/$tag.err"; then
		echo "fio $tag exit $rc; stderr:"
		head -n 30 "$T/$tag.err"
		fail "fio $tag reported errors"
	fi
	"$PY" - "$T/$tag.json" <<'PYEOF' || fail "fio $tag: JSON result shows an error"
import json, sys
j = json.load(open(sys.argv[1]))
for job in j["jobs"]:
    if job["error"] != 0:
        print("job", job["jobname"], "error", job["error"]); sys.exit(1)
PYEOF
}

# fio_get TAG EXPR: a python expression over the first job (`j`) of $T/TAG.json.
fio_get() {
	"$PY" -c 'import json,sys
j=json.load(open(sys.argv[1]))["jobs"][0]
print(eval(sys.argv[2]))' "$T/$1.json" "$2"
}

# snap NAME: save the running server's status JSON as $T/snap.NAME.json.
snap() {
	status_json >"$T/snap.$1.json" || fail "blkcache status --json failed"
}

# sdelta A B KEY: KEY in snapshot B minus KEY in snapshot A.
sdelta() {
	"$PY" -c 'import json,sys
a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
print(b[sys.argv[3]]-a[sys.argv[3]])' "$T/snap.$1.json" "$T/snap.$2.json" "$3"
}

# sget NAME KEY: KEY of snapshot NAME.
sget() {
	"$PY" -c 'import json,sys
v=json.load(open(sys.argv[1]))[sys.argv[2]]
print(str(v).lower() if isinstance(v,bool) else v)' "$T/snap.$1.json" "$2"
}

# hit_ratio_between A B: read hit ratio (whole-block hits / all read blocks)
# between two snapshots, as a decimal with 4 digits.
hit_ratio_between() {
	"$PY" -c 'import json,sys
a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
d=lambda k: b[k]-a[k]
n=d("read_hit_blocks")+d("read_partial_blocks")+d("read_miss_blocks")
print("%.4f" % (d("read_hit_blocks")/n if n else 0.0))' "$T/snap.$1.json" "$T/snap.$2.json"
}

# fge X Y: succeed if the decimal X >= Y.
fge() { "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2"; }

# ctl ARGS...: run a control command (blkcache ARGS --control $CTL) bounded,
# stdout+stderr in $CTL_OUT, exit status in $CTL_RC (never fails by itself).
CTL_OUT=""
CTL_RC=0
ctl() {
	CTL_RC=0
	CTL_OUT=$(timeout -k 5 "$CLIENT_TIMEOUT" "$BLKCACHE" "$@" --control "$CTL" 2>&1) || CTL_RC=$?
	if printf '%s' "$CTL_OUT" | grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:'; then
		echo "$CTL_OUT"
		fail "sanitizer report from 'blkcache $*'"
	fi
}

# ctl_ok ARGS...: like ctl, but fail unless it exits 0.
ctl_ok() {
	ctl "$@"
	[ "$CTL_RC" -eq 0 ] || { echo "$CTL_OUT"; fail "'blkcache $*' exited $CTL_RC"; }
}

# wait_server_exit SECS: the server is expected to exit by itself; wait for
# it (bounded), reap it, check its log for sanitizer reports, and set
# SERVER_EXIT to its exit status.  Fails if it still runs after SECS seconds.
# (Not in a $(...) subshell: only this shell can reap the server.)
SERVER_EXIT=""
wait_server_exit() {
	local pid=$SERVER_PID i
	[ -n "$pid" ] || fail "wait_server_exit: no server running"
	for ((i = 0; i < $1 * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && fail "server still running $1 s after it should have exited"
	SERVER_EXIT=0
	wait "$pid" 2>/dev/null || SERVER_EXIT=$?
	SERVER_PID=""
	check_no_sanitizer "$SERVER_LOG"
}

# start_origin_ro: export $ORIGIN alone, read-only, with nbdkit on
# $T/origin.sock ($ORIGIN_URI); stop_origin_ro stops it.
ORIGIN_URI="nbd+unix:///?socket=$T/origin.sock"
ORIGIN_NBDKIT_PID=""
start_origin_ro() {
	nbdkit_start "$T/origin.sock" "$T/nbdkit.log" --readonly file "$ORIGIN"
	ORIGIN_NBDKIT_PID=$NBDKIT_PID
}
stop_origin_ro() {
	[ -n "$ORIGIN_NBDKIT_PID" ] || return 0
	kill -TERM "$ORIGIN_NBDKIT_PID" 2>/dev/null || true
	wait_bounded "$ORIGIN_NBDKIT_PID" 10 || true
	ORIGIN_NBDKIT_PID=""
}

# free_tcp_port: print a TCP port on 127.0.0.1 that is free right now.
free_tcp_port() {
	"$PY" -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# nbdkit_start SOCK LOG nbdkit-args...: run nbdkit in the foreground on unix
# socket SOCK (killed at exit), wait until it answers; its pid in NBDKIT_PID.
NBDKIT_PID=""
nbdkit_start() {
	local sock=$1 nlog=$2
	shift 2
	command -v nbdkit >/dev/null || fail "nbdkit is not installed (apt-get install nbdkit)"
	rm -f "$sock"
	nbdkit --foreground --unix "$sock" "$@" >"$nlog" 2>&1 &
	NBDKIT_PID=$!
	track_bg "$NBDKIT_PID"
	local deadline=$(( $(date +%s) + READY_TIMEOUT ))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && return 0
		kill -0 "$NBDKIT_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$nlog"
	fail "nbdkit $* did not come up on $sock"
}

# nbdkit_stop PID: SIGTERM (nbdkit writes e.g. its stats file), bounded wait.
nbdkit_stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait_bounded "$1" 20 || true
}
