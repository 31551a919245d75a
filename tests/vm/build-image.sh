#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Build the VM image the VM tests boot (tests/vm/README.md), once, into a
# cache directory, and reuse it afterwards.
#
# Usage: tests/vm/build-image.sh [--dir DIR] [--force] [--check]
#
#   --dir DIR   where the image lives (default: $BLKCACHE_VM_DIR, else
#               /var/tmp/blkcache-vm)
#   --force     rebuild everything even if the image is up to date
#   --check     only say whether the image is up to date (exit 0 if it is, 1
#               if not); builds nothing
#   -h, --help  this text
#
# What it makes in DIR (a stamp file DIR/stamp names the recipe version and
# the kernel; the build is skipped while it matches RECIPE below):
#   vmlinuz      the newest Debian 12 linux-image-6.12.*+deb12-amd64 kernel
#   initrd.img   a busybox initramfs (tests/vm/initramfs-init.sh as /init)
#                that loads virtio/ext4/9p modules and switch_roots into
#   root.img     ext4 (2 GiB sparse): debootstrap --variant=minbase bookworm
#                with the test tools and blkcache's run-time libraries, and
#                the kernel's modules in /lib/modules/VERSION
#   kernel/      the unpacked kernel package (config in kernel/boot/)
# The initramfs alone is rebuilt (seconds) when initramfs-init.sh changes.
#
# Needs root (debootstrap, device nodes in the initramfs) and the Debian
# mirror this machine's apt uses.  Host tools it lacks (debootstrap,
# busybox-static, qemu-system-x86, cpio, kmod, xz-utils, zstd) are installed
# with apt-get.  Exit status: 0 = the image is ready; 77 = it cannot be built
# here (not root, no mirror, a download failed: the message says which);
# anything else = a bug in this recipe.
# Environment: BLKCACHE_VM_MIRROR (Debian mirror for debootstrap, default:
# the one in /etc/apt), BLKCACHE_VM_KERNEL_PKG (exact kernel package name).
set -euo pipefail

RECIPE=blkcache-vm-2     # bump whenever what this script builds changes

usage() { sed -n '3,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; }

HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${BLKCACHE_VM_DIR:-/var/tmp/blkcache-vm}
FORCE=0
CHECK=0
while [ $# -gt 0 ]; do
	case $1 in
	--dir) [ $# -ge 2 ] || { echo "build-image.sh: --dir needs a value" >&2; exit 2; }
		DIR=$2; shift 2;;
	--dir=*) DIR=${1#*=}; shift;;
	--force) FORCE=1; shift;;
	--check) CHECK=1; shift;;
	-h | --help) usage; exit 0;;
	*) echo "build-image.sh: unknown argument $1" >&2; usage >&2; exit 2;;
	esac
done

say() { echo "build-image.sh: $*" >&2; }
# cannot WHY: the image cannot be built on this machine; exit 77.
cannot() {
	say "CANNOT BUILD THE VM IMAGE: $*"
	say "(the VM tests are skipped: exit 77)"
	exit 77
}
die() { say "ERROR: $*"; exit 1; }

# Packages of the guest's root, besides debootstrap's minbase.  blkcache's
# run-time libraries (ldd build/cli/blkcache: liburing2 libisal2 libnbd0 libpmem2
# libblkid1; libnbd0 brings gnutls and libxml2) and the sanitizer run-times
# for an ASan/UBSan build (libasan8 libubsan1).
GUEST_PKGS=(fio e2fsprogs xfsprogs nbd-client dmsetup bcache-tools ndctl util-linux
	kmod procps psmisc strace python3 liburing2 libnbd0 libisal2 libblkid1 libpmem2
	libasan8 libubsan1)
HOST_PKGS=(debootstrap busybox-static qemu-system-x86 cpio kmod xz-utils zstd e2fsprogs)
# Modules the initramfs loads (with their dependencies from modules.dep);
# those marked ? may be built in or absent.
INITRD_MODS=(virtio_pci virtio_blk ext4 9pnet_virtio 9p ?crc32c_generic ?crc32c_intel ?virtio_console)
ROOT_SIZE=2G

