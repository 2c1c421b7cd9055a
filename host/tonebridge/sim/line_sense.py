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
        """The ungated sum of the recorder's sources at ``t_us``."""
        return self.recorder.values_at(t_us)

    def gain_at(self, t_us: np.ndarray):
        """What the line switches pass to the sense at ``t_us`` (0/1 times the line's gain):
        a number while no switch moves in that span, else one value per instant."""
        rec = self.recorder
        t0, t1 = float(t_us.min()), float(t_us.max())
        g = self.switches.line_gain
        for name in rec.gate_names():
            level = rec.gate_level(name, t0, t1)
            if name == "hook":  # the loop relay puts the sense on its test load
                loop = self.switches.loop_level(t0, t1)
                if level is not None and loop is not None:
                    level = max(level, loop)
                else:
                    level = None
                if level is None:
                    x = np.maximum(rec.gate_at(name, t_us), self.switches.loop_at(t_us))
            elif level is None:
                x = rec.gate_at(name, t_us)
            g = g * (level if level is not None else x)
        return g

    def gated(self, t_us: np.ndarray) -> np.ndarray:
        return self.line(t_us) * self.gain_at(t_us)

    def __call__(self, t_us: np.ndarray, ainsel: int) -> np.ndarray:
        t_us = np.asarray(t_us, dtype=np.float64)
        v = np.full(t_us.size, BIAS_V)
        if ainsel == self.ainsel and t_us.size:
            self.recorder.flush()  # what the output models played up to now (e.g. I2S's run)
            if self.echo_gain:  # the line now and as it was echo_ms ago, in one look
                tt = np.concatenate((t_us, t_us - self.echo_us))
                x = self.gated(tt)
                x = x[: t_us.size] + self.echo_gain * x[t_us.size :]
            else:
                x = self.gated(t_us)
            if self.far_end is not None:
                hook = self.recorder.gate_at("hook", t_us)
                x = x + self.far_end(t_us) * hook * self.switches.line_gain
            v += self.gain * x
        if self.noise_vrms:
            v += self.rng.normal(0.0, self.noise_vrms, t_us.size)
        return v
