#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The kill -9 loop (test-crash.sh: fio writes with FLUSHes, 20 kills, every
# FLUSH-acknowledged block verified after each restart) over an origin of
# 2 shards (format --shards 2: make_images checks the format made them),
# served by one server: shard 0 on its loop, shard 1 on a thread, both
# recovering their rings in parallel after every kill.
BLKCACHE_FORMAT_EXTRA="--shards 2 --segment-size 512K --stripe 256K" \
	exec bash "$(dirname "$0")/test-crash.sh"
