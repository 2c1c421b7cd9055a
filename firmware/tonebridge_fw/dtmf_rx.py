# DTMF receiver: the decisions on top of a goertzel.Bank (sans-I/O: samples in, digits out).
#
#   rx = Receiver(rate=8000)              # 8 DTMF bins over 12.75 ms blocks (102 samples)
#   rx.feed(buf, start, count)            # unsigned ADC codes, any piece sizes
#   rx.key                                # the key heard now (None: none): delayed steering
#   for d in rx.take():                   # digits that ended since the last take():
#       d.key, d.on, d.off                #   key, first/last sample (counted from the start)
#       d.ms, d.lo_amp, d.hi_amp          #   duration (ms), tone amplitudes (ADC counts),
#       d.lo_hz, d.hi_hz, d.twist_db      #   frequencies (Hz), high minus low (dB)
#
# A block shows key K when (all integer comparisons, nothing allocated per block):
#   - the strongest row and column bins each reach `min_power` (an amplitude of `min_amp`
#     ADC counts over the whole block);
#   - each is `rel_db` above the other bins of its group (relative peak);
#   - twist: the column tone at most `twist_hi_db` above the row tone, the row tone at most
#     `twist_lo_db` above the column tone;
#   - the two tones hold at least `frac16`/16 of the block's energy (no speech, no noise);
#   - frequency: each tone is nearer its nominal frequency than the frequencies `side` (5 %)
#     above and below (probed over the same block): a tone within +-1.5 % passes, one
#     3.5 % off fails (Q.24 receivers: accept +-1.5 %, reject +-3.5 %).
# A digit starts after `hits` consecutive blocks show the same key (the guard time: 2 blocks,
# 25.5 ms at 8 kHz, so a 40 ms tone is always seen: it covers 2 whole blocks whatever their
# alignment; a block a tone covers less than ~70 % of does not count, so a 15 ms tone never
# is) and ends after `misses` consecutive blocks that do not (2: a 40 ms pause always holds
# 2 whole blocks).
# Its duration counts the blocks that showed it plus the fractions of the blocks either side
# the tone covered (from their power: a tone over a fraction f of a block has f**2 of the
# power); levels come from the strongest block, frequencies from it too: its powers at each
# tone's nominal frequency and 0.4 bin either side, fitted with a tone's response.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from array import array
from math import log, pi, sin, sqrt

from tonebridge_fw import keypad
from tonebridge_fw.goertzel import Bank

_FREQS = keypad.ROW_HZ + keypad.COL_HZ
SIDE = 0.05  # the frequency check's probes: 5 % either side of each tone


def _q4(db):
    """A power ratio of `db` decibels in sixteenths (an int for integer comparisons)."""
    return int(16 * 10 ** (db / 10) + 0.5)


def _above(a, b, q4):
    """a > b * q4 / 16 for powers below ~2**29, in small ints (no big-int allocation)."""
    return (a >> 6) * 16 > (b >> 6) * q4


class Digit:
    """One digit the receiver heard."""

    def __init__(self, key, on, off, rate, lo_amp, hi_amp, lo_hz, hi_hz):
        self.key = key
        self.on = on  # first sample of the tone (counted from the receiver's start)
        self.off = off  # the sample after its last
        self.ms = (off - on) * 1000 // rate
        self.lo_amp = lo_amp
        self.hi_amp = hi_amp
        self.lo_hz = lo_hz
        self.hi_hz = hi_hz
        self.twist_db = 20 * _log10(hi_amp / lo_amp) if lo_amp > 0 and hi_amp > 0 else 0.0

    def __repr__(self):
        return "Digit(%s %d ms %.1f/%.1f Hz)" % (self.key, self.ms, self.lo_hz, self.hi_hz)


def _log10(x):
    return log(x) / 2.302585092994046


def isqrt(v):
    """floor(sqrt(v)) for 0 <= v < 2**30 in small ints (Newton's method)."""
    if v <= 0:
        return 0
    x = v
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + v // x) >> 1
    return x


def _frac(e, peak, n):
    """Samples of an n-sample block a tone covered, from isqrt of its power there (e) and
    over a whole block (peak)."""
    if peak <= 0 or e <= 0:
        return 0
    if e >= peak:
        return n
    return e * n // peak


def _dirichlet(d, n, rate):
    """|X| of a unit tone d Hz from a bin over n samples, relative to on the bin."""
    a = pi * d / rate
    s = sin(a)
    if -1e-12 < s < 1e-12:
        return 1.0
    v = sin(n * a) / (n * s)
    return v if v >= 0 else -v


