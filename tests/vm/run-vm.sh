#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Boot the test VM (qemu TCG, the image of tests/vm/build-image.sh) and run
# one guest script in it; exit with the guest script's exit status.
#
# Usage: tests/vm/run-vm.sh [OPTIONS] [--] GUEST-SCRIPT [ARGS...]
#
# The source tree (read-only) and the build tree (read-write) are shared
# with the guest over 9p at the same absolute paths, so the host-built
# blkcache runs as is; in the guest BLKCACHE=BUILD/cli/blkcache,
# BLKCACHE_SRC, BLKCACHE_BUILD, VM_OUT (a host directory shared read-write,
# for results) and VM_DISK_<NAME>=/dev/vdX for every --disk are set, and
# /dev/disk/by-serial/NAME links to each disk (there is no udev).  The
# script's output streams to this script's stdout; the whole serial console
# is saved as OUT/console.log, the guest's dmesg as OUT/dmesg.txt.
#
# Options:
#   --disk NAME=SIZE       a new sparse virtio disk (SIZE as for truncate: 512M,
#                          1G), serial NAME ([A-Za-z0-9_-], at most 20
#                          characters); removed after the run
#   --disk-file NAME=PATH  attach an existing raw file as disk NAME (kept)
#   --nvdimm SIZE          an emulated NVDIMM of SIZE MiB (persistent memory:
#                          nfit + nd_pmem make /dev/pmem0 in the guest), backed
#                          by a sparse file in the scratch directory
#   --share DIR[:ro]       share another host directory (same path in the guest)
#   --build DIR            build tree to share (default: $BLKCACHE_BUILD, else
#                          SRC/build); need not exist
#   --module M             modprobe M in the guest before the script (repeatable)
#   --env NAME=VALUE       set NAME in the guest script's environment (repeatable)
#   --timeout S            overall bound for the run, boot included (default:
#                          $BLKCACHE_VM_TIMEOUT, else 600): qemu is killed after
#                          S s and the run fails (exit 124) with the console tail
#   --mem MB, --smp N      guest memory (2048) and vCPUs (2)
#   --out DIR              where console.log, dmesg.txt, guest.log and the guest's
#                          files go (default: a new /var/tmp/blkcache-vm-out.XXXXXX)
#   --image-dir DIR        the image (default: $BLKCACHE_VM_DIR, else
#                          /var/tmp/blkcache-vm); built first if needed
#   --no-build             do not build the image; exit 77 if there is none
#   --append ARGS          more kernel command line
#   --kernel-verbose       all kernel messages on the console (loglevel=7)
#   --quiet                do not stream the console to stdout
#   --keep                 keep the scratch directory (disks, job files)
#   -h, --help             this text
#
# Exit status: the guest script's; 77 if the image cannot be built; 124 on
# the timeout; 125 if the guest ended without a result (kernel panic, init
# failure: the console tail is printed); 126 if qemu could not start.
# No network device is given to the guest.  KVM is not used (TCG only).
set -u

