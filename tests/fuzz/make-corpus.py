#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write the seed corpus of tests/fuzz/fuzz-nbd.c (reproducibly).

Each seed is what a client sends after the server's greeting: 32-bit client
flags, options (IHAVEOPT, option, length, payload), then requests (magic,
flags, type, handle, offset, length [+ WRITE payload]).  The export the
fuzzer serves is named "blkcache", 8 MiB, block sizes 512/4096/128 KiB.

Usage: make-corpus.py [OUTDIR]   (default: the corpus/ directory next to it)
"""
import os
import struct
import sys

IHAVEOPT = 0x49484156454F5054
REQUEST_MAGIC = 0x25609513

C_FIXED, C_NO_ZEROES = 1, 2
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_PEEK, OPT_STARTTLS = 1, 2, 3, 4, 5
OPT_INFO, OPT_GO, OPT_STRUCTURED, OPT_LIST_META, OPT_SET_META = 6, 7, 8, 9, 10
OPT_EXTENDED = 11
INFO_EXPORT, INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE = 0, 1, 2, 3
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 5, 6, 7
F_FUA, F_NO_HOLE, F_DF, F_REQ_ONE, F_FAST_ZERO = 1, 2, 4, 8, 16

NAME = b"blkcache"
SIZE = 8 * 1024 * 1024
MAXB = 128 * 1024


def flags(f=C_FIXED | C_NO_ZEROES):
    return struct.pack(">I", f)


def opt(o, payload=b"", length=None):
    n = len(payload) if length is None else length
    return struct.pack(">QII", IHAVEOPT, o, n) + payload


def info_payload(name=NAME, reqs=(), name_len=None, count=None):
    nl = len(name) if name_len is None else name_len
    cnt = len(reqs) if count is None else count
    return (struct.pack(">I", nl) + name + struct.pack(">H", cnt)
            + b"".join(struct.pack(">H", r) for r in reqs))


def go(name=NAME, reqs=(INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE)):
    return opt(OPT_GO, info_payload(name, reqs))


def req(cmd, off=0, length=0, fl=0, handle=0x1122334455667788, magic=REQUEST_MAGIC):
    return struct.pack(">IHHQQI", magic, fl, cmd, handle, off, length)


def write(off, data, fl=0, handle=7):
    return req(CMD_WRITE, off, len(data), fl, handle) + data


def disc():
    return req(CMD_DISC)


HS = flags() + go()  # the usual libnbd-style handshake

SEEDS = {
    # ---- handshakes ----
    "hs-go-read-disc": HS + req(CMD_READ, 0, 4096) + disc(),
    "hs-go-empty-name": flags() + go(b"", ()) + req(CMD_READ, 512, 512) + disc(),
    "hs-info-then-go": flags() + opt(OPT_INFO, info_payload(NAME, (INFO_BLOCK_SIZE,)))
    + go() + req(CMD_FLUSH) + disc(),
    "hs-list-then-go": flags() + opt(OPT_LIST) + go() + disc(),
    "hs-export-name": flags(C_FIXED) + opt(OPT_EXPORT_NAME, NAME) + req(CMD_READ, 0, 512) + disc(),
    "hs-export-name-nozeroes": flags() + opt(OPT_EXPORT_NAME, b"") + req(CMD_FLUSH) + disc(),
    "hs-export-name-unknown": flags() + opt(OPT_EXPORT_NAME, b"nosuch"),
    "hs-abort": flags() + opt(OPT_ABORT),
    "hs-abort-payload": flags() + opt(OPT_ABORT, b"ignored"),
    "hs-structured-reply": flags() + opt(OPT_STRUCTURED) + go() + disc(),
    "hs-unsupported-opts": flags() + opt(OPT_STARTTLS) + opt(OPT_PEEK)
    + opt(OPT_LIST_META, info_payload(b"base:allocation")) + opt(OPT_SET_META, b"x" * 8)
    + opt(OPT_EXTENDED) + opt(0xDEADBEEF, b"junk") + go() + disc(),
    "hs-go-unknown-name": flags() + go(b"other") + go() + disc(),
    "hs-go-bad-lengths": flags() + opt(OPT_GO, info_payload(NAME, (1,), count=5))
    + opt(OPT_GO, info_payload(NAME, (), name_len=0xFFFFFFF0)) + opt(OPT_GO, b"\0\0")
    + go() + disc(),
    "hs-list-with-payload": flags() + opt(OPT_LIST, b"x") + opt(OPT_LIST) + opt(OPT_ABORT),
    "hs-oversized-skipped": flags() + opt(OPT_INFO, length=100000) + go() + disc(),
    "hs-huge-option": flags() + opt(OPT_GO, length=0xFFFFFFFF),
    "hs-bad-client-flags": flags(0xFFFFFFFF) + go(),
    "hs-zero-client-flags": flags(0) + go() + disc(),
    "hs-bad-opt-magic": flags() + b"IHAVEOPX" + struct.pack(">II", OPT_GO, 0),
    "hs-truncated-opt": flags() + go()[:10],
    "hs-truncated-flags": b"\0\0",
    "hs-long-name": flags() + go(b"n" * 3900, ()) + go() + disc(),
    # ---- transmission ----
    "tx-all-commands": HS + req(CMD_READ, 4096, 8192) + write(8192, b"\x5a" * 1024)
    + req(CMD_FLUSH) + req(CMD_TRIM, 0, 2 * 65536 + 512)
    + req(CMD_WRITE_ZEROES, 65536, 200 * 1024, F_NO_HOLE | F_FUA)
    + write(0, b"\x11" * 512, F_FUA) + req(CMD_TRIM, 4096, 4096, F_FUA) + disc(),
    "tx-read-max": HS + req(CMD_READ, SIZE - MAXB, MAXB) + req(CMD_READ, 0, MAXB + 512) + disc(),
    "tx-out-of-range": HS + req(CMD_READ, SIZE, 512) + req(CMD_READ, SIZE - 512, 1024)
    + req(CMD_READ, 2**64 - 512, 1024) + write(SIZE, b"w" * 512) + req(CMD_TRIM, SIZE, 512)
    + req(CMD_WRITE_ZEROES, SIZE - 512, 4096) + disc(),
    "tx-zero-length": HS + req(CMD_READ, 0, 0) + req(CMD_WRITE, 512, 0) + req(CMD_TRIM, 0, 0)
    + req(CMD_WRITE_ZEROES, SIZE, 0) + disc(),
    "tx-misaligned": HS + req(CMD_READ, 100, 512) + req(CMD_READ, 0, 1000)
    + write(4096 + 3, b"m" * 512) + write(0, b"m" * 700) + disc(),
    "tx-bad-flags-and-types": HS + req(CMD_READ, 0, 512, F_DF) + req(CMD_WRITE_ZEROES, 0, 512, F_FAST_ZERO)
    + req(CMD_FLUSH, 0, 0, F_NO_HOLE) + req(CMD_CACHE, 0, 512) + req(CMD_BLOCK_STATUS, 0, 512, F_REQ_ONE)
    + req(99, 0, 512) + req(CMD_FLUSH, 12345, 678) + disc(),
    "tx-bad-magic": HS + req(CMD_READ, 0, 512, magic=0x25609514),
    "tx-option-after-go": HS + go(),
    "tx-short-write": HS + req(CMD_WRITE, 0, 4096) + b"\x77" * 100,
    "tx-huge-write": HS + req(CMD_WRITE, 0, 0xFFFFFFFF) + b"z" * 64,
    "tx-rejected-write-payload": HS + write(SIZE - 512, b"q" * 1024) + req(CMD_READ, 0, 512) + disc(),
    "tx-pipelined": HS + b"".join(req(CMD_READ, i * 4096, 4096, handle=i) for i in range(12))
    + b"".join(write(i * 512 * 17 + 11 * 512, b"e" * 512, handle=100 + i) for i in range(4)),
    "tx-garbage": HS + bytes((i * 37 + 11) & 0xFF for i in range(200)),
    "tx-no-disc-eof": HS + req(CMD_READ, 0, 512) + write(512, b"k" * 512),
    "tx-failing-offsets": HS + req(CMD_READ, 11 * 512, 512) + write(13 * 512, b"f" * 512)
    + req(CMD_TRIM, 15 * 512, 512, F_FUA) + req(CMD_WRITE_ZEROES, 11 * 512, 512) + disc(),
    "tx-after-disc": HS + disc() + req(CMD_READ, 0, 512) + b"trailing",
    "random-bytes": bytes((i * 151 + 7 * (i >> 3)) & 0xFF for i in range(300)),
    "empty": b"",
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        assert len(data) <= 4096, name
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), out))


if __name__ == "__main__":
    main()
