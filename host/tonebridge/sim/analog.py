"""Analog side of a simulated board: the tone output chain and the line recorder.

``OutputChain`` turns a pin's average voltage per PWM period (a zero-order-hold stream) into the
voltage the line sees, through the reconstruction filter whose component values are in
``hw/filter.json``: the analog transfer function is built from those values and discretised
exactly for a piecewise-constant input (``cont2discrete(method="zoh")``) at the stream's rate, so
each output sample is the continuous filter output at that instant.

``LineRecorder`` collects, per source, ``(start_us, rate, volts)`` segments and renders one
continuous line signal at any output rate, multiplied by the line switches ("gates": hook relay,
mute) at the times they changed.

``LineSwitches`` turns the board's hook and mute pin levels into the recorder's gates;
``LineInterface`` feeds it from the simulator's pin bus (the emulated board, ``tonebridge.emu``,
feeds it from the emulated chip's GPIO).
"""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import numpy as np
from scipy import signal

_REPO = Path(__file__).resolve().parents[3]
FILTER_JSON = _REPO / "hw" / "filter.json"


def load_filter_spec(path=None) -> dict:
    with open(path or FILTER_JSON) as f:
        return json.load(f)


def analog_tf(spec: dict):
    """(num, den) polynomials in s of the chain described by ``spec['stages']``."""
    num = np.array([1.0])
    den = np.array([1.0])
    for st in spec["stages"]:
        kind = st["type"]
        if kind == "rc_lowpass":
            tau = st["r_ohm"] * st["c_f"]
            n, d = [1.0], [tau, 1.0]
        elif kind == "rc_highpass":
            tau = st["r_ohm"] * st["c_f"]
            n, d = [tau, 0.0], [tau, 1.0]
        elif kind == "sallen_key_lowpass":
            r1, r2, c1, c2 = st["r1_ohm"], st["r2_ohm"], st["c1_f"], st["c2_f"]
            n, d = [1.0], [r1 * r2 * c1 * c2, c2 * (r1 + r2), 1.0]
        elif kind == "gain":
            n, d = [float(st["gain"])], [1.0]
        else:
            raise ValueError(f"unknown filter stage type {kind!r}")
        num = np.polymul(num, n)
        den = np.polymul(den, d)
    return num, den


def response_db(spec: dict, freqs_hz) -> np.ndarray:
    num, den = analog_tf(spec)
    _, h = signal.freqs(num, den, worN=2 * np.pi * np.asarray(freqs_hz, dtype=float))
    return 20 * np.log10(np.abs(h))


class OutputChain:
    """Filter a ZOH voltage stream (any rate, rate may change between calls) and push it to
    the recorder as ``source``. The filter state carries across calls."""

    def __init__(self, recorder, source: str, spec: dict | None = None):
        self.recorder = recorder
        self.source = source
        self.spec = spec or load_filter_spec()
        self._num, self._den = analog_tf(self.spec)
        self._cache: dict[float, tuple] = {}
        self._rate = None
        self._zi = None
        self._last_in = 0.0
        self.end_us = None

    def _coeffs(self, rate: float):
        c = self._cache.get(rate)
        if c is None:
            b, a, _ = signal.cont2discrete((self._num, self._den), 1.0 / rate, method="zoh")
            b = np.atleast_1d(np.squeeze(b))
            a = np.atleast_1d(a)
            c = (b, a, signal.lfilter_zi(b, a))
            self._cache[rate] = c
        return c

    def feed(self, start_us: float, rate: float, volts: np.ndarray) -> None:
        volts = np.asarray(volts, dtype=np.float64)
        if volts.size == 0:
            return
        b, a, zi_unit = self._coeffs(rate)
        if self._rate != rate or self._zi is None:
            # (re)start in the steady state of the last input level: rate changes only
            # happen when the PWM is reconfigured, i.e. while the output sits at one level
            self._zi = zi_unit * self._last_in
            self._rate = rate
        out, self._zi = signal.lfilter(b, a, volts, zi=self._zi)
        self._last_in = float(volts[-1])
        self.recorder.add_segment(self.source, start_us, rate, out)
        self.end_us = start_us + volts.size * 1e6 / rate


