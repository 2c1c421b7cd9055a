"""Each synthesising board puts a sane level on the line: -7 to -13 dBm per tone into 600 ohm
(dtmf-facts.md §2), measured on the simulated line signal in volts, with the high group louder."""

import math

import pytest

from tonebridge.analysis import fit_tones, segments
from tonebridge.sim.board import render_on_board


def dbm(amplitude_v):
    return 20 * math.log10(amplitude_v / math.sqrt(2) / 0.7746)


@pytest.mark.parametrize("board", ["pico", "pico2", "esp32-i2s", "esp32s3-i2s"])
def test_tone_levels_on_the_line(board):
    res = render_on_board(board, "5", tone_ms=200, gap_ms=100, rate=48000)
    x, rate = res["samples"], res["rate"]
    (start, end) = segments(x, rate)[0]
    steady = x[int((start + 0.02) * rate) : int((end - 0.02) * rate)]
    _f_low, a_low, _f_high, a_high, _res = fit_tones(steady, rate)
    low, high = dbm(a_low), dbm(a_high)
    assert -13.0 <= low <= -7.0, f"{board}: low tone {low:.1f} dBm"
    assert -13.0 <= high <= -7.0, f"{board}: high tone {high:.1f} dBm"
    assert 0.5 <= high - low <= 4.0, f"{board}: twist {high - low:.2f} dB"
