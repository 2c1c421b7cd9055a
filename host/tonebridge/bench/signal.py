"""Rows 1-4 and 8: tone accuracy, purity, timing and decodability of a line signal.

Every subject (a simulated board's recorded line signal, or a reference generator) is
played the same plans and measured by the same code (``measure_subject``), with the
independent tools in ``tonebridge.analysis``: least-squares tone fits (not FFT bins),
the residual power after the fit, 50 %-amplitude envelope edges, and multimon-ng.
"""

from __future__ import annotations

import difflib

import numpy as np
from tonebridge_fw.dialstring import compile_plan
from tonebridge_fw.keypad import KEYS, freqs

from tonebridge.analysis import decode_multimon, fit_tones, segments, steady_slices, unwanted_db

RATE = 48_000  # measurement rate: >= 48 kHz so PWM images do not alias into the band
BOARDS = (
    ("pico", "rp2 PWM+DMA synth (pico)"),
    ("pico2", "rp2 PWM+DMA synth on an RP2350 (pico2)"),
    ("esp32-i2s", "I2S DAC synth (esp32-i2s)"),
    ("pico-mt8880", "MT8880 chip (pico-mt8880)"),
)
MIN_MS = 40
# Plans every subject plays:
#   keys: all 16 keys at the defaults (100/100 ms)   -> accuracy, purity, timing, decode
#   fast: the keys twice at the 40/40 ms minimum      -> timing, decode at the minimum
#   pause: 'w' (500 ms) and 'W' (1000 ms) pauses       -> pause accuracy
PAUSE_TEXT = "1w2W3"


def plans(quick: bool) -> dict:
    fast_text = KEYS if quick else KEYS * 3
    return {
        "keys": (KEYS, 100, 100),
        "fast": (fast_text, MIN_MS, MIN_MS),
        "pause": (PAUSE_TEXT, 100, 100),
    }


# ---------------------------------------------------------------- subjects
def board_signal(board: str, text: str, tone_ms: int, gap_ms: int, rate: int = RATE):
    """The simulated board's line signal (volts at ``rate``) for one plan, in virtual time."""
    from tonebridge.sim import render_on_board

    res = render_on_board(board, text, "catapult", tone_ms, gap_ms, rate=rate)
    return res["samples"], rate


def _gate(plan, rate, lead_s=0.05, tail_s=0.05):
    """(t, on, keys) arrays: sample times and, per sample, which plan step is playing."""
    total = sum(ms for _, ms in plan) / 1000.0
    n = int(round((lead_s + total + tail_s) * rate))
    t = np.arange(n) / rate
    key_idx = np.full(n, -1, dtype=np.int64)
    t0 = lead_s
    for key, ms in plan:
        t1 = t0 + ms / 1000.0
        if key is not None:
            key_idx[(t >= t0) & (t < t1)] = KEYS.index(key)
        t0 = t1
    return t, key_idx


def _two_tone(plan, rate, tone, twist_db=2.0, level=0.5):
    """Generic reference: per plan step, ``tone(f, t)`` for both groups, hard-gated."""
    t, key_idx = _gate(plan, rate)
    x = np.zeros(len(t))
    a_low = level / (1 + 10 ** (twist_db / 20))
    a_high = level - a_low
    for k in set(key_idx.tolist()) - {-1}:
        sel = key_idx == k
        fl, fh = ref_freqs(KEYS[k], tone)
        x[sel] = a_low * tone.wave(fl, t[sel]) + a_high * tone.wave(fh, t[sel])
    return x


def ref_freqs(key, tone):
    return tone.freqs(key)


class SquareRef:
    """The hobby "Tone library" approach: two square waves summed, sampled at ``RATE``,
    switched on and off at the plan's boundaries (no edge shaping)."""

    name = "reference: 2 square waves (Tone library)"

    @staticmethod
    def freqs(key):
        return freqs(key)

    @staticmethod
    def wave(f, t):
        return np.where(np.sin(2 * np.pi * f * t) >= 0, 1.0, -1.0)


