"""Tone-on intervals measured on the signal's amplitude envelope.

Definition (what `segments` returns): a tone is "on" from the instant its amplitude
envelope rises through `threshold` (default 0.5) of that tone's own steady-state
amplitude until the instant it falls back through it. For tonebridge's renderer,
whose raised-cosine edges are centred on the plan's step boundaries, these are
exactly the step boundaries, so measured tone and gap durations equal the plan's.

How it is measured:
1. Coarse: DC (the median) is removed; the power x**2 is averaged over a centred
   5 ms window; where its square root exceeds `detect` (default 0.3) of the
   loudest stretch, something is on. Stretches shorter than `min_ms` are dropped.
2. Fine, per stretch: the steady middle (5 ms in from each coarse edge) is fitted
   with two sinusoids (`tones.fit_sinusoids`, seeded in the low/high DTMF groups).
   Near each edge the signal is then fitted, in a centred sliding window of
   +/-0.5 ms (at least +/-3 samples), as (alpha + beta*(k - n)) * model(k), model
   being the fitted steady tone pair; alpha(n) is the relative amplitude at sample n
   (1.0 = steady state). The edge is where alpha crosses `threshold`, linearly
   interpolated between samples: resolution well under one sample for a clean
   signal, and a delay that is the same on both edges (such as an analog filter's
   group delay) cancels out of durations.
   If the steady middle is too short (< 8 ms) or the fit explains less than 90 %
   of its power (not a tone pair), the coarse edges are returned for that stretch
   (resolution about +/-1 ms).
"""

from __future__ import annotations

import numpy as np

from .tones import HIGH_BAND, LOW_BAND, _fft_peak, fit_sinusoids

COARSE_MS = 5.0
MARGIN_MS = 5.0
LOCAL_HALF_MS = 0.5


