"""The MT8880 / CM8880's DTMF receiver, modelled as the datasheet describes its blocks (the
chip's own hardware, host side; the firmware only ever sees its registers).

Input: ``source(t_us) -> volts`` across IN+/IN- (the simulator wires the line through the
hybrid: sim/line_sense.py's view of the line, with the board's own tones, the line's loss and
noise). The chip's filter and detector section is modelled as a sliding DFT at the eight DTMF
frequencies (``RATE`` 8 kHz, a ``WIN_MS`` window moved every ``HOP_MS``): early steering (Est)
is high while the strongest row and column tone each reach the input sensitivity
(``MIN_DBM`` per tone), stand ``DOMINANCE_DB`` above the other tones of their group and carry
most of the signal's power (``TONE_SHARE``; speech and noise do not). Est drives the steering
RC (St/GT): the capacitor charges towards VDD through R while Est is high and discharges while
it is low; when its voltage crosses VTSt upwards the decoded code is latched (``on_latch``:
receive register, b2, b3 delayed steering, IRQ) and when it falls back below VTSt delayed
steering drops (``on_release``). So a tone whose Est lasts less than the guard time
tGTP = RC ln(VDD / (VDD - VTSt)) is never latched, and a drop-out shorter than
tGTA = RC ln(VDD / VTSt) (from a full charge) does not split a digit.

Figures: R = 300 kohm, C = 100 nF (the datasheet's single-RC steering circuit), VDD 5 V,
VTSt 2.35 V: tGTP ~ 19 ms, tGTA ~ 23 ms. Input sensitivity -29 dBm per tone (the family's
"valid input signal level" minimum). These are recalled datasheet-family values, not checked
against a retrieved MT8880 datasheet (docs/mt8880.md).
"""

from __future__ import annotations

import math

import numpy as np

RATE = 8000
WIN_MS = 20
HOP_MS = 2
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
# (row, column) -> receive code (the datasheet's code table: 1-9 = 1-9, 0 = 0xA, * = 0xB,
# # = 0xC, A-D = 0xD, 0xE, 0xF, 0x0)
RC_CODE = {
    (0, 0): 0x1, (0, 1): 0x2, (0, 2): 0x3, (0, 3): 0xD,
    (1, 0): 0x4, (1, 1): 0x5, (1, 2): 0x6, (1, 3): 0xE,
    (2, 0): 0x7, (2, 1): 0x8, (2, 2): 0x9, (2, 3): 0xF,
    (3, 0): 0xB, (3, 1): 0xA, (3, 2): 0xC, (3, 3): 0x0,
}  # fmt: skip
MIN_DBM = -29.0
DOMINANCE_DB = 6.0
TONE_SHARE = 0.6


def dbm_amp(dbm: float) -> float:
    """Peak volts of a sine of ``dbm`` into 600 ohm."""
    return math.sqrt(2 * 600 * 0.001 * 10 ** (dbm / 10))


