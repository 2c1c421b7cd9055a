"""The analog output chain (hw/filter.json) driven by a pulse train whose pulses are known
period by period: an exact update of the filter's state once per PWM period.

The chain is linear and time-invariant, so it splits into modes (partial fractions of its
transfer function ``H(s) = sum_i r_i / (s - p_i) + D``): mode i obeys ``z_i' = p_i z_i + r_i u``
and the line voltage is ``y = sum_i z_i + D u``. Over one PWM period of length ``T`` the pin is at
VDD on known intervals (edge-aligned: ``[0, dT]``; phase-correct: ``[0, dT/2]`` and
``[T - dT/2, T]``; inverted: the complement) and at 0 V elsewhere, so

    z_i(T) = e^{p_i T} z_i(0) + VDD * r_i * sum over high intervals [a, b] of (e^{p_i (T-a)} - e^{p_i (T-b)}) / p_i

exactly: one complex multiply-add per mode and period, the forced part looked up in a table
built once per (period, TOP, pulse geometry) for every duty value 0..TOP+1. The recursion over
a run of periods is a first-order recursion per mode, computed for all modes at once in
blocks (a cumulative sum per block, the blocks' starting states carried from one to the next).

What the recorder gets: the exact average of the line voltage over each of ``subsamples`` equal
parts of every period (``int y dt = sum_i (dz_i - r_i int u dt) / p_i + D int u dt``), time-
stamped at the part's centre, i.e. the continuous line signal seen through a box filter of
``T / subsamples`` (0.01 dB at 1633 Hz for 4 parts of a 61 kHz period). Compared with resolving
the pin into sub-samples (``PinOutput``), nothing of the pulse train is approximated: the
carrier, every edge and every duty value reach the filter exactly.

A plain zero-order-hold stream (the pin at a static level, ``level()``, or ``feed()`` with
``OutputChain``'s signature) is the same update with the pin high for whole steps.

The modes come from hw/filter.json's chain as ``analog.analog_zpk`` gives it, stage by stage
(the one description the resolved model, the ngspice netlists and the firmware's response
compensation also follow). Needs distinct poles (any chain of RC / Sallen-Key / coupling
stages with distinct time constants); the constructor checks the modal form against the
transfer function.
"""

from __future__ import annotations

import numpy as np

from .analog import analog_zpk, load_filter_spec, response


def modes(spec: dict):
    """(poles, residues, direct term) of the chain's transfer function, from its poles and
    zeros stage by stage (``analog.analog_zpk``: the chain's time constants span ~0.1 s for
    the coupling to ~10 us for the filter, too far apart for one expanded polynomial):
    ``r_i = k prod(p_i - z) / prod_{j != i}(p_i - p_j)``, ``D = k`` when as many zeros as
    poles, else 0."""
    z, p, k = analog_zpk(spec)
    if z.size > p.size:
        raise ValueError("analog chain is improper (more zeros than poles)")
    if p.size > 1:
        gap = min(abs(a - b) for i, a in enumerate(p) for b in p[i + 1 :])
        if gap < 1e-6 * max(1.0, float(np.max(np.abs(p)))):
            raise ValueError("analog chain has (nearly) repeated poles: no modal form")
    residues = np.array(
        [k * np.prod(pi - z) / np.prod(np.delete(pi - p, i)) for i, pi in enumerate(p)],
        dtype=complex,
    )
    d = float(k) if z.size == p.size else 0.0
    # the modal form must be the transfer function
    f = np.array([50.0, 300.0, 1000.0, 3400.0, 20e3, 200e3])
    h = response(spec, f)
    w = 2j * np.pi * f
    hm = (residues[None, :] / (w[:, None] - p[None, :])).sum(axis=1) + d
    if np.max(np.abs(hm - h) / np.maximum(np.abs(h), 1e-12)) > 1e-7:
        raise ValueError("analog chain: partial fractions do not match the transfer function")
    return p, residues, d