def estimate_hz(f0, d, powers, n, rate):
    """The frequency of one tone from its powers at f0 - d, f0 and f0 + d Hz over an n-sample
    block: the least-squares fit of a tone's Dirichlet response, by golden-section search
    within f0 +- 1.5 d."""
    amps = (sqrt(powers[0]), sqrt(powers[1]), sqrt(powers[2]))
    probes = (f0 - d, f0, f0 + d)

    def err(ft):
        r = [_dirichlet(p - ft, n, rate) for p in probes]
        rr = r[0] * r[0] + r[1] * r[1] + r[2] * r[2]
        a = (amps[0] * r[0] + amps[1] * r[1] + amps[2] * r[2]) / rr
        e = 0.0
        for i in range(3):
            v = amps[i] - a * r[i]
            e += v * v
        return e

    lo = f0 - 1.5 * d
    hi = f0 + 1.5 * d
    g = 0.6180339887498949
    x1 = hi - g * (hi - lo)
    x2 = lo + g * (hi - lo)
    e1 = err(x1)
    e2 = err(x2)
    for _ in range(14):  # the +-1.5 d window down to 0.1 % of it (0.1 Hz at 8 kHz, 102)
        if e1 < e2:
            hi = x2
            x2 = x1
            e2 = e1
            x1 = hi - g * (hi - lo)
            e1 = err(x1)
        else:
            lo = x1
            x1 = x2
            e1 = e2
            x2 = lo + g * (hi - lo)
            e2 = err(x2)
    return (lo + hi) / 2


