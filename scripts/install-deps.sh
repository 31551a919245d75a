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
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "blkcache: missing packages:$missing" >&2
	echo "blkcache: run 'sudo apt-get install$missing' (or run make as root)" >&2
	exit 1
fi
echo "blkcache: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
