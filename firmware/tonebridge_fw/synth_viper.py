"""Viper kernels for synth.Renderer.fill(): the same samples as its portable loops, ~10x faster.

Only ports with a native emitter (rp2: armv6m/armv7m Thumb, esp32: xtensawin) compile this
file; elsewhere (WebAssembly port, CPython, the simulator) importing or self-testing it fails
and synth.py keeps its portable loops. synth.py imports it, runs selftest() once and sets
synth.FAST.

Every kernel takes (buf, tabs, st):
  buf   the output: a 16-bit array ('H' or 'h') or a memoryview of one; written through ptr16
        (a store keeps the low 16 bits, so signed values land as two's complement)
  tabs  (low-group sine table, high-group sine table, envelope table): array('h') each,
        read through ptr16 (zero-extended: table values are recovered as (u ^ 0x8000) - 0x8000)
  st    array('i') of _ST_LEN machine words, allocated once by the Renderer:
        [P] first index, [Q] end index (exclusive), [PH1]/[PH2] phase accumulators (29-bit,
        updated in place), [I1]/[I2] phase increments, [MID] idle value, [J] envelope index
        of the first sample, [DJ] 0 (rising edge: j counts up) or 1 (falling edge: down).
        Every slot holds a value in 0..2**31-1: a ptr32 load then means the same on 32-bit
        boards and on 64-bit ports (whose ptr32 loads zero-extend).
No Python object is touched inside a loop and nothing allocates.

Arithmetic (32-bit machine words; every intermediate stays below 2**31 in magnitude):
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

_P = 0
_Q = 1
_PH1 = 2
_PH2 = 3
_I1 = 4
_I2 = 5
_MID = 6
_J = 7
_DJ = 8
_ST_LEN = 9


@micropython.viper
def idle(buf, tabs, st):
    b = ptr16(buf)
    s = ptr32(st)
    p = s[0]
    q = s[1]
    mid = s[6]
    while p < q:
        b[p] = mid
        p += 1


@micropython.viper
def steady(buf, tabs, st):
    b = ptr16(buf)
    tl = ptr16(tabs[0])
    th = ptr16(tabs[1])
    s = ptr32(st)
    p = s[0]
    q = s[1]
    ph1 = s[2]
    ph2 = s[3]
    i1 = s[4]
    i2 = s[5]
    mid = s[6]
    while p < q:
        b[p] = mid + tl[ph1 >> 18] + th[ph2 >> 18]
        ph1 = (ph1 + i1) & 0x1FFFFFFF
        ph2 = (ph2 + i2) & 0x1FFFFFFF
        p += 1
    s[2] = ph1
    s[3] = ph2


@micropython.viper
def ramp(buf, tabs, st):
    b = ptr16(buf)
    tl = ptr16(tabs[0])
    th = ptr16(tabs[1])
    env = ptr16(tabs[2])
    s = ptr32(st)
    p = s[0]
    q = s[1]
    ph1 = s[2]
    ph2 = s[3]
    i1 = s[4]
    i2 = s[5]
    base = s[6] - 0x8000
    j = s[7]
    dj = 1 - 2 * s[8]
    while p < q:
        v = (tl[ph1 >> 18] ^ 0x8000) + (th[ph2 >> 18] ^ 0x8000) - 0x10000
        b[p] = base + ((v * env[j] + 0x20002000) >> 14)
        ph1 = (ph1 + i1) & 0x1FFFFFFF
        ph2 = (ph2 + i2) & 0x1FFFFFFF
        j += dj
        p += 1
    s[2] = ph1
    s[3] = ph2


def selftest():
    """True if the kernels run here and give the portable arithmetic's samples (negative
    table values, both edge directions, signed and unsigned idle levels). Raises (NameError,
    SyntaxError at import, ...) where viper is not really available."""
    from array import array

    tl = array("h", [-1200, 700, -16000, 3])
    th = array("h", [-2000, 15000, 1, -7])
    env = array("h", [0, 4096, 8192, 12288, 16384])
    tabs = (tl, th, env)
    inc = 1 << 18  # one table entry per sample
    st = array("i", [0] * _ST_LEN)
    for mid in (32768, 0):
        out = array("H" if mid else "h", [0] * 7)
        # steady: low table entries 3, 2, 1, 0 (an increment of -1 entry modulo 2**29),
        # high table entries 0, 1, 2, 3
        st[_P] = 1
        st[_Q] = 5
        st[_PH1] = 3 << 18
        st[_PH2] = 0
        st[_I1] = (1 << 29) - inc
        st[_I2] = inc
        st[_MID] = mid
        steady(out, tabs, st)
        want = [mid + tl[3 - k] + th[k] for k in range(4)]
        for k in range(4):
            if out[1 + k] != want[k]:
                return False
        if st[_PH1] != ((3 << 18) + 4 * st[_I1]) & 0x1FFFFFFF or st[_PH2] != 4 * inc:
            return False
        for dj in (1, -1):
            st[_P] = 0
            st[_Q] = 4
            st[_PH1] = 0
            st[_PH2] = 0
            st[_I1] = inc
            st[_I2] = inc
            st[_J] = 0 if dj > 0 else 4
            st[_DJ] = 0 if dj > 0 else 1
            ramp(out, tabs, st)
            for k in range(4):
                e = env[k if dj > 0 else 4 - k]
                if out[k] != mid + (((tl[k] + th[k]) * e + 8192) >> 14):
                    return False
        st[_P] = 2
        st[_Q] = 6
        idle(out, tabs, st)
        for k in range(2, 6):
            if out[k] != mid:
                return False
    return True