class ChipReceiver:
    def __init__(
        self,
        source,
        t0_us: int,
        on_latch,
        on_release,
        *,
        r_ohm: float = 300e3,
        c_farad: float = 100e-9,
        vdd: float = 5.0,
        vtst: float = 2.35,
        min_dbm: float = MIN_DBM,
    ):
        self.source = source
        self.on_latch = on_latch
        self.on_release = on_release
        self.rc_s = r_ohm * c_farad
        self.vdd = vdd
        self.vtst = vtst
        self.min_amp = dbm_amp(min_dbm)
        self.win = RATE * WIN_MS // 1000
        self.hop = RATE * HOP_MS // 1000
        self.t0_us = float(t0_us)  # time of sample 0
        self.n = 0  # samples taken
        self.hist = np.zeros(self.win)
        n = np.arange(self.win)
        f = np.array(ROWS + COLS)
        self.basis = np.exp(-2j * np.pi * np.outer(f, n) / RATE)  # 8 x win
        self.vc = 0.0  # St/GT capacitor voltage
        self.est_code = None  # code Est is high for, or None
        self.steering = False  # delayed steering (St/GT above VTSt)
        self.est_log: list[tuple[int, int, int]] = []  # (on_us, off_us, code) of Est pulses
        self._est_on = 0.0
        self.latches: list[tuple[int, int]] = []  # (t_us, code)
        self.deaf = False  # the chip in call-progress mode: no DTMF detection (Est stays low)

    @property
    def guard_ms(self) -> tuple[float, float]:
        """(tGTP, tGTA from a full charge) in ms."""
        return (
            1000 * self.rc_s * math.log(self.vdd / (self.vdd - self.vtst)),
            1000 * self.rc_s * math.log(self.vdd / self.vtst),
        )

    def _t(self, n) -> float:
        return self.t0_us + n * (1e6 / RATE)

    def due(self, t_us: float) -> bool:
        """Would ``advance(t_us)`` run a hop (its input up to ``t_us`` is needed)?"""
        return int((t_us - self._t(self.n)) * RATE / 1e6) >= self.hop

    def advance(self, t_us: float) -> None:
        """Run the receiver on the input up to ``t_us`` (whole hops)."""
        hops = int((t_us - self._t(self.n)) * RATE / 1e6) // self.hop
        if hops <= 0:
            return
        m = hops * self.hop
        x = self.source(self._t(self.n + np.arange(m)))
        buf = np.concatenate([self.hist, x])
        ends = self.win + self.hop * np.arange(1, hops + 1)  # exclusive end of each window
        idx = ends[:, None] - self.win + np.arange(self.win)[None, :]
        frames = buf[idx]  # hops x win
        amp = np.abs(frames @ self.basis.T) * (2.0 / self.win)  # hops x 8: tone amplitudes
        power = np.mean(frames * frames, axis=1)
        for h in range(hops):
            self._decide(amp[h], power[h], self._t(self.n + (h + 1) * self.hop))
        self.hist = buf[-self.win :]
        self.n += m

    def _decide(self, a, power, t_us):
        rows, cols = a[:4], a[4:]
        r, c = int(np.argmax(rows)), int(np.argmax(cols))
        ar, ac = rows[r], cols[c]
        dom = 10 ** (DOMINANCE_DB / 20)
        ok = (
            ar >= self.min_amp
            and ac >= self.min_amp
            and all(ar >= dom * rows[i] for i in range(4) if i != r)
            and all(ac >= dom * cols[i] for i in range(4) if i != c)
            and (ar * ar + ac * ac) / 2 >= TONE_SHARE * power
        )
        code = RC_CODE[(r, c)] if ok and not self.deaf else None
        if code != self.est_code:
            if self.est_code is not None:
                self.est_log.append((int(self._est_on), int(t_us), self.est_code))
            self._est_on = t_us
            # a new code restarts the detection: the steering sees Est fall and rise again
            if code is not None and self.est_code is not None:
                self._steer(None, t_us)
            self.est_code = code
        self._steer(code, t_us)

    def _steer(self, code, t_us):
        dt = HOP_MS / 1000
        k = math.exp(-dt / self.rc_s)
        v0 = self.vc
        if code is not None:
            v1 = self.vdd + (v0 - self.vdd) * k
            if not self.steering and v1 >= self.vtst:
                # the instant within the hop at which St/GT crossed VTSt
                tc = self.rc_s * math.log((self.vdd - v0) / (self.vdd - self.vtst))
                t_latch = int(t_us - (dt - tc) * 1e6)
                self.steering = True
                self.latches.append((t_latch, code))
                self.on_latch(code, t_latch)
        else:
            v1 = v0 * k
            if self.steering and v1 < self.vtst:
                tc = self.rc_s * math.log(v0 / self.vtst)
                self.steering = False
                self.on_release(int(t_us - (dt - tc) * 1e6))
        self.vc = v1
