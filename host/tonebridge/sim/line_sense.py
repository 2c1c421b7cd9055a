"""The receive side of a simulated board: what its line sense puts on the ADC pin
(hw/line-interface.md, "Receive path").

The sense amplifier U4 listens across the line (TIP/RING, on the line side of the hook relay
K1, through the isolation transformer T2) with gain ``gain`` and rides on the ADC's mid-rail
bias: ``v_adc = 1.65 V + gain * (line + echo) + noise``. ``line`` is the recorder's line
signal at those instants with the line switches applied (hook relay, mute and the seeded
faults: a relay that does not close, an open transformer, a line attenuated by some dB), i.e.
the voltage the exchange sees; ``echo`` the far end's reflection of it (``echo_db`` below it,
``echo_ms`` later); ``noise`` white noise of ``noise_vrms`` (line noise and the sense stage's
own). Self-test (on hook): the loop relay K2 (``loop_pin`` high) puts the 600 ohm test load
across T1's line winding and the sense on it, so the board hears itself with the line
disconnected; the hook relay gate is then bypassed (the recorder, the exchange's view, stays
silent). ``far_end`` (optional, e.g. ``tonebridge.sim.exchange.Exchange``): what the exchange
and the far end send down the line (volts at ``t_us``: dial tone, ringback, a voice), heard
through the hook relay like the line itself.
"""

from __future__ import annotations

import numpy as np

BIAS_V = 1.65


class LineSense:
    def __init__(
        self,
        recorder,
        switches,
        ainsel: int = 0,
        gain: float = 1.0,
        noise_vrms: float = 0.0003,
        echo_db: float = 26.0,
        echo_ms: float = 3.0,
        seed: int = 1234,
    ):
        self.recorder = recorder
        self.switches = switches
        self.ainsel = ainsel
        self.gain = gain
        self.noise_vrms = noise_vrms
        self.echo_gain = 10 ** (-echo_db / 20) if echo_db is not None else 0.0
        self.echo_us = echo_ms * 1000
        self.rng = np.random.default_rng(seed)
        self.far_end = None  # callable t_us -> volts on the line from the exchange side

    def line(self, t_us: np.ndarray) -> np.ndarray:
        """The ungated sum of the recorder's sources at ``t_us`` (linear interpolation)."""
        rec = self.recorder
        out = np.zeros(t_us.size)
        if not t_us.size:
            return out
        t0, t1 = float(t_us[0]), float(t_us[-1])
        for segs in rec.segments():
            for k in range(len(segs) - 1, -1, -1):
                s, r, v = segs[k]
                end = s + (v.size - 1) * 1e6 / r
                if end < t0 - 5e4:  # segments come in time order (50 ms of slack)
                    break
                if s > t1 or end < t0:
                    continue
                i0 = np.searchsorted(t_us, s, side="left")
                i1 = np.searchsorted(t_us, end, side="right")
                if i1 > i0:
                    tv = s + np.arange(v.size) * (1e6 / r)
                    out[i0:i1] += np.interp(t_us[i0:i1], tv, v)
        return out

    def gated(self, t_us: np.ndarray) -> np.ndarray:
        rec = self.recorder
        x = self.line(t_us)
        loop = self.switches.loop_at(t_us)
        for name in rec.gate_names():
            g = rec.gate_at(name, t_us)
            if name == "hook":
                g = np.maximum(g, loop)  # the loop relay puts the sense on the test load
            x = x * g
        return x * self.switches.line_gain

    def __call__(self, t_us: np.ndarray, ainsel: int) -> np.ndarray:
        t_us = np.asarray(t_us, dtype=np.float64)
        v = np.full(t_us.size, BIAS_V)
        if ainsel == self.ainsel:
            self.recorder.flush()  # what the output models played up to now (e.g. I2S's run)
            x = self.gated(t_us)
            if self.echo_gain:
                x = x + self.echo_gain * self.gated(t_us - self.echo_us)
            if self.far_end is not None:
                hook = self.recorder.gate_at("hook", t_us)
                x = x + self.far_end(t_us) * hook * self.switches.line_gain
            v += self.gain * x
        if self.noise_vrms:
            v += self.rng.normal(0.0, self.noise_vrms, t_us.size)
        return v
