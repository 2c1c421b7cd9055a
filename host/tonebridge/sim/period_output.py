"""``PeriodOutput``: a GPIO's PWM periods handed to ``period_chain.PeriodChain`` as duty
values, for an exact update of the analog chain once per period (the default model of a
simulated rp2 board's tone pin; ``pin_output.PinOutput`` is the pin-resolved reference)."""

from __future__ import annotations

import numpy as np

from .gpio_output import GpioOutput


class PeriodOutput(GpioOutput):
    batch = 8192  # periods held before they are handed to the chain

    def __init__(self, hw, gpio: int, chain, vdd: float = 3.3):
        self.chain = chain
        self._pend: list = []  # [start16, period16, key, [cc arrays], n]
        self._pend_n = 0
        super().__init__(hw, gpio, vdd)

    def emit_pwm(self, start16, period16, cc, top, phase_correct, invert) -> None:
        self._queue(start16, period16, ("pwm", top, bool(phase_correct), bool(invert)), cc)

    def emit_level(self, start16, step16, volts) -> None:
        self._queue(start16, step16, ("level",), np.asarray(volts, dtype=np.float64))

    def _queue(self, start16, period16, key, values) -> None:
        r = self._pend[-1] if self._pend else None
        if r and r[1] == period16 and r[2] == key and r[0] + r[4] * period16 == start16:
            r[3].append(values)
            r[4] += values.size
        else:
            self._pend.append([start16, period16, key, [values], values.size])
        self._pend_n += values.size
        if self._pend_n >= self.batch:
            self.flush()

    def flush(self) -> None:
        pend, self._pend, self._pend_n = self._pend, [], 0
        f16 = self.hw.freq * 16
        for st, p, key, parts, _n in pend:
            vals = np.concatenate(parts) if len(parts) > 1 else parts[0]
            start_us, period_s = st * 1e6 / f16, p / f16
            if key[0] == "level":
                self.chain.level(start_us, period_s, vals)
            else:
                _, top, pc, inv = key
                self.chain.pwm(start_us, period_s, top + 1, pc, inv, vals, self.vdd)
