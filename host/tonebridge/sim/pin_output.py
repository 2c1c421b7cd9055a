"""``PinOutput``: a GPIO's PWM pulse train resolved into area-exact sub-samples (at least
``pulse_rate``), fed as a zero-order-hold stream to ``analog.OutputChain``.

The reference model of the pin, and the one for tests that look at the pin itself (single
counter steps of a phase-correct slice, tests/sim/test_rp2_purity.py). Boards use the exact and
cheaper ``PeriodOutput`` unless built with ``SimBoard(pin_model="resolved")``; the two agree
on the line (tests/sim/test_period_chain.py).
"""

from __future__ import annotations

import numpy as np

from .gpio_output import GpioOutput


class PinOutput(GpioOutput):
    # resolve the PWM pulse train at least this finely. The area-exact sub-samples are a box
    # filter: what the pulse train has near multiples of the sub-sample rate (sidebands of the
    # M-th carrier harmonic) folds into the audio band, only attenuated by ~f/rate. At 96 kHz
    # (M = 2 at a 61 kHz carrier) that alone read -60 dB in band where the exact pulse train
    # gives -58; from M ~ 8 on the figure is converged (tests/sim/test_rp2_purity.py).
    pulse_rate = 500_000
    max_oversampling = 256

    def __init__(self, hw, gpio: int, chain, vdd: float = 3.3):
        self.chain = chain
        self._pend: list = []  # (start16, period16, M, volts) waiting to be fed
        self._pend_n = 0
        self.batch = 16384
        super().__init__(hw, gpio, vdd)

    def oversampling(self, pwm_rate: float) -> int:
        """Sub-samples per PWM period so the pulse train is resolved to >= ``pulse_rate``."""
        return int(min(self.max_oversampling, max(1, -(-self.pulse_rate // pwm_rate))))

    def pulse_shape(self, duty, pwm_rate, phase_correct=False, invert=False) -> np.ndarray:
        """The pin's level (0..1) as M area-exact sub-samples per period: the average over each
        1/M of the period of the real pulse (edge-aligned: high for the first ``duty`` of the
        period; phase-correct: high at both ends, ``duty/2`` each). Returns shape (n*M,)."""
        m = self.oversampling(pwm_rate)
        d = duty[:, None]
        j = np.arange(m, dtype=np.float64)[None, :]
        if phase_correct:
            h = d * (m / 2.0)
            x = np.clip(h - j, 0, 1) + np.clip(j + 1 - (m - h), 0, 1)
        else:
            x = np.clip(d * m - j, 0, 1)
        if invert:
            x = 1.0 - x
        return x.reshape(-1)

    def emit_pwm(self, start16, period16, cc, top, phase_correct, invert) -> None:
        duty = np.minimum(cc.astype(np.float64), top + 1) / (top + 1)
        rate = self.hw.freq * 16 / period16
        self._push(
            start16, period16, self.vdd * self.pulse_shape(duty, rate, phase_correct, invert)
        )

    def emit_level(self, start16, step16, volts) -> None:
        self._push(start16, step16, volts)

    def _push(self, start16, period16, volts) -> None:
        """Queue a stream: ``volts`` holds M sub-samples for each period of ``period16``."""
        m = self.oversampling(self.hw.freq * 16 / period16) if period16 else 1
        if volts.size % m:
            m = 1
        self._pend.append((start16, period16, m, volts))
        self._pend_n += volts.size
        if self._pend_n >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Feed everything pending to the analog chain, merging equal-period runs."""
        if not self._pend:
            return
        runs = []
        for st, p, m, v in self._pend:
            r = runs[-1] if runs else None
            if r and r[1] == p and r[2] == m and r[0] + r[4] * p == st:
                r[3].append(v)
                r[4] += v.size // m
            else:
                runs.append([st, p, m, [v], v.size // m])
        self._pend = []
        self._pend_n = 0
        f16 = self.hw.freq * 16
        for st, p, m, parts, _n in runs:
            self.chain.feed(st * 1e6 / f16, f16 * m / p, np.concatenate(parts))
