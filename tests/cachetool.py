#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Inspect and damage blkcache cache images for tests (see docs/format.md).

  cachetool.py info CACHE                 JSON: geometry and the log chain
                                          (format v3: of the origin named by
                                          $CACHETOOL_ORIGIN, default the first)
  cachetool.py live CACHE                 JSON: [offset, length] of the live
                                          metadata (both superblock copies and
                                          the headers of the chain segments)
  cachetool.py flip FILE OFFSET [XOR]     xor one byte (default 0x5a)
  cachetool.py put-u32 FILE OFFSET VALUE
  cachetool.py set-entry CACHE SEQ I FIELD VALUE
                                          change a field (block, data_crc,
                                          nblocks, mask, flags) of entry I of
                                          chain segment SEQ and reseal the
                                          header (valid CRC32C)
  cachetool.py set-hdr CACHE SEQ FIELD VALUE
                                          change flushed_seq, epoch or
                                          nr_entries of chain segment SEQ and
                                          reseal the header
  cachetool.py make-v1 CACHE              rewrite both superblock copies as
                                          on-disk format version 1 wrote them
                                          (no origin identity fields, no
                                          ORIGIN_LABEL flag); the origin must
                                          carry the label (--origin-label)
"""
import json
import os
import struct
import sys

B = 4096
_T = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _T.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

HDR_FIELDS = {"nr_entries": (12, "<I"), "flushed_seq": (32, "<Q"), "epoch": (48, "<Q")}
ENTRY_FIELDS = {"block": (0, "<Q"), "data_crc": (8, "<I"), "nblocks": (12, "<H"),
                "mask": (14, "<B"), "flags": (15, "<B")}


def rd(f, off, n):
    f.seek(off)
    return f.read(n)


def pick(f, offs, magic):
    """The valid copy (magic, CRC) with the higher generation at @offs."""
    best = None
    for copy, off in enumerate(offs):
        b = bytearray(rd(f, off, B))
        if b[:8] != magic:
            continue
        crc, = struct.unpack_from("<I", b, 12)
        b[12:16] = b"\0\0\0\0"
        if crc32c(bytes(b)) != crc:
            continue
        seq, = struct.unpack_from("<Q", b, 16)
        if best is None or seq > best[1]:
            best = (copy, seq, bytes(b), off)
    return best


def decode(best):
    copy, gen, b, off = best
    sb = {"copy": copy, "generation": gen, "copy_offset": off}
    sb["version"], = struct.unpack_from("<I", b, 8)
    sb["origin_size"], sb["export_size"], sb["cache_size"], sb["ring_offset"] = \
        struct.unpack_from("<QQQQ", b, 56)
    sb["segment_size"], sb["nr_segments"], sb["header_blocks"], sb["data_blocks"], sb["mode"] = \
        struct.unpack_from("<IIIII", b, 92)
    sb["written_back_seq"], sb["last_seq"], sb["format_nonce"], sb["flags"] = \
        struct.unpack_from("<QQQI", b, 112)
    sb["origin_slots"], sb["origin_id"], sb["table_offset"] = struct.unpack_from("<IIQ", b, 848)
    sb["name"] = b[864:928].split(b"\0")[0].decode()
    return sb


def superblock(f):
    """Version 1/2: the superblock.  Version 3: the record of the origin named
    by $CACHETOOL_ORIGIN (default: the first attached one), with
    "record_offsets" (both copies) and "table" (every record's name)."""
    best = pick(f, (0, B), b"BLKCACHE")
    if best is None:
        sys.exit("no valid superblock copy")
    sb = decode(best)
    if sb["version"] < 3:
        sb["record_offsets"] = [0, B]
        return sb
    want = os.environ.get("CACHETOOL_ORIGIN")
    recs = []
    for i in range(sb["origin_slots"]):
        offs = (sb["table_offset"] + 2 * i * B, sb["table_offset"] + (2 * i + 1) * B)
        r = pick(f, offs, b"BCORIGRC")
        if r is None:
            continue
        rec = decode(r)
        rec["record_offsets"] = list(offs)
        if not rec["flags"] & 4:
            recs.append(rec)
    for rec in recs:
        if want is None or rec["name"] == want:
            rec["table"] = [r["name"] for r in recs]
            return rec
    sys.exit("no origin record%s" % ("" if want is None else " named " + want))


def seg_off(sb, pos):
    return sb["ring_offset"] + pos * sb["segment_size"]


def chain(f, sb):
    """Segments written_back_seq+1.. while each position holds the expected
    sequence (magic, nonce and CRC checked)."""
    out = []
    n, hb = sb["nr_segments"], sb["header_blocks"]
    for seq in range(sb["written_back_seq"] + 1, sb["written_back_seq"] + n + 1):
        pos = seq % n
        off = seg_off(sb, pos)
        h = bytearray(rd(f, off, hb * B))
        if h[:8] != b"BCSEGHDR":
            break
        crc, nent, s, nonce, flushed = struct.unpack_from("<IIQQQ", h, 8)
        h[8:12] = b"\0\0\0\0"
        if s != seq or nonce != sb["format_nonce"] or crc32c(bytes(h)) != crc:
            break
        ents = []
        for i in range(nent):
            blk, dcrc, nb, mask, fl = struct.unpack_from("<QIHBB", h, 64 + 16 * i)
            ents.append({"block": blk, "data_crc": dcrc, "nblocks": nb, "mask": mask, "flags": fl,
                         "data_offset": off + (hb + i) * B})
        out.append({"seq": seq, "pos": pos, "offset": off, "flushed_seq": flushed, "entries": ents})
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd in ("flip", "put-u32"):
        with open(path, "r+b") as f:
            off = int(sys.argv[3], 0)
            if cmd == "flip":
                x = int(sys.argv[4], 0) if len(sys.argv) > 4 else 0x5A
                b = rd(f, off, 1)[0]
                f.seek(off)
                f.write(bytes([b ^ x]))
            else:
                f.seek(off)
                f.write(struct.pack("<I", int(sys.argv[4], 0)))
            f.flush()
            os.fsync(f.fileno())
        return
    if cmd == "make-v1":
        with open(path, "r+b") as f:
            for copy in (0, 1):
                b = bytearray(rd(f, copy * B, B))
                if b[:8] != b"BLKCACHE":
                    continue
                flags, = struct.unpack_from("<I", b, 136)
                if not flags & 8:
                    sys.exit("copy %d: the origin carries no label: not a v1 layout" % copy)
                struct.pack_into("<I", b, 8, 1)          # version
                struct.pack_into("<I", b, 136, flags & ~8)
                b[152:B] = bytes(B - 152)                # v2 fields, reserved
                b[12:16] = b"\0\0\0\0"
                struct.pack_into("<I", b, 12, crc32c(bytes(b)))
                f.seek(copy * B)
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        return
    with open(path, "r+b") as f:
        sb = superblock(f)
        segs = chain(f, sb)
        if cmd == "info":
            print(json.dumps({"sb": sb, "chain": segs}))
        elif cmd == "live":
            hsz = sb["header_blocks"] * B
            live = [[0, 2 * B]]
            if sb["version"] >= 3:
                live += [[o, B] for o in sb["record_offsets"]]
            print(json.dumps(live + [[s["offset"], hsz] for s in segs]))
        elif cmd in ("set-entry", "set-hdr"):
            if cmd == "set-entry":
                seq, i, field, value = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6], 0)
                fo, fmt = ENTRY_FIELDS[field]
                fo += 64 + 16 * i
            else:
                seq, field, value = int(sys.argv[3]), sys.argv[4], int(sys.argv[5], 0)
                fo, fmt = HDR_FIELDS[field]
            seg = [s for s in segs if s["seq"] == seq]
            if not seg:
                sys.exit("segment %d is not in the chain" % seq)
            hsz = sb["header_blocks"] * B
            h = bytearray(rd(f, seg[0]["offset"], hsz))
            struct.pack_into(fmt, h, fo, value)
            h[8:12] = b"\0\0\0\0"
            struct.pack_into("<I", h, 8, crc32c(bytes(h)))
            f.seek(seg[0]["offset"])
            f.write(h)
            f.flush()
            os.fsync(f.fileno())
        else:
            sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
