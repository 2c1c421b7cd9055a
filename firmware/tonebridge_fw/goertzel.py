# A generic Goertzel filter bank over blocks of ADC samples (integer arithmetic, no allocation
# after construction). Used by the DTMF receiver (dtmf_rx.py) and by call-progress detection.
#
#   bank = Bank((697, 770, 1209), n=160, rate=8000)   # any frequencies, block size, rate
#   while count:
#       used = bank.feed(buf, start, count)   # buf: array('H') (or a memoryview of one) of
#       start += used                         # unsigned ADC codes (0 .. 2**bits - 1), e.g. a
#       count -= used                         # DMA ring; feed() stops at the end of a block
#       if bank.ready:                        # a block just completed:
#           bank.power[k]                     #   |X_k|**2 of the block (scaled, see below)
#           bank.total                        #   the block's AC energy in the same units
#           bank.probe(c)                     #   the power at any other frequency over the
#                                             #   same block (c = bank.coefficient(hz), once)
#
# Units: power[k] = |X_k|**2 / 4**pshift, X_k the block's DFT at freqs[k] of its samples minus
# the bias `mid`, shifted right by `shift` bits. A sine of amplitude A exactly on a bin over
# the whole block gives power[k] ~= total ~= (A N / 2)**2 / 4**pshift (A after the shift):
# `total` is what one bin would hold if all the block's energy were one tone on that bin, so
# power[k] / total is the fraction of the block's energy in bin k (up to ~1).
# amplitude(k) converts power[k] back to ADC counts (a float: per result, not per block).
#
# Arithmetic: Goertzel's recurrence s = x + (c s1 >> Q) - s2 with c = round(2 cos(w) 2**Q),
# Q = 11; |c| <= 2**12 and `shift` is chosen at construction so that the worst-case state
# (A + 1) N / sin(w) (A = the largest input after the shift, +1 for the floor shifts'
# rounding) stays below 2**18: so c s1 stays below 2**30 (a MicroPython small int; viper's
# 32-bit words never wrap) whatever the input. Integer arithmetic makes results bit-identical
# on CPython, MicroPython (any port) and the viper kernels (goertzel_viper.py, used where the
# port has a native emitter: rp2, esp32). The bias `mid` follows the block mean (DC tracking),
# so an ADC offset does not count as energy.
#
# The block's samples (after bias and shift) are kept in `x` (array('h'), 2 bytes a sample):
# feed() converts each sample once, then runs every bin over the new ones; probe() runs one
# more bin over a completed block (a receiver checks a candidate's neighbours that way without
# paying for them on every sample).
#
# No allocation after construction: nothing is created per sample (the portable loops' values
# are small ints for any input) or per block (the powers of any tone up to full scale are
# small ints; only an input built to drive every state to its bound would need more).

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from array import array
from math import cos, pi, sin, sqrt

QBITS = const(11)  # coefficient fraction bits
STATE_MAX = const(1 << 18)  # bound on |s| (worst case), so |c s1| < 2**30
BIAS = const(1 << 20)  # added to coefficients and states stored in st (> STATE_MAX)
SUM_BIAS = const(1 << 29)  # added to the running sum in st (|sum| < 2**28)

# status words (array('i') `st`, shared with goertzel_viper)
S_NB = const(0)  # number of bins
S_MID = const(1)  # bias subtracted from every sample
S_SHIFT = const(2)  # input shift
S_SUM = const(3)  # sum of (code - mid) over the block so far, + SUM_BIAS
S_ENERGY = const(4)  # sum of ((code - mid) >> shift)**2 over the block so far
S_END = const(5)  # bin1: end index into x
S_COEF = const(6)  # bin1: the coefficient + BIAS
S_S2 = const(7)  # bin1: s2 on return + BIAS
ST_LEN = const(8)
# Every signed value in st sits there with a bias that makes it positive: a viper ptr32 load
# then reads the same value on 32-bit boards and on 64-bit ports (whose ptr32 loads
# zero-extend).


