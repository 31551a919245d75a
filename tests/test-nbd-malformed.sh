#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Malformed NBD traffic against the real server.  One well-behaved libnbd
# connection writes a known pattern; then, in parallel, many raw AF_UNIX
# connections send malformed or hostile traffic (truncated handshakes, bad
# magic, huge option lengths, unknown options, options after GO, requests
# out of range / misaligned / of unknown type, short WRITE payloads,
# garbage, random bytes, silent clients, ...).  Each case asserts what the
# NBD protocol (doc/proto.md) requires where it says something: an unknown
# option gets NBD_REP_ERR_UNSUP and the session continues, an unknown
# export name for NBD_OPT_EXPORT_NAME ends the session without a reply,
# out-of-range requests get EINVAL (ENOSPC for writes) and leave the
# connection usable, bad magic closes that connection only, and so on.
# Throughout, the well-behaved connection keeps reading back its pattern and
# writing+flushing more; afterwards the pattern is intact, the server still
# runs, nbd_protocol_errors counts exactly the connections closed for
# malformed data, and the server stops cleanly.
. "$(dirname "$0")/lib.sh"

REPEAT=${BLKCACHE_MALFORMED_REPEAT:-8}

make_images 256M 64M
start_server
pe_before=$(status_field nbd_protocol_errors)

rc=0
py - "$SOCK" "$REPEAT" "$T/malformed.out" <<'EOF' || rc=$?
import concurrent.futures as cf
import hashlib, random, socket, struct, sys, threading, time
import nbd

SOCK, REPEAT, OUT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
TMO = 120   # a bound for a server that never answers, not an expected speed

NBDMAGIC, IHAVEOPT = 0x4E42444D41474943, 0x49484156454F5054
REPMAGIC, REQMAGIC, SREPMAGIC = 0x0003E889045565A9, 0x25609513, 0x67446698
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_STRUCTURED = 6, 7, 8
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
ERR_UNSUP, ERR_INVALID, ERR_UNKNOWN = 2**31 + 1, 2**31 + 3, 2**31 + 6
INFO_EXPORT = 0
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 5, 6, 7
F_FUA, F_DF = 1, 4
EINVAL, ENOSPC = 22, 28
MB = 1 << 20

# ---- the well-behaved connection and its pattern ----
h = nbd.NBD()
h.connect_unix(SOCK)
SIZE = h.get_size()
MINB = h.get_block_size(nbd.SIZE_MINIMUM)
MAXB = h.get_block_size(nbd.SIZE_MAXIMUM)
PAT = b"".join(hashlib.sha256(b"blk%d" % k).digest() * 128 for k in range(1024))  # 4 MiB
h.pwrite(PAT, 0)
h.flush()
assert h.pread(len(PAT), 0) == PAT, "pattern does not read back"
print("export: %d bytes, block sizes %d..%d; 4 MiB pattern written" % (SIZE, MINB, MAXB))


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def info_payload(name=b"", reqs=(), name_len=None, count=None):
    nl = len(name) if name_len is None else name_len
    cnt = len(reqs) if count is None else count
    return (struct.pack(">I", nl) + name + struct.pack(">H", cnt)
            + b"".join(struct.pack(">H", r) for r in reqs))


_hlock = threading.Lock()
_hnext = [1000]


def new_handle():
    with _hlock:
        _hnext[0] += 1
        return struct.pack(">Q", _hnext[0])


