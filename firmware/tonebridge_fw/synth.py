"""DTMF renderer: direct digital synthesis of a plan into caller-provided sample buffers.

Renderer(sample_rate, bits=12, signed=False, level=LEVEL, twist_db=2.0, ramp_ms=2)

- Two integer phase accumulators (PHASE_BITS = 29 bits, so every per-sample value is a
  MicroPython small int and nothing allocates) index one 4096-entry Q14 sine table
  (allocated once, in __init__); each tone is scaled by its own integer gain (level,
  twist and the analog chain's response at that frequency folded in, computed once per
  configuration), so a steady sample is two lookups, two multiplies and a shift.
  Frequency resolution is fs / 2**29 (< 0.0001 Hz at 48 kHz).
- response: optional fn(hz) -> linear gain of what follows the samples (a PWM board's
  reconstruction filter and line coupling). Each tone's amplitude is divided by it and
  multiplied by its smallest value over the eight DTMF frequencies, so on the line every
  tone keeps the level/twist asked for (never more than full scale: the compensation only
  attenuates). Evaluated 8 times per configuration, never per sample.
- shaping=True (unsigned PWM duty output, at most 10 bits): the shaped duty path of
  synth_shaped.py (PWM correction and second-order error feedback, SHAPE_BITS more bits
  inside); shaping=False writes the two-tone sum directly.
- sample_rate: int, float, or an exact rational (num, den) such as
  (125000000, 8192). Internally a rational num/den; all timing is integer arithmetic.
- Output: unsigned (PWM duty / DAC code) in [0, 2**bits - 1], idle at 2**(bits-1); or
  signed=True: in [-2**(bits-1), 2**(bits-1) - 1], idle 0 (bits=16 for I2S).
- level: peak of the two-tone sum as a fraction of full scale (0 < level <= 1).
- twist_db: high group louder than low group by 0..4 dB.
- Edges: raised cosine, ramp_ms long (1..3 ms), CENTRED on the plan's step boundaries:
  the envelope is exactly 1/2 at the boundary sample, so a tone measured between its
  50 % amplitude points lasts exactly its planned duration and gaps/pauses are exact.
  To make room for the first rising edge the output starts with a lead-in of
  H = max(1, round(ramp_ms * fs / 2000)) samples and ends H + 1 samples after the plan
  (the last one idle, so the output always ends at exactly the idle value):
      boundary k (k >= 1) is at sample  H + round(t_k_ms * fs / 1000)
      total samples                      2H + 1 + round(plan_ms * fs / 1000)
  (t_k cumulative from plan start, so rounding never accumulates). step_start() and
  step_at() give this mapping; step_start(0) is 0.
- Tone steps must be separated by silence (compile_plan always does this) and every
  step must last at least ramp_ms, so edges never overlap; a leading silence (step 0) may
  be shorter (no edge precedes it).
- Fast path: on ports with a native emitter (rp2, esp32) fill() runs the viper kernels of
  synth_viper.py for 16-bit buffers, bit-identical to the portable loops below; FAST tells.
- Memory: a loaded plan costs one array('i') word per step (the boundaries; reused by
  the next load() if it is long enough, so reloading allocates nothing). The idle / edge /
  steady regions are not stored: fill() derives the next one from the boundaries when
  the current one ends (_enter), so a send's heap does not grow with its region count.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


import math
from array import array

from tonebridge_fw.keypad import COL_HZ, KEYS, ROW_HZ
from tonebridge_fw.synth_shaped import SHAPE_BITS, Shaper

PHASE_BITS = const(29)
TABLE_BITS = const(12)
_PHASE_MASK = const(0x1FFFFFFF)  # 2**29 - 1
_SHIFT = const(17)  # PHASE_BITS - TABLE_BITS
_TABLE_LEN = const(4096)
_ENV_BITS = const(14)
_ENV_ONE = const(16384)
_ENV_HALF = const(8192)
_SIN_ONE = const(16384)  # Q14 sine table

LEVEL = 0.8
RAMP_MS_MIN = 1
RAMP_MS_MAX = 3
TWIST_DB_MIN = 0.0
TWIST_DB_MAX = 4.0

# region kinds
_IDLE = const(0)
_UP = const(1)
_STEADY = const(2)
_DOWN = const(3)
_END = const(4)  # past the last region

# Fast path: viper kernels (synth_viper.py) for the loops in fill(), on ports with a native
# emitter (rp2, esp32). Elsewhere (WebAssembly port, CPython, the simulator) the import or
# the self-test fails and the portable loops below run; both give identical samples.
try:
    from tonebridge_fw import synth_viper as _fast

    if not _fast.selftest():
        _fast = None
except Exception:
    _fast = None
FAST = _fast is not None


def _check_levels(level, twist_db):
    if not (0 < level <= 1):
        raise ValueError("level must be in (0, 1], got %s" % repr(level))
    if not (TWIST_DB_MIN <= twist_db <= TWIST_DB_MAX):
        raise ValueError(
            "twist_db %s is outside %s..%s dB" % (repr(twist_db), TWIST_DB_MIN, TWIST_DB_MAX)
        )


def _rational(rate):
    """(num, den) for an int, float or (num, den) sample rate; ValueError if not > 0."""
    if isinstance(rate, tuple):
        num, den = rate
        if not isinstance(num, int) or not isinstance(den, int):
            raise ValueError("sample rate (num, den) must be integers")
    elif isinstance(rate, int):
        num, den = rate, 1
    elif isinstance(rate, float):
        num, den = int(round(rate * 1024)), 1024
    else:
        raise ValueError("sample rate must be a number or (num, den)")
    if num <= 0 or den <= 0:
        raise ValueError("sample rate must be positive")
    a, b = num, den
    while b:
        a, b = b, a % b
    return num // a, den // a


class Renderer:
    def __init__(
        self,
        sample_rate,
        bits=12,
        signed=False,
        level=LEVEL,
        twist_db=2.0,
        ramp_ms=2,
        response=None,
        shaping=False,
    ):
        num, den = _rational(sample_rate)
        self.rate_num = num
        self.rate_den = den
        self.sample_rate = num / den
        # highest tone must stay below Nyquist (also keeps phase sums in small ints)
        if 2 * COL_HZ[3] * den >= num:
            raise ValueError(
                "sample rate %s is too low for 1633 Hz (need > 3266)" % self.sample_rate
            )
        if not isinstance(bits, int) or bits < 8 or bits > 16:
            raise ValueError("bits must be 8..16, got %s" % repr(bits))
        _check_levels(level, twist_db)
        if not (RAMP_MS_MIN <= ramp_ms <= RAMP_MS_MAX):
            raise ValueError(
                "ramp_ms %s is outside %d..%d ms" % (repr(ramp_ms), RAMP_MS_MIN, RAMP_MS_MAX)
            )
        self.bits = bits
        self.signed = bool(signed)
        self.ramp_ms = ramp_ms
        if shaping and (signed or bits > 10):
            raise ValueError("shaping is for unsigned outputs of at most 10 bits")
        self.shaping = bool(shaping)
        half_scale = 1 << (bits - 1)
        self.mid = 0 if signed else half_scale
        self.min_value = -half_scale if signed else 0
        self.max_value = half_scale - 1 if signed else (1 << bits) - 1
        # Q14 sine + 2**14 (0..2**15): the viper kernels' unsigned loads need no sign extension
        # One quarter computed, the rest by symmetry: a quarter of the sin() calls (on an
        # RP2040's soft float the whole table took ~0.33 s at boot), and the same values (a
        # float64 host gives the table the direct formula gives, entry for entry).
        t = array("H", range(_TABLE_LEN))  # pre-sized: no 16 KB temporary list
        w = 2.0 * math.pi / _TABLE_LEN
        n2 = _TABLE_LEN >> 1
        for i in range((_TABLE_LEN >> 2) + 1):
            v = int(round(_SIN_ONE * math.sin(w * i)))
            t[i] = _SIN_ONE + v  # [0, pi/2]
            t[n2 - i] = _SIN_ONE + v  # [pi/2, pi]
            t[n2 + i] = _SIN_ONE - v  # [pi, 3 pi/2]
            if i:
                t[_TABLE_LEN - i] = _SIN_ONE - v  # [3 pi/2, 2 pi)
        self._sin = t
        # per-frequency compensation of what follows the samples (1.0 = flat)
        self._comp_row = [1.0] * 4
        self._comp_col = [1.0] * 4
        self.set_response(response)
        self._g_row = [0] * 4  # per-tone integer gains (set_levels)
        self._g_col = [0] * 4
        self.set_levels(level, twist_db)
        self._pending_levels = None  # (level, twist_db) from configure(), applied by load()
        # half ramp H in samples; envelope table (Q14) for offsets 0..2H
        self.lead_in = self.ms_to_samples_half(ramp_ms)
        h2 = 2 * self.lead_in
        self._env = array("h", [0] * (h2 + 1))
        for j in range(h2 + 1):
            self._env[j] = int(round(_ENV_ONE * 0.5 * (1.0 - math.cos(math.pi * j / h2))))
        self._env[self.lead_in] = _ENV_HALF
        # fast-path state (see synth_viper.py), allocated once
        self._fast = _fast
        self._st = array("i", [0] * 14)  # synth_viper.ST_LEN words
        self._st[3] = self.mid  # [MID]
        self._ctx = [None, self._sin, self._env, self._st]  # [0] = buf per fill()
        self._fbufs = [None, None]  # the last two buffers known to hold 16-bit items
        # phase increments per key row/column
        self._inc_row = [self._phase_inc(f) for f in ROW_HZ]
        self._inc_col = [self._phase_inc(f) for f in COL_HZ]
        self._starts = None  # step boundaries: array('i'), sized by load()
        self._i1 = 0  # the current tone's phase increments and gains (set by _enter)
        self._i2 = 0
        self._g1 = 0
        self._g2 = 0
        self._shaper = Shaper()  # the shaped path's state between fills (synth_shaped.py)
        self.load([])

    def set_response(self, response):
        """Compensate `response` (fn(hz) -> linear gain, None = flat) from the next
        set_levels(): each tone is scaled by min(response over the 8 DTMF tones) / response(f).
        Called once per configuration (8 evaluations), never per sample."""
        self.response = response
        if response is None:
            g_row = [1.0] * 4
            g_col = [1.0] * 4
        else:
            g_row = [float(response(f)) for f in ROW_HZ]
            g_col = [float(response(f)) for f in COL_HZ]
        ref = min(min(g_row), min(g_col))
        if ref <= 0:
            raise ValueError("response must be positive at the DTMF frequencies")
        for i in range(4):
            self._comp_row[i] = ref / g_row[i]
            self._comp_col[i] = ref / g_col[i]

    def set_levels(self, level, twist_db):
        """Set the output level (peak of the two-tone sum as a fraction of full scale, before
        the response compensation, which only attenuates) and the twist (high group above
        low, dB): recomputes the eight per-tone gains, no buffers, so a board can retune
        between sequences (protocol CONFIG)."""
        _check_levels(level, twist_db)
        self.level = level
        self.twist_db = twist_db
        # peak amplitudes in output units; sum <= half_scale - 2 so rounding cannot clip
        peak = level * ((1 << (self.bits - 1)) - 2)
        g = math.pow(10.0, twist_db / 20.0)
        self.amp_low = peak / (1.0 + g)
        self.amp_high = peak - self.amp_low
        unit = (1 << SHAPE_BITS) if self.shaping else 1  # gains in output units (x 64 shaped)
        for i in range(4):
            self._g_row[i] = int(self.amp_low * self._comp_row[i] * unit)
            self._g_col[i] = int(self.amp_high * self._comp_col[i] * unit)

    def configure(self, twist=None, level=None):
        """Run-time tuning (protocol CONFIG): new twist (dB) and/or level for the next plan.
        They take effect at the next load(), so a sequence playing now is not disturbed.
        Returns the settings the next sequence will use: {"twist": dB, "level": fraction}."""
        cur_level, cur_twist = (
            self._pending_levels
            if self._pending_levels is not None
            else (self.level, self.twist_db)
        )
        if twist is not None or level is not None:
            new = (cur_level if level is None else level, cur_twist if twist is None else twist)
            _check_levels(new[0], new[1])
            self._pending_levels = new
            cur_level, cur_twist = new
        return {"twist": cur_twist, "level": cur_level}

    # --- timing ------------------------------------------------------------------
    def ms_to_samples(self, ms):
        """round(ms * fs / 1000), exact integer arithmetic (ms may be an int)."""
        return (2 * ms * self.rate_num + 1000 * self.rate_den) // (2000 * self.rate_den)

    def ms_to_samples_half(self, ms):
        """max(1, round(ms * fs / 2000)) for ms given as int or float."""
        if isinstance(ms, float):
            h = int(round(ms * self.rate_num / (2000.0 * self.rate_den)))
        else:
            h = (ms * self.rate_num + 1000 * self.rate_den) // (2000 * self.rate_den)
        return h if h > 0 else 1

    def _phase_inc(self, hz):
        # round(hz * 2**PHASE_BITS / fs) = round(hz * 2**PB * den / num)
        n = hz * (1 << PHASE_BITS) * self.rate_den
        return (2 * n + self.rate_num) // (2 * self.rate_num)

    def actual_hz(self, hz):
        """The frequency the DDS really produces for a nominal `hz` at this sample rate."""
        return self._phase_inc(hz) * self.rate_num / (self.rate_den * float(1 << PHASE_BITS))

    # --- plan ----------------------------------------------------------------------
    def load(self, plan):
        """Reset and prepare to render `plan` ([(key|None, ms), ...]); ValueError if unusable.

        Keeps only the step boundaries (one array('i') word per step, reused by the next
        load() when it is long enough); the idle/ramp/steady regions are derived from them
        one at a time while rendering (_enter), so memory does not grow with region count."""
        h = self.lead_in
        n = len(plan)
        # Boundary k is h + round(t_k * fs / 1000) = h + (2 t_k num + 1000 den) // D with
        # D = 2000 den, kept as quotient q and remainder r and advanced by at most `piece`
        # ms at a time, so every intermediate stays a small int (no big-int garbage at
        # rates like 125 MHz / 8192 whose numerator times a few seconds exceeds 2**30).
        den2 = 2000 * self.rate_den
        inc_q = (2 * self.rate_num) // den2
        inc_r = (2 * self.rate_num) % den2
        piece = 0x3FFFFFFF // den2 - 1
        if piece < 1:
            piece = 1
        starts = self._starts
        # pass 0 validates without touching the current plan's state (a rejected plan
        # leaves the renderer as it was); pass 1 stores the boundaries
        for pass_ in range(2):  # range in a for loop allocates nothing on MicroPython
            store = pass_ == 1
            if store:
                if self._pending_levels is not None:  # levels from configure() start with this plan
                    self.set_levels(self._pending_levels[0], self._pending_levels[1])
                    self._pending_levels = None
                if starts is None or len(starts) < n + 1:
                    starts = array("i", range(n + 1))  # pre-sized, no temporary list
                    self._starts = starts
                starts[0] = 0
            q = 0
            r = 1000 * self.rate_den
            prev_b = h
            prev_tone = False
            for k in range(n):
                step = plan[k]
                key, ms = step[0], step[1]
                if not store:
                    if not isinstance(ms, int) or ms <= 0:
                        raise ValueError("step %d: duration must be a positive int of ms" % k)
                    if key is not None:
                        if not isinstance(key, str) or len(key) != 1 or KEYS.find(key) < 0:
                            raise ValueError("step %d: not a DTMF key: %s" % (k, repr(key)))
                        if prev_tone:
                            raise ValueError("step %d: tone steps must be separated by silence" % k)
                    prev_tone = key is not None
                while ms > 0:
                    m = ms if ms < piece else piece
                    r += m * inc_r
                    q += m * inc_q + r // den2
                    r %= den2
                    ms -= m
                b = h + q
                if store:
                    starts[k + 1] = b
                else:
                    # a step holds an edge at each end (H samples each side of a boundary),
                    # except a leading silence: nothing sounds before it, so any length
                    # works (the engine opens a queued sequence with what is left of the gap,
                    # which can be 1 ms)
                    if b - prev_b < 2 * h and (k or plan[0][0] is not None):
                        raise ValueError(
                            "step %d: %d ms is shorter than the %s ms ramp"
                            % (k, step[1], self.ramp_ms)
                        )
                    prev_b = b
        # trailing H samples for the last falling edge, plus one idle sample so the
        # output always ends exactly at idle (a DMA-fed PWM holds its last value)
        total = starts[n] + h + 1 if n else 0
        starts[n] = total
        self.plan = plan
        self._n = n
        self.total_samples = total
        self.position = 0
        self._ph1 = 0
        self._ph2 = 0
        self._shaper.reset()
        # current region [_rs, _re) of kind _rk: step _k, part _part (tone: 0 rising
        # edge, 1 steady, 2 falling edge; silence: 0); _k == n is the trailing idle
        self._re = 0
        self._enter(0, 0)

    def _enter(self, k, part):
        """Make region (k, part), or the first non-empty one after it, current; the region
        starts where the previous one ended (self._re). Allocates nothing.

        Tone step k with boundaries b0 = step_start(k) (H for k == 0) and b1 =
        step_start(k + 1) (total - H - 1 for the last step): rising edge [b0-H, b0+H),
        steady [b0+H, b1-H), falling edge [b1-H, b1+H). Silence: idle up to the next
        step's boundary (minus H if that step is a tone); k == n: idle to the end."""
        plan = self.plan
        n = self._n
        s = self._starts
        h = self.lead_in
        start = self._re
        while k <= n:
            key = None
            if k == n:
                end = s[n]
                kind = _IDLE
            else:
                key = plan[k][0]
                if key is None:
                    end = s[k + 1]
                    if k + 1 < n and plan[k + 1][0] is not None:
                        end -= h
                    kind = _IDLE
                elif part == 0:
                    end = (s[k] if k else h) + h
                    kind = _UP
                    i = KEYS.find(key)
                    self._i1 = self._inc_row[i >> 2]
                    self._i2 = self._inc_col[i & 3]
                    self._g1 = self._g_row[i >> 2]
                    self._g2 = self._g_col[i & 3]
                else:
                    b1 = s[k + 1] if k + 1 < n else s[n] - h - 1
                    if part == 1:
                        end = b1 - h
                        kind = _STEADY
                    else:
                        end = b1 + h
                        kind = _DOWN
            if end > start:
                self._k = k
                self._part = part
                self._rs = start
                self._re = end
                self._rk = kind
                return
            if key is not None and part < 2:
                part += 1
            else:
                k += 1
                part = 0
        self._k = n + 1
        self._part = 0
        self._rs = start
        self._re = start
        self._rk = _END

    def _next(self):
        if self._rk != _IDLE and self._part < 2:
            self._enter(self._k, self._part + 1)
        else:
            self._enter(self._k + 1, 0)

    def step_start(self, k):
        """First sample of step k (its 50 % edge for tones after step 0); k == len(plan) -> end."""
        if k < 0 or k > self._n:
            raise IndexError("step_start: no step %d" % k)
        return self._starts[k]

    def step_at(self, sample_index):
        """Index of the step being emitted at `sample_index`; len(plan) once past the end.
        O(log n), allocates nothing."""
        s = self._starts
        n = self._n
        if sample_index >= s[n]:
            return n
        lo, hi = 0, n - 1
        while lo < hi:
            mid = (lo + hi + 1) >> 1
            if s[mid] <= sample_index:
                lo = mid
            else:
                hi = mid - 1
        return lo

    @property
    def done(self):
        return self.position >= self.total_samples

    # --- rendering -------------------------------------------------------------------
    def _fast_buf(self, buf):
        """True if the viper kernels may write `buf`: an array/memoryview of 16-bit items.
        The last two such buffers are remembered, so double buffering allocates nothing."""
        c = self._fbufs
        if buf is c[0] or buf is c[1]:
            return True
        try:
            ok = len(buf) > 0 and len(bytes(memoryview(buf)[:1])) == 2
        except Exception:
            ok = False
        if ok:
            c[1] = c[0]
            c[0] = buf
        return ok

    def fill(self, buf, start=0, count=None):
        """Write the next samples into buf[start:start+count]; return how many were written
        (fewer than asked only at the end of the plan). Allocates nothing."""
        if count is None:
            count = len(buf) - start
        written = 0
        pos = self.position
        mid = self.mid
        shaping = self.shaping
        fast = self._fast
        if fast is not None and count > 0 and self._fast_buf(buf):
            st = self._st
            ctx = self._ctx
            ctx[0] = buf
            blen = len(buf)
            if start < 0:
                raise IndexError("fill: negative start")
        else:
            fast = None
        while written < count and self._rk != _END:
            end = self._re
            n = end - pos
            if n > count - written:
                n = count - written
            p = start + written
            q = p + n
            kind = self._rk
            if fast is not None:
                # the kernels do not bounds-check: refuse what the portable loops would
                # fail on (IndexError) before writing anything
                if q > blen:
                    raise IndexError("fill: buffer too short")
            if kind == _IDLE:
                if fast is not None:
                    fast.idle(p, q, mid, buf)
                else:
                    for i in range(p, q):
                        buf[i] = mid
                if shaping:  # silence is exact: the shaper starts afresh at the next tone
                    self._shaper.reset()
            else:
                i1 = self._i1
                i2 = self._i2
                ph1 = self._ph1
                ph2 = self._ph2
                if kind == _UP:
                    j = pos - self._rs
                    dj = 1
                    if shaping and j == 0:
                        ph1 = i1  # the generator runs one sample ahead: phase of sample 1
                        ph2 = i2
                elif kind == _DOWN:
                    j = end - pos
                    dj = -1
                else:
                    j = 0
                    dj = 0
                if shaping:
                    j += dj  # envelope index of the look-ahead sample
                if fast is not None:
                    # st: [Q, I1, I2, MID, J, DOWN, PH2, G1, G2, XC, SP, SC, R, R2] (synth_viper.py)
                    st[0] = q
                    st[1] = i1
                    st[2] = i2
                    st[4] = j
                    st[5] = 1 if dj < 0 else 0
                    st[7] = self._g1
                    st[8] = self._g2
                    if shaping:
                        ph1 = self._shaper.fast(fast, p, ph1, ph2, ctx, kind == _STEADY)
                    elif kind == _STEADY:
                        ph1 = fast.steady(p, ph1, ph2, ctx)
                    else:
                        ph1 = fast.ramp(p, ph1, ph2, ctx)
                    ph2 = st[6]
                else:
                    # the portable loops leave the phases in self._ph1/_ph2 (a returned tuple
                    # would allocate)
                    if shaping:
                        sh = self._shaper
                        sh.run(
                            buf,
                            p,
                            q,
                            ph1,
                            ph2,
                            i1,
                            i2,
                            j,
                            dj,
                            kind == _STEADY,
                            self._sin,
                            self._env,
                            mid,
                            self._g1,
                            self._g2,
                        )
                        ph1 = sh.ph1
                        ph2 = sh.ph2
                    else:
                        self._direct(buf, p, q, ph1, ph2, i1, i2, j, dj, kind == _STEADY)
                        ph1 = self._ph1
                        ph2 = self._ph2
                if kind == _DOWN and pos + n == end:
                    ph1 = 0  # next burst starts at phase 0
                    ph2 = 0
                self._ph1 = ph1
                self._ph2 = ph2
            pos += n
            written += n
            if pos >= end:
                self._next()
        self.position = pos
        return written

    # The portable loop: synth_viper.py's kernels in Python (the same integer arithmetic,
    # bit-identical samples; >> is a floor shift here and an arithmetic shift in viper). The
    # shaped path's twin is Shaper.run (synth_shaped.py).
    def _direct(self, buf, p, q, ph1, ph2, i1, i2, j, dj, steady):
        """buf[p:q] = mid + x, x = (sin1 g1 + sin2 g2) / 2**14 (rounded), under the envelope
        env[j], j += dj per sample, unless steady."""
        t = self._sin
        env = self._env
        mid = self.mid
        g1 = self._g1
        g2 = self._g2
        k0 = _ENV_HALF - _SIN_ONE * (g1 + g2)
        for i in range(p, q):
            x = (t[ph1 >> _SHIFT] * g1 + t[ph2 >> _SHIFT] * g2 + k0) >> 14
            if not steady:
                x = (x * env[j] + _ENV_HALF) >> 14
                j += dj
            buf[i] = mid + x
            ph1 = (ph1 + i1) & _PHASE_MASK
            ph2 = (ph2 + i2) & _PHASE_MASK
        self._ph1 = ph1
        self._ph2 = ph2

    def render(self, plan):
        """Convenience (allocates): the whole plan as a new array ('h' if signed else 'H')."""
        self.load(plan)
        buf = array("h" if self.signed else "H", [0] * self.total_samples)
        self.fill(buf)
        return buf
