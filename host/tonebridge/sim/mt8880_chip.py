"""Bus-level model of the MT8880 / CM8880 DTMF transceiver (transmit side).

The model attaches to a simulated board's ``PinBus``: it watches /CS, phi2, R/W, RS0 and D0-D3,
latches writes on the phi2 falling edge (with /CS low, R/W low), drives D0-D3 (``bus.drive``)
while phi2 is high during a read, and releases them when phi2 falls.

Registers (datasheet, see docs/mt8880.md):
  RS0=0 write: transmit data (4-bit code); RS0=0 read: receive data (the code the receiver,
  sim/mt8880_rx.py, latched; reading it clears b2). The receiver runs when ``listen(source)``
  gave it its input (IN+/IN-); it is brought up to date before each register read and, while
  CRA.IRQ is set, every ``IRQ_POLL_US`` so that IRQ/CP falls in time.
  CRA.CP (call-progress mode, sim/mt8880_cp.py): with CRA.IRQ, the IRQ/CP pin carries the
  line's band-passed signal as a rectangular wave; the receiver latches nothing.
  RS0=1 write: control register A, or B when the previous control write was a CRA write with
  b3 (RSEL) set; RS0=1 read: status (b0 IRQ, b1 transmit register empty, b2 rx full, b3
  delayed steering). Reading the status clears b0 and b1.

Power-up: the chip transmits nothing until the datasheet initialisation has been done at
least ``POWER_UP_US`` after power-on: read status, CRA=0, CRA=0, CRA=8, CRB=0, read status,
in that order (other bus accesses in between restart the sequence; accesses before
``POWER_UP_US`` are ignored, the chip's internal reset is still running).

Tone output = initialised AND CRA.TOUT AND (manual mode: always / burst mode: during the
chip-timed 51 ms burst that follows each transmit write). Each stretch of output is synthesised
with numpy when it ends (or on ``flush()``) and pushed to the board's line recorder as one
sampled segment.

Tone generation, as the datasheet family (MT8880C, MT8885, MT88L85/89, Clare M-8880) describes
it: "the period of each tone consists of 32 equal time segments"; a programmable divider (N, per
tone) sets the segment length, so each segment lasts N oscillator cycles and f = f_osc / (32 N);
a counter clocked by the divider addresses a sine lookup ROM whose codes drive a switched
capacitor D/A converter ("discrete and highly accurate DC voltage levels"); row and column
staircases are summed ("low noise summing amplifier") and "followed by a first-order lowpass
switched capacitor filter" that "attenuate[s] distortion products above 8 kHz". Modelled
exactly that way: per group a 32-step staircase (ROM = sin(2 pi (k + 1/2) / 32), exact levels),
rendered area-exact at ``sample_rate`` (384 kHz: the staircase's images reach far above the
audio band and must not alias), summed, then a first-order low-pass at ``FILTER_HZ`` (8 kHz;
the datasheet gives no corner, only "above 8 kHz"; modelled continuous-time). A 32-step
staircase has harmonics only at 32k +- 1 times the tone, each 1/n of the fundamental (31st
-29.8 dB, 33rd -30.4 dB) before the filter; nothing of it falls in 300-3400 Hz. The counters
restart at each burst (step 0), so a burst rises within the filter's time constant (20 us).
Levels: the group amplitudes are set so the *output* (after the filter) has ``row_vrms`` and
+``twist_db`` (the datasheet's "typically 2 dB"); the datasheet's output level, THD and rise
time figures were not retrieved (hw/line-interface.md): ``ROW_VRMS`` is an unconfirmed default.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from scipy import signal

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
IRQ_POLL_US = 2_000
BURST_TONE_US = 51_000
BURST_PAUSE_US = 51_000

# Output level into the line (AC volts RMS). The datasheet figure was not retrieved: we use
# -16 dBm (re 0.775 V) for the low group and +2 dB for the high group (unconfirmed defaults).
ROW_VRMS = 0.775 * 10 ** (-16 / 20)

_INIT_SEQ = (("rs",), ("wc", 0), ("wc", 0), ("wc", 8), ("wb", 0), ("rs",))

SEGMENTS = 32  # time segments per tone period (datasheet)
FILTER_HZ = 8000.0  # the output's first-order low-pass (see the module docstring)
# sine lookup ROM: one level per segment, centred in it (exact: "highly accurate" levels)
ROM = np.sin(2 * np.pi * (np.arange(SEGMENTS) + 0.5) / SEGMENTS)
_ROM_CUM = np.concatenate([[0.0], np.cumsum(ROM)[:-1]])  # sum of the segments before k
# fundamental of the staircase relative to the ROM's peak: sin(pi/32) / (pi/32)
STAIR_FUND = math.sin(math.pi / SEGMENTS) / (math.pi / SEGMENTS)


def staircase_average(f_osc: float, n_div: int, t0: float, t1: np.ndarray) -> np.ndarray:
    """Average of the unit staircase (ROM levels, segment k from k N / f_osc) over each bin
    [t1[i-1], t1[i]) with t1[-1] = t0 before the first: area-exact, in closed form (the
    staircase's integral is piecewise linear; a whole period sums to 0)."""

    def integral(t):
        u = np.asarray(t) * f_osc / n_div  # in segments
        k = np.floor(u)
        m = (k % SEGMENTS).astype(np.int64)
        return _ROM_CUM[m] + (u - k) * ROM[m]

    edges = np.concatenate([[t0], t1])
    i = integral(edges)
    return np.diff(i) / (np.diff(edges) * f_osc / n_div)


def output_gain(f: float) -> float:
    """|H| of the output low-pass at f."""
    return 1.0 / math.hypot(1.0, f / FILTER_HZ)


def tone_hz(code: int, f_osc: float = F_OSC) -> tuple[float, float]:
    r, c = CODE_RC[code & 0xF]
    return f_osc / (32 * ROW_N[r]), f_osc / (32 * COL_N[c])


def _divisors(fr: float, fc: float, f_osc: float) -> tuple[int, int]:
    return round(f_osc / (32 * fr)), round(f_osc / (32 * fc))


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
        sample_rate: int = 384_000,
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
        self._lp_a = math.exp(-2 * math.pi * FILTER_HZ / sample_rate)  # exact for ZOH input
        self._lp_y = 0.0
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
        self.rx_data = 0
        self.rx = None  # the receiver (listen())
        self.cp = None  # the call-progress filter (listen(); mt8880_cp.py)
        self._irq_timer = None
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

    # ---- receive side -------------------------------------------------------------------
    def listen(self, source):
        """Give the receiver its input: ``source(t_us array) -> volts`` across IN+/IN-."""
        from .mt8880_cp import CallProgressFilter
        from .mt8880_rx import ChipReceiver

        self.rx = ChipReceiver(source, self.clock.now_us(), self._rx_latch, self._rx_release)
        self.cp = CallProgressFilter(source, self.clock.now_us())  # CP mode (mt8880_cp.py)

    def _rx_advance(self, t_us):
        # (the firmware reads the status every ms, the receiver decides every 2 ms hop: the
        # line is only needed, and flushed, when a hop is due)
        if self.rx is not None and self.rx.due(t_us):
            self.recorder.flush()  # the line's signal up to now (our own tone included)
            self.rx.advance(t_us)

    def _rx_latch(self, code, t_us):
        self.rx_data = code
        self.status |= ST_RX_FULL | ST_DSTEER
        if self.cra & CRA_IRQ:
            self.status |= ST_IRQ
            self._irq_out()

    def _rx_release(self, t_us):
        self.status &= ~ST_DSTEER

    def _irq_poll(self):
        self._irq_timer = None
        if self.rx is None or not self.cra & CRA_IRQ:
            return
        self._rx_advance(self.clock.now_us())
        self._irq_timer = self.clock.call_at(self.clock.now_us() + IRQ_POLL_US, self._irq_poll)

    def _drive_read(self, t_us):
        rs0 = self.bus.level(self.rs0)
        if t_us - self.power_on_us >= POWER_UP_US:
            self._rx_advance(t_us)
        value = self.status if rs0 else self.rx_data
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
        else:
            self.status &= ~ST_RX_FULL

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
                was_cp = self.cra & CRA_CP and self.cra & CRA_IRQ
                self.cra = value
                self.rsel = bool(value & CRA_RSEL)
                cp = value & CRA_CP and value & CRA_IRQ
                if self.rx is not None:
                    self._rx_advance(t_us)  # (up to the mode change)
                    self.rx.deaf = bool(value & CRA_CP)  # CP mode: no DTMF decoding
                if cp and not was_cp and self.cp is not None:
                    self.cp.restart(t_us)
                if bool(cp) != bool(was_cp):
                    self._irq_out()
                if value & CRA_IRQ and self.rx is not None and self._irq_timer is None:
                    self._irq_timer = self.clock.call_at(t_us + IRQ_POLL_US, self._irq_poll)
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
        k = 2 if self.cra & CRA_CP else 1  # CP and burst mode: 102 ms bursts (datasheet)
        self.clock.call_at(t_us + k * BURST_TONE_US, lambda: self._burst_tone_end(gen))
        self.clock.call_at(
            t_us + k * (BURST_TONE_US + BURST_PAUSE_US), lambda: self._burst_pause_end(gen)
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
        if self.irq_pin is None:
            return
        if self.cp is not None and self.cra & CRA_CP and self.cra & CRA_IRQ:
            # call-progress mode: the pin carries the band-passed line as a rectangular wave
            self.bus.drive(self.irq_pin, self.cp.level)
            return
        self.bus.drive(self.irq_pin, 0 if self.status & ST_IRQ else None)

    # ---- tone output -------------------------------------------------------------------
    def _wanted(self):
        if not self.initialised or not self.cra & CRA_TOUT:
            return None
        if not self.crb & CRB_BURST and not self._burst_on:
            return None
        fr, fc = tone_hz(self.tx, self.f_osc)
        # staircase peaks such that the filtered output's fundamentals have the set levels
        ar = self.row_amp / (STAIR_FUND * output_gain(fr))
        ac = self.col_amp / (STAIR_FUND * output_gain(fc))
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
        self._lp_y = 0.0  # the counters restart at step 0; the filter starts at rest

    def _emit(self, t_us):
        """Synthesise the current stretch from the last emitted sample up to t_us."""
        fr, fc, ar, ac = self._out
        n_end = round((t_us - self._out_t0) * self.rate / 1e6)
        n0 = self._out_n
        if n_end <= n0:
            return
        t1 = np.arange(n0 + 1, n_end + 1, dtype=np.float64) / self.rate
        t0 = n0 / self.rate
        nr, nc = _divisors(fr, fc, self.f_osc)
        x = ar * staircase_average(self.f_osc, nr, t0, t1) + ac * staircase_average(
            self.f_osc, nc, t0, t1
        )
        a = self._lp_a
        # first-order low-pass, exact for the piecewise-constant (area-averaged) input
        v, zf = signal.lfilter([1.0 - a], [1.0, -a], x, zi=[a * self._lp_y])
        self._lp_y = float(v[-1])
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