class Raw:
    """A raw client connection; the greeting is read and checked."""

    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(TMO)
        self.s.connect(SOCK)
        g = self.recv(18)
        magic, opt, fl = struct.unpack(">QQH", g)
        check(magic == NBDMAGIC and opt == IHAVEOPT, "bad greeting %r" % g)
        check(fl & 1, "server does not offer fixed newstyle (flags %#x)" % fl)

    def send(self, b):
        self.s.sendall(b)

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            try:
                c = self.s.recv(n - len(buf))
            except ConnectionResetError:
                c = b""
            except socket.timeout:
                raise Fail("no answer within %d s (%d of %d bytes)" % (TMO, len(buf), n))
            if not c:
                raise Fail("connection closed after %d of %d expected bytes" % (len(buf), n))
            buf += c
        return buf

    def eof(self):
        """Wait for the server to close; return what it sent before."""
        data = b""
        try:
            while True:
                c = self.s.recv(65536)
                if not c:
                    return data
                data += c
        except ConnectionResetError:
            return data
        except socket.timeout:
            raise Fail("server did not close the connection within %d s" % TMO)

    def closed_silently(self, what):
        data = self.eof()
        check(data == b"", "%s: %d unexpected bytes before the close: %r" % (what, len(data), data[:40]))

    def close(self):
        self.s.close()

    def opt(self, o, payload=b"", length=None):
        n = len(payload) if length is None else length
        self.send(struct.pack(">QII", IHAVEOPT, o, n) + payload)

    def reply(self, o):
        magic, ro, typ, ln = struct.unpack(">QIII", self.recv(20))
        check(magic == REPMAGIC, "bad option reply magic %#x" % magic)
        check(ro == o, "option reply for %d, expected %d" % (ro, o))
        return typ, self.recv(ln)

    def final(self, o, want):
        """Read replies to option o up to the final one; it must be want."""
        infos = []
        while True:
            typ, data = self.reply(o)
            if typ in (REP_INFO, REP_SERVER):
                infos.append((typ, data))
                continue
            check(typ == want, "option %d: final reply %#x, expected %#x" % (o, typ, want))
            return infos

    def go(self, name=b""):
        self.opt(OPT_GO, info_payload(name))
        infos = self.final(OPT_GO, REP_ACK)
        exp = [d for t, d in infos if t == REP_INFO and struct.unpack(">H", d[:2])[0] == INFO_EXPORT]
        check(len(exp) == 1, "GO: %d NBD_INFO_EXPORT replies" % len(exp))
        size, fl = struct.unpack(">QH", exp[0][2:12])
        check(size == SIZE, "GO: size %d, libnbd saw %d" % (size, SIZE))

    def req(self, cmd, off, ln, fl=0, payload=b"", magic=REQMAGIC):
        hd = new_handle()
        self.send(struct.pack(">IHH8sQI", magic, fl, cmd, hd, off, ln) + payload)
        return hd

    def sreply(self, hd, err, data_len=0):
        magic, e, rh = struct.unpack(">II8s", self.recv(16))
        check(magic == SREPMAGIC, "bad simple reply magic %#x" % magic)
        check(rh == hd, "reply handle %r, expected %r" % (rh, hd))
        check(e == err, "error %d, expected %d" % (e, err))
        return self.recv(data_len) if e == 0 and data_len else b""

    def read_ok(self, off, ln):
        data = self.sreply(self.req(CMD_READ, off, ln), 0, ln)
        check(data == PAT[off:off + ln], "READ %d+%d: data differs from the pattern" % (off, ln))


def hs(flags=3):
    r = Raw()
    r.send(struct.pack(">I", flags))
    return r


def tx():
    r = hs()
    r.go()
    return r


# ---- the cases: each returns the protocol errors it causes ----
def c_silent_close():
    Raw().close()
    return 0


def c_silent_eof():
    r = Raw()
    r.s.shutdown(socket.SHUT_WR)
    r.closed_silently("EOF before the client flags")
    return 0


def c_truncated_flags():
    r = Raw()
    r.send(b"\0\0")
    r.s.shutdown(socket.SHUT_WR)
    r.closed_silently("truncated client flags")
    return 0


def c_bad_client_flags():
    r = hs(0xFFFFFFFC)
    r.closed_silently("unknown client flags")
    return 1


def c_bad_option_magic():
    r = hs()
    r.send(b"IHAVEOPX" + struct.pack(">II", OPT_GO, 0))
    r.closed_silently("bad option magic")
    return 1


def c_truncated_option():
    r = hs()
    r.send(struct.pack(">QII", IHAVEOPT, OPT_GO, 6)[:10])
    r.s.shutdown(socket.SHUT_WR)
    r.closed_silently("truncated option header")
    return 0


def c_huge_option_length():
    r = hs()
    r.opt(OPT_GO, length=0xFFFFFFFF)
    r.closed_silently("4 GiB option payload")
    return 1


