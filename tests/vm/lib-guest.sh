# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
# Helpers for the scripts that run inside the test VM (tests/vm/test-*.sh,
# bench/vm).  Source it first thing:   . "$(dirname "$0")/lib-guest.sh"
#
# Environment (set by tests/vm/guest-init.sh from run-vm.sh's job):
#   BLKCACHE         the host-built blkcache binary (over 9p, same path)
#   BLKCACHE_SRC, BLKCACHE_BUILD   the source and build trees (same paths)
#   VM_OUT           a host directory, shared read-write, for results
#   VM_DISKS         the names of the job's disks; VM_DISK_<NAME>=/dev/vdX
#
# Same rules as the host tests (tests/lib.sh): no verdict depends on speed;
# wait for a condition with wait_for under a generous bound, never "sleep
# and hope".  The last line of a passing test is "checked: ..." (checked).
#
# Provides: $T (a temp dir on the guest's tmpfs), log, fail, skip,
# disk_by_serial, wait_for, wait_bounded, bounded, track_bg, on_exit,
# load_module, have_module, jfield, checked, show_file.
set -u

T=$(mktemp -d /tmp/vmtest.XXXXXX)
_DMESG0=$(dmesg 2>/dev/null | wc -l)
BG_PIDS=()
EXIT_CMDS=()
# Upper bound for one client command (mkfs, fsck, nbd-client...), so that a
# hung device fails the test instead of using up the VM's whole timeout.
CLIENT_TIMEOUT=${BLKCACHE_CLIENT_TIMEOUT:-300}
export DM_DISABLE_UDEV=1   # no udev in the guest (dmsetup)

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# show_file FILE [N]: print the last N (40) lines of FILE, framed.
show_file() {
	[ -f "$1" ] || return 0
	echo "---- $1 (last ${2:-40} lines) ----"
	tail -n "${2:-40}" "$1"
	echo "---- end of $1 ----"
}

# Files whose tails fail prints (a server log, say): FAIL_SHOW+=(FILE).
FAIL_SHOW=()
fail() {
	local f
	echo "FAIL: $*"
	for f in "${FAIL_SHOW[@]}"; do show_file "$f" 40; done
	# The kernel's messages since the test started (the boot's are in VM_OUT/dmesg.txt).
	if [ "$(dmesg 2>/dev/null | wc -l)" -gt "$_DMESG0" ]; then
		echo "---- dmesg since the test started (last 30 lines) ----"
		dmesg 2>/dev/null | tail -n +"$((_DMESG0 + 1))" | tail -n 30
		echo "---- end of dmesg ----"
	fi
	exit 1
}
skip() { echo "SKIP: $*"; exit 77; }

# on_exit CMD...: run CMD (eval'd) at exit, last registered first.
on_exit() { EXIT_CMDS+=("$*"); }
_guest_cleanup() {
	local rc=$? i p
	set +e
	for ((i = ${#EXIT_CMDS[@]} - 1; i >= 0; i--)); do
		eval "${EXIT_CMDS[$i]}" >/dev/null 2>&1
	done
	for p in "${BG_PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && { kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
	done
	rm -rf "$T"
	exit "$rc"
}
trap _guest_cleanup EXIT
trap 'exit 130' INT TERM HUP

track_bg() { BG_PIDS+=("$1"); }

# bounded CMD...: run CMD under the client timeout (SIGKILL 10 s later).
bounded() { timeout -k 10 "$CLIENT_TIMEOUT" "$@"; }

# disk_by_serial NAME: print the /dev/vdX whose virtio serial is NAME; else
# say which disks there are (stderr) and return 1.  Use it as
#   CACHE=$(disk_by_serial cache) || fail "no cache disk"
disk_by_serial() {
	local d
	for d in /sys/block/vd*; do
		[ -r "$d/serial" ] || continue
		if [ "$(cat "$d/serial")" = "$1" ]; then
			echo "/dev/${d##*/}"
			return 0
		fi
	done
	echo "no virtio disk with serial '$1' (disks: $(for d in /sys/block/vd*; do printf '%s=%s ' "${d##*/}" "$(cat "$d/serial" 2>/dev/null)"; done))" >&2
	return 1
}

# wait_for SECS WHAT CMD...: poll CMD until it succeeds; fail with WHAT if it
# has not after SECS seconds (a bound for something broken, not a speed).
wait_for() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$(( $(date +%s) + secs ))
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "$what (still not after $secs s)"
		sleep 0.05
	done
}

# wait_bounded PID SECS: wait for a background child; kill -9 it and return
# 255 if it still runs after SECS seconds, else return its exit status.
wait_bounded() {
	local pid=$1 i rc=0
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 255
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return $rc
}

# have_module NAME: is NAME a loadable module of this kernel or built in?
have_module() {
	modinfo -n "$1" >/dev/null 2>&1 && return 0
	grep -qE "/${1//_/[-_]}\.ko" "/lib/modules/$(uname -r)/modules.builtin" 2>/dev/null
}

# load_module NAME [PARAMS...]: modprobe it (fail with the kernel's messages).
load_module() {
	local out
	out=$(modprobe "$@" 2>&1) || { echo "$out"; fail "modprobe $* failed"; }
	log "module $1 loaded"
}

# jfield JSON KEY: one field of a JSON object (bools as true/false).
jfield() {
	python3 -c 'import json,sys
o=json.loads(sys.argv[1])
v=o[sys.argv[2]]
print(str(v).lower() if isinstance(v,bool) else v)' "$1" "$2"
}

# checked WHAT...: the summary line of a passing test (run-all.sh shows it).
checked() { echo "checked: $*"; }

[ -n "${BLKCACHE:-}" ] || fail "BLKCACHE is not set (not started by tests/vm/run-vm.sh?)"