usage() { sed -n '3,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "$0"; }

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
IMG=${BLKCACHE_VM_DIR:-/var/tmp/blkcache-vm}
BUILD=${BLKCACHE_BUILD:-$SRC/build}
TIMEOUT=${BLKCACHE_VM_TIMEOUT:-600}
MEM=2048
SMP=2
OUT=""
BUILD_IMAGE=1
APPEND=""
LOGLEVEL=4
QUIET=0
KEEP=0
DISKS=()        # NAME=SIZE
DISK_FILES=()   # NAME=PATH
NVDIMM=""       # MiB
EXTRA_SHARES=() # DIR[:ro]
MODULES=()
ENVS=()

need() { [ "$2" -ge 2 ] || { echo "run-vm.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case $1 in
	--disk) need "$1" $#; DISKS+=("$2"); shift 2;;
	--disk-file) need "$1" $#; DISK_FILES+=("$2"); shift 2;;
	--nvdimm) need "$1" $#; NVDIMM=$2; shift 2;;
	--share) need "$1" $#; EXTRA_SHARES+=("$2"); shift 2;;
	--build) need "$1" $#; BUILD=$2; shift 2;;
	--module) need "$1" $#; MODULES+=("$2"); shift 2;;
	--env) need "$1" $#; ENVS+=("$2"); shift 2;;
	--timeout) need "$1" $#; TIMEOUT=$2; shift 2;;
	--mem) need "$1" $#; MEM=$2; shift 2;;
	--smp) need "$1" $#; SMP=$2; shift 2;;
	--out) need "$1" $#; OUT=$2; shift 2;;
	--image-dir) need "$1" $#; IMG=$2; shift 2;;
	--no-build) BUILD_IMAGE=0; shift;;
	--append) need "$1" $#; APPEND="$APPEND $2"; shift 2;;
	--kernel-verbose) LOGLEVEL=7; shift;;
	--quiet) QUIET=1; shift;;
	--keep) KEEP=1; shift;;
	-h | --help) usage; exit 0;;
	--) shift; break;;
	-*) echo "run-vm.sh: unknown option $1" >&2; usage >&2; exit 2;;
	*) break;;
	esac