def c_unknown_options():
    r = hs()
    r.opt(0xDEAD, b"12345")
    r.final(0xDEAD, ERR_UNSUP)
    r.opt(OPT_STRUCTURED)        # no structured replies: simple ones only
    r.final(OPT_STRUCTURED, ERR_UNSUP)
    r.opt(OPT_STARTTLS)          # no TLS
    r.final(OPT_STARTTLS, ERR_UNSUP)
    r.go()
    r.read_ok(8192, 4096)
    r.req(CMD_DISC, 0, 0)
    r.closed_silently("after NBD_CMD_DISC")
    return 0


def c_oversized_option_skipped():
    r = hs()
    r.opt(OPT_INFO, b"\0" * 100000)   # above what is read, below what closes
    r.final(OPT_INFO, ERR_INVALID)
    r.opt(OPT_LIST)
    infos = r.final(OPT_LIST, REP_ACK)
    check(len(infos) == 1 and infos[0][0] == REP_SERVER, "LIST: %r" % infos)
    r.opt(OPT_ABORT)
    r.final(OPT_ABORT, REP_ACK)
    r.closed_silently("after NBD_OPT_ABORT")
    return 0


def c_go_bad_payloads():
    r = hs()
    r.opt(OPT_GO, info_payload(b"", (1,), count=7))
    r.final(OPT_GO, ERR_INVALID)
    r.opt(OPT_GO, info_payload(b"", name_len=0xFFFFFFF0))
    r.final(OPT_GO, ERR_INVALID)
    r.opt(OPT_GO, b"\0\0")
    r.final(OPT_GO, ERR_INVALID)
    r.opt(OPT_GO, info_payload(b"no-such-export"))
    r.final(OPT_GO, ERR_UNKNOWN)
    r.opt(OPT_LIST, b"x")
    r.final(OPT_LIST, ERR_INVALID)
    r.go()
    r.read_ok(0, 4096)
    r.req(CMD_DISC, 0, 0)
    r.closed_silently("after NBD_CMD_DISC")
    return 0


def c_export_name_unknown():
    r = hs()
    r.opt(OPT_EXPORT_NAME, b"no-such-export")
    r.closed_silently("unknown export for NBD_OPT_EXPORT_NAME")
    return 0


def c_export_name_old_style():
    r = hs(1)  # fixed newstyle without NBD_FLAG_C_NO_ZEROES
    r.opt(OPT_EXPORT_NAME, b"")
    size, fl = struct.unpack(">QH", r.recv(10))
    check(size == SIZE and fl & 1, "EXPORT_NAME reply: size %d flags %#x" % (size, fl))
    check(r.recv(124) == b"\0" * 124, "EXPORT_NAME reply: no 124 zero bytes")
    r.read_ok(MB, 4096)
    r.req(CMD_DISC, 0, 0)
    r.closed_silently("after NBD_CMD_DISC")
    return 0


def c_option_after_go():
    r = tx()
    r.opt(OPT_GO, info_payload(b"blkcache"))   # IHAVEOPT where a request belongs
    r.closed_silently("option after GO")
    return 1


def c_bad_request_magic():
    r = tx()
    r.read_ok(4096, 512)
    r.req(CMD_READ, 0, 512, magic=0x25609514)
    r.closed_silently("bad request magic")
    return 1


def c_out_of_range():
    r = tx()
    r.sreply(r.req(CMD_READ, SIZE, 4096), EINVAL)
    r.sreply(r.req(CMD_READ, SIZE - 4096, 8192), EINVAL)
    r.sreply(r.req(CMD_READ, 2**64 - 4096, 8192), EINVAL)
    r.sreply(r.req(CMD_READ, 0, MAXB + MINB), EINVAL)
    r.sreply(r.req(CMD_WRITE, SIZE, 4096, payload=b"w" * 4096), ENOSPC)
    r.sreply(r.req(CMD_WRITE, SIZE - 512, 1024, payload=b"w" * 1024), ENOSPC)
    r.sreply(r.req(CMD_TRIM, SIZE, 4096), EINVAL)
    r.sreply(r.req(CMD_WRITE_ZEROES, SIZE - 4096, 8192), ENOSPC)
    r.read_ok(0, 65536)           # still in sync and usable
    r.req(CMD_DISC, 0, 0)
    r.closed_silently("after NBD_CMD_DISC")
    return 0


