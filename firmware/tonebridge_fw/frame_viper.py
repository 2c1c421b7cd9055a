"""Viper kernels for codec.py: a frame's CRC and its body check, the two loops every frame the
board sends or receives goes through.

Only ports with a native emitter (rp2: armv6m; esp32: xtensawin) compile this file; elsewhere
(CPython and the host, the simulator, the WebAssembly port) importing it fails and codec keeps
its portable loops. codec runs selftest() once before it uses the kernels.

  crc16(data, crc)          CRC-16/CCITT-FALSE of data (bytes, bytearray, memoryview) from crc
  first_bad(data, p, q)     index of the first byte in data[p:q] that may not stand in a frame
                            body (a control character, non-ASCII, or a mark '>' '<' '!'), or -1
  last_mark(data, p, q)     index of the last mark ('>' '<' '!') in data[p:q], or -1
  find_byte(data, p, q, b)  index of the first byte b in data[p:q] (the decoder: a newline), or -1
On an RP2040 the portable loops cost ~4 ms for a 50-byte event frame (a HEARD), these a few
microseconds. Nothing allocates in the loops.
"""

# ptr8/ptr16 are viper built-ins, known only inside @micropython.viper functions
# ruff: noqa: F821

from array import array

import micropython

_T = array("H", [0] * 256)  # filled by init() from codec's table (one source of the table)


@micropython.viper
def _crc(p: int, q: int, c: int, buf, table) -> int:
    # p, q, c first: viper keeps its first locals (the parameters) in registers
    b = ptr8(buf)
    t = ptr16(table)
    while p < q:
        c = ((c << 8) & 0xFFFF) ^ t[((c >> 8) ^ b[p]) & 0xFF]
        p += 1
    return c


@micropython.viper
def _bad(p: int, q: int, buf) -> int:
    b = ptr8(buf)
    while p < q:
        o = b[p]
        if o < 0x20 or o > 0x7E or o == 62 or o == 60 or o == 33:
            return p
        p += 1
    return -1


@micropython.viper
def _last(p: int, q: int, buf) -> int:
    b = ptr8(buf)
    while q > p:
        q -= 1
        o = b[q]
        if o == 62 or o == 60 or o == 33:
            return q
    return -1


@micropython.viper
def _find(p: int, q: int, c: int, buf) -> int:
    b = ptr8(buf)
    while p < q:
        if b[p] == c:
            return p
        p += 1
    return -1


def crc16(data, crc=0xFFFF):
    return _crc(0, len(data), crc, data, _T)


def first_bad(data, p, q):
    return _bad(p, q, data)


def last_mark(data, p, q):
    return _last(p, q, data)


def find_byte(data, p, q, b):
    return _find(p, q, b, data)


def init(table):
    for i in range(256):
        _T[i] = table[i]


def selftest(crc_portable, bad_portable, last_portable, find_portable):
    """True if the kernels give the portable loops' results on this port (the CRC's check
    value, odd lengths, a continued CRC, a memoryview; every byte value in the body check, the
    mark search and the byte search; every range of a few samples, empty ones and ones at
    either end, in all three)."""
    samples = (b"123456789", b"", b"\x00\xff\x80\x7f", bytes(range(256)), b"!k HEARD 3 A ms=40 ")
    for s in samples:
        if crc16(s) != crc_portable(s) or crc16(s, 0x1D0F) != crc_portable(s, 0x1D0F):
            return False
    m = memoryview(b"xx123456789yy")[2:11]
    if crc16(m) != crc_portable(b"123456789") or crc16(m) != 0x29B1:
        return False
    for i in range(256):
        s = bytes((65, 66, i, 67))
        if first_bad(s, 1, 4) != bad_portable(s, 1, 4) or first_bad(s, 3, 4) != -1:
            return False
        if last_mark(s, 0, 3) != last_portable(s, 0, 3) or last_mark(s, 0, 2) != -1:
            return False
        if find_byte(s, 1, 4, i) != find_portable(s, 1, 4, i) or find_byte(s, 0, 4, 65) != 0:
            return False
    for s in (b"", b"<", b"x>1 A *", b">1 A!x<\n", b"\x00\xff\n>", m):
        n = len(s)
        for p in range(n + 1):
            for q in range(p, n + 1):
                if first_bad(s, p, q) != bad_portable(s, p, q):
                    return False
                if last_mark(s, p, q) != last_portable(s, p, q):
                    return False
                if find_byte(s, p, q, 10) != find_portable(s, p, q, 10):
                    return False
    return True