done
[ $# -ge 1 ] || { echo "run-vm.sh: no guest script given" >&2; usage >&2; exit 2; }
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || { echo "run-vm.sh: --timeout wants seconds (got '$TIMEOUT')" >&2; exit 2; }
SCRIPT=$(realpath -e "$1" 2>/dev/null) || { echo "run-vm.sh: no such guest script: $1" >&2; exit 2; }
shift

say() { echo "run-vm: $*"; }

# --- the image ----------------------------------------------------------------
if [ $BUILD_IMAGE -eq 1 ]; then
	"$HERE/build-image.sh" --dir "$IMG" >&2
	rc=$?
	[ $rc -eq 0 ] || exit $rc
elif ! "$HERE/build-image.sh" --dir "$IMG" --check >/dev/null; then
	echo "run-vm.sh: no up-to-date VM image in $IMG (run tests/vm/build-image.sh)" >&2
	exit 77
fi
command -v qemu-system-x86_64 >/dev/null ||
	{ echo "run-vm.sh: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 77; }

# --- scratch, job and output directories ---------------------------------------
WORK=$(mktemp -d "${BLKCACHE_VM_SCRATCH:-/var/tmp}/blkcache-vm-run.XXXXXX") || exit 2
JOB=$WORK/job
mkdir -p "$JOB"
if [ -z "$OUT" ]; then
	OUT=$(mktemp -d /var/tmp/blkcache-vm-out.XXXXXX) || exit 2
fi
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/console.log" "$OUT/dmesg.txt" "$OUT/guest.log" "$OUT/qemu.log"
CONSOLE=$OUT/console.log
QPID=""
TPID=""

cleanup() {
	[ -n "$QPID" ] && kill -KILL "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
	[ -n "$TPID" ] && kill "$TPID" 2>/dev/null && wait "$TPID" 2>/dev/null
	if [ $KEEP -eq 1 ]; then
		echo "run-vm: kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'echo "run-vm: interrupted" >&2; exit 130' INT TERM HUP

# --- disks --------------------------------------------------------------------
DRIVE_ARGS=()
DISK_NAMES=()
n=0
add_drive() {   # NAME FILE [extra -drive options]
	local name=$1 file=$2 extra=${3:-}
	[[ "$name" =~ ^[A-Za-z0-9_-]{1,20}$ ]] ||
		{ echo "run-vm.sh: bad disk name '$name' (want [A-Za-z0-9_-], at most 20 characters)" >&2; exit 2; }
	[ "$name" != vmroot ] || { echo "run-vm.sh: the disk name vmroot is taken by the root disk" >&2; exit 2; }
	local d
	for d in "${DISK_NAMES[@]}"; do
		[ "$d" != "$name" ] || { echo "run-vm.sh: disk name $name given twice" >&2; exit 2; }
	done
	DRIVE_ARGS+=(-drive "file=$file,format=raw,if=none,id=d$n,cache=none,aio=threads$extra"
		-device "virtio-blk-pci,drive=d$n,serial=$name")
	DISK_NAMES+=("$name")
	n=$((n + 1))
}
for spec in "${DISKS[@]}"; do
	name=${spec%%=*} size=${spec#*=}
	[ "$name" != "$spec" ] && [ -n "$size" ] || { echo "run-vm.sh: --disk wants NAME=SIZE (got '$spec')" >&2; exit 2; }
	truncate -s "$size" "$WORK/disk-$name.img" 2>/dev/null ||
		{ echo "run-vm.sh: cannot make a $size disk file for $name" >&2; exit 2; }
	add_drive "$name" "$WORK/disk-$name.img"
done
for spec in "${DISK_FILES[@]}"; do
	name=${spec%%=*} file=${spec#*=}
	extra=""
	case $file in *:ro) file=${file%:ro}; extra=",readonly=on";; esac
	[ -f "$file" ] || [ -b "$file" ] || { echo "run-vm.sh: --disk-file $name: no such file $file" >&2; exit 2; }
	add_drive "$name" "$(realpath "$file")" "$extra"
done

# An NVDIMM: the machine type, memory slots and a file-backed memory device
# (no label area: the guest makes a namespace with ndctl).
MEM_ARGS=(-m "$MEM")
if [ -n "$NVDIMM" ]; then
	[[ "$NVDIMM" =~ ^[1-9][0-9]*$ ]] || { echo "run-vm.sh: --nvdimm wants MiB (got '$NVDIMM')" >&2; exit 2; }
	truncate -s "${NVDIMM}M" "$WORK/nvdimm.img" ||
		{ echo "run-vm.sh: cannot make the NVDIMM file" >&2; exit 2; }
	MEM_ARGS=(-machine pc,nvdimm=on -m "$MEM,slots=2,maxmem=$((MEM + NVDIMM + 1024))M"
		-object "memory-backend-file,id=nvmem0,share=on,mem-path=$WORK/nvdimm.img,size=${NVDIMM}M"
		-device nvdimm,id=nvdimm0,memdev=nvmem0)
fi

# --- 9p shares: source (ro), build (rw), output (rw), extra ----------------------
declare -A SHARE_MODE=()
add_share() {   # PATH MODE
	local p
	p=$(realpath -e "$1" 2>/dev/null) || { echo "run-vm.sh: cannot share $1: no such directory" >&2; exit 2; }
	[ -d "$p" ] || { echo "run-vm.sh: cannot share $1: not a directory" >&2; exit 2; }
	[ "$p" != / ] || { echo "run-vm.sh: will not share /" >&2; exit 2; }
	# A path given twice is shared once, read-write if any asks for that.
	[ "${SHARE_MODE[$p]:-}" = rw ] || SHARE_MODE[$p]=$2
}
add_share "$SRC" ro
[ -d "$BUILD" ] && { BUILD=$(realpath "$BUILD"); add_share "$BUILD" rw; }
add_share "$OUT" rw
for s in "${EXTRA_SHARES[@]}"; do
	case $s in
	*:ro) add_share "${s%:ro}" ro;;
	*:rw) add_share "${s%:rw}" rw;;
	*) add_share "$s" rw;;
	esac
done
VIRTFS_ARGS=(-virtfs "local,path=$JOB,mount_tag=vmjob,security_model=none,multidevs=remap")
: >"$JOB/shares"
i=0
# Parents before children: sort by path length.
while IFS= read -r p; do
	mode=${SHARE_MODE[$p]}
	ro=""
	[ "$mode" = ro ] && ro=",readonly=on"
	VIRTFS_ARGS+=(-virtfs "local,path=$p,mount_tag=share$i,security_model=none,multidevs=remap$ro")
	printf 'share%d %s %s\n' "$i" "$p" "$mode" >>"$JOB/shares"
	i=$((i + 1))
done < <(for p in "${!SHARE_MODE[@]}"; do printf '%d %s\n' "${#p}" "$p"; done | sort -n | cut -d' ' -f2-)

# The guest script: in a share it runs in place, else from a copy in the job.
in_share=0
for p in "${!SHARE_MODE[@]}"; do
	[[ "$SCRIPT" == "$p"/* ]] && in_share=1
done
GSCRIPT=$SCRIPT
if [ $in_share -eq 0 ]; then
	cp "$SCRIPT" "$JOB/$(basename "$SCRIPT")"
	cp "$HERE/lib-guest.sh" "$JOB/lib-guest.sh"
	GSCRIPT=/vmjob/$(basename "$SCRIPT")
fi
cp "$HERE/guest-init.sh" "$JOB/guest-init.sh"

NONCE=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
{
	printf 'VM_NONCE=%q\n' "$NONCE"
	printf 'VM_SCRIPT=%q\n' "$GSCRIPT"
	printf 'VM_ARGS=('; printf '%q ' "$@"; printf ')\n'
	printf 'VM_DISKS=%q\n' "${DISK_NAMES[*]}"
	printf 'VM_MODULES=%q\n' "${MODULES[*]}"
	printf 'VM_OUT=%q\n' "$OUT"
	printf 'BLKCACHE=%q\n' "$BUILD/cli/blkcache"
	printf 'BLKCACHE_SRC=%q\n' "$SRC"
	printf 'BLKCACHE_BUILD=%q\n' "$BUILD"
	for e in "${ENVS[@]}"; do
		[[ "$e" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { echo "run-vm.sh: --env wants NAME=VALUE (got '$e')" >&2; exit 2; }
		printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
	done
} >"$JOB/env" || exit 2
[ -x "$BUILD/cli/blkcache" ] || say "note: $BUILD/cli/blkcache is not built (the guest's BLKCACHE points there)"

KVER=$(sed -n 's/^kernel=//p' "$IMG/stamp")
CMDLINE="console=ttyS0,115200 panic=-1 oops=panic loglevel=$LOGLEVEL mitigations=off"
CMDLINE="$CMDLINE edd=off random.trust_cpu=on vm.rootserial=vmroot rdinit=/init$APPEND"

# --- boot -----------------------------------------------------------------------
QEMU=(qemu-system-x86_64 -accel tcg -cpu max -smp "$SMP" "${MEM_ARGS[@]}"
	-nodefaults -nographic -no-reboot -nic none -monitor none
	-serial "file:$CONSOLE"
	-kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "$CMDLINE"
	-drive "file=$IMG/root.img,format=raw,if=none,id=root,snapshot=on"
	-device virtio-blk-pci,drive=root,serial=vmroot
	"${DRIVE_ARGS[@]}" "${VIRTFS_ARGS[@]}")
printf '%q ' "${QEMU[@]}" >"$OUT/qemu.cmdline"
echo >>"$OUT/qemu.cmdline"
say "kernel $KVER, $SMP vCPUs, $MEM MiB, disks: ${DISK_NAMES[*]:-none}, timeout ${TIMEOUT} s; console: $CONSOLE"
say "guest script: $GSCRIPT $*"
: >"$CONSOLE"
t0=$(date +%s.%N)
# The snapshot=on overlay of the root goes to TMPDIR: keep it in the scratch dir.
TMPDIR=$WORK "${QEMU[@]}" </dev/null >"$OUT/qemu.log" 2>&1 &
QPID=$!
if [ $QUIET -eq 0 ]; then
	# Without the firmware's terminal escapes (SeaBIOS clears the screen).
	tail -n +1 -F --pid="$QPID" "$CONSOLE" 2>/dev/null |
		sed -u -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' &
	TPID=$!
fi

deadline=$(( ${t0%.*} + TIMEOUT ))
timed_out=0
result_seen=""
qrc=""
while :; do
	sleep 0.5 &
	spid=$!
	done_pid=""
	wait -n -p done_pid "$QPID" "$spid"
	wrc=$?
	if [ "${done_pid:-}" = "$QPID" ]; then
		qrc=$wrc
		kill "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
		QPID=""
		break
	fi
	now=$(date +%s)
	if [ -z "$result_seen" ] && [ -f "$JOB/result" ]; then
		result_seen=$now
	fi
	# The guest has its result but qemu does not end (poweroff hung): 60 s grace.
	if [ -n "$result_seen" ] && [ $((now - result_seen)) -ge 60 ]; then
		say "guest finished but qemu did not exit within 60 s: killing it"
		break
	fi
	if [ -z "$result_seen" ] && [ "$now" -ge "$deadline" ]; then
		timed_out=1
		break
	fi
done
if [ -n "$QPID" ]; then
	kill -TERM "$QPID" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$QPID" 2>/dev/null || break
		[ "$(awk '{print $3}' "/proc/$QPID/stat" 2>/dev/null)" = Z ] && break
		sleep 0.2
	done
	kill -KILL "$QPID" 2>/dev/null
	wait "$QPID" 2>/dev/null
	QPID=""
fi
t1=$(date +%s.%N)
if [ -n "$TPID" ]; then
	# tail notices qemu's end within a second; bounded anyway.
	for ((i = 0; i < 50; i++)); do
		kill -0 "$TPID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$TPID" 2>/dev/null
	wait "$TPID" 2>/dev/null
	TPID=""
fi
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

show_tail() {
	echo "---- console log $CONSOLE (last ${1:-60} lines) ----"
	tail -n "${1:-60}" "$CONSOLE" | sed -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g'
	echo "---- end of console log ----"
	if [ -s "$OUT/qemu.log" ]; then
		echo "---- qemu's own output ($OUT/qemu.log) ----"
		tail -n 20 "$OUT/qemu.log"
	fi
}

# Kernel trouble worth a loud line even when the script passed.
kernel_problems() {
	{ sed 's/\r$//' "$CONSOLE"; cat "$OUT/dmesg.txt" 2>/dev/null; } |
		grep -aE 'Kernel panic|BUG:|Oops|WARNING: CPU|general protection fault|Call Trace|blocked for more than|BLKCACHE-VM-PANIC' |
		sort -u | head -20
}

rc=""
userspace_at="" script_s=""
if [ -f "$JOB/result" ]; then
	rc=$(sed -n 's/^rc=//p' "$JOB/result")
	userspace_at=$(sed -n 's/^userspace_at=//p' "$JOB/result")
	script_s=$(awk -F= '/^script_start=/ {a=$2} /^script_end=/ {b=$2} END {printf "%.1f", b - a}' "$JOB/result")
elif m=$(sed 's/\r$//' "$CONSOLE" | grep -a "^BLKCACHE-VM-RESULT $NONCE rc=" | tail -1) && [ -n "$m" ]; then
	rc=${m##*rc=}
fi

kp=$(kernel_problems)
if [ -n "$kp" ]; then
	echo "run-vm: the kernel reported problems (console / dmesg.txt):"
	echo "$kp" | sed 's/^/run-vm:   /'
fi

if [ $timed_out -eq 1 ]; then
	echo "run-vm: TIMEOUT: the guest did not finish within $TIMEOUT s; qemu killed"
	show_tail 60
	say "console log saved: $CONSOLE"
	exit 124
fi
if [ -z "$rc" ]; then
	if [ "$(wc -c <"$CONSOLE")" -eq 0 ] && [ -n "$qrc" ] && [ "$qrc" -ne 0 ]; then
		echo "run-vm: qemu failed to start (exit $qrc):"
		cat "$OUT/qemu.log"
		exit 126
	fi
	echo "run-vm: FAILED: the guest ended without a result after ${wall} s (kernel panic? init failure?)"
	show_tail 60
	say "console log saved: $CONSOLE"
	exit 125
fi
say "guest userspace at ${userspace_at:-?} s (kernel uptime), script ${script_s:-?} s, wall ${wall} s (qemu start to exit); exit status $rc"
say "console log saved: $CONSOLE"
exit "$rc"
