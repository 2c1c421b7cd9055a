"""Analog side of a simulated board: the tone output chain and the line recorder.

``OutputChain`` turns a pin's average voltage per PWM period (a zero-order-hold stream) into the
voltage the line sees, through the output chain whose component values are in
``hw/filter.json`` (reconstruction filter, level stage, build-out, coupling capacitor, line
transformer, 600 ohm line): the analog transfer function is built from those values and
discretised exactly for a piecewise-constant input (``cont2discrete(method="zoh")``) at the
stream's rate, so each output sample is the continuous filter output at that instant. The same
circuit is a SPICE netlist (``hw/spice/``); tests/hw/ check with ngspice that this model and the
netlist agree (AC response, a transient of a real PWM burst).

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


def _val(spec: dict, st: dict, key: str) -> float:
    """A stage parameter: a number, or a reference designator looked up in
    ``spec['components']``."""
    v = st[key]
    if isinstance(v, str):
        return float(spec["components"][v])
    return float(v)


def _rc_sallen_key(r, c, r1, r2, c1, c2):
    """R/C into a unity-gain Sallen-Key (r1, r2 in series, c1 from their junction to the
    output, c2 from the op-amp input to ground), the RC loaded by the Sallen-Key. Node
    equations (a: RC node, b: r1/r2 junction, v: op-amp input = output):
      (u - a)/r = s c a + (a - b)/r1;  (a - b)/r1 = (b - v)/r2 + s c1 (b - v);  (b - v)/r2 = s c2 v
    eliminated by hand: v/u = 1 / (P (1 + s r c + r/r1) - (r/r1)(1 + s r2 c2)),
    P = 1 + s c2 (r1 + r2) + s^2 r1 r2 c1 c2."""
    k = r / r1
    p = np.array([r1 * r2 * c1 * c2, c2 * (r1 + r2), 1.0])
    den = np.polysub(np.polymul(p, [r * c, 1.0 + k]), [k * r2 * c2, k])
    return np.array([1.0]), den


def _line_out(rf, rg, cg, rb, cc, lm, rp, rs, rl):
    """Non-inverting level stage (gain 1 + rf / (rg + 1/(s cg))), then rb + rp + 1/(s cc) in
    series into the transformer's magnetising inductance lm (1:1 ideal transformer), rs + rl
    on the secondary: the voltage across rl."""
    n1, d1 = [cg * (rf + rg), 1.0], [cg * rg, 1.0]
    rx = rb + rp
    rl2 = rs + rl
    # Zsh = s lm rl2 / (s lm + rl2); Zser = rx + 1/(s cc); v_prim = Zsh / (Zser + Zsh)
    n2 = [lm * cc * rl2 * (rl / rl2), 0.0, 0.0]
    d2 = [cc * lm * (rx + rl2), cc * rx * rl2 + lm, rl2]
    return np.polymul(n1, n2), np.polymul(d1, d2)


def analog_tf(spec: dict):
    """(num, den) polynomials in s of the chain described by ``spec['stages']``."""
    num = np.array([1.0])
    den = np.array([1.0])
    for st in spec["stages"]:
        kind = st["type"]
        if kind == "rc_lowpass":
            tau = _val(spec, st, "r_ohm") * _val(spec, st, "c_f")
            n, d = [1.0], [tau, 1.0]
        elif kind == "rc_highpass":
            tau = _val(spec, st, "r_ohm") * _val(spec, st, "c_f")
            n, d = [tau, 0.0], [tau, 1.0]
        elif kind == "sallen_key_lowpass":
            r1, r2 = _val(spec, st, "r1_ohm"), _val(spec, st, "r2_ohm")
            c1, c2 = _val(spec, st, "c1_f"), _val(spec, st, "c2_f")
            n, d = [1.0], [r1 * r2 * c1 * c2, c2 * (r1 + r2), 1.0]
        elif kind == "rc_sallen_key":
            n, d = _rc_sallen_key(*(_val(spec, st, k) for k in ("r", "c", "r1", "r2", "c1", "c2")))
        elif kind == "line_out":
            keys = ("rf", "rg", "cg", "rb", "cc", "lm", "rp", "rs", "rl")
            n, d = _line_out(*(_val(spec, st, k) for k in keys))
        elif kind == "gain":
            n, d = [float(st["gain"])], [1.0]
        else:
            raise ValueError(f"unknown filter stage type {kind!r}")
        num = np.polymul(num, n)
        den = np.polymul(den, d)
    return num, den


def analog_zpk(spec: dict):
    """(zeros, poles, gain) of the chain: the roots of each stage's own (low-order)
    polynomials, so stages with time constants from ~0.1 s (coupling) to ~50 us (filter) do
    not meet in one badly scaled polynomial."""
    zeros, poles, gain = [], [], 1.0
    for st in spec["stages"]:
        n, d = analog_tf({"stages": [st], "components": spec.get("components", {})})
        n = np.trim_zeros(np.atleast_1d(np.asarray(n, dtype=float)), "f")
        d = np.trim_zeros(np.atleast_1d(np.asarray(d, dtype=float)), "f")
        zeros.extend(np.roots(n))
        poles.extend(np.roots(d))
        gain *= n[0] / d[0]
    return np.array(zeros, dtype=complex), np.array(poles, dtype=complex), float(gain)


def response(spec: dict, freqs_hz) -> np.ndarray:
    """Complex H(j 2 pi f) of the chain."""
    z, p, k = analog_zpk(spec)
    s = 2j * np.pi * np.atleast_1d(np.asarray(freqs_hz, dtype=float))
    h = np.full(s.shape, k, dtype=complex)
    for zz in z:
        h *= s - zz
    for pp in p:
        h /= s - pp
    return h


def response_db(spec: dict, freqs_hz) -> np.ndarray:
    return 20 * np.log10(np.abs(response(spec, freqs_hz)))


class _ZohBank:
    """The chain's exact zero-order-hold equivalent at one rate, as a bank of first-order
    sections: with H(s)/s = H(0)/s + sum r_i / (s - p_i) (distinct poles), a piecewise
    constant input of step T gives y[n] = H(0) u[n] + sum_i r_i (1 - z^-1) / (1 - e^(p_i T)
    z^-1) u[n], the continuous output at the sample instants. Residues come from the roots
    (r_i = k prod(p_i - z) / (p_i prod(p_i - p_j))), never from expanded polynomials. A
    complex-conjugate pair runs as one complex section (twice its real part)."""

    def __init__(self, spec: dict, rate: float):
        z, p, k = analog_zpk(spec)
        if len(z) > len(p):
            raise ValueError("the chain must be proper")
        if np.min(np.abs(p)) == 0 or len(np.unique(np.round(p, 6))) != len(p):
            raise ValueError("poles must be distinct and nonzero")
        self.h0 = (
            float(np.real(k * np.prod(-z) / np.prod(-p)))
            if len(z)
            else float(np.real(k / np.prod(-p)))
        )
        secs = []
        for i, pi in enumerate(p):
            if pi.imag < -1e-9 * abs(pi):
                continue  # the conjugate of another pole: counted twice below
            r = k * np.prod(pi - z) / (pi * np.prod(np.delete(pi - p, i)))
            a = np.exp(pi / rate)
            w = 2.0 if abs(pi.imag) > 1e-9 * abs(pi) else 1.0
            secs.append((r * w, a))
        self.r = np.array([s[0] for s in secs], dtype=complex)
        self.a = np.array([s[1] for s in secs], dtype=complex)

    def zi(self, u: float) -> np.ndarray:
        return -self.r * u  # steady state for a constant input u (each section's DC gain is 0)

    def run(self, x: np.ndarray, zi: np.ndarray):
        y = self.h0 * x
        zf = np.empty_like(zi)
        for i in range(len(self.r)):
            r, a = self.r[i], self.a[i]
            yi, zfi = signal.lfilter([r, -r], [1.0, -a], x.astype(complex), zi=zi[i : i + 1])
            y = y + yi.real
            zf[i] = zfi[0]
        return y, zf


class OutputChain:
    """Filter a ZOH voltage stream (any rate, rate may change between calls) and push it to
    the recorder as ``source``. The filter state carries across calls."""

    def __init__(self, recorder, source: str, spec: dict | None = None):
        self.recorder = recorder
        self.source = source
        self.spec = spec or load_filter_spec()
        self._cache: dict[float, _ZohBank] = {}
        self._rate = None
        self._zi = None
        self._last_in = 0.0
        self.end_us = None

    def _bank(self, rate: float) -> _ZohBank:
        b = self._cache.get(rate)
        if b is None:
            b = _ZohBank(self.spec, rate)
            self._cache[rate] = b
        return b

    def feed(self, start_us: float, rate: float, volts: np.ndarray) -> None:
        volts = np.asarray(volts, dtype=np.float64)
        if volts.size == 0:
            return
        bank = self._bank(rate)
        if self._rate != rate or self._zi is None:
            # (re)start in the steady state of the last input level: rate changes only
            # happen when the PWM is reconfigured, i.e. while the output sits at one level
            self._zi = bank.zi(self._last_in)
            self._rate = rate
        out, self._zi = bank.run(volts, self._zi)
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
        self.gain = 1.0  # the line's own loss between the board and the exchange (a fault)
        # keep(t0, t1): keep a segment the line switches cut off (the self-test loop relay
        # was closed then: the board's line sense hears it, the exchange does not)
        self.keep = None

    # ---- producers ---------------------------------------------------------------
    def add_segment(self, source: str, start_us: float, rate: float, volts) -> None:
        v = np.asarray(volts, dtype=np.float64)
        if not v.size:
            return
        end = float(start_us) + v.size * 1e6 / rate
        self._end = max(self._end, end)
        if (
            self.drop_gated
            and self._cut_throughout(float(start_us), end)
            and not (self.keep is not None and self.keep(float(start_us), end))
        ):
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

    def segments(self) -> list:
        """Each source's segments as (start_us, rate, volts), in time order per source (the
        stored lists themselves: read them, do not change them). Call flush() first for what
        the models still hold."""
        return list(self._segs.values())

    def gate_names(self) -> list:
        return list(self._gates)

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
            out *= self.gain
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
        self.relay_fails = False
        self.loop_pin = profile.get("loop_pin")
        self.loop_log: list[tuple[float, bool]] = []  # (t_us, closed): self-test loop relay K2
        recorder.keep = self._looped_between
        recorder.set_gate("hook", t_us, False)
        recorder.set_gate("mute", t_us, self.mute_pin is None)
        if self.hook_pin is None:
            recorder.set_gate("hook", t_us, True)

    # ---- seeded faults (tests): what the receive path must catch ----------------------------
    FAULTS = ("relay", "transformer", "attenuation")

    def seed_fault(self, kind: str, t_us: float, value=None) -> None:
        """``relay``: the hook relay no longer closes (contacts burnt, coil open);
        ``transformer``: T1 open (nothing passes to or from the line); ``attenuation``: the
        line loses ``value`` dB between the board and the exchange (and the sense hears the
        same line)."""
        if kind == "relay":
            self.relay_fails = True
            if self.off_hook:
                self.recorder.set_gate("hook", max(t_us, self._last_gate_us()), False)
        elif kind == "transformer":
            self.recorder.set_gate("xfmr", max(t_us, self._last_gate_us("xfmr")), False)
        elif kind == "attenuation":
            self.recorder.gain = 10 ** (-float(value) / 20)
        else:
            raise ValueError(f"unknown line fault {kind!r} (known: {', '.join(self.FAULTS)})")

    def _last_gate_us(self, name: str = "hook") -> float:
        ev = self.recorder.gate_log(name)
        return ev[-1][0] if ev else 0.0

    @property
    def line_gain(self) -> float:
        return self.recorder.gain

    def loop_changed(self, level, t_us) -> None:
        closed = level == 1  # floating -> pull-down -> open
        if closed != (self.loop_log[-1][1] if self.loop_log else False):
            self.loop_log.append((t_us + self.relay_us, closed))

    def _looped_between(self, t0: float, t1: float) -> bool:
        closed = False
        for t, c in self.loop_log:
            if t <= t0:
                closed = c
            elif t <= t1:
                return True
            else:
                break
        return closed

    def loop_at(self, t_us) -> np.ndarray:
        """1.0 where the self-test loop relay K2 is closed."""
        t_us = np.asarray(t_us, dtype=np.float64)
        if not self.loop_log:
            return np.zeros_like(t_us)
        times = np.array([e[0] for e in self.loop_log])
        vals = np.array([1.0 if e[1] else 0.0 for e in self.loop_log])
        idx = np.searchsorted(times, t_us, side="right") - 1
        return np.where(idx >= 0, vals[np.clip(idx, 0, None)], 0.0)

    def hook_changed(self, level, t_us) -> None:
        off = level == 1  # floating -> pull-down -> on-hook
        if off != self.off_hook:
            self.off_hook = off
            self.hook_log.append((t_us, off))
            if off and self.relay_fails:
                return  # the coil is driven, the contacts stay open
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
        if self.loop_pin is not None:
            bus.watch(self.loop_pin, lambda gpio, level, t_us: self.loop_changed(level, t_us))

    def _on_hook_pin(self, gpio, level, t_us):
        self.hook_changed(level, t_us)

    def _on_mute_pin(self, gpio, level, t_us):
        self.mute_changed(level, t_us)
