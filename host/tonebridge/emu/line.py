"""The emulated board's line signal: GPIO level changes (with their emulated timestamps) through
the simulator's analog chain into its line recorder.

The tone pin's levels become an area-exact zero-order-hold stream: the pin's average level over
each ``bin_ns`` (128 system clocks = 1.024 us, 16 bins per 61 kHz PWM period), times VDD, fed to
``tonebridge.sim.analog.OutputChain`` (the filter of hw/filter.json), so the carrier and the
pulse edges reach the filter as they are. The bins run on the emulator's clock, not the PWM
slice's period, so a pulse straddles bins differently from period to period; that costs the
symmetric pulses their cancellation of even-order products unless the bins are fine: with
2.048 us bins (8 per period) the same pulses read -60 to -74 dB unwanted in band depending on
where the period starts (the real image's line of key 5 read -65 dB where its duty values,
recovered from the edges, give -73.0 dB as in the simulator); with 1.024 us bins -71.8 to
-73.6 dB, with 512 ns -73.5 dB whatever the start (tests/emu/test_edge_line.py,
test_line_audio.py). 1.024 us because this work paces the emulator: at 512 ns the emulated
board ran ~1.5 x slower against the wall clock, enough for link timeouts on a loaded host. The
chain's output is kept every ``keep_ns`` (2.048 us, 488 kHz, what the recorder held before):
the chain's exact zero-order-hold form gives the continuous output at each bin's start, so
every 2nd sample is the line at that instant, and what lies above 244 kHz (folded by keeping
every 2nd) has been through the filter's stop band; the recorder's memory stays as it was. The hook relay and mute pins drive the same
``LineSwitches`` the simulator uses. A pin that floats (input, reset) reads 0 V on the tone path,
on-hook on the hook pin (pull-down) and muted on the mute pin (pull-up), as on the board.
"""

from __future__ import annotations

import numpy as np

from tonebridge.sim.analog import OutputChain
from tonebridge.sim.line_recorder import LineRecorder
from tonebridge.sim.line_switches import LineSwitches

# rp2040js GPIOPinState: 0 low, 1 high, anything else an input (floating / pulled)
LOW, HIGH = 0, 1


def pin_level(state: int):
    return 1 if state == HIGH else 0 if state == LOW else None


class _Every:
    """Passes every ``k``-th sample of each segment on to the recorder (segments start on the
    keep grid and hold a whole number of ``k`` samples, so the kept ones stay on it)."""

    def __init__(self, recorder, k: int):
        self.recorder = recorder
        self.k = k

    def add_segment(self, source: str, start_us: float, rate: float, volts) -> None:
        self.recorder.add_segment(source, start_us, rate / self.k, np.asarray(volts)[:: self.k])


class EdgeLine:
    def __init__(
        self,
        profile: dict,
        recorder: LineRecorder | None = None,
        *,
        vdd: float = 3.3,
        bin_ns: float = 1024.0,
        keep_ns: float = 2048.0,
        relay_us: int = 5000,
    ):
        self.recorder = recorder or LineRecorder(drop_gated=True)
        self.tone_pin = profile.get("pwm_pin")
        self.switches = LineSwitches(self.recorder, profile, 0.0, relay_us)
        self.vdd = vdd
        self.bin_ns = float(bin_ns)
        self.rate = 1e9 / self.bin_ns
        self.keep = int(round(keep_ns / bin_ns))
        if self.keep < 1 or abs(self.keep * self.bin_ns - keep_ns) > 1e-9:
            raise ValueError("keep_ns must be a whole number of bins")
        self.keep_ns = float(keep_ns)
        self.chain = OutputChain(_Every(self.recorder, self.keep), "pwm")
        self.level = 0.0  # tone pin level (0..1) after the last edge seen
        self.done_ns = 0.0  # the stream is emitted up to here (a multiple of bin_ns)
        self._pt = np.empty(0)  # tone edges not yet emitted (t_ns, level)
        self._pv = np.empty(0)
        self.edges = 0
        self.upto_ns = 0.0

    def pins(self) -> tuple:
        return tuple(
            p
            for p in (self.tone_pin, self.switches.hook_pin, self.switches.mute_pin)
            if p is not None
        )

    def feed(self, upto_ns: float, t_ns, gpio, state) -> None:
        """A batch of level changes, complete up to ``upto_ns``."""
        t_ns = np.asarray(t_ns, dtype=np.float64)
        gpio = np.asarray(gpio)
        state = np.asarray(state)
        sw = self.switches
        for pin, fn in ((sw.hook_pin, sw.hook_changed), (sw.mute_pin, sw.mute_changed)):
            if pin is None:
                continue
            for t, s in zip(t_ns[gpio == pin].tolist(), state[gpio == pin].tolist(), strict=True):
                fn(pin_level(s), t / 1000.0)
        sel = gpio == self.tone_pin
        if sel.any():
            self._pt = np.concatenate([self._pt, t_ns[sel]])
            self._pv = np.concatenate([self._pv, (state[sel] == HIGH).astype(np.float64)])
            self.edges += int(sel.sum())
        self.upto_ns = max(self.upto_ns, float(upto_ns))
        self._emit(np.floor(self.upto_ns / self.keep_ns) * self.keep_ns)

    def _emit(self, end: float) -> None:
        start = self.done_ns
        if end <= start:
            return
        k = np.searchsorted(self._pt, end, side="left")
        et, ev = self._pt[:k], self._pv[:k]
        self._pt, self._pv = self._pt[k:], self._pv[k:]
        # piecewise-constant level: times[j] .. times[j+1] at levels[j]
        times = np.concatenate([[start], np.maximum(et, start), [end]])
        levels = np.concatenate([[self.level], ev])
        area = np.concatenate([[0.0], np.cumsum(levels * np.diff(times))])
        n = int(round((end - start) / self.bin_ns))
        grid = start + self.bin_ns * np.arange(n + 1)
        j = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, levels.size - 1)
        h = area[j] + levels[j] * (grid - times[j])
        h[-1] = area[-1]
        volts = self.vdd * np.diff(h) / self.bin_ns
        if ev.size:
            self.level = float(ev[-1])
        self.chain.feed(start / 1000.0, self.rate, volts)
        self.done_ns = end
