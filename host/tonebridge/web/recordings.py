"""A call's recordings (`serve --record DIR`: DIR/<callId>-<n>.wav), their analysis and
their spectrograms, for the dashboard. Analysis is tonebridge's own
(tonebridge.analysis.report); results are cached per file (path, size, mtime)."""

from __future__ import annotations

import io
import os
import re
import threading

from tonebridge.api.recording import FULL_SCALE_V

NAME = re.compile(r"^(?P<call>[A-Za-z0-9._-]{1,128})-(?P<n>[0-9]{1,9})$")
CACHE_MAX = 64

_lock = threading.Lock()
_cache: dict[tuple, tuple] = {}


def path_of(record_dir: str | None, call_id: str, number: int) -> str | None:
    """The recording's path if it exists, else None."""
    if not record_dir:
        return None
    path = os.path.join(record_dir, f"{call_id}-{int(number)}.wav")
    return path if os.path.isfile(path) else None


def parse_name(name: str) -> tuple[str, int] | None:
    m = NAME.match(name)
    return (m["call"], int(m["n"])) if m else None


def _key(path: str) -> tuple:
    st = os.stat(path)
    return (path, st.st_size, st.st_mtime_ns)


def _cached(path: str, what: str, make):
    key = (*_key(path), what)
    with _lock:
        if key in _cache:
            return _cache[key]
    value = make()
    with _lock:
        while len(_cache) >= CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = value
    return value


def analysis(path: str) -> dict:
    """{"decoded", "duration_s", "rate", "digits": [report.analyze rows]} (blocking)."""

    def make():
        from tonebridge.analysis import read_wav
        from tonebridge.analysis.report import analyze, decoded

        x, rate = read_wav(path)
        digits = analyze(x, rate, full_scale_v=FULL_SCALE_V)
        return {
            "decoded": decoded(digits),
            "duration_s": len(x) / rate,
            "rate": rate,
            "digits": digits,
        }

    return _cached(path, "analysis", make)


def spectrogram(path: str, title: str) -> bytes:
    """PNG of the recording with the measured digits marked (blocking)."""

    def make():
        from tonebridge.analysis import read_wav
        from tonebridge.analysis.picture import spectrogram_png
        from tonebridge.analysis.report import measured_marks

        x, rate = read_wav(path)
        buf = io.BytesIO()
        marks = measured_marks(analysis(path)["digits"])
        spectrogram_png(x, rate, marks, buf, title=title, width_in=9.0)
        return buf.getvalue()

    return _cached(path, "png", make)
