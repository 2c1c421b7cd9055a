"""The MT8880 / CM8880's call-progress mode (CRA b1 CP=1), host side: the chip's own hardware,
the firmware only sees the IRQ/CP pin.

The datasheet (CRA description, quoted on vaultbbs.com #8737): in CP mode "a 6th order bandpass
filter is enabled to allow call progress tones to be detected. Call progress tones which are
within the specified bandwidth will be presented at the IRQ/CP pin in rectangular wave format if
the IRQ bit has been enabled (b2=1)", and "DTMF signals cannot be decoded when the CP mode ...
has been selected" (the chip's receiver latches nothing: mt8880_chip.py); with CP and burst mode
the bursts are 102 ms (twice DTMF mode's 51 ms).

Modelled: the line (IN+/IN-) sampled at ``RATE``, a 6th-order Butterworth band-pass
(``BAND_HZ``), and a comparator: the open-drain pin is pulled low while the filter's output is
above the detection level (``DETECT_DBM``, the peak of a sine of that level), released (high
through the pull-up) otherwise: a tone in band and above the level gives a rectangular wave at
its frequency; a tone out of band or below the level, nothing. The band edges and the level are
UNCONFIRMED: the datasheet's call-progress response figure was not retrieved here; 300-640 Hz
(the call-progress tones of cptones.py, 350-620 Hz, all pass) and -30 dBm are our defaults.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .mt8880_rx import dbm_amp

RATE = 8000
BAND_HZ = (300.0, 640.0)
DETECT_DBM = -30.0


class CallProgressFilter:
    def __init__(self, source, t0_us: int, *, band=BAND_HZ, detect_dbm: float = DETECT_DBM):
        self.source = source
        self.sos = signal.butter(3, band, btype="bandpass", fs=RATE, output="sos")
        self.thr = dbm_amp(detect_dbm)
        self.t0_us = float(t0_us)
        self.n = 0  # samples filtered
        self.zi = np.zeros((self.sos.shape[0], 2))
        self.y = 0.0  # the filter's newest output
        self.edges = 0  # falling edges of the pin so far (observability for tests)
        self._low = False

    def restart(self, t_us: int) -> None:
        """CP mode entered: the filter starts at rest at t_us."""
        self.t0_us = float(t_us)
        self.n = 0
        self.zi[:] = 0.0
        self.y = 0.0
        self._low = False

    def level(self, t_us: float):
        """The pin at t_us: 0 (pulled low: the signal above the detection level) or None."""
        m = int((t_us - self.t0_us) * RATE / 1e6) - self.n
        if m > 0:
            t = self.t0_us + (self.n + np.arange(m)) * (1e6 / RATE)
            y, self.zi = signal.sosfilt(self.sos, self.source(t), zi=self.zi)
            self.n += m
            above = y > self.thr
            self.edges += int(np.count_nonzero(above[1:] & ~above[:-1]))
            if above[0] and not self._low:
                self.edges += 1
            self._low = bool(above[-1])
            self.y = float(y[-1])
        return 0 if self._low else None
