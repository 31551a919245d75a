#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The origin-prefix test (test-origin-prefix.sh: kills during writeback;
# the origin image alone must be a prefix of the client's FLUSH history
# every time) over an origin of 2 shards (format --shards 2: make_images
# checks the format made them) -- the cross-shard writeback epoch gate
# keeps the origin a point-in-time image across shards.
BLKCACHE_FORMAT_EXTRA="--shards 2 --stripe 64K" exec bash "$(dirname "$0")/test-origin-prefix.sh"
