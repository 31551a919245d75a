# Shared helpers for the blkcache integration tests (tests/test-*.sh).
# Source it first thing:   . "$(dirname "$0")/lib.sh"
#
# Environment (set by tests/run.sh):
#   BLKCACHE        absolute path of the built blkcache binary (required)
#   BLKCACHE_SRC    source tree, BLKCACHE_BUILD build tree (informational)
#   BLKCACHE_KEEP_TMP=1       keep the temporary directory after the test
#   BLKCACHE_READY_TIMEOUT=S  seconds to wait for a server to come up (30)
#   BLKCACHE_CLIENT_TIMEOUT=S upper bound for one client command (300)
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
ORIGIN=$T/origin.img
SOCK=$T/nbd.sock
CTL=$T/ctl.sock
URI="nbd+unix:///?socket=$SOCK"
SERVER_PID=""
SERVER_LOG=""
SERVER_STARTS=0
BG_PIDS=()
READY_TIMEOUT=${BLKCACHE_READY_TIMEOUT:-30}
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
	rm -f "$CACHE" "$ORIGIN"
	truncate -s "$osz" "$ORIGIN"
	truncate -s "$csz" "$CACHE"
	if ! out=$("$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" "$@" 2>&1); then
		echo "$out"
		fail "blkcache format failed"
	fi
	echo "$out" > "$T/format.out"
	check_no_sanitizer "$T/format.out"
	log "format: $out"
}

# Exported size for an origin of SIZE bytes: rounded down to 4 KiB, minus the label.
export_size_for() {
	echo $(( ($1 / 4096) * 4096 - 4096 ))
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
	"$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --socket "$SOCK" --control "$CTL" \
		"$@" >"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	wait_ready
	log "server #$SERVER_STARTS up (pid $SERVER_PID)"
}

# stop_server: SIGTERM, bounded wait, require exit 0 and 'clean shutdown complete'.
stop_server() {
	[ -n "$SERVER_PID" ] || fail "stop_server: no server running"
	local pid=$SERVER_PID rc=0 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		SERVER_PID=""
		fail "server did not exit within 60 s of SIGTERM"
	fi
	wait "$pid" 2>/dev/null || rc=$?
	SERVER_PID=""
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
