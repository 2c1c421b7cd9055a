"""A scripted exchange for the simulated line: what the far side sends down a board's line, in
virtual time, for call-progress tests and demos (``LineSense.far_end``).

    ex = Exchange("us", level_dbm=-13)
    ex.at(0, "dial")            # from t = 0 s: dial tone (the country's, cptones.py)
    ex.at(2.5, "ringing")       # ringback, its cadence from 2.5 s
    ex.at(9.0, "voice")         # the far end answers: a speech-like signal
    board.sense.far_end = ex    # heard through the hook relay (only while off-hook)

Tones come from the firmware's own table (tonebridge_fw.cptones), so a country added there
can be scripted here; "silence" sends nothing, "voice" a gliding harmonic series in
syllables (not a tone of any country). Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
from tonebridge_fw import cptones


def _volts(dbm: float) -> float:
    """Peak volts of a sine of `dbm` into 600 ohm."""
    return float(np.sqrt(2 * 600 * 1e-3 * 10 ** (dbm / 10)))


class Exchange:
    def __init__(self, country: str = "us", level_dbm: float = -13.0, seed: int = 7):
        self.country = country
        self.signals = {}
        for state, freqs, cadence, need in cptones.country(country)[2]:
            self.signals.setdefault(state, (freqs, cadence if need else ()))
        self.amp = _volts(level_dbm)
        self.script: list[tuple[float, str]] = []
        rng = np.random.default_rng(seed)
        self._syll = rng.uniform(0.12, 0.35, 200)
        self._gaps = rng.uniform(0.04, 0.25, 200)
        self._f0 = rng.uniform(90, 230, 200)

    def at(self, t_s: float, what: str) -> Exchange:
        if what not in self.signals and what not in ("silence", "voice"):
            raise ValueError(f"{self.country} has no {what!r} (known: {sorted(self.signals)})")
        self.script.append((t_s * 1e6, what))
        self.script.sort()
        return self

    def __call__(self, t_us) -> np.ndarray:
        t_us = np.asarray(t_us, dtype=np.float64)
        out = np.zeros(t_us.size)
        for k, (t0, what) in enumerate(self.script):
            t1 = self.script[k + 1][0] if k + 1 < len(self.script) else np.inf
            sel = (t_us >= t0) & (t_us < t1)
            if not sel.any():
                continue
            rel = (t_us[sel] - t0) / 1e6  # s since this part of the script began
            t = t_us[sel] / 1e6
            if what == "voice":
                out[sel] = self._voice(rel, t)
            elif what != "silence":
                freqs, cadence = self.signals[what]
                x = sum(np.sin(2 * np.pi * f * t) for f in freqs) * self.amp / len(freqs) ** 0.5
                if cadence:
                    period = sum(cadence) / 1000
                    ph = np.mod(rel, period) * 1000
                    on = np.zeros(ph.size, dtype=bool)
                    edge = 0
                    for i, ms in enumerate(cadence):
                        if i % 2 == 0:
                            on |= (ph >= edge) & (ph < edge + ms)
                        edge += ms
                    x = x * on
                out[sel] = x
        return out

    def _voice(self, rel, t):
        x = np.zeros(rel.size)
        start = 0.0
        for i in range(len(self._syll)):
            d, g = self._syll[i], self._gaps[i]
            m = (rel >= start) & (rel < start + d)
            if m.any():
                u = (rel[m] - start) / d
                f0 = self._f0[i]
                s = sum(np.sin(2 * np.pi * h * f0 * t[m]) / h for h in range(1, 12))
                x[m] = self.amp * 0.6 * np.sin(np.pi * u) * s
            start += d + g
            if start > rel.max():
                break
        return x
