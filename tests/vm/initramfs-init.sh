#!/bin/busybox sh
# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=dash
# /init of the VM's initramfs (copied in by tests/vm/build-image.sh; the
# initramfs is rebuilt when this file changes).  It loads the modules in
# /modules.list, finds the root disk by its virtio serial (kernel parameter
# vm.rootserial=, default vmroot), mounts it, mounts tmpfs on /tmp and /run
# and the 9p shares that the job share (tag vmjob) lists, moves /proc, /sys
# and /dev over and switch_roots to /vmjob/guest-init.sh, which runs the test.
# Any failure powers the VM off with a line "BLKCACHE-VM-PANIC ..." so that
# the host fails the run at once instead of waiting for its timeout.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s     # needs /proc/self/exe
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

die() {
	echo "vm-initramfs: FATAL: $*"
	echo "BLKCACHE-VM-PANIC initramfs: $*"
	sync
	echo o >/proc/sysrq-trigger
	sleep 30
	exit 1     # PID 1 exiting panics the kernel; panic=-1 + -no-reboot end qemu
}

echo "vm-initramfs: started at $(cut -d' ' -f1 /proc/uptime) s (kernel uptime)"

rootserial=vmroot
msize=262144
for a in $(cat /proc/cmdline); do
	case $a in
	vm.rootserial=*) rootserial=${a#*=};;
	vm.msize=*) msize=${a#*=};;
	esac
done

for m in $(cat /modules.list); do
	insmod "/lib/modules/$m.ko" || die "insmod $m failed"
done

# by_serial SERIAL: the /dev/vdX whose virtio serial is SERIAL.
by_serial() {
	for d in /sys/block/vd*; do
		[ -r "$d/serial" ] || continue
		[ "$(cat "$d/serial")" = "$1" ] && { echo "/dev/${d##*/}"; return 0; }
	done
	return 1
}

# Virtio probing is asynchronous: wait (bounded, 60 s) for the root disk.
i=0
until root=$(by_serial "$rootserial") && [ -b "$root" ]; do
	i=$((i + 1))
	[ $i -le 600 ] || die "no virtio disk with serial '$rootserial' after 60 s ($(ls /sys/block | tr '\n' ' '))"
	sleep 0.1
done

mount -t ext4 -o rw,noatime "$root" /newroot || die "cannot mount $root (ext4) on /newroot"
mount -t tmpfs -o mode=1777,size=50% tmpfs /newroot/tmp || die "tmpfs /tmp"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || die "tmpfs /run"
mkdir -p /newroot/vmjob
p9="trans=virtio,version=9p2000.L,msize=$msize"
mount -t 9p -o "$p9" vmjob /newroot/vmjob || die "cannot mount the 9p job share (tag vmjob)"

# The job's shares: "TAG PATH ro|rw" per line, parents before children.
if [ -f /newroot/vmjob/shares ]; then
	while read -r tag path mode; do
		[ -n "$tag" ] || continue
		mkdir -p "/newroot$path" 2>/dev/null
		mount -t 9p -o "$p9,$mode" "$tag" "/newroot$path" ||
			die "cannot mount 9p share $tag on $path"
	done </newroot/vmjob/shares
fi

[ -f /newroot/vmjob/guest-init.sh ] || die "no guest-init.sh in the job share"
mount --move /proc /newroot/proc || die "move /proc"
mount --move /sys /newroot/sys || die "move /sys"
mount --move /dev /newroot/dev || die "move /dev"
exec switch_root /newroot /bin/bash /vmjob/guest-init.sh
die "switch_root failed"