stamp_recipe() { [ -f "$DIR/stamp" ] && sed -n 's/^recipe=//p' "$DIR/stamp"; }
initrd_hash() { sha256sum "$HERE/initramfs-init.sh" | cut -c1-16; }
image_ok() {
	[ "$(stamp_recipe)" = "$RECIPE" ] && [ -f "$DIR/vmlinuz" ] && [ -f "$DIR/root.img" ] &&
		[ -f "$DIR/initrd.img" ] && [ -d "$DIR/kernel" ]
}
initrd_ok() { [ "$(cat "$DIR/initrd.stamp" 2>/dev/null)" = "$RECIPE $(initrd_hash)" ]; }

if [ $CHECK -eq 1 ]; then
	image_ok && initrd_ok && { echo "up to date: $(paste -sd' ' "$DIR/stamp")"; exit 0; }
	echo "not built (or out of date) in $DIR"
	exit 1
fi

[ "$(id -u)" = 0 ] || cannot "needs root (debootstrap, mknod); run as root"
mkdir -p "$DIR" || cannot "cannot create $DIR"
# One builder at a time (run-all.sh and bench/vm may start together).
exec 9>"$DIR/.lock"
flock -w 3600 9 || die "could not lock $DIR/.lock within an hour"

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
install_host_tools() {
	local p missing=()
	for p in "${HOST_PKGS[@]}"; do have_pkg "$p" || missing+=("$p"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing host tools: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$DIR/apt-host.log" 2>&1; then
		apt-get update -qq >>"$DIR/apt-host.log" 2>&1 || true
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$DIR/apt-host.log" 2>&1 ||
			{ tail -20 "$DIR/apt-host.log" >&2; cannot "apt-get install ${missing[*]} failed (log: $DIR/apt-host.log)"; }
	fi
}

# The bookworm mirror this machine's apt uses (one-line or deb822 sources).
host_mirror() {
	local f
	{
		[ -f /etc/apt/sources.list ] && sed -e 's/\[[^]]*\]//g' /etc/apt/sources.list |
			awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }'
		for f in /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] && sed -e 's/\[[^]]*\]//g' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }'
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk 'BEGIN { RS = "" }
			{
				types = ""; uris = ""; suites = ""
				n = split($0, l, "\n")
				for (i = 1; i <= n; i++) {
					if (l[i] ~ /^Types:/) types = l[i]
					if (l[i] ~ /^URIs:/) uris = l[i]
					if (l[i] ~ /^Suites:/) suites = l[i]
				}
				if (types ~ /[ \t]deb([ \t]|$)/ && suites ~ /[ \t]bookworm([ \t]|$)/) {
					split(uris, u, /[ \t]+/); print u[2]; exit
				}
			}' "$f"
		done
	} 2>/dev/null | head -1
}

newest_kernel_pkg() {
	apt-cache search --names-only '^linux-image-6\.12\.[0-9.]+\+deb12-amd64$' 2>/dev/null |
		awk '{ print $1 }' | sort -V | tail -1
}

