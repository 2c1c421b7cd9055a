"""RP2040/RP2350 ADC: free-running conversions into the FIFO, its DREQ pacing a DMA channel.

Registers (RP2040 datasheet 4.9.6; RP2350: same layout at its own base): CS (EN, START_MANY,
AINSEL), FCS (EN, SHIFT, DREQ_EN, THRESH), FIFO, DIV (INT.FRAC: a conversion every
1 + INT + FRAC/256 cycles of the 48 MHz ADC clock). With CS.EN, CS.START_MANY, FCS.EN and
FCS.DREQ_EN (THRESH 1) every conversion raises the DREQ and a DMA channel paced by it
(TREQ 36 on the RP2040, 48 on the RP2350) reads the FIFO one conversion later than the
sample instant; that is the only way the firmware reads it at 8 kHz, and the only one modelled
(a CPU read of FIFO or RESULT gives the input's value now).

The input: ``source(t_us_array, ainsel) -> volts`` (the board's line sense, sim/line_sense.py),
quantised to 12 bits over 0..3.3 V. The DMA writes the samples' addresses first; their values
are filled in once the analog outputs have caught up to those instants (``fill_pending``),
since the line signal at an instant
exists only once the tone chain has produced it: ``Rp2Hardware.reg_read`` fills them when the
firmware reads the DMA channel's registers, which it does before it looks at the ring (so the
outputs are flushed at the same instants whether or not other transfers were deferred). The
ring channel's transfers themselves wait until then too (rp2_dma.py, ``DmaEngine.held``).
"""

from __future__ import annotations

import math

import numpy as np

ADC_CLK = 48_000_000
VREF = 3.3
BASES = {"rp2040": 0x4004C000, "rp2350": 0x400A0000}
DREQ = {"rp2040": 36, "rp2350": 48}
CS, RESULT, FCS, FIFO, DIV = 0x00, 0x04, 0x08, 0x0C, 0x10


class AdcModel:
    def __init__(self, hw, source=None):
        self.hw = hw
        self.base = BASES[hw.mcu]
        self.dreq = DREQ[hw.mcu]
        self.source = source
        self.reset()

    def reset(self) -> None:
        self.cs = 0
        self.fcs = 0
        self.div = 0
        self.start16 = None  # when free-running conversions began
        self._pending: list = []  # (t16 array, view, byte offsets)
        self.samples_taken = 0

    # ---- registers --------------------------------------------------------------------------
    def owns(self, addr: int) -> bool:
        return 0 <= addr - self.base < 0x24

    def read(self, addr: int) -> int:
        r = addr - self.base
        if r == CS:
            return self.cs | (1 << 8)  # READY
        if r == FCS:
            return self.fcs | (1 << 8)  # EMPTY: the DMA keeps it drained
        if r == DIV:
            return self.div
        if r in (FIFO, RESULT):
            t = np.array([self.hw.us(self.hw._synced16)])
            return int(self._codes(t)[0])
        return 0

    def write(self, addr: int, value: int, now16: int) -> None:
        r = addr - self.base
        was = self.running()
        if r == CS:
            self.cs = value & 0x1F00F
        elif r == FCS:
            self.fcs = value & 0x0F00000F
        elif r == DIV:
            self.div = value & 0xFFFFFF
        if self.running() and not was:
            self.start16 = now16
        elif not self.running():
            self.start16 = None

    def running(self) -> bool:
        return bool(self.cs & 1 and self.cs & 8 and self.fcs & 1)

    def period16(self) -> float:
        """Sys-clock t16 between conversions."""
        cycles = 1 + (self.div >> 8) + (self.div & 0xFF) / 256
        if cycles < 96:
            cycles = 96  # a conversion takes 96 ADC clocks at least
        return cycles * 16 * self.hw.freq / ADC_CLK

    def min_period16(self) -> float:
        """``period16`` at the fastest divider (a conversion takes 96 ADC clocks)."""
        return 96 * 16 * self.hw.freq / ADC_CLK

    def rate(self) -> float:
        return self.hw.freq * 16 / self.period16()

    # ---- DREQ ---------------------------------------------------------------------------------
    def requests(self, after16: int, limit16: int, n: int, latency: int) -> np.ndarray:
        """The DREQ instants after ``after16`` up to ``limit16`` (at most n): a conversion
        ends, the FIFO holds a sample, the DMA reads it ``latency`` later."""
        if self.start16 is None or not (self.fcs & 8):
            return np.empty(0, dtype=np.int64)
        p = self.period16()
        k0 = math.floor((after16 - latency - self.start16) / p) + 1
        k0 = max(k0, 1)
        k1 = math.floor((limit16 - latency - self.start16) / p)
        k1 = min(k1, k0 + n - 1)
        if k1 < k0:
            return np.empty(0, dtype=np.int64)
        if p.is_integer():  # (the usual case: 8 kHz from 125 or 150 MHz) exact in integers
            q = int(p)
            t0 = self.start16 + latency
            return np.arange(t0 + k0 * q, t0 + k1 * q + 1, q, dtype=np.int64)
        k = np.arange(k0, k1 + 1, dtype=np.int64)
        return (self.start16 + np.floor(k * p)).astype(np.int64) + latency

    def request_count(self, after16: int, limit16: int, latency: int) -> int:
        """How many instants ``requests`` gives for that span (no limit on n), counted."""
        if self.start16 is None or not (self.fcs & 8):
            return 0
        p = self.period16()
        k0 = max(math.floor((after16 - latency - self.start16) / p) + 1, 1)
        k1 = math.floor((limit16 - latency - self.start16) / p)
        return max(0, k1 - k0 + 1)

    def reads_fifo(self, addr: int) -> bool:
        return addr == self.base + FIFO

    def defer(self, tt: np.ndarray, view, offs: np.ndarray, latency: int) -> None:
        """A DMA transfer read the FIFO at ``tt``: its samples go to ``view[offs]`` once the
        input exists (the sample instant is one DMA latency before the read)."""
        self._pending.append((tt - latency, view, offs))

    def fill_pending(self) -> None:
        if not self._pending:
            return
        pend, self._pending = self._pending, []
        tt = pend[0][0] if len(pend) == 1 else np.concatenate([p[0] for p in pend])
        codes = self._codes(tt * 1e6 / (self.hw.freq * 16))  # one look at the line for all
        codes = codes.astype("<u2")
        raw = None
        i = 0
        for t, view, offs in pend:
            part = codes[i : i + t.size]
            if view.size % 2 == 0 and not int(offs[0]) & 1:  # (all of one parity)
                view.view("<u2")[offs >> 1] = part  # 16-bit aligned: one write per sample
            else:
                if raw is None:
                    raw = codes.view(np.uint8).reshape(-1, 2)
                view[offs] = raw[i : i + t.size, 0]
                view[offs + 1] = raw[i : i + t.size, 1]
            i += t.size
        self.samples_taken += codes.size

    def _codes(self, t_us: np.ndarray) -> np.ndarray:
        ainsel = (self.cs >> 12) & 7
        if self.source is None:
            v = np.full(t_us.shape, VREF / 2)
        else:
            v = self.source(t_us, ainsel)
        codes = np.clip(np.round(v / VREF * 4096), 0, 4095).astype(np.int64)
        if self.fcs & 2:  # SHIFT: 8-bit results
            codes >>= 4
        return codes