class Receiver:
    def __init__(
        self,
        rate=8000,
        n=None,
        bits=12,
        min_amp=12,
        rel_db=8.0,
        twist_hi_db=8.0,
        twist_lo_db=8.0,
        frac16=11,
        hits=2,
        misses=2,
        measure_hz=False,
    ):
        if n is None:
            n = (rate * 51 + 2000) // 4000  # 12.75 ms: 102 samples at 8 kHz
        # the frequency check's probes (+-5 %) and the frequency measurement's (+-0.4 bin)
        self.est_hz = 0.4 * rate / n
        side = []
        est = []
        for f in _FREQS:
            side.append(f * (1 - SIDE))
            side.append(f * (1 + SIDE))
            est.append(f - self.est_hz)
            est.append(f + self.est_hz)
        self.bank = Bank(_FREQS, n, rate, bits, probes=side + est)
        b = self.bank
        self.side = array("i", [b.coefficient(f) for f in side])
        self.est = array("i", [b.coefficient(f) for f in est])
        self.rate = rate
        self.n = n
        # min_amp ADC counts over a whole block, in power units
        a = (min_amp >> b.shift) * n // 2
        self.min_power = (a * a) >> (2 * b.pshift)
        self.rel = _q4(rel_db)
        self.tw_hi = _q4(twist_hi_db)
        self.tw_lo = _q4(twist_lo_db)
        self.frac16 = frac16
        self.hits = hits
        self.misses = misses
        # frequencies of each digit (the self-test): a fit in floats at the digit's end, ~1e6
        # cycles on an RP2040, so off while the board verifies sends (it would delay the
        # player's next buffer); lo_hz/hi_hz are then 0.0
        self.measure_hz = measure_hz
        self.key = None  # the key of the digit being heard (after the guard time)
        self.samples = 0  # samples fed so far
        self._digits = []
        self._blk = 0  # blocks completed since _base
        self._base = 0  # the sample the first block started at
        self._prevp = array("i", [0] * 8)  # the last block's powers
        self._probe = array("i", [0] * 4)  # this block's probes: row -5 %, +5 %, col -5 %, +5 %
        # the strongest block: row, col power, row -+0.4 bin, col -+0.4 bin
        self._best = array("i", [0] * 6)
        self._cand = -1  # key index the last blocks showed (no digit yet)
        self._run = 0  # how many consecutive blocks showed it
        self._first = 0  # block number of the candidate's/digit's first block
        self._cur = -1  # key index of the digit being heard
        self._miss = 0
        self._e0 = 0  # isqrt(pair power) of the block before the first that showed the key
        self._e1 = 0  # ... of the first block that showed it
        self._e2 = 0  # ... of the last block that showed it
        self._post = 0  # ... of the block after that

    # ---- input ---------------------------------------------------------------------------

    def feed(self, buf, start, count):
        """Run the receiver over buf[start:start+count] (unsigned ADC codes)."""
        bank = self.bank
        self.samples += count
        while count > 0:
            used = bank.feed(buf, start, count)
            start += used
            count -= used
            if bank.ready:
                self._block()

    def reset(self):
        """Forget any digit in progress (digits already ended stay for take())."""
        self.bank.reset()
        self._base = self.samples
        self._blk = 0
        self._cand = -1
        self._run = 0
        self._miss = 0
        self._cur = -1
        self.key = None

    def take(self):
        """Digits that ended since the last call (a list; none: the same empty tuple)."""
        if not self._digits:
            return ()
        d = self._digits
        self._digits = []
        return d

    # ---- decisions -------------------------------------------------------------------------

    def _show(self):
        """The key index (0..15) this block shows, or -1."""
        p = self.bank.power
        r = 0
        for k in (1, 2, 3):
            if p[k] > p[r]:
                r = k
        c = 4
        for k in (5, 6, 7):
            if p[k] > p[c]:
                c = k
        pr = p[r]
        pc = p[c]
        if pr < self.min_power or pc < self.min_power:
            return -1
        rel = self.rel
        for k in range(8):
            if k != r and k != c:
                if not _above(pr if k < 4 else pc, p[k], rel):
                    return -1
        if _above(pc, pr, self.tw_hi) or _above(pr, pc, self.tw_lo):
            return -1
        if ((pr >> 4) + (pc >> 4)) * 16 < (self.bank.total >> 4) * self.frac16:
            return -1
        # frequency: nearer nominal than +-5 % (probed over the same block)
        bank = self.bank
        side = self.side
        q = self._probe
        q[0] = bank.probe(side[2 * r])
        q[1] = bank.probe(side[2 * r + 1])
        if q[0] > pr or q[1] > pr:
            return -1
        q[2] = bank.probe(side[2 * c])
        q[3] = bank.probe(side[2 * c + 1])
        if q[2] > pc or q[3] > pc:
            return -1
        return 4 * r + (c - 4)

    def _pair(self, p, idx):
        return p[idx >> 2] + p[4 + (idx & 3)]

    def _keep_best(self, k):
        """Keep the strongest block's powers, and probe it for the frequency measurement."""
        bank = self.bank
        p = bank.power
        b = self._best
        r = k >> 2
        c = 4 + (k & 3)
        pr = p[r]
        pc = p[c]
        if pr + pc > b[0] + b[1]:
            b[0] = pr
            b[1] = pc
            est = self.est
            b[2] = bank.probe(est[2 * r])
            b[3] = bank.probe(est[2 * r + 1])
            b[4] = bank.probe(est[2 * c])
            b[5] = bank.probe(est[2 * c + 1])

    def _start(self, k, blk):
        self._cand = k
        self._run = 1
        self._first = blk
        for i in range(6):
            self._best[i] = 0
        self._keep_best(k)
        p = self.bank.power
        self._e0 = isqrt(self._pair(self._prevp, k))
        self._e1 = isqrt(self._pair(p, k))
        self._e2 = self._e1

    def _block(self):
        blk = self._blk
        self._blk = blk + 1
        p = self.bank.power
        k = self._show()
        cur = self._cur
        if cur >= 0:
            if k == cur:
                self._miss = 0
                self._keep_best(k)
                self._e2 = isqrt(self._pair(p, cur))
            else:
                self._miss += 1
                if self._miss == 1:
                    self._post = isqrt(self._pair(p, cur))
                if self._miss >= self.misses:
                    self._end(blk)
                    if k >= 0:
                        self._start(k, blk)
        elif k >= 0 and k == self._cand:
            self._run += 1
            self._keep_best(k)
            self._e2 = isqrt(self._pair(p, k))
        elif k >= 0:
            self._start(k, blk)
        else:
            self._cand = -1
            self._run = 0
        if self._cur < 0 and self._cand >= 0 and self._run >= self.hits:
            self._cur = self._cand
            self._cand = -1
            self._miss = 0
            self.key = keypad.KEYS[self._cur]
        for i in range(8):
            self._prevp[i] = p[i]

    def _end(self, blk):
        """The digit being heard ended (its last block showing it: blk - misses)."""
        k = self._cur
        self._cur = -1
        self._run = 0
        self.key = None
        b = self._best
        bank = self.bank
        n = self.n
        peak = isqrt(b[0] + b[1])
        last = blk - self.misses + 1  # the block after the last that showed it
        # a tone over a fraction f of a block has f**2 of the power: the edges from the
        # fractions of the blocks around the first and the last block that showed the key
        # (a tone that began in the block before covers its end and all of the first one)
        f0 = _frac(self._e0, peak, n)
        f1 = _frac(self._e1, peak, n)
        f2 = _frac(self._e2, peak, n)
        f3 = _frac(self._post, peak, n)
        on = self._base + self._first * n - f0 + (n - f1)
        off = self._base + last * n + f3 - (n - f2)
        r = k >> 2
        c = 4 + (k & 3)
        lo_hz = hi_hz = 0.0
        if self.measure_hz:
            lo_hz = estimate_hz(_FREQS[r], self.est_hz, (b[2], b[0], b[3]), n, self.rate)
            hi_hz = estimate_hz(_FREQS[c], self.est_hz, (b[4], b[1], b[5]), n, self.rate)
        self._digits.append(
            Digit(
                keypad.KEYS[k],
                on,
                off,
                self.rate,
                bank.amplitude_of(b[0]),
                bank.amplitude_of(b[1]),
                lo_hz,
                hi_hz,
            )
        )
