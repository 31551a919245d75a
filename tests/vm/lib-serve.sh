# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
# Guest helpers for tests that run blkcache serve in the VM (after
# lib-guest.sh):   . "$(dirname "$0")/lib-serve.sh"
# Provides: serve_start ARGS... (background serve, waits until the control
# socket answers and, with --ublk, the block device is there), serve_stop
# (SIGTERM, bounded, clean), serve_kill (kill -9), status_json, UBLK_DEV.

CTL=/tmp/ctl.sock
SERVER_PID=""
SERVER_LOG=""
SERVER_STARTS=0
UBLK_DEV=""

status_json() { timeout 30 "$BLKCACHE" status --control "$CTL" --json 2>/dev/null; }
# writes_above N: the server has counted more than N write requests (a
# condition for wait_for: evaluated on every try).
writes_above() { local j; j=$(status_json) && [ "$(jfield "$j" writes)" -gt "$1" ]; }

_serve_up() {
	kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited during start-up (status: see its log)"
	status_json >"$T/status.json" || return 1
	[ -z "$UBLK_DEV" ] || [ -b "$UBLK_DEV" ]
}

# serve_start ARGS...: blkcache serve --cache $CACHE --origin $ORIGIN --control $CTL ARGS
# (no --origin when $ORIGIN is empty); UBLK_DEV: the first device it printed
serve_start() {
	local want_ublk=0 a
	for a in "$@"; do case $a in --ublk*) want_ublk=1 ;; esac; done
	SERVER_STARTS=$((SERVER_STARTS + 1))
	SERVER_LOG=$T/server.$SERVER_STARTS.log
	FAIL_SHOW+=("$SERVER_LOG")
	local oargs=(--origin "$ORIGIN")
	[ -n "${ORIGIN:-}" ] || oargs=() # a cache of several origins: each its recorded device
	"$BLKCACHE" serve --cache "$CACHE" "${oargs[@]}" --control "$CTL" "$@" \
		>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	track_bg "$SERVER_PID"
	UBLK_DEV=""
	if [ $want_ublk = 1 ]; then
		# The device path is the first line on stdout.
		wait_for 120 "serve --ublk printed no device" grep -q '^/dev/ublkb' "$SERVER_LOG"
		UBLK_DEV=$(grep -m1 '^/dev/ublkb' "$SERVER_LOG")
	fi
	wait_for 120 "server not ready (control socket, block device)" _serve_up
	log "server #$SERVER_STARTS up (pid $SERVER_PID)${UBLK_DEV:+, $UBLK_DEV}"
}

# serve_stop: SIGTERM; exit 0 with a clean shutdown within 300 s.
serve_stop() {
	local rc=0 i
	kill -TERM "$SERVER_PID"
	for ((i = 0; i < 300 * 20; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		stuck_report "$SERVER_PID"
		kill -9 "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
		fail "server did not exit within 300 s of SIGTERM (its threads' kernel stacks above)"
	fi
	wait "$SERVER_PID" 2>/dev/null || rc=$?
	[ $rc -eq 0 ] || fail "server exited with status $rc after SIGTERM (want 0)"
	grep -q 'clean shutdown complete' "$SERVER_LOG" || fail "no 'clean shutdown complete' in the server log"
	SERVER_PID=""
	log "server stopped cleanly"
}

# stuck_report PID: what a process that does not exit waits for -- each
# thread's state and kernel stack, the other processes in D state, and the
# hung-task reports (sysrq w) -- printed before it is killed.
stuck_report() {
	local t
	echo "---- pid $1 does not exit: its threads ----"
	for t in /proc/"$1"/task/*; do
		echo "thread ${t##*/}: $(awk '/^State/ {print $2, $3}' "$t/status" 2>/dev/null) $(cat "$t/comm" 2>/dev/null)"
		sed 's/^/    /' "$t/stack" 2>/dev/null
	done
	echo "---- processes in D state ----"
	ps -eo pid,stat,wchan:32,args 2>/dev/null | awk 'NR == 1 || $2 ~ /^D/'
	for t in $(ps -eo pid=,stat= 2>/dev/null | awk '$2 ~ /^D/ {print $1}'); do
		echo "pid $t: $(tr '\0' ' ' <"/proc/$t/cmdline" 2>/dev/null | cut -c1-80)"
		sed 's/^/    /' "/proc/$t/stack" 2>/dev/null
	done
	echo "---- end ----"
}

# serve_kill: kill -9 the server and reap it.
serve_kill() {
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
	log "server killed (-9)"
}