class MT8880SinesRef:
    """Ideal sines at the MT8880's crystal-divided frequencies (3.579545 MHz / (32 N)),
    switched at the plan's boundaries: what a perfect MT8880 line would carry."""

    name = "reference: ideal sines at MT8880 frequencies"

    @staticmethod
    def freqs(key):
        from tonebridge.sim.mt8880_chip import COL_N, F_OSC, ROW_N

        lo, hi = freqs(key)
        from tonebridge_fw.keypad import COL_HZ, ROW_HZ

        return F_OSC / (32 * ROW_N[ROW_HZ.index(lo)]), F_OSC / (32 * COL_N[COL_HZ.index(hi)])

    @staticmethod
    def wave(f, t):
        return np.sin(2 * np.pi * f * t)


REFERENCES = (("square-ref", SquareRef), ("mt8880-sines-ref", MT8880SinesRef))
SPANDSP = ("spandsp-ref", "reference: spandsp dtmf_tx (8 kHz, 16 bit, libspandsp2)")


def ref_signal(ref, text, tone_ms, gap_ms, rate=RATE):
    plan = compile_plan(text, "catapult", tone_ms, gap_ms)
    return _two_tone(plan, rate, ref), rate


def spandsp_signal(text, tone_ms, gap_ms, rate=RATE):
    """spandsp's generator playing the plan (host/tonebridge/bench/spandsp.py)."""
    from tonebridge.bench import spandsp

    plan = compile_plan(text, "catapult", tone_ms, gap_ms)
    return spandsp.plan_signal(plan, rate), rate


# ---------------------------------------------------------------- measures
def decode_share(expected: str, got: str) -> tuple[float, int, int]:
    """(share of expected digits decoded right and in order, missing, extra)."""
    sm = difflib.SequenceMatcher(None, expected, got, autojunk=False)
    right = sum(b.size for b in sm.get_matching_blocks())
    return right / len(expected), len(expected) - right, len(got) - right


def _durations(plan):
    """Planned (tone_ms list, gap_ms list) between consecutive tones."""
    tones, gaps = [], []
    silence = None
    for key, ms in plan:
        if key is None:
            silence = (silence or 0) + ms
            continue
        if tones and silence is not None:
            gaps.append(silence)
        tones.append(ms)
        silence = None
    return tones, gaps


def timing_errors(x, rate, plan):
    """(worst |tone error| ms, worst |gap error| ms, per-gap errors ms) against the plan;
    None if the number of tones found differs from the plan."""
    seg = segments(x, rate)
    p_tones, p_gaps = _durations(plan)
    if len(seg) != len(p_tones):
        return None
    tones = [(e - s) * 1000 for s, e in seg]
    gaps = [(seg[i + 1][0] - seg[i][1]) * 1000 for i in range(len(seg) - 1)]
    te = [t - p for t, p in zip(tones, p_tones, strict=True)]
    ge = [g - p for g, p in zip(gaps, p_gaps, strict=True)]
    return max(map(abs, te)), max(map(abs, ge), default=0.0), ge


def line_figures(x, rate, text, tone_ms=100, gap_ms=100) -> dict:
    """Figures of one recorded line signal that played ``text`` (catapult dialect): worst
    frequency error (%) and unwanted in-band / above-band power (dB vs the low tone) over the
    steady part of each tone, worst tone and gap duration errors (ms), what multimon-ng
    decodes. Keys missing from the steady slices leave the per-tone figures out."""
    out = {"decoded": decode_multimon(x, rate)}
    plan = compile_plan(text, "catapult", tone_ms, gap_ms)
    keys = [k for k, _ in plan if k is not None]
    slices = steady_slices(x, rate)
    out["tones_found"] = len(slices)
    if len(slices) == len(keys):
        f_err, inband, above = [], [], []
        for key, sl in zip(keys, slices, strict=True):
            fl, _al, fh, _ah, _res = fit_tones(sl, rate)
            lo, hi = freqs(key)
            f_err.append(max(abs(fl / lo - 1), abs(fh / hi - 1)) * 100)
            inband.append(unwanted_db(sl, rate, (300.0, 3400.0)))
            above.append(unwanted_db(sl, rate, (3400.0, None)))
        out["freq_err_pct"] = max(f_err)
        out["unwanted_inband_db"] = max(inband)
        out["unwanted_above_db"] = max(above)
        out["inband_db_per_key"] = inband
    t = timing_errors(x, rate, plan)
    if t is not None:
        out["tone_err_ms"], out["gap_err_ms"] = t[0], t[1]
    return out