def _high_intervals(kind: str, d: np.ndarray, invert: bool):
    """High intervals of one period (in units of the period) as a list of (a, b) arrays."""
    zero, one = np.zeros_like(d), np.ones_like(d)
    if kind == "edge":
        iv = [(zero, d)] if not invert else [(d, one)]
    elif kind == "phase":
        iv = [(zero, d / 2), (1 - d / 2, one)] if not invert else [(d / 2, 1 - d / 2)]
    elif kind == "const":
        iv = [(zero, one)]
    else:
        raise ValueError(kind)
    return iv


def reduced_modes(poles, residues):
    """One mode per complex-conjugate pair (its output counted twice: y = sum of 2 Re z over
    pairs + sum of z over real poles), real poles as real numbers. (poles, residues, weights)."""
    keep, weight = [], []
    tol = 1e-9 * np.max(np.abs(poles))
    for i, p in enumerate(poles):
        if abs(p.imag) <= tol:
            keep.append(i)
            weight.append(1.0)
        elif p.imag > 0:
            keep.append(i)
            weight.append(2.0)
    p, r = poles[keep].copy(), residues[keep].copy()
    real = np.array(weight) == 1.0
    p[real], r[real] = p[real].real, r[real].real
    return p, r, np.array(weight)


class _Tables:
    """Everything one period of one geometry contributes, per duty index (see module doc)."""

    def __init__(self, chain, period_s, full, kind, invert, parts):
        poles, weight = chain.poles, chain.weights
        p, r = poles[:, None, None], chain.residues[:, None, None]
        d = (np.arange(full + 1, dtype=np.float64) / full)[None, :, None]  # duty per index
        tb = (np.arange(parts + 1, dtype=np.float64) / parts)[None, None, :]  # part bounds
        forced = np.zeros((poles.size, full + 1, parts + 1), dtype=complex)
        high = np.zeros((1, full + 1, parts + 1))  # high time in [0, t_j]
        for a, b in _high_intervals(kind, d, invert):
            a_t, b_t = np.minimum(a, tb), np.minimum(b, tb)
            forced += (
                r * (np.exp(p * period_s * (tb - a_t)) - np.exp(p * period_s * (tb - b_t))) / p
            )
            high += b_t - a_t
        dt = period_s / parts
        area = np.diff(high, axis=2) * period_s  # (1, full+1, parts): high time per part
        self.phi = np.exp(poles * period_s)  # per-period propagation
        e = np.exp(poles[:, None] * period_s * tb[0])  # (modes, parts+1)
        beta = weight[:, None] * np.diff(e, axis=1) / (poles[:, None] * dt)  # (modes, parts)
        h = weight[:, None, None] * (np.diff(forced, axis=2) - r * area) / (p * dt)
        self.h = np.ascontiguousarray(h.sum(axis=0).real + chain.direct * area[0] / dt)
        # forced modal state at the period's end: (duty index, modes)
        self.wtab = np.ascontiguousarray(forced[:, :, -1].T)
        # y = Re(z . beta) + h, as one real product: z viewed as (re, im) pairs times bmat
        self.beta = beta  # (modes, parts)
        self.bmat = np.empty((2 * poles.size, parts))
        self.bmat[0::2], self.bmat[1::2] = beta.real, -beta.imag
        self._blocks = None
        self._scaled: dict = {}

    def blocks(self):
        """(L, phi^-i, phi^i) for i < L, as (L, modes) arrays: a run of periods is computed in
        blocks of at most L, each mode's recursion ``z <- phi z + w`` as a cumulative sum
        (see ``PeriodChain._run``). L keeps |phi|^-L below e^600 (no overflow); the rounding
        error stays that of the largest term, i.e. relative 1e-16 of the state."""
        if self._blocks is None:
            decay = float(np.max(-np.log(np.abs(self.phi))))
            size = int(max(1, min(4096, 600.0 / max(decay, 1e-12))))
            i = np.arange(size, dtype=np.float64)[:, None]
            ph = self.phi[None, :]
            self._blocks = (size, ph ** (-i), ph**i)
        return self._blocks

    def scaled(self, scale: float):
        """(forced states, line offsets) for a pin level ``scale`` (cached: it is VDD)."""
        c = self._scaled.get(scale)
        if c is None:
            if len(self._scaled) > 8:
                self._scaled.clear()
            c = (self.wtab * scale, self.h * scale)
            self._scaled[scale] = c
        return c


