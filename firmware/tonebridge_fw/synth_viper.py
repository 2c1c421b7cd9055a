"""Viper kernels for synth.Renderer.fill(): the same samples as its portable loops, ~10x faster.

Only ports with a native emitter (rp2: armv6m/armv7m Thumb, esp32: xtensawin) compile this
file; elsewhere (WebAssembly port, CPython, the simulator) importing or self-testing it fails
and synth.py keeps its portable loops. synth.py imports it, runs selftest() once and sets
synth.FAST.

Calling convention (viper keeps its first locals in registers, r4/r5 on armv6m; the first
locals are the parameters, so the hottest values are passed as annotated int parameters):
  idle(p, q, mid, buf)               buf[p:q] = mid
  steady(p, ph1, ph2, ctx) -> ph1    samples p..Q-1 of a steady two-tone; ph2 -> st[PH2]
  ramp(p, ph1, ph2, ctx) -> ph1      the same under the envelope, index J counting up or down
  steady_ns / ramp_ns(...) -> ph1    the shaped (PWM) path: phases and J are those of the
                                     NEXT sample; carries XC, SP, SC, R, R2 in st (synth.py)
  p       first index into buf; ph1/ph2 the 29-bit phase accumulators (small ints)
  ctx     [buf, sine table, envelope table, st]: a list the Renderer allocates once (it sets
          ctx[0] = buf per fill() call)
  buf     a 16-bit array ('H' or 'h') or a memoryview of one; written through ptr16 (a store
          keeps the low 16 bits, so signed values land as two's complement)
  tables  array('h'), read through ptr16 (loads zero-extend: sine values are sign-extended
          as (v ^ 0x8000) - 0x8000; envelope values are 0..16384)
  st      array('i') of ST_LEN words: [Q] end index (exclusive), [I1]/[I2] phase increments,
          [MID] idle value, [J] envelope index, [DOWN] 0 (rising edge: J counts up) or 1
          (falling edge: down), [PH2] ph2 on return, [G1]/[G2] the two tones' gains, [XC] X of
          the current sample + BIAS, [SP]/[SC] X*X >> 10 of the previous/current sample, [R]/[R2]
          the quantiser's last two residuals + BIAS. Every slot holds a value in 0..2**31-1 (hence the
          BIAS on the signed ones), so a ptr32 load means the same on 32-bit boards and on
          64-bit ports (whose ptr32 loads zero-extend).
No Python object is touched inside a loop and nothing allocates (ph1 < 2**29 returns as a
small int).

Arithmetic (machine words; every intermediate stays below 2**31 in magnitude; viper's int
`>>` is an arithmetic shift, as Python's floor shift in synth.py's portable loops; the
unix-port test checks it on a real native emitter):
  table t = round(2**14 sin) + 2**14 (0..2**15: no sign extension needed after a ptr16 load)
  x     = (t1 G1 + t2 G2 + 0x2000 - 2**14 (G1 + G2)) >> 14      (G1 + G2 <= 32766)
  ramp  x = (x * env[j] + 0x2000) >> 14                         (env <= 2**14)
  direct out = MID + x
  shaped sn = x_next * x_next >> 10;  w = XC + ((sn - 2 SC + SP + 512) >> 10) + 2 R - R2
         (second-order error feedback: noise transfer (1 - z^-1)^2)
         y  = (w + 32) >> 6;  R2 = R;  R = w - (y << 6);  out = MID + y
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
G1 = 7
G2 = 8
XC = 9
SP = 10
SC = 11
R = 12
R2 = 13
ST_LEN = 14
BIAS = 0x10000  # added to XC, R and R2 in st (all > -BIAS)


@micropython.viper
def idle(p: int, q: int, mid: int, buf):
    b = ptr16(buf)
    while p < q:
        b[p] = mid
        p += 1


@micropython.viper
def steady(p: int, ph1: int, ph2: int, ctx) -> int:
    b = ptr16(ctx[0])
    t = ptr16(ctx[1])
    s = ptr32(ctx[3])
    q = s[0]
    i1 = s[1]
    i2 = s[2]
    mid = s[3]
    g1 = s[7]
    g2 = s[8]
    k0 = 0x2000 - 0x4000 * (g1 + g2)
    m = 0x1FFFFFFF
    while p < q:
        b[p] = mid + ((t[ph1 >> 17] * g1 + t[ph2 >> 17] * g2 + k0) >> 14)
        ph1 = (ph1 + i1) & m
        ph2 = (ph2 + i2) & m
        p += 1
    s[6] = ph2
    return ph1


@micropython.viper
def ramp(p: int, ph1: int, ph2: int, ctx) -> int:
    b = ptr16(ctx[0])
    t = ptr16(ctx[1])
    env = ptr16(ctx[2])
    s = ptr32(ctx[3])
    q = s[0]
    i1 = s[1]
    i2 = s[2]
    mid = s[3]
    j = s[4]
    dj = 1 - 2 * s[5]
    g1 = s[7]
    g2 = s[8]
    k0 = 0x2000 - 0x4000 * (g1 + g2)
    m = 0x1FFFFFFF
    while p < q:
        x = (t[ph1 >> 17] * g1 + t[ph2 >> 17] * g2 + k0) >> 14
        b[p] = mid + ((x * env[j] + 0x2000) >> 14)
        ph1 = (ph1 + i1) & m
        ph2 = (ph2 + i2) & m
        j += dj
        p += 1
    s[6] = ph2
    return ph1


@micropython.viper
def steady_ns(p: int, ph1: int, ph2: int, ctx) -> int:
    b = ptr16(ctx[0])
    t = ptr16(ctx[1])
    s = ptr32(ctx[3])
    q = s[0]
    i1 = s[1]
    i2 = s[2]
    mid = s[3]
    g1 = s[7]
    g2 = s[8]
    k0 = 0x2000 - 0x4000 * (g1 + g2)
    m = 0x1FFFFFFF
    xc = s[9] - 0x10000
    sp = s[10]
    sc = s[11]
    r = s[12] - 0x10000
    r2 = s[13] - 0x10000
    while p < q:
        xn = (t[ph1 >> 17] * g1 + t[ph2 >> 17] * g2 + k0) >> 14
        sn = (xn * xn) >> 10
        w = xc + ((sn - sc - sc + sp + 512) >> 10) + r + r - r2
        y = (w + 32) >> 6
        r2 = r
        r = w - (y << 6)
        b[p] = mid + y
        sp = sc
        sc = sn
        xc = xn
        ph1 = (ph1 + i1) & m
        ph2 = (ph2 + i2) & m
        p += 1
    s[6] = ph2
    s[9] = xc + 0x10000
    s[10] = sp
    s[11] = sc
    s[12] = r + 0x10000
    s[13] = r2 + 0x10000
    return ph1


@micropython.viper
def ramp_ns(p: int, ph1: int, ph2: int, ctx) -> int:
    b = ptr16(ctx[0])
    t = ptr16(ctx[1])
    env = ptr16(ctx[2])
    s = ptr32(ctx[3])
    q = s[0]
    i1 = s[1]
    i2 = s[2]
    mid = s[3]
    j = s[4]
    dj = 1 - 2 * s[5]
    g1 = s[7]
    g2 = s[8]
    k0 = 0x2000 - 0x4000 * (g1 + g2)
    m = 0x1FFFFFFF
    xc = s[9] - 0x10000
    sp = s[10]
    sc = s[11]
    r = s[12] - 0x10000
    r2 = s[13] - 0x10000
    while p < q:
        xn = (t[ph1 >> 17] * g1 + t[ph2 >> 17] * g2 + k0) >> 14
        xn = (xn * env[j] + 0x2000) >> 14
        sn = (xn * xn) >> 10
        w = xc + ((sn - sc - sc + sp + 512) >> 10) + r + r - r2
        y = (w + 32) >> 6
        r2 = r
        r = w - (y << 6)
        b[p] = mid + y
        sp = sc
        sc = sn
        xc = xn
        ph1 = (ph1 + i1) & m
        ph2 = (ph2 + i2) & m
        j += dj
        p += 1
    s[6] = ph2
    s[9] = xc + 0x10000
    s[10] = sp
    s[11] = sc
    s[12] = r + 0x10000
    s[13] = r2 + 0x10000
    return ph1


def _x(t, a, g1, b, g2):
    return (t[a] * g1 + t[b] * g2 + 0x2000 - 0x4000 * (g1 + g2)) >> 14


def _as16(v, signed):
    """v as a 16-bit array item reads it back (the kernels store the low 16 bits)."""
    v &= 0xFFFF
    return v - 0x10000 if signed and v & 0x8000 else v


def selftest():
    """True if the kernels run here and give the portable arithmetic's samples (negative
    sine values, both edge directions, signed and unsigned idle levels, the shaped path's
    correction and residual). Raises (NameError, SyntaxError at import, ...) where viper is
    not really available."""
    from array import array

    t = array("H", [0, 27969, 16381, 32768])  # sines + 16384: -1, 0.707, -0.0002, 1
    env = array("h", [0, 4096, 8192, 12288, 16384])
    inc = 1 << 17  # one table entry per sample
    st = array("i", [0] * ST_LEN)
    g1, g2 = 9000, 23000
    for mid in (32768, 0, 512):
        out = array("H" if mid else "h", [0] * 7)
        ctx = [out, t, env, st]
        # steady: first tone's entries 3, 2, 1, 0 (an increment of -1 entry modulo 2**29),
        # second tone's 0, 1, 2, 3
        st[Q] = 5
        st[I1] = (1 << 29) - inc
        st[I2] = inc
        st[MID] = mid
        st[G1] = g1
        st[G2] = g2
        ph1 = steady(1, 3 << 17, 0, ctx)
        for k in range(4):
            if out[1 + k] != _as16(mid + _x(t, 3 - k, g1, k, g2), not mid):
                return False
        if ph1 != ((3 << 17) + 4 * st[I1]) & 0x1FFFFFFF or st[PH2] != 4 * inc:
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
                x = _x(t, k, g1, k, g2)
                if out[k] != _as16(mid + ((x * e + 0x2000) >> 14), not mid):
                    return False
            if mid != 512:
                continue
            # the shaped kernels against the same arithmetic, from a nonzero state
            for steady_ in (True, False):
                xc, sp, sc, r, r2 = -700, 5000, 300, -17, 25
                st[Q] = 4
                st[XC] = xc + BIAS
                st[SP] = sp
                st[SC] = sc
                st[R] = r + BIAS
                st[R2] = r2 + BIAS
                st[G1] = g1 >> 6
                st[G2] = g2 >> 6
                if steady_:
                    steady_ns(0, 0, 0, ctx)
                else:
                    ramp_ns(0, 0, 0, ctx)
                for k in range(4):
                    xn = _x(t, k, g1 >> 6, k, g2 >> 6)
                    if not steady_:
                        xn = (xn * env[4 - k if down else k] + 0x2000) >> 14
                    sn = (xn * xn) >> 10
                    w = xc + ((sn - 2 * sc + sp + 512) >> 10) + 2 * r - r2
                    y = (w + 32) >> 6
                    r2 = r
                    r = w - (y << 6)
                    if out[k] != _as16(mid + y, False):
                        return False
                    sp, sc, xc = sc, sn, xn
                if (st[XC], st[SP], st[SC], st[R], st[R2]) != (
                    xc + BIAS,
                    sp,
                    sc,
                    r + BIAS,
                    r2 + BIAS,
                ):
                    return False
            st[G1] = g1
            st[G2] = g2
        idle(2, 6, mid, out)
        for k in range(2, 6):
            if out[k] != mid:
                return False
    return True
