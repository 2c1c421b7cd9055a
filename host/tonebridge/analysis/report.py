"""What a recording holds, digit by digit: the figures `tonebridge analyze`, `render --png`
and the dashboard show.

`analyze(samples, rate)` finds each tone (`envelope.segments`), fits its two frequencies
by least squares (`tones.fit_tones`, on the steady middle) and names the key whose row and
column frequencies are nearest (the keypad table is the firmware's, tonebridge_fw.keypad).
Per digit it reports:

* ``start_s``/``end_s``/``tone_ms``: the tone's 50 % amplitude points; ``gap_ms``: silence
  since the previous tone ended (None for the first);
* ``f_low``/``f_high`` (Hz) and ``err_low_pct``/``err_high_pct``: deviation from the key's
  nominal frequencies (the usual receiver tolerance is +/-1.5 %, dtmf-facts.md);
* ``twist_db``: high-group level minus low-group level (positive: high group louder);
* ``level_low_dbfs``/``level_high_dbfs``: each tone's RMS level relative to a full-scale sine
  (0 dBFS: peak amplitude 1.0); with ``full_scale_v`` (line volts at full scale) also
  ``level_low_dbm``/``level_high_dbm`` into 600 ohms.

A stretch that is not a DTMF pair (a frequency further than 3.5 % from every row or column)
is reported with key "?".

`plan_marks(plan)` gives where a plan's tones and pauses fall in time, for marking a
picture of it.
"""

from __future__ import annotations

import math

import numpy as np
from tonebridge_fw.keypad import COL_HZ, KEYS, ROW_HZ

from .envelope import segments
from .tones import fit_tones

MARGIN_MS = 5.0
NOT_DTMF_PCT = 3.5
LINE_OHMS = 600.0


def _nearest(f: float, table) -> tuple[int, float]:
    i = min(range(len(table)), key=lambda k: abs(f - table[k]))
    return i, (f - table[i]) / table[i] * 100.0


def _dbfs(amplitude: float) -> float:
    return 20.0 * math.log10(max(amplitude, 1e-12))


def _dbm(amplitude_v: float) -> float:
    rms = amplitude_v / math.sqrt(2.0)
    return 10.0 * math.log10(max(rms * rms / LINE_OHMS / 1e-3, 1e-30))


def analyze(samples, rate, full_scale_v: float | None = None) -> list[dict]:
    """The digits in a signal (module docstring), in time order."""
    x = np.asarray(samples, dtype=np.float64)
    rate = float(rate)
    out: list[dict] = []
    prev_end = None
    margin = MARGIN_MS * 1e-3 * rate
    for start, end in segments(x, rate):
        a = int(math.ceil(start * rate + margin))
        b = int(math.floor(end * rate - margin))
        digit = {
            "start_s": start,
            "end_s": end,
            "tone_ms": (end - start) * 1e3,
            "gap_ms": None if prev_end is None else (start - prev_end) * 1e3,
        }
        prev_end = end
        if b - a < 16:
            digit["key"] = "?"
            out.append(digit)
            continue
        fit = fit_tones(x[a:b], rate)
        row, err_low = _nearest(fit.f_low, ROW_HZ)
        col, err_high = _nearest(fit.f_high, COL_HZ)
        ok = abs(err_low) <= NOT_DTMF_PCT and abs(err_high) <= NOT_DTMF_PCT
        digit.update(
            key=KEYS[row * 4 + col] if ok else "?",
            f_low=fit.f_low,
            f_high=fit.f_high,
            err_low_pct=err_low,
            err_high_pct=err_high,
            twist_db=_dbfs(fit.a_high) - _dbfs(fit.a_low),
            # RMS re a full-scale sine's RMS: 20 log10(peak amplitude)
            level_low_dbfs=_dbfs(fit.a_low),
            level_high_dbfs=_dbfs(fit.a_high),
        )
        if full_scale_v is not None:
            digit["level_low_dbm"] = _dbm(fit.a_low * full_scale_v)
            digit["level_high_dbm"] = _dbm(fit.a_high * full_scale_v)
        out.append(digit)
    return out


def decoded(digits: list[dict]) -> str:
    return "".join(d["key"] for d in digits)


def plan_marks(plan, gap_ms: int | None = None) -> list[dict]:
    """[{"kind": "digit"|"pause", "label", "start_s", "end_s"}] for a compiled plan
    [(key|None, ms), ...]. A silent step is a pause when it is not the plain gap between
    two digits (`gap_ms`; None: only silent steps longer than their neighbours' gap)."""
    marks = []
    t = 0.0
    for key, ms in plan:
        if key is not None:
            marks.append({"kind": "digit", "label": key, "start_s": t, "end_s": t + ms / 1e3})
        elif gap_ms is None or ms != gap_ms:
            marks.append(
                {"kind": "pause", "label": f"{ms} ms", "start_s": t, "end_s": t + ms / 1e3}
            )
        t += ms / 1e3
    return marks


def measured_marks(digits: list[dict]) -> list[dict]:
    return [
        {"kind": "digit", "label": d["key"], "start_s": d["start_s"], "end_s": d["end_s"]}
        for d in digits
    ]


def format_digit(i: int, d: dict) -> str:
    """One line of `tonebridge analyze` output."""
    head = f"digit {i + 1} {d['key']}: {d['start_s']:.4f}-{d['end_s']:.4f} s"
    head += f", tone {d['tone_ms']:.1f} ms"
    if d["gap_ms"] is not None:
        head += f", gap {d['gap_ms']:.1f} ms"
    if "f_low" not in d:
        return head + " (too short to measure)"
    head += (
        f", {d['f_low']:.2f} Hz ({d['err_low_pct']:+.3f} %) + {d['f_high']:.2f} Hz "
        f"({d['err_high_pct']:+.3f} %), twist {d['twist_db']:+.2f} dB, "
        f"level {d['level_low_dbfs']:.1f}/{d['level_high_dbfs']:.1f} dBFS"
    )
    if "level_low_dbm" in d:
        head += f" ({d['level_low_dbm']:.1f}/{d['level_high_dbm']:.1f} dBm 600 ohm)"
    return head
