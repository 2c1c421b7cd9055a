"""The MT8880 model's tone generation against the datasheet's description of it (see
tonebridge/sim/mt8880_chip.py): a 32-segment staircase per group, then a first-order
low-pass. In single-tone mode (CRB S/D, as the datasheet suggests for distortion
measurements) the output's harmonics are exactly those of a 32-step staircase: only at
32k +- 1 times the tone, each 1/n of the fundamental, times the output filter; nothing else
(in particular nothing in 300-3400 Hz besides the tone)."""

import math

import numpy as np
import pytest
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge.sim import mt8880_chip as chipmod

RATE = 384_000
FILTER_HZ = 8000.0  # the datasheet's "first-order lowpass ... above 8 kHz" (as modelled)


def lp(f):
    return 1.0 / math.hypot(1.0, f / FILTER_HZ)


def single_tone(code, column):
    """The chip's output for 120 ms of one group's tone (manual mode, single tone)."""
    sb = SimBoard("pico-mt8880", VirtualClock(), run_main=False)
    try:
        chip = sb.chip
        sb.recorder.set_gate("hook", 0, True)
        sb.recorder.set_gate("mute", 0, True)
        chip.initialised = True
        chip.crb = chipmod.CRB_BURST | chipmod.CRB_SD | (chipmod.CRB_CR if column else 0)
        chip.cra = chipmod.CRA_TOUT
        chip.tx = code
        t0 = sb.clock.now_us()
        chip._update(t0)
        sb.run_for(80)
        chip.flush()
        x = sb.recorder.samples(RATE, start_us=t0 + 20_000, end_us=t0 + 80_000, gated=False)
        fr, fc = chipmod.tone_hz(code)
        return x, (fc if column else fr)
    finally:
        sb.close()


def harmonics(x, f, n_max):
    """Amplitude of each harmonic 1..n_max (least squares at the exact frequencies)."""
    t = np.arange(x.size) / RATE
    cols = [np.ones_like(t)]
    for n in range(1, n_max + 1):
        cols += [np.cos(2 * np.pi * n * f * t), np.sin(2 * np.pi * n * f * t)]
    c, *_ = np.linalg.lstsq(np.stack(cols, 1), x, rcond=None)
    return np.hypot(c[1::2], c[2::2])


@pytest.mark.parametrize("code, column", [(0x1, False), (0x0, True), (0xB, False)])
def test_single_tone_harmonics_are_the_32_step_staircases(code, column):
    x, f = single_tone(code, column)
    n_max = 34
    a = harmonics(x, f, n_max)
    fund = a[0]
    g1 = lp(f)
    for n in range(2, n_max + 1):
        rel_db = 20 * math.log10(a[n - 1] / fund + 1e-15)
        if n % 32 in (1, 31):
            want = 20 * math.log10(lp(n * f) / g1 / n)
            assert abs(rel_db - want) <= 0.3, (n, rel_db, want)
        else:
            assert rel_db <= -80.0, (n, rel_db)
    # the datasheet's structure gives no harmonic inside the voice band at all
    assert 31 * f > 3400


@pytest.mark.slow
def test_single_tone_thd_figure():
    # THD of the modelled low-group tone (697 Hz nominal) up to 48 kHz: the staircase's
    # 31st and 33rd harmonics through the 8 kHz first-order filter
    x, f = single_tone(0x1, False)
    a = harmonics(x, f, 66)
    thd_db = 10 * math.log10(np.sum(a[1:] ** 2) / a[0] ** 2)
    n = np.array([31, 33, 63, 65])
    pred = 10 * math.log10(np.sum((np.array([lp(k * f) for k in n]) / lp(f) / n) ** 2))
    print("THD", round(thd_db, 2), "predicted", round(pred, 2))
    assert abs(thd_db - pred) <= 0.3, (thd_db, pred)
    assert -45.0 <= thd_db <= -30.0, thd_db
