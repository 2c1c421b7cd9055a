"""Spectrogram pictures of line signals (matplotlib, Agg backend: no display needed).

`spectrogram_png(samples, rate, marks, path_or_file)` draws the signal's spectrogram
(0-2.2 kHz, where every DTMF frequency lies), the DTMF row and column frequencies as faint
lines, and `marks` (report.plan_marks / report.measured_marks) as shaded spans labelled
with their key or pause length. The marks are drawn at exactly the times given, so the
figures printed beside a picture say where its marks are.
"""

from __future__ import annotations

import numpy as np
from tonebridge_fw.keypad import COL_HZ, ROW_HZ

F_MAX = 2200.0
DYNAMIC_DB = 60.0  # shown below the loudest bin


def spectrogram_png(samples, rate, marks, out, title: str | None = None, width_in=None) -> None:
    """Write the picture as PNG to `out` (a path or a binary file object)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    x = np.asarray(samples, dtype=np.float64)
    rate = float(rate)
    duration = len(x) / rate if len(x) else 0.0
    width = width_in or min(16.0, max(6.0, 2.0 + 4.0 * duration))
    fig = Figure(figsize=(width, 3.6), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    nfft = 1 << max(6, int(round(np.log2(rate * 0.025))))  # ~25 ms windows: tones resolve
    if len(x) >= nfft:
        from scipy.signal import spectrogram

        f, t, p = spectrogram(
            x, fs=rate, window="hann", nperseg=nfft, noverlap=nfft * 7 // 8, nfft=4 * nfft
        )
        keep = f <= F_MAX
        db = 10.0 * np.log10(np.maximum(p[keep], 1e-20))
        top = float(db.max())
        ax.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=top - DYNAMIC_DB,
            vmax=top,
            extent=(t[0] - (t[1] - t[0]) / 2 if len(t) > 1 else 0.0, t[-1], 0.0, f[keep][-1]),
            interpolation="nearest",
        )
    for f in (*ROW_HZ, *COL_HZ):
        ax.axhline(f, color="white", lw=0.4, alpha=0.35)
    for m in marks:
        colour = "#4fc3f7" if m["kind"] == "digit" else "#aaaaaa"
        ax.axvspan(m["start_s"], m["end_s"], ymin=0.0, ymax=0.04, color=colour, alpha=0.9)
        ax.axvline(m["start_s"], color=colour, lw=0.8, alpha=0.8)
        ax.axvline(m["end_s"], color=colour, lw=0.8, alpha=0.4, ls="--")
        ax.text(
            (m["start_s"] + m["end_s"]) / 2,
            F_MAX * 0.93,
            m["label"],
            ha="center",
            va="top",
            color=colour,
            fontsize=10 if m["kind"] == "digit" else 7,
            fontweight="bold" if m["kind"] == "digit" else "normal",
        )
    ax.set_xlim(0.0, max(duration, max((m["end_s"] for m in marks), default=0.0)))
    ax.set_ylim(0.0, F_MAX)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, format="png")
