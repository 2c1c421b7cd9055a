"""The analog output chain of a simulated board, from hw/filter.json.

``OutputChain`` turns a pin's average voltage per PWM period (a zero-order-hold stream) into the
voltage the line sees, through the output chain whose component values are in
``hw/filter.json`` (reconstruction filter, level stage, build-out, coupling capacitor, line
transformer, 600 ohm line): the analog transfer function is built from those values and
discretised exactly for a piecewise-constant input (``cont2discrete(method="zoh")``) at the
stream's rate, so each output sample is the continuous filter output at that instant. The same
circuit is a SPICE netlist (``hw/spice/``); tests/hw/ check with ngspice that this model and the
netlist agree (AC response, a transient of a real PWM burst). ``period_chain.PeriodChain`` is the
same chain updated once per PWM period.

Where the line signal goes: ``line_recorder.LineRecorder``; the hook relay and mute in series
with it: ``line_switches``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import signal

# the line recorder and switches lived here before they had files of their own
from .line_recorder import LineRecorder  # noqa: F401
from .line_switches import LineInterface, LineSwitches  # noqa: F401

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
