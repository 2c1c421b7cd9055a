"""Audio analysis toolkit for tests and tools: independent measurements of DTMF audio.

- `decode_multimon(samples_or_wav_path, rate)`: digits heard by multimon-ng.
- `segments(samples, rate)`: tone-on intervals (50 % amplitude points), seconds.
- `steady_slices(samples, rate)`: the steady middle of each tone, for fitting.
- `fit_tones(samples, rate)`: (f_low, a_low, f_high, a_high, residual) by least squares.
- `unwanted_db(samples, rate, band)`: residual power in a band vs. the low tone, dB.
- `read_wav(path) -> (samples, rate)`, `write_wav(path, samples, rate)`: 16-bit mono.

All work on 1-D numpy float arrays; rates may be floats.
"""

from .envelope import segments, steady_slices
from .multimon import MultimonError, decode_multimon
from .tones import band_power, fit_sinusoids, fit_tones, tone_model, unwanted_db
from .wavio import read_wav, to_int16, write_wav

__all__ = [
    "MultimonError",
    "band_power",
    "decode_multimon",
    "fit_sinusoids",
    "fit_tones",
    "read_wav",
    "segments",
    "steady_slices",
    "to_int16",
    "tone_model",
    "unwanted_db",
    "write_wav",
]
