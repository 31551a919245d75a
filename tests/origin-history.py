# SPDX-License-Identifier: BSD-3-Clause
"""Write history with FLUSH epochs, and check an image against it.

Used by tests/test-origin-prefix.sh.

  write URI SEED EPOCHS PER_EPOCH NBLOCKS [--stops E,E,...]
      For epoch e = 1..EPOCHS: write PER_EPOCH distinct random 4 KiB blocks
      (chosen by SEED among blocks 0..NBLOCKS-1) concurrently, wait for all,
      then FLUSH.  Every 512-byte sector of a block written in epoch e says
      (block, e, sector, SEED), so any block can be traced to the write that
      put it there.  With --stops, after each listed epoch it prints
      "epoch E" and goes on only when it reads "go" on standard input.

  check IMAGE SEED EPOCHS PER_EPOCH NBLOCKS [--final | --nbd]
      Read blocks 0..NBLOCKS-1 of IMAGE (the origin file itself, or with
      --nbd an NBD URI) and find every epoch E such that the image is a state
      a disk could be in after losing power during epoch E: each block holds
      its value after epochs 1..E-1, or a value written to it in epoch E.
      Prints the range of such E and fails if there is none, if a block
      holds garbage or data of another block, or (--final) if the image is
      not exactly the state after the whole history.
      The range is an interval: a block last written in epoch v before E
      and next written in epoch n allows v <= E <= n.
"""
import struct
import sys
import random

BS = 4096
SEC = 512
MAGIC = 0x5453494850434c42  # "BLCPHIST"
HDR = struct.Struct("<QQQQQ")


def history(seed, epochs, per, nblocks):
    rng = random.Random(seed)
    return [sorted(rng.sample(range(nblocks), per)) for _ in range(epochs)]


def block_data(seed, block, epoch):
    out = bytearray()
    for s in range(BS // SEC):
        head = HDR.pack(MAGIC, block, epoch, s, seed)
        fill = struct.pack("<QQ", block * 1000003 + epoch, s) * ((SEC - len(head)) // 16)
        out += head + fill + bytes(SEC - len(head) - len(fill))
    return bytes(out)


def parse_block(seed, block, data):
    """Epoch whose write this block holds: 0 for never written; raises on garbage."""
    if data == bytes(BS):
        return 0
    magic, b, e, s, sd = HDR.unpack_from(data, 0)
    if magic != MAGIC or sd != seed:
        raise ValueError("block %d holds garbage (no history header)" % block)
    if b != block:
        raise ValueError("block %d holds the data of block %d (epoch %d)" % (block, b, e))
    if data != block_data(seed, block, e):
        raise ValueError("block %d: epoch %d header but torn or mixed sectors" % (block, e))
    return e


def cmd_write(uri, seed, epochs, per, nblocks, stops=()):
    import nbd
    h = nbd.NBD()
    h.connect_uri(uri)
    if h.get_size() < nblocks * BS:
        sys.exit("export is smaller than %d blocks" % nblocks)
    for e, blocks in enumerate(history(seed, epochs, per, nblocks), start=1):
        cookies = []
        for b in blocks:
            buf = nbd.Buffer.from_bytearray(bytearray(block_data(seed, b, e)))
            cookies.append(h.aio_pwrite(buf, b * BS))
            # keep at most 32 in flight
            while h.aio_in_flight() >= 32:
                h.poll(-1)
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for c in cookies:
            h.aio_command_completed(c)  # raises on a write error
        h.flush()
        if e in stops:
            print("epoch %d" % e, flush=True)
            if sys.stdin.readline().strip() != "go":
                sys.exit("writer: told to stop after epoch %d" % e)
    h.shutdown()
    print("wrote %d epochs x %d blocks, FLUSH after each" % (epochs, per))


def read_image(path, nblocks, use_nbd):
    if use_nbd:
        import nbd
        h = nbd.NBD()
        h.connect_uri(path)
        data = h.pread(nblocks * BS, 0)
        h.shutdown()
        return data
    with open(path, "rb") as f:
        data = f.read(nblocks * BS)
    return data + bytes(nblocks * BS - len(data))


def cmd_check(path, seed, epochs, per, nblocks, final, use_nbd):
    hist = history(seed, epochs, per, nblocks)
    written = [[] for _ in range(nblocks)]  # epochs in which each block was written
    for e, blocks in enumerate(hist, start=1):
        for b in blocks:
            written[b].append(e)
    data = read_image(path, nblocks, use_nbd)
    lo, hi = 1, epochs
    worst = None
    old = new = 0
    for b in range(nblocks):
        v = parse_block(seed, b, data[b * BS:(b + 1) * BS])
        w = written[b]
        if v == 0:
            blo, bhi = 1, (w[0] if w else epochs)
        else:
            if v not in w:
                raise ValueError("block %d holds epoch %d, which never wrote it" % (b, v))
            i = w.index(v)
            blo, bhi = v, (w[i + 1] if i + 1 < len(w) else epochs)
        if final and (v != (w[-1] if w else 0)):
            raise ValueError("block %d holds epoch %d, want its last write (epoch %d)" %
                             (b, v, w[-1] if w else 0))
        if v and v == (w[-1] if w else 0):
            new += 1
        else:
            old += 1
        if blo > lo:
            lo = blo
            worst = (b, v, "lower")
        if bhi < hi:
            hi = bhi
            worst = (b, v, "upper")
    partial = ""
    if lo == hi:
        # How much of the one possible epoch is on the image?
        got = sum(1 for b in hist[lo - 1] if parse_block(seed, b, data[b * BS:(b + 1) * BS]) == lo)
        partial = "; epoch %d: %d of %d writes present" % (lo, got, len(hist[lo - 1]))
    print("epochs %d, blocks %d: image consistent with a power cut in epochs %d..%d "
          "(%d blocks at their final value, %d older%s)" % (epochs, nblocks, lo, hi, new, old,
                                                           partial))
    if lo > hi:
        raise ValueError("NOT a prefix of the write history: some block needs epoch >= %d, "
                         "another epoch <= %d (last bound from block %d holding epoch %d)" %
                         (lo, hi, worst[0], worst[1]))
    return lo, hi


def main(argv):
    if len(argv) < 7:
        sys.exit(__doc__)
    cmd, target = argv[1], argv[2]
    seed, epochs, per, nblocks = (int(x) for x in argv[3:7])
    if cmd == "write":
        stops = ()
        if len(argv) > 8 and argv[7] == "--stops":
            stops = {int(x) for x in argv[8].split(",")}
        cmd_write(target, seed, epochs, per, nblocks, stops)
        return 0
    if cmd == "check":
        try:
            cmd_check(target, seed, epochs, per, nblocks, "--final" in argv[7:], "--nbd" in argv[7:])
        except ValueError as err:
            print("VIOLATION: %s" % err)
            return 1
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
