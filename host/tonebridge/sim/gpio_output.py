"""The voltage of one rp2 GPIO over time, on its way into the analog chain.

In PWM function the pin follows its slice period by period (the CC latched at each period's
start); otherwise it holds its SIO level (or 0 V floating), emitted as a zero-order-hold stream
at ``static_rate``. ``GpioOutput`` keeps that bookkeeping; its subclasses say what the chain is
given for a run of PWM periods: ``PinOutput`` resolves each pulse into area-exact sub-samples
(pin_output.py), ``PeriodOutput`` hands over the duty values for an exact per-period update of
the filter (period_output.py).
"""

from __future__ import annotations

import numpy as np


class GpioOutput:
    static_rate = 48_000
    lazy_s = 0.05  # catch_up() emits once this much is pending (sync() at once)

    def __init__(self, hw, gpio: int, vdd: float = 3.3):
        self.hw = hw
        self.gpio = gpio
        self.vdd = vdd
        self.done16 = hw.t16()  # output emitted up to here
        self._level = self._sio_level()
        hw.bus.watch(gpio, self._on_pin)

    # ---- what subclasses provide -------------------------------------------------------
    def emit_pwm(self, start16, period16, cc, top, phase_correct, invert) -> None:
        """Periods from ``start16``, one CC value (this pin's channel) per period."""
        raise NotImplementedError

    def emit_level(self, start16, step16, volts) -> None:
        """A zero-order-hold stream: ``volts[k]`` for ``step16`` from ``start16 + k step16``."""
        raise NotImplementedError

    def flush(self) -> None:
        """Hand everything emitted so far to the analog chain."""
        raise NotImplementedError

    # ---- bookkeeping ----------------------------------------------------------------------
    def _sio_level(self) -> float:
        bus = self.hw.bus
        lv = bus.level(self.gpio) if bus.function(self.gpio) == "sio" else 0
        return self.vdd * (lv or 0)

    def _on_pin(self, gpio, level, t_us) -> None:
        # a GPIO level change: what came before it is emitted with the level it had
        with self.hw.lock:
            if not self.pwm_live():
                self._static(self.hw.t16(t_us))
            self._level = self._sio_level()

    def pwm_live(self) -> bool:
        s = self.hw.slices[self.hw.slice_of(self.gpio)]
        return s.running and self.hw.bus.function(self.gpio) == "pwm"

    def pwm_periods(self, start16, period16, cc, top, phase_correct=False, invert=False) -> None:
        """Periods of this pin's slice (called by the slice through ``Rp2Hardware``); what
        was already emitted is skipped, a gap before them is the static level."""
        end16 = start16 + period16 * cc.size
        if end16 <= self.done16:
            return
        if start16 < self.done16:
            skip = -(-(self.done16 - start16) // period16)
            cc = cc[skip:]
            start16 += skip * period16
            if cc.size == 0:
                return
        if start16 > self.done16:
            self._static(start16)
        self.emit_pwm(start16, period16, cc, top, phase_correct, invert)
        self.done16 = start16 + period16 * cc.size

    def _static(self, until16: int) -> None:
        if until16 <= self.done16:
            return
        step = round(self.hw.freq * 16 / self.static_rate)
        n = (until16 - self.done16) // step
        if n <= 0:
            return
        self.emit_level(self.done16, step, np.full(n, self._level))
        self.done16 += n * step

    def catch_up(self, t16: int) -> None:
        """Time moved on: emit once ``lazy_s`` of output is pending. Deferring is exact: a
        slice's CC log keeps every write until its periods are emitted, and everything that
        changes the pin's regime (slice registers, pin function, pin level) calls ``sync``
        first."""
        if t16 - self.done16 >= self.lazy_s * 16 * self.hw.freq:
            self.sync(t16)

    def sync(self, t16: int) -> None:
        if self.pwm_live():
            self.hw.slices[self.hw.slice_of(self.gpio)].emit_until(t16)
        else:
            self._static(t16)

    def regime_changed(self, t16: int) -> None:
        pass