def c_bad_commands():
    r = tx()
    r.sreply(r.req(99, 0, 4096), EINVAL)
    r.sreply(r.req(CMD_CACHE, 0, 4096), EINVAL)          # not advertised
    r.sreply(r.req(CMD_BLOCK_STATUS, 0, 4096), EINVAL)   # no meta context
    r.sreply(r.req(CMD_READ, 0, 4096, fl=F_DF), EINVAL)  # DF not negotiated
    r.sreply(r.req(CMD_READ, 100, 4096), EINVAL)         # below the minimum block
    r.sreply(r.req(CMD_WRITE, 8192, 1000, payload=b"m" * 1000), EINVAL)
    r.read_ok(8192, 4096)         # the misaligned write changed nothing
    r.sreply(r.req(CMD_FLUSH, 12345, 678), 0)            # offset/length reserved
    r.req(CMD_DISC, 0, 0)
    r.closed_silently("after NBD_CMD_DISC")
    return 0


def c_zero_length():
    r = tx()
    # Unspecified by the protocol: any simple reply will do, but no data,
    # no change, and the connection stays usable.
    for cmd, extra in ((CMD_READ, b""), (CMD_WRITE, b""), (CMD_TRIM, b""), (CMD_WRITE_ZEROES, b"")):
        hd = r.req(cmd, 2 * MB, 0, payload=extra)
        magic, e, rh = struct.unpack(">II8s", r.recv(16))
        check(magic == SREPMAGIC and rh == hd and e in (0, EINVAL),
              "length-0 command %d: reply %#x error %d" % (cmd, magic, e))
    r.read_ok(2 * MB, 8192)
    r.req(CMD_DISC, 0, 0)
    r.closed_silently("after NBD_CMD_DISC")
    return 0


def c_short_write_close():
    r = tx()
    r.req(CMD_WRITE, 3 * MB, 65536, payload=b"\xee" * 1000)  # 1000 of 65536 bytes
    r.close()   # the write must never be applied (the pattern is checked later)
    return 0


def c_garbage_after_handshake():
    r = tx()
    rnd = random.Random(99)
    r.send(b"\xde\xad\xbe\xef" + bytes(rnd.randrange(256) for _ in range(300)))
    r.closed_silently("garbage after the handshake")
    return 1


def c_random_bytes():
    r = Raw()
    rnd = random.Random(4242)
    r.send(b"\xff" + bytes(rnd.randrange(256) for _ in range(500)))
    r.closed_silently("random bytes")
    return 1


def c_huge_write():
    r = tx()
    r.req(CMD_WRITE, 0, 0xFFFFFFFF, payload=b"z" * 64)
    r.closed_silently("4 GiB write")
    return 1


def c_pipelined_disc():
    r = tx()
    want = {}
    buf = b""
    for i in range(8):
        hd = new_handle()
        off = i * 65536
        want[hd] = off
        buf += struct.pack(">IHH8sQI", REQMAGIC, 0, CMD_READ, hd, off, 65536)
    buf += struct.pack(">IHH8sQI", REQMAGIC, 0, CMD_DISC, new_handle(), 0, 0)
    r.send(buf)
    # Everything sent before the disconnect is answered (in any order).
    while want:
        magic, e, rh = struct.unpack(">II8s", r.recv(16))
        check(magic == SREPMAGIC and e == 0 and rh in want, "pipelined reply %#x %d %r" % (magic, e, rh))
        off = want.pop(rh)
        check(r.recv(65536) == PAT[off:off + 65536], "pipelined READ %d: wrong data" % off)
    r.closed_silently("after NBD_CMD_DISC")
    return 0


def c_close_mid_reply():
    r = tx()
    for i in range(16):
        r.req(CMD_READ, i * MB % (4 * MB), MB)
    r.recv(100)   # part of the first reply
    r.close()
    return 0


def c_byte_at_a_time():
    r = Raw()
    msg = struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, OPT_GO, 6) + info_payload(b"")
    for b in msg:
        r.send(bytes([b]))
    r.final(OPT_GO, REP_ACK)
    hd = new_handle()
    for b in struct.pack(">IHH8sQI", REQMAGIC, 0, CMD_READ, hd, 12288, 4096):
        r.send(bytes([b]))
    check(r.sreply(hd, 0, 4096) == PAT[12288:16384], "byte-at-a-time READ: wrong data")
    r.close()
    return 0