# --- the kernel -------------------------------------------------------------
build_kernel() {
	local w=$1 pkg deb
	pkg=${BLKCACHE_VM_KERNEL_PKG:-$(newest_kernel_pkg)}
	if [ -z "$pkg" ]; then
		apt-get update -qq >"$w/apt-update.log" 2>&1 || true
		pkg=$(newest_kernel_pkg)
	fi
	[ -n "$pkg" ] || cannot "no linux-image-6.12.*+deb12-amd64 package known to apt (apt-get update failed?)"
	say "kernel package: $pkg"
	mkdir -p "$w/dl"
	chmod 0777 "$w/dl"   # apt-get download drops to the _apt user
	(cd "$w/dl" && apt-get download "$pkg") >"$w/download.log" 2>&1 ||
		{ tail -10 "$w/download.log" >&2; cannot "apt-get download $pkg failed (no network to the mirror?)"; }
	deb=$(ls "$w"/dl/*.deb)
	dpkg -x "$deb" "$w/kernel"
	rm -rf "$w/dl"
	KMODBASE=""
	for d in "$w/kernel/lib/modules" "$w/kernel/usr/lib/modules"; do
		[ -d "$d" ] && KMODBASE=${d%/lib/modules}
	done
	[ -n "$KMODBASE" ] || die "no lib/modules in $deb"
	KVER=$(ls "$KMODBASE/lib/modules" | head -1)
	[ -f "$w/kernel/boot/vmlinuz-$KVER" ] || die "no boot/vmlinuz-$KVER in $deb"
	# dpkg -x runs no postinst: make modules.dep here.
	depmod -b "$KMODBASE" "$KVER"
	[ -s "$KMODBASE/lib/modules/$KVER/modules.dep" ] || die "depmod made no modules.dep"
	echo "$pkg" >"$w/kernel/PACKAGE"
	echo "$KVER" >"$w/kernel/VERSION"
}

# --- the root filesystem ------------------------------------------------------
# umount_under DIR: unmount anything a failed debootstrap left mounted in DIR
# (before rm -rf walks into a proc or sys).
umount_under() {
	local m
	findmnt -rn -o TARGET 2>/dev/null | awk -v d="$1/" 'index($0, d) == 1' | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

build_root() {
	local w=$1 mirror include
	mirror=${BLKCACHE_VM_MIRROR:-$(host_mirror)}
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	include=$(IFS=,; echo "${GUEST_PKGS[*]}")
	say "debootstrap --variant=minbase bookworm from $mirror (log: $w/debootstrap.log)"
	if ! debootstrap --variant=minbase --include="$include" bookworm "$w/root" "$mirror" \
		>"$w/debootstrap.log" 2>&1; then
		tail -20 "$w/debootstrap.log" >&2
		umount_under "$w"
		cp "$w/debootstrap.log" "$DIR/debootstrap-failed.log" 2>/dev/null || true
		cannot "debootstrap failed (mirror $mirror unreachable?); log: $DIR/debootstrap-failed.log"
	fi
	local r=$w/root
	umount_under "$w"
	mkdir -p "$r/lib/modules" "$r/boot" "$r/vmjob"
	cp -a "$KMODBASE/lib/modules/$KVER" "$r/lib/modules/"
	cp -a "$w/kernel/boot/config-$KVER" "$w/kernel/boot/System.map-$KVER" "$r/boot/" 2>/dev/null || true
	echo blkcache-vm >"$r/etc/hostname"
	: >"$r/etc/fstab"
	ln -sfn ../proc/self/mounts "$r/etc/mtab"
	printf '127.0.0.1 localhost blkcache-vm\n' >"$r/etc/hosts"
	printf 'recipe=%s\nkernel=%s\n' "$RECIPE" "$KVER" >"$r/etc/blkcache-vm-release"
	# Nothing in the guest uses apt: leave out its caches.
	rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/var/log/*.log
	say "root: $(du -sh "$r" | cut -f1); making $ROOT_SIZE ext4 image"
	rm -f "$w/root.img"
	mkfs.ext4 -q -F -L blkcache-vm-root -d "$r" "$w/root.img" "$ROOT_SIZE" >"$w/mkfs.log" 2>&1 ||
		{ cat "$w/mkfs.log" >&2; die "mkfs.ext4 -d failed"; }
	rm -rf "$r"
}

# --- the initramfs --------------------------------------------------------------
# modules_for NAMES...: print the module names to load, dependencies first.
modules_for() {
	local moddir=$1 line f n d
	shift
	declare -gA MPATH=() MDEPS=() MSEEN=()
	MORDER=()
	while IFS= read -r line; do
		f=${line%%:*}
		n=${f##*/}; n=${n%%.ko*}; n=${n//-/_}
		MPATH[$n]=$f
		MDEPS[$n]=${line#*:}
	done <"$moddir/modules.dep"
	for n in "$@"; do
		local opt=0
		[ "${n:0:1}" = "?" ] && { opt=1; n=${n:1}; }
		n=${n//-/_}
		if [ -n "${MPATH[$n]:-}" ]; then
			mod_visit "$n"
		elif grep -qE "/${n//_/[-_]}\.ko" "$moddir/modules.builtin" 2>/dev/null; then
			say "initramfs: $n is built in"
		elif [ $opt -eq 0 ]; then
			die "module $n is neither in modules.dep nor built in"
		fi
	done
}
mod_visit() {
	local n=$1 d dn
	[ -n "${MSEEN[$n]:-}" ] && return 0
	MSEEN[$n]=1
	for d in ${MDEPS[$n]}; do
		dn=${d##*/}; dn=${dn%%.ko*}; dn=${dn//-/_}
		mod_visit "$dn"
	done
	MORDER+=("$n")
}

build_initrd() {
	local w=$1 kdir=$2 kver=$3 i n src
	local moddir=$kdir/lib/modules/$kver
	[ -d "$moddir" ] || moddir=$kdir/usr/lib/modules/$kver
	i=$w/initramfs
	rm -rf "$i"
	mkdir -p "$i"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,newroot,lib/modules}
	cp /bin/busybox "$i/bin/busybox"
	case "$(/bin/busybox 2>&1 || true)" in
	*BusyBox*) ;;
	*) die "/bin/busybox is not busybox";;
	esac
	ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is dynamically linked (want busybox-static)"
	cp "$HERE/initramfs-init.sh" "$i/init"
	chmod 0755 "$i/init"
	mknod -m 0600 "$i/dev/console" c 5 1
	mknod -m 0666 "$i/dev/null" c 1 3
	modules_for "$moddir" "${INITRD_MODS[@]}"
	: >"$i/modules.list"
	for n in "${MORDER[@]}"; do
		src=$moddir/${MPATH[$n]}
		case $src in
		*.ko.xz) xz -dc "$src" >"$i/lib/modules/$n.ko";;
		*.ko.zst) zstd -qdc "$src" >"$i/lib/modules/$n.ko";;
		*.ko.gz) gzip -dc "$src" >"$i/lib/modules/$n.ko";;
		*.ko) cp "$src" "$i/lib/modules/$n.ko";;
		*) die "unknown module file type: $src";;
		esac
		echo "$n" >>"$i/modules.list"
	done
	say "initramfs modules: ${MORDER[*]}"
	(cd "$i" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$w/initrd.img.new"
	mv "$w/initrd.img.new" "$w/initrd.img"
	rm -rf "$i"
}

