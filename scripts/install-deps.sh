#!/bin/sh
# Install the Debian 12 packages blkcache needs to build and test, if missing.
set -e
PKGS="gcc make pkg-config meson ninja-build liburing-dev libisal-dev libcmocka-dev libblkid-dev
      libnbd-dev libpmem2-dev libnbd-bin python3-libnbd nbdkit qemu-utils fio util-linux
      python3 clang libclang-rt-14-dev curl e2fsprogs xfsprogs fdisk stress-ng"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Ceph (rbd: devices and their tests: a throwaway cluster, tests/lib-ceph.sh):
# optional -- without them blkcache builds without rbd: and those tests skip.
CEPH_PKGS="librbd-dev ceph-mon ceph-osd ceph-common"
cmissing=""
for p in $CEPH_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || cmissing="$cmissing $p"
done
[ -z "$missing" ] && [ -z "$cmissing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	[ -z "$cmissing" ] || echo "blkcache: optional (Ceph RBD devices and tests):$cmissing" >&2
	[ -n "$missing" ] || exit 0
	echo "blkcache: missing packages:$missing" >&2
	echo "blkcache: run 'sudo apt-get install$missing' (or run make as root)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ -n "$missing" ]; then
	echo "blkcache: installing$missing"
	apt-get install -y -qq --no-install-recommends $missing
fi
if [ -n "$cmissing" ]; then
	echo "blkcache: installing$cmissing (optional: Ceph RBD devices and their tests)"
	apt-get install -y -qq --no-install-recommends $cmissing ||
		echo "blkcache: WARNING: could not install$cmissing: built without rbd:, its tests skip" >&2
fi
