"""The emulated board's line (tonebridge.emu.line.EdgeLine) from ideal phase-correct PWM edges:
the firmware's own duty values for one key as the RP2040's slice would put them on the pin
(period 2048 ticks of 8 ns, high while the counter is below CC), started at an arbitrary
nanosecond on the emulator's clock. The bins EdgeLine averages the pin over do not follow the
slice's period; they must be fine enough that where the period starts does not matter. With
2.048 us bins the same pulses read anywhere from -60 to -74 dB in band depending on that start
(the real image's line read -65 dB, its duty values -73 dB); with the 1.024 us bins used now
-71.8 to -73.6 dB (512 ns: -73.5 dB for every start). No emulator needed."""

import numpy as np
import pytest
from tonebridge.analysis import steady_slices, unwanted_db
from tonebridge.emu.line import EdgeLine
from tonebridge.sim.line_recorder import LineRecorder
from tonebridge_fw import boards, outchain
from tonebridge_fw.synth import Renderer

TICK_NS, PERIOD_TICKS = 8.0, 2048
FS = 1e9 / (TICK_NS * PERIOD_TICKS)  # 61035.156 Hz
RATE = 48_000
PIN = boards.profile("pico")["pwm_pin"]


def duty():
    r = Renderer((125_000_000 * 16, 32768), bits=10, shaping=True, response=outchain.response(FS))
    x = np.array(list(r.render([(None, 20), ("5", 100), (None, 20)])), dtype=np.int64)
    # the slice idles at mid-scale long before a tone, as on a board: the chain's coupling
    # (C8, C9, T1) has settled by then
    return np.concatenate([np.full(int(FS), x[0]), x])


def edges(cc, offset_ns):
    start = offset_ns + np.arange(cc.size) * (TICK_NS * PERIOD_TICKS)
    inner = (cc > 0) & (cc < PERIOD_TICKS // 2)
    fall = start[inner] + cc[inner] * TICK_NS
    rise = start[inner] + (PERIOD_TICKS - cc[inner]) * TICK_NS
    t = np.stack([fall, rise], 1).ravel()
    s = np.tile(np.array([0, 1], dtype=np.uint8), inner.sum())
    return t, s


def line_purity(cc, offset_ns, bin_ns=None):
    kw = {} if bin_ns is None else {"bin_ns": bin_ns}
    el = EdgeLine(boards.profile("pico"), recorder=LineRecorder(), **kw)
    t, s = edges(cc, offset_ns)
    # the pin is high at the first period's start (CC > 0: counter 0 is below CC)
    t = np.concatenate([[offset_ns], t])
    s = np.concatenate([[1], s]).astype(np.uint8)
    el.feed(t[-1] + 50_000.0, t, np.full(t.size, PIN), s)
    x = el.recorder.samples(RATE, gated=False)
    (sl,) = steady_slices(x, RATE)
    return unwanted_db(sl, RATE, (300.0, 3400.0))


@pytest.fixture(scope="module")
def cc():
    return duty()


def test_the_line_does_not_depend_on_where_the_pwm_period_starts(cc):
    figs = [line_purity(cc, off) for off in (0.0, 176.0, 512.0, 1000.0, 1531.0)]
    print("in band", [round(f, 2) for f in figs])
    assert max(figs) <= -71.0, figs
    assert max(figs) - min(figs) <= 2.0, figs


def test_coarse_bins_would_show_a_dirtier_line_than_the_pulses_are(cc):
    # the check above can fail: 8 bins per period read -73 dB when the period starts on a bin
    # boundary, -60 dB when it starts half a bin later
    aligned = line_purity(cc, 0.0, bin_ns=2048.0)
    shifted = line_purity(cc, 512.0, bin_ns=2048.0)
    assert shifted > aligned + 10.0, (aligned, shifted)
