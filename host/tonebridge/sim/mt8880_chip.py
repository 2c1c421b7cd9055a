"""Bus-level model of the MT8880 / CM8880 DTMF transceiver (transmit side).

The model attaches to a simulated board's ``PinBus``: it watches /CS, phi2, R/W, RS0 and D0-D3,
latches writes on the phi2 falling edge (with /CS low, R/W low), drives D0-D3 (``bus.drive``)
while phi2 is high during a read, and releases them when phi2 falls.

Registers (datasheet, see docs/mt8880.md):
  RS0=0 write: transmit data (4-bit code); RS0=0 read: receive data (always 0 here).
  RS0=1 write: control register A, or B when the previous control write was a CRA write with
  b3 (RSEL) set; RS0=1 read: status (b0 IRQ, b1 transmit register empty, b2 rx full, b3
  delayed steering). Reading the status clears b0 and b1.

Power-up: the chip transmits nothing until the datasheet initialisation has been done at
least ``POWER_UP_US`` after power-on: read status, CRA=0, CRA=0, CRA=8, CRB=0, read status,
in that order (other bus accesses in between restart the sequence; accesses before
``POWER_UP_US`` are ignored, the chip's internal reset is still running).

Tone output = initialised AND CRA.TOUT AND (manual mode: always / burst mode: during the
chip-timed 51 ms burst that follows each transmit write). Frequencies are f_osc / (32 * N)
with the divisors from the datasheet table; the high group is ``twist_db`` louder. Each
stretch of output is synthesised with numpy when it ends (or on ``flush()``) and pushed to
the board's line recorder as one sampled segment.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .pinbus import OUT

F_OSC = 3_579_545.0
ROW_N = (160, 146, 132, 118)  # 697, 770, 852, 941 Hz nominal
COL_N = (92, 84, 76, 68)  # 1209, 1336, 1477, 1633 Hz nominal

# Transmit code -> (row, column) per the datasheet code table (independent of the firmware's).
CODE_RC = {
    0x1: (0, 0),
    0x2: (0, 1),
    0x3: (0, 2),
    0xD: (0, 3),  # A
    0x4: (1, 0),
    0x5: (1, 1),
    0x6: (1, 2),
    0xE: (1, 3),  # B
    0x7: (2, 0),
    0x8: (2, 1),
    0x9: (2, 2),
    0xF: (2, 3),  # C
    0xB: (3, 0),  # *
    0xA: (3, 1),  # 0
    0xC: (3, 2),  # #
    0x0: (3, 3),  # D
}

CRA_TOUT, CRA_CP, CRA_IRQ, CRA_RSEL = 0x1, 0x2, 0x4, 0x8
CRB_BURST, CRB_TEST, CRB_SD, CRB_CR = 0x1, 0x2, 0x4, 0x8
ST_IRQ, ST_TX_EMPTY, ST_RX_FULL, ST_DSTEER = 0x1, 0x2, 0x4, 0x8

POWER_UP_US = 100_000
BURST_TONE_US = 51_000
BURST_PAUSE_US = 51_000

# Output level into the line (AC volts RMS). The datasheet figure was not retrieved: we use
# -16 dBm (re 0.775 V) for the low group and +2 dB for the high group (unconfirmed defaults).
ROW_VRMS = 0.775 * 10 ** (-16 / 20)

_INIT_SEQ = (("rs",), ("wc", 0), ("wc", 0), ("wc", 8), ("wb", 0), ("rs",))


def tone_hz(code: int, f_osc: float = F_OSC) -> tuple[float, float]:
    r, c = CODE_RC[code & 0xF]
    return f_osc / (32 * ROW_N[r]), f_osc / (32 * COL_N[c])


class MT8880Chip:
    """An MT8880 wired to a board's pins. ``profile`` gives d_pins, rs0_pin, rw_pin, cs_pin,
    phi2_pin. ``recorder`` receives segments with ``add_segment(source, start_us, rate, volts)``.
    """

    def __init__(
        self,
        bus,
        clock,
        recorder,
        profile,
        *,
        f_osc: float = F_OSC,
        sample_rate: int = 48_000,
        row_vrms: float = ROW_VRMS,
        twist_db: float = 2.0,
        source: str = "mt8880",
    ):
        self.bus = bus
        self.clock = clock
        self._lock = threading.RLock()  # the recorder may flush from another thread
        self.recorder = recorder
        self.f_osc = f_osc
        self.rate = sample_rate
        self.row_amp = row_vrms * math.sqrt(2)
        self.col_amp = self.row_amp * 10 ** (twist_db / 20)
        self.source = source
        self.d_pins = list(profile["d_pins"])
        self.rs0 = profile["rs0_pin"]
        self.rw = profile["rw_pin"]
        self.cs = profile["cs_pin"]
        self.phi2 = profile["phi2_pin"]
        self.irq_pin = profile.get("irq_pin")  # /IRQ/CP: open drain, low while IRQ is pending
        self.power_on_us = clock.now_us()
        # registers
        self.cra = 0
        self.crb = 0
        self.rsel = False
        self.tx = 0
        self.status = 0
        self.initialised = False
        self._seq = 0
        # burst state
        self._burst_on = False  # tone part of a burst running
        self._burst_gen = 0  # invalidates stale timer events
        # output state
        self._out = None  # (row_hz, col_hz, row_amp, col_amp) now sounding, or None
        self._out_t0 = 0
        self._out_n = 0  # samples already emitted of the current stretch
        self._driving = False
        self._phi2_level = bus.level(self.phi2) or 0
        # observability for tests
        self.log: list[tuple] = []  # (t_us, "w"|"r", rs0, value)
        self.bus_conflicts = 0
        self.ignored_early = 0
        self.segments: list[tuple[int, int, float, float]] = []  # (start_us, end_us, fr, fc)
        bus.watch(self.phi2, self._on_phi2)
        bus.watch(self.cs, self._on_cs)

    # ---- bus -------------------------------------------------------------------
    def _selected(self) -> bool:
        return self.bus.level(self.cs) == 0

    def _on_cs(self, gpio, level, t_us):
        if level and self._driving:
            self._release()

    def _on_phi2(self, gpio, level, t_us):
        level = level or 0
        if level == self._phi2_level:
            return  # a mode change without an edge
        self._phi2_level = level
        if level:
            if self._selected() and self.bus.level(self.rw) == 1:
                self._drive_read(t_us)
            return
        # falling edge
        if self._driving:
            self._finish_read(t_us)
            return
        if self._selected() and self.bus.level(self.rw) == 0:
            value = 0
            for i, p in enumerate(self.d_pins):
                if self.bus.level(p):
                    value |= 1 << i
            self._write(self.bus.level(self.rs0), value, t_us)

    def _drive_read(self, t_us):
        rs0 = self.bus.level(self.rs0)
        value = self.status if rs0 else 0
        for p in self.d_pins:
            if self.bus.mode(p) == OUT:
                self.bus_conflicts += 1
                break
        for i, p in enumerate(self.d_pins):
            self.bus.drive(p, (value >> i) & 1)
        self._driving = True
        self._read_rs0 = rs0
        self._read_value = value

    def _release(self):
        for p in self.d_pins:
            self.bus.drive(p, None)
        self._driving = False

    def _finish_read(self, t_us):
        self._release()
        rs0 = self._read_rs0
        self.log.append((t_us, "r", rs0, self._read_value))
        if t_us - self.power_on_us < POWER_UP_US:
            self.ignored_early += 1
            return
        if rs0:
            self.status &= ~(ST_IRQ | ST_TX_EMPTY)
            self._irq_out()
            self._track(("rs",))

    def _write(self, rs0, value, t_us):
        self.log.append((t_us, "w", rs0, value))
        if t_us - self.power_on_us < POWER_UP_US:
            self.ignored_early += 1
            return
        if rs0:
            if self.rsel:
                self.crb = value
                self.rsel = False
                if value & CRB_BURST:  # b1 is cleared in non-burst mode
                    self.status &= ~ST_TX_EMPTY
                self._track(("wb", value))
            else:
                self.cra = value
                self.rsel = bool(value & CRA_RSEL)
                self._track(("wc", value))
        else:
            self.tx = value
            self._track(("tx", value))
            if not self.crb & CRB_BURST:
                self._start_burst(t_us)
        self._update(t_us)

    def _track(self, tok):
        if self.initialised:
            return
        if tok == _INIT_SEQ[self._seq]:
            self._seq += 1
            if self._seq == len(_INIT_SEQ):
                self.initialised = True
        else:
            self._seq = 1 if tok == _INIT_SEQ[0] else 0

    # ---- burst timing ----------------------------------------------------------------
    def _start_burst(self, t_us):
        # A transmit write (re)starts a burst: tone for 51 ms, then 51 ms pause, then b1.
        self._burst_gen += 1
        gen = self._burst_gen
        self._burst_on = True  # b1 stays as it is: only a status read clears it (datasheet)
        self.clock.call_at(t_us + BURST_TONE_US, lambda: self._burst_tone_end(gen))
        self.clock.call_at(
            t_us + BURST_TONE_US + BURST_PAUSE_US, lambda: self._burst_pause_end(gen)
        )

    def _burst_tone_end(self, gen):
        if gen != self._burst_gen:
            return
        self._burst_on = False
        self._update(self.clock.now_us())

    def _burst_pause_end(self, gen):
        if gen != self._burst_gen:
            return
        if not self.crb & CRB_BURST:
            self.status |= ST_TX_EMPTY
            if self.cra & CRA_IRQ:
                self.status |= ST_IRQ
                self._irq_out()

    def _irq_out(self):
        if self.irq_pin is not None:
            self.bus.drive(self.irq_pin, 0 if self.status & ST_IRQ else None)

    # ---- tone output -------------------------------------------------------------------
    def _wanted(self):
        if not self.initialised or not self.cra & CRA_TOUT:
            return None
        if not self.crb & CRB_BURST and not self._burst_on:
            return None
        fr, fc = tone_hz(self.tx, self.f_osc)
        ar, ac = self.row_amp, self.col_amp
        if self.crb & CRB_SD:  # single tone test mode: C/R=1 column, 0 row
            if self.crb & CRB_CR:
                ar = 0.0
            else:
                ac = 0.0
        return (fr, fc, ar, ac)

    def _update(self, t_us):
        with self._lock:
            self._update_locked(t_us)

    def _update_locked(self, t_us):
        want = self._wanted()
        if want == self._out:
            return
        if self._out is not None:
            self._emit(t_us)
            fr, fc = self._out[0], self._out[1]
            self.segments.append((self._out_t0, t_us, fr, fc))
        self._out = want
        self._out_t0 = t_us
        self._out_n = 0

    def _emit(self, t_us):
        """Synthesise the current stretch from the last emitted sample up to t_us."""
        fr, fc, ar, ac = self._out
        n_end = round((t_us - self._out_t0) * self.rate / 1e6)
        n0 = self._out_n
        if n_end <= n0:
            return
        t = np.arange(n0, n_end, dtype=np.float64) / self.rate
        v = ar * np.sin(2 * np.pi * fr * t) + ac * np.sin(2 * np.pi * fc * t)
        start_us = self._out_t0 + n0 * 1e6 / self.rate
        self.recorder.add_segment(self.source, start_us, self.rate, v)
        self._out_n = n_end

    def flush(self):
        """Push the part of a tone still sounding up to now (the stretch continues)."""
        with self._lock:
            if self._out is not None:
                self._emit(self.clock.now_us())

    @property
    def sounding(self) -> bool:
        return self._out is not None
