"""Viper kernels for synth.Renderer.fill(): the same samples as its portable loops, ~10x faster.

Only ports with a native emitter (rp2: armv6m/armv7m Thumb, esp32: xtensawin) compile this
file; elsewhere (WebAssembly port, CPython, the simulator) importing or self-testing it fails
and synth.py keeps its portable loops. synth.py imports it, runs selftest() once and sets
synth.FAST.

Calling convention (viper keeps its first locals in registers, r4/r5 on armv6m; the first
locals are the parameters, so the hottest values are passed as annotated int parameters):
  idle(p, q, mid, buf)             buf[p:q] = mid
  steady(p, ph1, ph2, ctx) -> ph1  samples p..Q-1 of a steady two-tone; ph2 -> st[PH2]
  ramp(p, ph1, ph2, ctx) -> ph1    the same under the envelope, index J counting up or down
  p       first index into buf; ph1/ph2 the 29-bit phase accumulators (small ints)
  ctx     [buf, low-group table, high-group table, envelope table, st]: a list the Renderer
          allocates once (it sets ctx[0] = buf per fill() call)
  buf     a 16-bit array ('H' or 'h') or a memoryview of one; written through ptr16 (a store
          keeps the low 16 bits, so signed values land as two's complement)
  tables  array('h'), read through ptr16 (loads zero-extend: see the arithmetic below)
  st      array('i') of ST_LEN words: [Q] end index (exclusive), [I1]/[I2] phase increments,
          [MID] idle value, [J] envelope index of sample p, [DOWN] 0 (rising edge: J counts up)
          or 1 (falling edge: down), [PH2] ph2 on return. Every slot holds a value in
          0..2**31-1, so a ptr32 load means the same on 32-bit boards and on 64-bit ports
          (whose ptr32 loads zero-extend).
No Python object is touched inside a loop and nothing allocates (ph1 < 2**29 returns as a
small int).

Arithmetic (machine words; every intermediate stays below 2**31 in magnitude):
  steady  out = MID + tl[a] + th[b]    with the zero-extended loads: it differs from
              MID + tl_signed[a] + th_signed[b] by a multiple of 0x10000, which the
              16-bit store drops (the output fits 16 bits either way)
  ramp    v   = (tl[a] ^ 0x8000) + (th[b] ^ 0x8000) - 0x10000          (|v| <= 32767)
          out = (MID - 0x8000) + ((v * env[j] + 0x2000 + 0x20000000) >> 14)
              == MID + ((v * env[j] + 0x2000) >> 14)   (Python floor shift)
          The 2**29 bias keeps the shifted value positive, so the result does not depend on
          whether the emitter shifts arithmetically or logically (env <= 2**14, so
          |v * env| < 2**29).
"""

# ptr16/ptr32 are viper built-ins, known only inside @micropython.viper functions
# ruff: noqa: F821

import micropython

Q = 0
I1 = 1
I2 = 2
MID = 3
J = 4
DOWN = 5
PH2 = 6
ST_LEN = 7


@micropython.viper
def idle(p: int, q: int, mid: int, buf):
    b = ptr16(buf)
    while p < q:
        b[p] = mid
        p += 1


@micropython.viper
def steady(p: int, ph1: int, ph2: int, ctx) -> int:
    b = ptr16(ctx[0])
    tl = ptr16(ctx[1])
    th = ptr16(ctx[2])
    s = ptr32(ctx[4])
    q = s[0]
    i1 = s[1]
    i2 = s[2]
    mid = s[3]
    while p < q:
        b[p] = mid + tl[ph1 >> 18] + th[ph2 >> 18]
        ph1 = (ph1 + i1) & 0x1FFFFFFF
        ph2 = (ph2 + i2) & 0x1FFFFFFF
        p += 1
    s[6] = ph2
    return ph1


@micropython.viper
def ramp(p: int, ph1: int, ph2: int, ctx) -> int:
    b = ptr16(ctx[0])
    tl = ptr16(ctx[1])
    th = ptr16(ctx[2])
    env = ptr16(ctx[3])
    s = ptr32(ctx[4])
    q = s[0]
    i1 = s[1]
    i2 = s[2]
    base = s[3] - 0x8000
    j = s[4]
    dj = 1 - 2 * s[5]
    while p < q:
        v = (tl[ph1 >> 18] ^ 0x8000) + (th[ph2 >> 18] ^ 0x8000) - 0x10000
        b[p] = base + ((v * env[j] + 0x20002000) >> 14)
        ph1 = (ph1 + i1) & 0x1FFFFFFF
        ph2 = (ph2 + i2) & 0x1FFFFFFF
        j += dj
        p += 1
    s[6] = ph2
    return ph1


def selftest():
    """True if the kernels run here and give the portable arithmetic's samples (negative
    table values, both edge directions, signed and unsigned idle levels). Raises (NameError,
    SyntaxError at import, ...) where viper is not really available."""
    from array import array

    tl = array("h", [-1200, 700, -16000, 3])
    th = array("h", [-2000, 15000, 1, -7])
    env = array("h", [0, 4096, 8192, 12288, 16384])
    inc = 1 << 18  # one table entry per sample
    st = array("i", [0] * ST_LEN)
    for mid in (32768, 0):
        out = array("H" if mid else "h", [0] * 7)
        ctx = [out, tl, th, env, st]
        # steady: low table entries 3, 2, 1, 0 (an increment of -1 entry modulo 2**29),
        # high table entries 0, 1, 2, 3
        st[Q] = 5
        st[I1] = (1 << 29) - inc
        st[I2] = inc
        st[MID] = mid
        ph1 = steady(1, 3 << 18, 0, ctx)
        for k in range(4):
            if out[1 + k] != mid + tl[3 - k] + th[k]:
                return False
        if ph1 != ((3 << 18) + 4 * st[I1]) & 0x1FFFFFFF or st[PH2] != 4 * inc:
            return False
        for down in (0, 1):
            st[Q] = 4
            st[I1] = inc
            st[I2] = inc
            st[J] = 4 * down
            st[DOWN] = down
            if ramp(0, 0, 0, ctx) != 4 * inc or st[PH2] != 4 * inc:
                return False
            for k in range(4):
                e = env[4 - k if down else k]
                if out[k] != mid + (((tl[k] + th[k]) * e + 8192) >> 14):
                    return False
        idle(2, 6, mid, out)
        for k in range(2, 6):
            if out[k] != mid:
                return False
    return True
