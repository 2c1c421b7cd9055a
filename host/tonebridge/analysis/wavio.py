"""16-bit mono WAV reading and writing on numpy float arrays.

Samples are float64 in the same units as the file's full scale: an int16 file
reads as values in [-1, 1) (sample / 32768). Writing takes float samples in
[-1, 1] (clipped, rounded to int16) or an integer array already in int16 units.
WAV headers store an integer rate, so a rate like 125e6/8192 is written rounded
to the nearest hertz (15258.79 -> 15259, an error of 0.0014 %).
"""

from __future__ import annotations

import numpy as np
from scipy.io import wavfile


def read_wav(path) -> tuple[np.ndarray, int]:
    """Return (samples, rate). Multi-channel files give the first channel."""
    rate, data = wavfile.read(str(path))
    if data.ndim > 1:
        data = data[:, 0]
    if data.dtype == np.int16:
        x = data.astype(np.float64) / 32768.0
    elif data.dtype == np.int32:
        x = data.astype(np.float64) / 2147483648.0
    elif data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    else:
        x = data.astype(np.float64)
    return x, int(rate)


def to_int16(samples) -> np.ndarray:
    """Float samples in [-1, 1] (or int16-unit integers) as a clipped int16 array."""
    a = np.asarray(samples)
    if a.dtype == np.int16:
        return a
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(a, -32768, 32767).astype(np.int16)
    return np.clip(np.round(a.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path, samples, rate) -> None:
    """Write 16-bit mono PCM. `samples`: floats in [-1, 1] or int16 values."""
    wavfile.write(str(path), int(round(float(rate))), to_int16(samples))