def measure_subject(get_signal, quick: bool) -> dict:
    """All signal measures for one subject. ``get_signal(text, tone_ms, gap_ms)`` ->
    (samples, rate)."""
    out = {}
    ps = plans(quick)
    # ---- all keys at the defaults
    text, tone_ms, gap_ms = ps["keys"]
    x, rate = get_signal(text, tone_ms, gap_ms)
    plan = compile_plan(text, "catapult", tone_ms, gap_ms)
    slices = steady_slices(x, rate)
    out["keys_found"] = len(slices)
    if len(slices) == len(text):
        f_err = []
        inband, above, twist = [], [], []
        for key, sl in zip(text, slices, strict=True):
            fl, al, fh, ah, _res = fit_tones(sl, rate)
            lo, hi = freqs(key)
            f_err.append(max(abs(fl / lo - 1), abs(fh / hi - 1)) * 100)
            inband.append(unwanted_db(sl, rate, (300.0, 3400.0)))
            above.append(unwanted_db(sl, rate, (3400.0, None)))
            twist.append(20 * np.log10(ah / al))
        out["freq_err_pct"] = max(f_err)
        out["unwanted_inband_db"] = max(inband)
        out["unwanted_above_db"] = max(above)
        out["twist_db_min"] = min(twist)
        out["twist_db_max"] = max(twist)
    t = timing_errors(x, rate, plan)
    if t is not None:
        out["tone_err_ms"], out["gap_err_ms"] = t[0], t[1]
    got = decode_multimon(x, rate)
    out["decoded_default"], out["missing_default"], out["extra_default"] = decode_share(text, got)
    # ---- the 40/40 minimum
    text, tone_ms, gap_ms = ps["fast"]
    x, rate = get_signal(text, tone_ms, gap_ms)
    plan = compile_plan(text, "catapult", tone_ms, gap_ms)
    t = timing_errors(x, rate, plan)
    if t is not None:
        out["tone_err_min_ms"], out["gap_err_min_ms"] = t[0], t[1]
    got = decode_multimon(x, rate)
    out["decoded_min"], out["missing_min"], out["extra_min"] = decode_share(text, got)
    out["digits_min"] = len(text)
    # ---- pauses
    text, tone_ms, gap_ms = ps["pause"]
    x, rate = get_signal(text, tone_ms, gap_ms)
    plan = compile_plan(text, "catapult", tone_ms, gap_ms)
    t = timing_errors(x, rate, plan)
    if t is not None:
        out["pause_w_err_ms"] = abs(t[2][0])
        out["pause_W_err_ms"] = abs(t[2][1])
    return out


def run(quick: bool, log=print) -> dict:
    """{subject id: (description, measures)} for the three backends and the references."""
    results = {}
    for board, desc in BOARDS:
        log(f"  signal: {desc} ...")
        results[board] = (
            desc,
            measure_subject(lambda text, t, g, b=board: board_signal(b, text, t, g), quick),
        )
    for rid, ref in REFERENCES:
        log(f"  signal: {ref.name} ...")
        results[rid] = (
            ref.name,
            measure_subject(lambda text, t, g, r=ref: ref_signal(r, text, t, g), quick),
        )
    from tonebridge.bench import spandsp

    if spandsp.available():
        log(f"  signal: {SPANDSP[1]} ...")
        results[SPANDSP[0]] = (SPANDSP[1], measure_subject(spandsp_signal, quick))
    else:
        log("  signal: spandsp not installed (Debian libspandsp2; make setup): column left out")
    return results
