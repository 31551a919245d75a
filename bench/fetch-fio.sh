#!/bin/bash
# Fetch the Debian source of the installed fio version, configure it (with
# the NBD engine) and build it, so that bench/fio-engine compiles against the
# very headers of the fio that loads it.  Idempotent; prints the source dir.
# Usage: bench/fetch-fio.sh [DIR]   (default: $BLKCACHE_FIO_DIR or /var/tmp/blkcache-fio)
# Touches no system apt configuration: a private sources list and state dir.
set -euo pipefail
DIR=${1:-${BLKCACHE_FIO_DIR:-/var/tmp/blkcache-fio}}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
ver=$(dpkg-query -W -f='${Version}' fio 2>/dev/null || true)
if [ -z "$ver" ]; then
	echo "fetch-fio: the fio package is not installed (apt-get install fio)" >&2
	exit 1
fi
upver=${ver%-*}
upver=${upver#*:}
SRC=$DIR/fio-$upver
if [ -x "$SRC/fio" ] && [ -f "$SRC/config-host.h" ] && grep -q CONFIG_LIBNBD "$SRC/config-host.h"; then
	echo "$SRC"
	exit 0
fi
if [ ! -f "$SRC/configure" ]; then
	A=$DIR/apt
	mkdir -p "$A/lists/partial" "$A/archives/partial"
	suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	echo "deb-src http://deb.debian.org/debian $suite main" >"$A/sources.list"
	aptopt=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/nonexistent
		-o Dir::State::Lists="$A/lists" -o APT::Sandbox::User=root -q)
	echo "fetch-fio: downloading the source of fio $ver" >&2
	apt-get "${aptopt[@]}" update >&2
	(cd "$DIR" && apt-get "${aptopt[@]}" source --download-only "fio=$ver" >&2)
	tar -C "$DIR" -xzf "$DIR/fio_$upver.orig.tar.gz"
fi
echo "fetch-fio: building fio $upver in $SRC" >&2
(cd "$SRC" && ./configure --enable-libnbd >"$DIR/configure.log" 2>&1 &&
	make -j"$(nproc)" fio >"$DIR/make.log" 2>&1) || {
	echo "fetch-fio: building fio failed; see $DIR/configure.log and $DIR/make.log" >&2
	exit 1
}
grep -q CONFIG_LIBNBD "$SRC/config-host.h" || {
	echo "fetch-fio: fio configured without libnbd (install libnbd-dev)" >&2
	exit 1
}
echo "$SRC"
