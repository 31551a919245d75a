#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The kill -9 loop (test-crash.sh: fio writes with fsync/FLUSH, every
# FLUSH-acknowledged block verified after each restart) with a Ceph RBD
# image as the origin (rbd:rbd/crash, librbd), 5 cycles, on a throwaway
# single-node cluster (tests/lib-ceph.sh).  Skips (77) only without the Ceph
# packages.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib-ceph.sh"
ceph_available || exit 77
D=$(mktemp -d /tmp/blkcache-rbd.XXXXXX)
trap 'ceph_stop; rm -rf "$D"' EXIT
ceph_start "$D/ceph" memstore 2G || exit 1
# Default features (exclusive-lock): every restart takes over the killed
# server's lock at once (lib/dev/rbd_lock.c), or these short cycles would
# wait for the dead client's watch to time out.
rbd create --size 512M rbd/crash || { echo "FAIL: rbd create failed"; exit 1; }
rc=0
BLKCACHE_ORIGIN="rbd:rbd/crash?conf=$CEPH_CONF" BLKCACHE_CRASH_CYCLES=5 \
	bash "$HERE/test-crash.sh" || rc=$?
exit $rc