# --- main -------------------------------------------------------------------------
if [ $FORCE -eq 0 ] && image_ok; then
	if initrd_ok; then
		echo "build-image.sh: image up to date in $DIR ($(paste -sd' ' "$DIR/stamp"))"
		exit 0
	fi
	install_host_tools
	say "initramfs-init.sh changed: rebuilding the initramfs only"
	build_initrd "$DIR" "$DIR/kernel" "$(cat "$DIR/kernel/VERSION")"
	echo "$RECIPE $(initrd_hash)" >"$DIR/initrd.stamp"
	echo "build-image.sh: initramfs rebuilt in $DIR"
	exit 0
fi

t0=$(date +%s)
install_host_tools
command -v qemu-system-x86_64 >/dev/null || cannot "qemu-system-x86_64 not found after installing qemu-system-x86"
W=$DIR/build.tmp
umount_under "$W"
rm -rf "$W"
mkdir -p "$W"
rm -f "$DIR/stamp" "$DIR/initrd.stamp"
build_kernel "$W"
build_root "$W"
build_initrd "$W" "$W/kernel" "$KVER"
cp "$W/kernel/boot/vmlinuz-$KVER" "$W/vmlinuz"
# Put it in place; the stamp last, so that an interrupted build is redone.
rm -rf "$DIR/kernel"
mv "$W/kernel" "$DIR/kernel"
mv "$W/vmlinuz" "$W/initrd.img" "$W/root.img" "$DIR/"
mv "$W"/*.log "$DIR/" 2>/dev/null || true
rm -rf "$W"
echo "$RECIPE $(initrd_hash)" >"$DIR/initrd.stamp"
printf 'recipe=%s\nkernel=%s\npackage=%s\nbuilt=%s\n' "$RECIPE" "$KVER" \
	"$(cat "$DIR/kernel/PACKAGE")" "$(date -u +%FT%TZ)" >"$DIR/stamp"
echo "build-image.sh: built $DIR (kernel $KVER) in $(( $(date +%s) - t0 )) s"