def _prep(p, j, q, buf, x, st):
    """buf[p:q] -> x[j:]: (code - mid) >> shift; the block's running sum and energy in st.
    The same arithmetic as goertzel_viper.prep."""
    mid = st[S_MID]
    sh = st[S_SHIFT]
    t = st[S_SUM] - SUM_BIAS
    e = st[S_ENERGY]
    while p < q:
        v = buf[p] - mid
        t += v
        v >>= sh
        e += v * v
        x[j] = v
        j += 1
        p += 1
    st[S_SUM] = t + SUM_BIAS
    st[S_ENERGY] = e


def _bin1(s1, s2, i, x, st):
    """One bin's recurrence over x[i:st[S_END]] with coefficient st[S_COEF]; returns s1 and
    leaves s2 in st[S_S2]. The same arithmetic as goertzel_viper.bin1."""
    q = st[S_END]
    c = st[S_COEF] - BIAS
    while i < q:
        s0 = x[i] + ((c * s1) >> QBITS) - s2
        s2 = s1
        s1 = s0
        i += 1
    st[S_S2] = s2 + BIAS
    return s1


def _choose_kernel():
    try:
        from tonebridge_fw import goertzel_viper as fast

        if fast.selftest(_prep, _bin1):
            return fast
    except Exception:
        pass
    return None