class LineRecorder:
    """Line signal of one board, assembled from per-source sampled segments."""

    def __init__(self, drop_gated: bool = False):
        """``drop_gated``: do not store segments the line switches cut off entirely (on-hook
        or muted throughout): the rendered line is the same, memory stays bounded for a
        board left running (``samples(gated=False)`` then lacks those stretches)."""
        self._segs: dict[str, list] = {}
        self._gates: dict[str, list] = {}
        self._flushers: list = []
        self.drop_gated = drop_gated
        self.dropped_samples = 0
        self._end = 0.0

    # ---- producers ---------------------------------------------------------------
    def add_segment(self, source: str, start_us: float, rate: float, volts) -> None:
        v = np.asarray(volts, dtype=np.float64)
        if not v.size:
            return
        end = float(start_us) + v.size * 1e6 / rate
        self._end = max(self._end, end)
        if self.drop_gated and self._cut_throughout(float(start_us), end):
            self.dropped_samples += v.size
            return
        self._segs.setdefault(source, []).append((float(start_us), float(rate), v))

    def _cut_throughout(self, t0: float, t1: float) -> bool:
        for ev in self._gates.values():
            state = None
            for t, closed in ev:
                if t <= t0:
                    state = closed
                elif t <= t1:
                    state = None  # the switch moves inside the segment
                    break
                else:
                    break
            if state is False:
                return True
        return False

    add = add_segment

    def add_flusher(self, fn) -> None:
        """``fn()`` is called before rendering so models push what they hold up to now."""
        self._flushers.append(fn)

    def set_gate(self, name: str, t_us: float, closed: bool) -> None:
        """A switch in series with the line (hook relay, mute): closed passes the signal."""
        ev = self._gates.setdefault(name, [])
        if ev and ev[-1][0] > t_us:
            raise ValueError("gate events must come in time order")
        ev.append((float(t_us), bool(closed)))

    def gate_log(self, name: str) -> list:
        return list(self._gates.get(name, []))

    # ---- consumers ---------------------------------------------------------------
    def flush(self) -> None:
        for fn in self._flushers:
            fn()

    def sources(self) -> list:
        return sorted(self._segs)

    def end_us(self) -> float:
        self.flush()
        end = self._end
        for segs in self._segs.values():
            for s, r, v in segs:
                end = max(end, s + v.size * 1e6 / r)
        return end

    def _runs(self, source):
        """Merge contiguous same-rate segments into runs: (start_us, rate, volts)."""
        runs = []
        for s, r, v in sorted(self._segs.get(source, []), key=lambda x: x[0]):
            if runs:
                s0, r0, parts, n0 = runs[-1]
                if r0 == r and abs(s0 + n0 * 1e6 / r0 - s) < 0.5e6 / r:
                    parts.append(v)
                    runs[-1] = (s0, r0, parts, n0 + v.size)
                    continue
            runs.append((s, r, [v], v.size))
        return [(s, r, np.concatenate(p) if len(p) > 1 else p[0]) for s, r, p, _ in runs]

    def samples(
        self,
        rate: float = 22050,
        start_us: float = 0.0,
        end_us: float | None = None,
        sources=None,
        gated: bool = True,
    ) -> np.ndarray:
        """The line voltage sampled at ``rate`` from ``start_us`` to ``end_us`` (default: end
        of the last segment)."""
        self.flush()
        if end_us is None:
            end_us = self.end_us()
        n = max(0, int(np.floor((end_us - start_us) * rate / 1e6)))
        t = start_us + np.arange(n) * (1e6 / rate)
        out = np.zeros(n)
        for src in sources or self.sources():
            for s, r, v in self._runs(src):
                if v.size == 0:
                    continue
                tv_end = s + (v.size - 1) * 1e6 / r
                i0 = np.searchsorted(t, s, side="left")
                i1 = np.searchsorted(t, tv_end, side="right")
                if i1 <= i0:
                    continue
                tv = s + np.arange(v.size) * (1e6 / r)
                if r > 1.1 * rate and v.size > 60:
                    v = self._anti_alias(v, r, rate)
                out[i0:i1] += np.interp(t[i0:i1], tv, v)
        if gated:
            for name in self._gates:
                out *= self.gate_at(name, t)
        return out

    _aa_cache: dict = {}

    @classmethod
    def _anti_alias(cls, v, r, rate):
        """Zero-phase low-pass below the output Nyquist before resampling (as any recorder's
        anti-aliasing filter would): nothing above rate/2 folds back into the band."""
        key = (r, rate)
        sos = cls._aa_cache.get(key)
        if sos is None:
            sos = signal.butter(8, 0.45 * rate, fs=r, output="sos")
            cls._aa_cache[key] = sos
        return signal.sosfiltfilt(sos, v)

    def gate_at(self, name: str, t_us) -> np.ndarray:
        ev = self._gates.get(name, [])
        t_us = np.asarray(t_us, dtype=np.float64)
        if not ev:
            return np.ones_like(t_us)
        times = np.array([e[0] for e in ev])
        vals = np.array([1.0 if e[1] else 0.0 for e in ev])
        idx = np.searchsorted(times, t_us, side="right") - 1
        res = np.where(idx >= 0, vals[np.clip(idx, 0, None)], 1.0 if not ev else 0.0)
        return res

    def write_wav(self, path, rate: int = 22050, full_scale_v: float = 2.0, **kw) -> int:
        """Write the line signal as 16-bit mono WAV (``full_scale_v`` volts = full scale).
        Returns the number of samples written."""
        x = self.samples(rate, **kw)
        pcm = np.clip(np.round(x / full_scale_v * 32767), -32768, 32767).astype("<i2")
        tmp = f"{path}.tmp{os.getpid()}"
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(rate))
            w.writeframes(pcm.tobytes())
        os.replace(tmp, path)
        return pcm.size


