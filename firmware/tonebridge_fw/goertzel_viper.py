"""Viper kernels for goertzel.Bank: the same integers as goertzel.py's portable loops, natively.

Only ports with a native emitter (rp2: armv6m/armv7m Thumb, esp32: xtensawin) compile this
file; elsewhere (WebAssembly port, CPython, the simulator) importing it fails and goertzel.py
keeps its portable loops. goertzel.py imports it, runs selftest() once and sets goertzel.FAST.

  prep(p, j, q, ctx)          samples p..q-1 of ctx[0] (unsigned ADC codes) -> block samples
                              x[j..]: (code - mid) >> shift; and the block's running sum and
                              energy (goertzel._prep)
  bin1(s1, s2, i, ctx) -> s1  one bin's recurrence over x[i..st[END]-1] with coefficient
                              st[COEF]; s2 on return in st[S2] (goertzel._bin1)
  ctx  [buf, unused, unused, st, unused, x]: buf a 16-bit array (or memoryview) read through
       ptr16; x the bank's array('h') of block samples (ptr16: loads zero-extend, so values
       are sign-extended as (v ^ 0x8000) - 0x8000); st the bank's array('i') of status words
       (goertzel.S_*), read and written through ptr32, every signed value stored with a bias
       (goertzel.BIAS, SUM_BIAS) so that it is positive and a ptr32 load means the same on
       32-bit boards and on 64-bit ports.
viper keeps its first locals (the parameters) in registers: s1, s2 are those in bin1's loop.
No Python object is touched inside a loop and nothing allocates (s1 < 2**18 returns as a small
int).
"""

# ptr16/ptr32 are viper built-ins, known only inside @micropython.viper functions
# ruff: noqa: F821

import micropython

# goertzel.S_* word indices: 1 MID, 2 SHIFT, 3 SUM, 4 ENERGY, 5 END, 6 COEF, 7 S2
# goertzel.BIAS = 0x100000, goertzel.SUM_BIAS = 0x20000000


@micropython.viper
def bin1(s1: int, s2: int, i: int, ctx) -> int:
    st = ptr32(ctx[3])
    x = ptr16(ctx[5])
    q = st[5]
    c = st[6] - 0x100000
    while i < q:
        s0 = ((x[i] ^ 0x8000) - 0x8000) + ((c * s1) >> 11) - s2
        s2 = s1
        s1 = s0
        i += 1
    st[7] = s2 + 0x100000
    return s1


@micropython.viper
def prep(p: int, j: int, q: int, ctx):
    b = ptr16(ctx[0])
    x = ptr16(ctx[5])
    st = ptr32(ctx[3])
    t = st[3] - 0x20000000
    e = st[4]
    mid = st[1]
    sh = st[2]
    while p < q:
        v = b[p] - mid
        t += v
        v = v >> sh
        e += v * v
        x[j] = v
        j += 1
        p += 1
    st[3] = t + 0x20000000
    st[4] = e


def selftest(portable_prep, portable_bin1):
    """True if the kernels give the portable loops' exact results on a test vector (a
    triangle chirp over the whole 12-bit range, in two uneven pieces, three coefficients)."""
    from array import array

    n = 97
    buf = array("H", [0] * n)
    ph = 0
    for i in range(n):
        ph = (ph + 40 + 3 * i) & 1023
        v = ph * 8 if ph < 512 else (1023 - ph) * 8
        buf[i] = v if v < 4096 else 4095
    res = []
    for fast in (False, True):
        x = array("h", [0] * n)
        st = array("i", [3, 2048, 3, 0x20000000, 0, 0, 0, 0])
        ctx = [buf, None, None, st, None, x]
        out = []
        for p, q in ((0, 41), (41, n)):
            if fast:
                prep(p, p, q, ctx)
            else:
                portable_prep(p, p, q, buf, x, st)
            for c in (3900, 1200, -2500):
                st[5] = q
                st[6] = c + 0x100000
                if fast:
                    s1 = bin1(p, -p, p, ctx)
                else:
                    s1 = portable_bin1(p, -p, p, x, st)
                out.append((s1, st[7]))
        res.append((out, list(x), list(st)))
    return res[0] == res[1]