class Bank:
    """Goertzel filters at `freqs` (Hz) over blocks of `n` samples at `rate` Hz, for unsigned
    `bits`-bit ADC codes biased at `mid` (default: mid-scale)."""

    def __init__(self, freqs, n, rate, bits=12, mid=None, probes=()):
        if not freqs:
            raise ValueError("a bank needs at least one frequency")
        if n < 8 or n > 4096:
            raise ValueError("block size must be 8..4096 samples")
        if bits < 8 or bits > 16:
            raise ValueError("ADC bits must be 8..16")
        self.freqs = tuple(freqs)
        self.n = n
        self.rate = rate
        self.bits = bits
        nb = len(self.freqs)
        self.coef = array("i", [0] * nb)  # round(2 cos(w) 2**QBITS)
        smin = 1.0
        for k in range(nb):
            self.coef[k] = self.coefficient(self.freqs[k])
        for f in tuple(self.freqs) + tuple(probes):
            self.coefficient(f)
            s = sin(2 * pi * f / rate)
            if s < smin:
                smin = s
        # input shift: the worst case |s| <= (A + 1) n / sin(w) (A: the largest |code - mid|
        # >> shift, below 2**bits whatever mid is; +1: the floor shifts' rounding) must stay
        # below STATE_MAX, for the bins and for every frequency probe() will be asked about
        amax = 1 << bits
        shift = 0
        while ((amax >> shift) + 1) * n > STATE_MAX * smin:
            shift += 1
            if shift > bits:
                raise ValueError("block too long for these frequencies")
        self.shift = shift
        self.pshift = 1  # powers from states >> 1 (a full-scale tone's power is a small int)
        self.s1 = array("i", [0] * nb)
        self.s2 = array("i", [0] * nb)
        self.power = array("i", [0] * nb)
        self.x = array("h", [0] * n)
        self.st = array("i", [0] * ST_LEN)
        self.st[S_NB] = nb
        self.mid = (1 << (bits - 1)) if mid is None else mid
        self.total = 0
        self.count = 0  # samples of the current block so far
        self.blocks = 0  # blocks completed
        self.ready = False  # the last feed() completed a block
        self.mean = 0  # the last block's mean offset from mid (ADC counts)
        self.track_dc = True
        self._fast = _KERNEL
        self._ctx = [None, None, None, self.st, None, self.x]
        self.reset()

    def coefficient(self, freq):
        """The bin coefficient for `freq` Hz (computed with floats: call once, keep it)."""
        if not 0 < freq < self.rate / 2:
            raise ValueError("frequency %s Hz outside 0..%s Hz" % (freq, self.rate / 2))
        return int(round(2 * cos(2 * pi * freq / self.rate) * (1 << QBITS)))

    def reset(self):
        """Start a new block (forget the current partial one)."""
        for k in range(len(self.s1)):
            self.s1[k] = 0
            self.s2[k] = 0
        self.st[S_SUM] = SUM_BIAS
        self.st[S_ENERGY] = 0
        self.count = 0
        self.ready = False

    def feed(self, buf, start, count):
        """Run the bank over buf[start:start+count] up to the end of the current block; return
        how many samples were used. When the block completed, ready is True and power/total
        hold its results (until the next block completes)."""
        self.ready = False
        j = self.count
        room = self.n - j
        if count > room:
            count = room
        if count <= 0:
            return 0
        st = self.st
        st[S_MID] = self.mid
        st[S_SHIFT] = self.shift
        st[S_END] = j + count
        fast = self._fast
        x = self.x
        s1 = self.s1
        s2 = self.s2
        coef = self.coef
        if fast is not None:
            ctx = self._ctx
            ctx[0] = buf
            fast.prep(start, j, start + count, ctx)
            ctx[0] = None
            bin1 = fast.bin1
            for k in range(len(coef)):
                st[6] = coef[k] + BIAS  # S_COEF
                s1[k] = bin1(s1[k], s2[k], j, ctx)
                s2[k] = st[7] - BIAS  # S_S2
        else:
            _prep(start, j, start + count, buf, x, st)
            for k in range(len(coef)):
                st[S_COEF] = coef[k] + BIAS
                s1[k] = _bin1(s1[k], s2[k], j, x, st)
                s2[k] = st[S_S2] - BIAS
        self.count = j + count
        if self.count >= self.n:
            self._finish()
        return count

    def _power(self, c, s1, s2):
        ps = self.pshift
        a = s1 >> ps
        b = s2 >> ps
        p = a * a + b * b - ((c * a) >> QBITS) * b
        return p if p > 0 else 0

    def _finish(self):
        # inlined _power (a method call per bin cost ~4x the arithmetic on an RP2040)
        s1 = self.s1
        s2 = self.s2
        coef = self.coef
        power = self.power
        ps = self.pshift
        for k in range(len(power)):
            a = s1[k] >> ps
            b = s2[k] >> ps
            p = a * a + b * b - ((coef[k] * a) >> QBITS) * b
            power[k] = p if p > 0 else 0
            s1[k] = 0
            s2[k] = 0
        n = self.n
        st = self.st
        # energy in bin units: E N / 2 / 4**pshift
        self.total = ((st[S_ENERGY] >> (2 * self.pshift)) * n) >> 1
        m = (st[S_SUM] - SUM_BIAS) // n
        self.mean = m
        if self.track_dc:
            hi = (1 << self.bits) - 1
            mid = self.mid + m
            self.mid = 0 if mid < 0 else (hi if mid > hi else mid)
        st[S_SUM] = SUM_BIAS
        st[S_ENERGY] = 0
        self.count = 0
        self.blocks += 1
        self.ready = True

    def probe(self, c):
        """The power (in power[] units) at coefficient `c` (coefficient(hz); a frequency given
        to the constructor in `probes` or `freqs`, so the shift bounds it) over the last
        completed block; valid until the next feed()."""
        st = self.st
        st[S_END] = self.n
        st[S_COEF] = c + BIAS
        if self._fast is not None:
            s1 = self._fast.bin1(0, 0, 0, self._ctx)
        else:
            s1 = _bin1(0, 0, 0, self.x, st)
        return self._power(c, s1, st[S_S2] - BIAS)

    def amplitude(self, k):
        """The amplitude in ADC counts of an on-bin sine over the whole block that would give
        power[k] (float; allocates: call per result, not per block)."""
        return self.amplitude_of(self.power[k])

    def amplitude_of(self, power):
        return 2.0 * sqrt(power) * (1 << (self.pshift + self.shift)) / self.n

    def index(self, freq):
        """The bin index of `freq` (as given to the constructor)."""
        return self.freqs.index(freq)


_KERNEL = _choose_kernel()
FAST = _KERNEL is not None