def _box(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving sum over 2n+1 samples (zero outside)."""
    k = np.ones(2 * n + 1)
    return np.convolve(x, k, mode="same")


def coarse_envelope(x: np.ndarray, rate: float) -> np.ndarray:
    half = max(1, int(round(COARSE_MS * 1e-3 * rate / 2)))
    p = _box(x * x, half) / (2 * half + 1)
    return np.sqrt(p)


def _runs(mask: np.ndarray):
    """(start, end) index pairs of True runs, end exclusive."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    starts = np.nonzero(d == 1)[0]
    ends = np.nonzero(d == -1)[0]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _relative_amplitude(x, model, lo, hi, half):
    """alpha[n] for n in [lo, hi): local LS fit of x ~ (alpha + beta*(k-n)) * model."""
    n_tot = len(x)
    a = max(0, lo - half)
    b = min(n_tot, hi + half)
    xs = x[a:b]
    ms = model[a:b]
    k = np.arange(b - a, dtype=np.float64)  # local index: keeps k**2 small
    # sums over the window centred at n of m^2, m^2 k, m^2 k^2, x m, x m k
    mm = ms * ms
    s0 = _box(mm, half)
    s1 = _box(mm * k, half)
    s2 = _box(mm * k * k, half)
    t0 = _box(xs * ms, half)
    t1 = _box(xs * ms * k, half)
    n = k  # window centre
    # in local coordinate u = k - n: S_uu = s2 - 2n s1 + n^2 s0, S_u = s1 - n s0, T_u = t1 - n t0
    su = s1 - n * s0
    suu = s2 - 2 * n * s1 + n * n * s0
    tu = t1 - n * t0
    det = s0 * suu - su * su
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = (t0 * suu - tu * su) / det
    alpha = np.where(np.isfinite(alpha), alpha, 0.0)
    return alpha[lo - a : hi - a]


def _crossing(values, start_index, threshold, rising):
    """Fractional index where `values` (indexed from start_index) crosses threshold."""
    v = values - threshold
    if rising:
        idx = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
        pick = idx[-1] if len(idx) else None  # last upward crossing before steady
    else:
        idx = np.nonzero((v[:-1] >= 0) & (v[1:] < 0))[0]
        pick = idx[0] if len(idx) else None  # first downward crossing after steady
    if pick is None:
        return None
    y0, y1 = v[pick], v[pick + 1]
    frac = y0 / (y0 - y1) if y1 != y0 else 0.0
    return start_index + pick + float(frac)


def segments(samples, rate, threshold=0.5, detect=0.3, min_ms=10.0, refine=True):
    """Tone-on intervals [(start_s, end_s), ...] of a DTMF signal; see module docstring.

    `rate` may be a float (e.g. 125e6/8192). Times are in seconds from sample 0.
    """
    x = np.asarray(samples, dtype=np.float64)
    rate = float(rate)
    if x.ndim != 1:
        raise ValueError("segments needs a 1-D mono signal")
    if len(x) == 0:
        return []
    x = x - np.median(x)
    env = coarse_envelope(x, rate)
    peak = float(np.max(env))
    if peak <= 0:
        return []
    mask = env > detect * peak
    runs = [(s, e) for s, e in _runs(mask) if (e - s) >= min_ms * 1e-3 * rate]
    out = []
    margin = int(round(MARGIN_MS * 1e-3 * rate))
    half = max(3, int(round(LOCAL_HALF_MS * 1e-3 * rate)))
    for s, e in runs:
        edges = None
        if refine:
            edges = _refine(x, rate, s, e, margin, half, threshold)
        if edges is None:
            # coarse: where the 5 ms RMS envelope crosses threshold * stretch's median level
            level = float(np.median(env[s:e]))
            lo = max(0, s - margin)
            hi = min(len(x), e + margin)
            vals = env[lo:hi] / level
            a = _crossing(vals[: s - lo + margin + 1], lo, threshold, True)
            b = _crossing(vals[e - lo - margin - 1 :], e - margin - 1, threshold, False)
            edges = (s if a is None else a, e if b is None else b)
        out.append((edges[0] / rate, edges[1] / rate))
    return out


def _refine(x, rate, s, e, margin, half, threshold):
    a, b = s + margin, e - margin
    if (b - a) < 8e-3 * rate:
        return None
    mid = x[a:b]
    try:
        seeds = [_fft_peak(mid, rate, LOW_BAND), _fft_peak(mid, rate, HIGH_BAND)]
        freqs, amps, phases, dc, model_mid, rms = fit_sinusoids(mid, rate, seeds)
    except (ValueError, np.linalg.LinAlgError):
        return None
    power = float(np.mean((mid - dc) ** 2))
    if power <= 0 or rms**2 > 0.1 * power:
        return None
    # extend the fitted steady tone pair (without DC) over the whole stretch and edges
    n = len(x)
    lo = max(0, s - 2 * margin)
    hi = min(n, e + 2 * margin)
    t = (np.arange(lo, hi) - a) / rate
    model = np.zeros(n)
    seg = np.zeros(hi - lo)
    for f, amp, ph in zip(freqs, amps, phases, strict=True):
        seg += amp * np.cos(2 * np.pi * f * t + ph)
    model[lo:hi] = seg
    xd = x - dc
    # rising edge: search [s - 2*margin, a]; falling: [b, e + 2*margin]
    r_lo, r_hi = lo, a + 1
    alpha_r = _relative_amplitude(xd, model, r_lo, r_hi, half)
    f_lo, f_hi = b - 1, hi
    alpha_f = _relative_amplitude(xd, model, f_lo, f_hi, half)
    start = _crossing(alpha_r, r_lo, threshold, True)
    end = _crossing(alpha_f, f_lo, threshold, False)
    if start is None or end is None:
        return None
    return start, end


def steady_slices(samples, rate, margin_ms=5.0, **kw):
    """The steady middle of each tone: list of sample arrays, `margin_ms` in from each edge."""
    x = np.asarray(samples, dtype=np.float64)
    out = []
    for s, e in segments(x, rate, **kw):
        a = int(np.ceil(s * rate + margin_ms * 1e-3 * rate))
        b = int(np.floor(e * rate - margin_ms * 1e-3 * rate))
        if b > a:
            out.append(x[a:b])
    return out