class LineSwitches:
    """Hook relay and tone mute of a board (hw/line-interface.md) as switches in the line.

    hook_pin high = relay energised = off-hook (line connected); a pull-down keeps the board
    on-hook while the pin floats (reset, crash). mute_pin high = tone path shunted; a pull-up
    keeps it muted while floating. Before the firmware touches them: on-hook and muted.
    Pin levels come in through ``hook_changed`` / ``mute_changed`` (1, 0 or None =
    floating), from the simulator's pin bus (``LineInterface``) or from an emulated chip's
    GPIO (``tonebridge.emu``); the relay closes ``relay_us`` after its pin.
    """

    def __init__(self, recorder, profile: dict, t_us: float, relay_us: int = 0):
        self.recorder = recorder
        self.hook_pin = profile.get("hook_pin")
        self.mute_pin = profile.get("mute_pin")
        self.relay_us = relay_us
        self.off_hook = False
        self.muted = True
        self.hook_log: list[tuple[int, bool]] = []  # (t_us, off_hook)
        recorder.set_gate("hook", t_us, False)
        recorder.set_gate("mute", t_us, self.mute_pin is None)
        if self.hook_pin is None:
            recorder.set_gate("hook", t_us, True)

    def hook_changed(self, level, t_us) -> None:
        off = level == 1  # floating -> pull-down -> on-hook
        if off != self.off_hook:
            self.off_hook = off
            self.hook_log.append((t_us, off))
            self.recorder.set_gate("hook", t_us + self.relay_us, off)

    def mute_changed(self, level, t_us) -> None:
        muted = level != 0  # floating -> pull-up -> muted
        if muted != self.muted:
            self.muted = muted
            self.recorder.set_gate("mute", t_us, not muted)


class LineInterface(LineSwitches):
    """``LineSwitches`` driven by the simulator's pin bus."""

    def __init__(self, bus, recorder, profile: dict, relay_us: int = 0):
        super().__init__(recorder, profile, bus.clock.now_us(), relay_us)
        self.bus = bus
        if self.hook_pin is not None:
            bus.watch(self.hook_pin, self._on_hook_pin)
        if self.mute_pin is not None:
            bus.watch(self.mute_pin, self._on_mute_pin)

    def _on_hook_pin(self, gpio, level, t_us):
        self.hook_changed(level, t_us)

    def _on_mute_pin(self, gpio, level, t_us):
        self.mute_changed(level, t_us)