def c_abort_with_payload():
    r = hs()
    r.opt(OPT_ABORT, b"ignored payload")
    r.final(OPT_ABORT, REP_ACK)
    r.closed_silently("after NBD_OPT_ABORT")
    return 0


CASES = [(n[2:], f) for n, f in sorted(globals().items()) if n.startswith("c_") and callable(f)]

# ---- run them in parallel while the good connection keeps working ----
results = []
rlock = threading.Lock()


def run(name, fn, i):
    try:
        pe = fn()
        with rlock:
            results.append((name, i, None, pe))
    except Exception as e:  # noqa: BLE001 - every failure is reported
        with rlock:
            results.append((name, i, "%s: %s" % (type(e).__name__, e), 0))


jobs = [(n, f, i) for i in range(REPEAT) for n, f in CASES]
random.Random(1).shuffle(jobs)
good_rounds = 0
model = {}
rnd = random.Random(7)
with cf.ThreadPoolExecutor(max_workers=16) as ex:
    futs = [ex.submit(run, *j) for j in jobs]
    while True:
        # The well-behaved connection: pattern reads, writes + flush elsewhere.
        off = rnd.randrange(0, len(PAT) - 65536, 4096)
        assert h.pread(65536, off) == PAT[off:off + 65536], "pattern changed at %d" % off
        woff = 16 * MB + rnd.randrange(0, 256) * 4096
        data = bytes([good_rounds & 0xFF]) * 4096
        h.pwrite(data, woff)
        h.flush()
        model[woff] = data
        assert h.pread(4096, woff) == data, "write+flush at %d does not read back" % woff
        good_rounds += 1
        # (the 20 ms only paces the good connection's rounds; it decides nothing)
        if cf.wait(futs, timeout=0.02).not_done == set() and good_rounds >= 3:
            break

assert h.pread(len(PAT), 0) == PAT, "the pattern changed"
for woff, data in model.items():
    assert h.pread(4096, woff) == data, "data written at %d changed" % woff
h.shutdown()

bad = [r for r in results if r[2]]
for name, i, err, pe in sorted(results):
    if err:
        print("FAILED %s (run %d): %s" % (name, i, err))
names = sorted({r[0] for r in results})
for n in names:
    print("case %-26s %d runs ok" % (n, sum(1 for r in results if r[0] == n and not r[2])))
expected = sum(r[3] for r in results if not r[2])
print("good connection: %d rounds of read/write/flush during the malformed traffic" % good_rounds)
with open(OUT, "w") as f:
    f.write("%d %d %d %d\n" % (len(names), len(results), len(bad), expected))
sys.exit(1 if bad or len(results) != len(jobs) else 0)
EOF
[ -s "$T/malformed.out" ] || fail "the malformed-traffic client did not finish (exit $rc)"
read -r ncases nconns nbad expected <"$T/malformed.out"
[ "$rc" -eq 0 ] && [ "$nbad" -eq 0 ] || fail "$nbad of $nconns malformed connections were handled wrongly (exit $rc)"
[ "$ncases" -ge 15 ] || fail "only $ncases malformed cases"
[ "$expected" -gt 0 ] || fail "no case expected a protocol error"

# The server survived all of it and counted the connections it closed for
# malformed data, exactly.
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died"
server_answers || fail "the server no longer answers"
pe_after=$(status_field nbd_protocol_errors)
[ $((pe_after - pe_before)) -eq "$expected" ] ||
	fail "nbd_protocol_errors went from $pe_before to $pe_after, expected +$expected"
logged=$(grep -c 'protocol error' "$SERVER_LOG" || true)
[ "$logged" -eq "$expected" ] || fail "the server log has $logged 'protocol error' lines, expected $expected"
qio "$T/after.out" "write -q -P 0x6b 32M 1M" "flush" "read -q -P 0x6b 32M 1M"
stop_server

echo "checked: $ncases malformed cases x $REPEAT ($nconns connections, $expected protocol errors counted), 0 failures"