class PeriodChain:
    """The analog chain with an exact per-period state update; pushes the line signal to
    ``recorder`` as ``source`` (``subsamples`` averages per PWM period)."""

    settled_v = 1e-12  # a constant input whose modes are this close to steady state: settled
    chunk = 1 << 16  # periods per pass of the per-period update (its arrays stay ~10 MB)

    def __init__(self, recorder, source: str, spec: dict | None = None, subsamples: int = 4):
        self.recorder = recorder
        self.source = source
        self.spec = spec or load_filter_spec()
        poles, residues, self.direct = modes(self.spec)
        self.poles, self.residues, self.weights = reduced_modes(poles, residues)
        self.z = np.zeros(self.poles.size, dtype=complex)  # modal state
        self.subsamples = int(subsamples)
        self._tables: dict = {}
        self.end_us = None
        self.periods = 0  # periods (steps) run; of them in the settled shortcut, cut off
        self.settled_periods = 0
        self.cut_periods = 0

    def tables(self, period_s: float, full: int, kind: str, invert: bool, parts: int) -> _Tables:
        key = (period_s, full, kind, invert, parts)
        t = self._tables.get(key)
        if t is None:
            if len(self._tables) > 64:
                self._tables.clear()
            t = _Tables(self, period_s, full, kind, invert, parts)
            self._tables[key] = t
        return t

    def settle(self, volts: float) -> None:
        """Put the chain in the steady state of a constant input (e.g. before the first feed)."""
        self.z = -self.residues / self.poles * volts

    def _run(self, t: _Tables, index, scale, start_us, period_s, parts) -> None:
        """Advance through ``index.size`` periods (duty ``index``, pin level ``scale``: a
        number or one per period) and emit the line."""
        n = index.size
        if np.ndim(scale) == 0 and index[0] == index[-1] and np.all(index == index[0]):
            self._run_constant(t, index, float(scale), start_us, period_s, parts)
            return
        for k0 in range(0, n, self.chunk):  # (bounded arrays for a long run)
            k1 = min(n, k0 + self.chunk)
            sc = scale[k0:k1] if np.ndim(scale) else scale
            self._run_full(t, index[k0:k1], sc, start_us + k0 * period_s * 1e6, period_s, parts)

    def _run_constant(self, t: _Tables, index, scale, start_us, period_s, parts) -> None:
        """A constant input (e.g. a pin left at one duty while the board idles): the state
        after k periods is ``z_inf + phi^k (z - z_inf)``, so periods the line switches cut off
        (the recorder would drop them) advance in closed form, those after the modes have
        settled repeat the settled period, and only the settling in between runs period by
        period. The same line as the per-period update (to rounding), at a cost that does
        not grow with the length of the run."""
        n = index.size
        p_us = period_s * 1e6
        i0 = int(index[0])
        z_inf = t.wtab[i0] * scale / (1 - t.phi)
        cut_span = getattr(self.recorder, "cut_span", None)
        span = cut_span(start_us, start_us + n * p_us) if cut_span is not None else None
        if span is not None:
            ka = max(0, int(-((start_us - span[0]) // p_us)))  # the whole periods in the span
            kb = min(n, int((span[1] - start_us) // p_us))
            if kb > ka:
                if ka:
                    self._run_constant(t, index[:ka], scale, start_us, period_s, parts)
                k = kb - ka
                self.z = z_inf + t.phi**k * (self.z - z_inf)
                self.periods += k
                self.cut_periods += k
                t_a, t_b = start_us + ka * p_us, start_us + kb * p_us
                self.recorder.note_cut(t_a, t_b, k * parts)
                self.end_us = t_b
                if kb < n:
                    self._run_constant(t, index[kb:], scale, t_b, period_s, parts)
                return
        dz = np.abs(self.z - z_inf)
        if np.max(dz) <= self.settled_v:
            # the modes sit at the input's steady state: so does the line
            y = (z_inf @ t.beta).real + t.h[i0] * scale
            self.periods += n
            self.settled_periods += n
            self._emit(np.tile(y, n), start_us, p_us / parts, n, period_s)
            return
        # periods until every mode is within settled_v / 2 of its steady state
        with np.errstate(divide="ignore"):
            need = np.log(0.5 * self.settled_v / dz) / np.log(np.abs(t.phi))
        k = int(np.ceil(np.max(np.where(dz > 0.5 * self.settled_v, need, 0.0))))
        if k <= 0 or k >= n:
            for k0 in range(0, n, self.chunk):
                k1 = min(n, k0 + self.chunk)
                self._run_full(t, index[k0:k1], scale, start_us + k0 * p_us, period_s, parts)
            return
        for k0 in range(0, k, self.chunk):
            k1 = min(k, k0 + self.chunk)
            self._run_full(t, index[k0:k1], scale, start_us + k0 * p_us, period_s, parts)
        self._run_constant(t, index[k:], scale, start_us + k * p_us, period_s, parts)

    def _run_full(self, t: _Tables, index, scale, start_us, period_s, parts) -> None:
        """The per-period update of ``index.size`` periods (see the module doc)."""
        n = index.size
        dt_us = period_s * 1e6 / parts
        self.periods += n
        lmax, inv, pw = t.blocks()
        if np.ndim(scale):
            w = np.take(t.wtab, index, axis=0) * scale[:, None]
            hs = np.take(t.h, index, axis=0) * scale[:, None]
        else:
            wtab, h = t.scaled(float(scale))
            w = np.take(wtab, index, axis=0)  # the forced state of each period, every mode
            hs = np.take(h, index, axis=0)
        nb = -(-n // lmax)  # blocks of equal size (the last one shorter)
        size = -(-n // nb)
        y = np.empty((n, parts))
        z = self.z
        for b0 in range(0, n, size):
            b1 = min(n, b0 + size)
            k = b1 - b0
            # from the block's start state z: after period j of it,
            # z_j = phi^j (phi z + sum_{i<=j} phi^-i w_i)
            blk = w[b0:b1]
            blk *= inv[:k]
            np.cumsum(blk, axis=0, out=blk)
            blk += t.phi * z
            blk *= pw[:k]
            # the line over each period follows from the state at its start
            y[b0] = z.view(np.float64) @ t.bmat
            if k > 1:
                np.matmul(blk[: k - 1].view(np.float64), t.bmat, out=y[b0 + 1 : b1])
            z = blk[k - 1].copy()
        y += hs
        self.z = z
        self._emit(y.reshape(-1), start_us, dt_us, n, period_s)

    def _emit(self, y, start_us, dt_us, n, period_s) -> None:
        self.recorder.add_segment(self.source, start_us + dt_us / 2, 1e6 / dt_us, y)
        self.end_us = start_us + n * period_s * 1e6

    def pwm(self, start_us, period_s, full, phase_correct, invert, index, vdd) -> None:
        """``index.size`` periods from ``start_us``, the pin at ``vdd`` for ``index/full`` of
        each (``full`` = TOP + 1; index is clipped there, as a CC above TOP is always high)."""
        index = np.minimum(np.asarray(index, dtype=np.int64), full)
        if index.size == 0:
            return
        kind = "phase" if phase_correct else "edge"
        t = self.tables(float(period_s), int(full), kind, bool(invert), self.subsamples)
        self._run(t, index, float(vdd), start_us, period_s, self.subsamples)

    def level(self, start_us, step_s, volts) -> None:
        """A zero-order-hold stream: ``volts[k]`` held for ``step_s`` from ``start_us + k step_s``."""
        v = np.asarray(volts, dtype=np.float64)
        if v.size == 0:
            return
        t = self.tables(float(step_s), 1, "const", False, 1)
        if np.all(v == v[0]):
            self._run(t, np.ones(v.size, dtype=np.int64), float(v[0]), start_us, step_s, 1)
        else:
            self._run(t, np.ones(v.size, dtype=np.int64), v, start_us, step_s, 1)

    def feed(self, start_us: float, rate: float, volts) -> None:
        """``OutputChain.feed``'s signature: a ZOH stream at ``rate``."""
        self.level(start_us, 1.0 / rate, volts)
