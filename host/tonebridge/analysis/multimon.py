"""Decode DTMF digits with multimon-ng, an independent receiver used as a test oracle.

multimon-ng reads raw signed 16-bit mono at 22050 Hz. Any input rate is resampled
here with scipy (polyphase when the ratio is a small fraction, FFT otherwise); the
signal's DC is removed and it is scaled to a peak of half full scale, so the
input's units do not matter (volts from the simulator, PWM duty counts, int16).
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import signal

from .wavio import read_wav

MULTIMON_RATE = 22050


class MultimonError(RuntimeError):
    """multimon-ng is missing or failed."""


def _resample(x: np.ndarray, rate) -> np.ndarray:
    ratio = Fraction(MULTIMON_RATE) / Fraction(rate).limit_denominator(10**6)
    if ratio == 1:
        return x
    if ratio.numerator <= 2000 and ratio.denominator <= 2000:
        return signal.resample_poly(x, ratio.numerator, ratio.denominator)
    n_out = int(round(len(x) * float(ratio)))
    return signal.resample(x, n_out)


def prepare_raw(samples, rate) -> bytes:
    """The signal as multimon-ng's input: 22050 Hz raw s16le with 100 ms of silence each side."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("decode_multimon needs a 1-D mono signal")
    x = x - np.median(x) if len(x) else x
    x = _resample(x, rate)
    peak = np.max(np.abs(x)) if len(x) else 0.0
    if peak > 0:
        x = x * (0.5 * 32767 / peak)
    pad = np.zeros(MULTIMON_RATE // 10)
    x = np.concatenate([pad, x, pad])
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def decode_multimon(samples_or_wav_path, rate=None, timeout=60) -> str:
    """Digits multimon-ng hears in a signal, in order, as a string (e.g. "1234#").

    `samples_or_wav_path`: a 1-D array (then `rate` is required, float allowed) or a
    WAV file path (its own rate is used unless `rate` overrides it).
    """
    exe = shutil.which("multimon-ng")
    if exe is None:
        raise MultimonError(
            "multimon-ng is not installed (Debian/Ubuntu: apt-get install multimon-ng)"
        )
    if isinstance(samples_or_wav_path, (str, Path)):
        x, file_rate = read_wav(samples_or_wav_path)
        rate = file_rate if rate is None else rate
    else:
        if rate is None:
            raise ValueError("decode_multimon: rate is required for a sample array")
        x = samples_or_wav_path
    raw = prepare_raw(x, rate)
    proc = subprocess.run(
        [exe, "-q", "-c", "-a", "DTMF", "-t", "raw", "-"],
        input=raw,
        capture_output=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise MultimonError(
            f"multimon-ng failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')}"
        )
    digits = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("DTMF:"):
            digits.append(line[5:].strip())
    return "".join(digits)
