"""The shaped (PWM) duty path of synth.Renderer: its state between fills, its portable loop,
and the hand-over to its viper kernels (steady_ns / ramp_ns in synth_viper.py).

With Renderer(..., shaping=True) (unsigned PWM duty output, at most 10 bits) the tones are
computed with SHAPE_BITS (6) more bits than the output and quantised with second-order error feedback
(noise transfer (1 - z^-1)^2: quantisation noise pushed above the voice band, where the
reconstruction filter removes it), after a correction for regular-sampled symmetric PWM:
a pulse train whose low part (1 - d) T is centred in each period carries, besides the
duty sequence d, the term -(1/24) D2((1 - d)^3) (D2: second difference over periods;
pulse Fourier transform expanded in (w T)^2). Its quadratic part is what puts f1+f2, 2f
and f2-f1 products into the band (~-61 dB at 61 kHz); the renderer adds it back in
advance: d = x + D2(X^2) / 16384 counts (X = x - mid in counts), computed from the next
sample, which the generator therefore renders one sample ahead (the output timing is
unchanged). The linear part is a gain (1 - sin^2(pi f / fs) / 8) the caller's response
can include; the cubic part is below -80 dB and left out.

Shaper() holds X of the current output sample, s = X*X >> 10 of the previous and the current
sample, and the quantiser's last two residuals (all in 1/64 counts) from one fill() to the next;
reset() at a plan's start and in every silence (silence is exact: the shaper starts afresh at
the next tone). run() is the portable loop, fast() the viper kernels' (bit-identical). Nothing
here allocates.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


SHAPE_BITS = const(6)  # extra bits of the shaped path (gains are in 1/64 output counts)
_SHAPE_HALF = const(32)
_PHASE_MASK = const(0x1FFFFFFF)  # synth.PHASE_BITS
_SHIFT = const(17)  # synth.PHASE_BITS - synth.TABLE_BITS
_ENV_HALF = const(8192)
_SIN_ONE = const(16384)
_BIAS = const(0x10000)  # synth_viper.BIAS: the signed state words are stored biased


class Shaper:
    def __init__(self):
        self.xc = 0
        self.sp = 0
        self.sc = 0
        self.res = 0
        self.res2 = 0
        self.ph1 = 0  # the phases after run() (a returned tuple would allocate)
        self.ph2 = 0

    def reset(self):
        self.xc = 0
        self.sp = 0
        self.sc = 0
        self.res = 0
        self.res2 = 0

    def fast(self, kern, p, ph1, ph2, ctx, steady):
        """Samples p..st[Q]-1 by the viper kernels (ctx = [buf, sine, envelope, st] as
        synth_viper.py describes; st's other words set by the caller): returns ph1, ph2 in
        st[PH2]."""
        st = ctx[3]
        st[9] = self.xc + _BIAS  # [XC, SP, SC, R, R2]
        st[10] = self.sp
        st[11] = self.sc
        st[12] = self.res + _BIAS
        st[13] = self.res2 + _BIAS
        if steady:
            ph1 = kern.steady_ns(p, ph1, ph2, ctx)
        else:
            ph1 = kern.ramp_ns(p, ph1, ph2, ctx)
        self.xc = st[9] - _BIAS
        self.sp = st[10]
        self.sc = st[11]
        self.res = st[12] - _BIAS
        self.res2 = st[13] - _BIAS
        return ph1

    def run(self, buf, p, q, ph1, ph2, i1, i2, j, dj, steady, t, env, mid, g1, g2):
        """buf[p:q], the portable loop: the phases and envelope index j are those of the NEXT
        sample; X (1/64 counts) of sample k+1 gives the PWM correction of sample k, then
        second-order error feedback quantises it to the output's counts. t: the Q14 sine table
        + 2**14, env: the envelope (j += dj per sample unless steady), g1/g2: the tones' gains."""
        k0 = _ENV_HALF - _SIN_ONE * (g1 + g2)
        xc = self.xc
        sp = self.sp
        sc = self.sc
        r = self.res
        r2 = self.res2
        for i in range(p, q):
            xn = (t[ph1 >> _SHIFT] * g1 + t[ph2 >> _SHIFT] * g2 + k0) >> 14
            if not steady:
                xn = (xn * env[j] + _ENV_HALF) >> 14
                j += dj
            sn = (xn * xn) >> 10
            w = xc + ((sn - 2 * sc + sp + 512) >> 10) + 2 * r - r2
            y = (w + _SHAPE_HALF) >> SHAPE_BITS
            r2 = r
            r = w - (y << SHAPE_BITS)
            buf[i] = mid + y
            sp = sc
            sc = sn
            xc = xn
            ph1 = (ph1 + i1) & _PHASE_MASK
            ph2 = (ph2 + i2) & _PHASE_MASK
        self.xc = xc
        self.sp = sp
        self.sc = sc
        self.res = r
        self.res2 = r2
        self.ph1 = ph1
        self.ph2 = ph2
