#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# PID 1 of the test VM after the initramfs's switch_root (run-vm.sh copies it
# into the job share as /vmjob/guest-init.sh).  It finishes the guest's
# setup (devpts, /dev/shm, /dev/fd, PATH, /dev/disk/by-serial links and
# VM_DISK_<NAME> variables for the job's disks, the modules the job asks
# for), runs the job's script with the job's environment, and then writes
# the result to /vmjob/result and prints the marker line
#   BLKCACHE-VM-RESULT <nonce> rc=<status>
# on the console, and powers the VM off.  run-vm.sh reads the result.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8 SHELL=/bin/bash
JOB=/vmjob
t_init=$(cut -d' ' -f1 /proc/uptime)

poweroff_now() {
	sync
	# Read-only first, so that nothing reads the root disk while it goes away.
	mount -o remount,ro / 2>/dev/null
	echo o >/proc/sysrq-trigger 2>/dev/null
	# Not reached unless sysrq failed: exiting PID 1 panics the kernel, and
	# panic=-1 with qemu's -no-reboot ends the VM.
	sleep 30
	exit 1
}

# finish RC [NOTE]: record the result, print the marker, power off.
finish() {
	local rc=$1 note=${2:-}
	local now
	now=$(cut -d' ' -f1 /proc/uptime)
	[ -n "$note" ] && echo "guest-init: $note"
	dmesg >"${VM_OUT:-$JOB}/dmesg.txt" 2>/dev/null
	printf 'rc=%s\nuserspace_at=%s\nscript_start=%s\nscript_end=%s\n' \
		"$rc" "$t_init" "${t_start:-$now}" "$now" >"$JOB/result.tmp" &&
		mv "$JOB/result.tmp" "$JOB/result"
	sync
	echo "BLKCACHE-VM-RESULT ${VM_NONCE:-none} rc=$rc"
	poweroff_now
}

[ -f "$JOB/env" ] || finish 125 "no $JOB/env"
# shellcheck source=/dev/null
. "$JOB/env"

mkdir -p /dev/pts /dev/shm /dev/disk/by-serial
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /dev/shm 2>/dev/null
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
[ -e /dev/ptmx ] || ln -sfn pts/ptmx /dev/ptmx
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t configfs configfs /sys/kernel/config 2>/dev/null
hostname blkcache-vm 2>/dev/null
[ -n "${VM_LOGLEVEL:-}" ] && dmesg -n "$VM_LOGLEVEL" 2>/dev/null
ulimit -c 0

echo "guest-init: userspace at ${t_init} s (kernel uptime), kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"

# The job's disks: wait (bounded) for each serial, link /dev/disk/by-serial/NAME
# and export VM_DISK_<NAME> (upper case, - as _).
serial_dev() {
	local d
	for d in /sys/block/vd*; do
		[ -r "$d/serial" ] || continue
		[ "$(cat "$d/serial")" = "$1" ] && { echo "/dev/${d##*/}"; return 0; }
	done
	return 1
}
for name in ${VM_DISKS:-}; do
	dev=""
	for ((i = 0; i < 600; i++)); do
		dev=$(serial_dev "$name") && [ -b "$dev" ] && break
		dev=""
		sleep 0.1
	done
	[ -n "$dev" ] || finish 125 "disk with serial '$name' did not appear within 60 s"
	ln -sfn "$dev" "/dev/disk/by-serial/$name"
	var=VM_DISK_$(echo "$name" | tr 'a-z-' 'A-Z_')
	export "$var=$dev"
	echo "guest-init: disk $name = $dev ($(blockdev --getsize64 "$dev") bytes)"
done

for m in ${VM_MODULES:-}; do
	modprobe "$m" || finish 125 "modprobe $m failed"
done

export VM_OUT BLKCACHE BLKCACHE_SRC BLKCACHE_BUILD VM_NONCE VM_DISKS
cd /tmp || finish 125 "no /tmp"
[ -f "$VM_SCRIPT" ] || finish 125 "guest script $VM_SCRIPT not found in the guest"
echo "guest-init: running $VM_SCRIPT ${VM_ARGS[*]}"
t_start=$(cut -d' ' -f1 /proc/uptime)
# The script's output goes to the console (the host's console log) and to
# VM_OUT/guest.log.  setsid: the script leads its own session, so that
# whatever it leaves running can be told apart from this init.
setsid -w bash "$VM_SCRIPT" "${VM_ARGS[@]}" </dev/null 2>&1 | tee "$VM_OUT/guest.log"
rc=${PIPESTATUS[0]}
echo "guest-init: $VM_SCRIPT exited with status $rc after $(awk -v a="$t_start" '{printf "%.1f", $1 - a}' /proc/uptime) s"
finish "$rc"
