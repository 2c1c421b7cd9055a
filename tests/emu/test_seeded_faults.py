"""Three of the simulator's seeded firmware faults (tests/sim/test_fault_seeding.py), seeded this
time in the firmware source that goes onto the emulated Pico: the real MicroPython image runs
the broken backend on rp2040js, and the line must come out wrong in the same way as in the
simulator. A fault that still sounded right would mean the emulated board (or the test) cannot
see it."""

from __future__ import annotations

import numpy as np
import pytest
from tonebridge.analysis import segments, steady_slices
from tonebridge.link import BoardClient, SendError

pytestmark = pytest.mark.emu
BACKEND = "tonebridge_fw/backends/pwm_dma_rp2.py"
RATE = 48_000
FAULTS = {
    # the slice's TOP register written as 767 while the backend computes with 1023
    "wrong-top": ("m[self._base + _TOP] = self.top", "m[self._base + _TOP] = 767"),
    # TREQ_SEL 0x3f (permanent request): the DMA runs unpaced
    "unpaced-dma": ("treq_sel=self._treq,", "treq_sel=0x3F,"),
    # CSR without PH_CORRECT: trailing-edge PWM at twice the rate the renderer assumes
    "phase-correct-dropped": (
        "m[self._base + _CSR] = _CSR_PH_CORRECT | _CSR_EN",
        "m[self._base + _CSR] = _CSR_EN",
    ),
}


def seeded_source(fault):
    from tonebridge.deploy import FIRMWARE_DIR

    text = (FIRMWARE_DIR / BACKEND).read_text()
    old, new = FAULTS[fault]
    assert text.count(old) == 1, f"seed point of {fault} not found once"
    return text.replace(old, new)


def play(flash, text="1"):
    """Send `text` (100/100 ms) on an emulated board booted from `flash`; (result or the
    SendError, the line at RATE from the send on)."""
    with BoardClient(f"emu://pico?flash={flash}", timeout=10.0) as c:
        board = c.board
        c.hook(True)
        t0 = board.now_us()
        try:
            res = c.send(text)
        except SendError as e:
            res = e
        with board.line_lock:
            x = board.line.samples(RATE, start_us=t0)
    return res, x


def two_peaks(x):
    sl = steady_slices(x, RATE)
    assert sl, "no tone at all"
    y = sl[0]
    n = 1 << 20
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size), n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spec[f < 200] = 0
    i1 = int(np.argmax(spec))
    spec[np.abs(f - f[i1]) < 60] = 0
    i2 = int(np.argmax(spec))
    return sorted((f[i1], f[i2]))


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_seeded_firmware_fault_gives_wrong_audio_on_the_emulated_board(fault, provisioned):
    flash = provisioned(f"{fault}.lfs", replace={BACKEND: seeded_source(fault)})
    res, x = play(flash)
    if fault == "wrong-top":
        # periods 768/1024 as long: every frequency 4/3 too high, the tone 75 ms long
        lo, hi = two_peaks(x)
        assert lo == pytest.approx(697 * 1024 / 768, rel=2e-3)
        assert hi == pytest.approx(1209 * 1024 / 768, rel=2e-3)
        (seg,) = segments(x, RATE)
        assert seg[1] - seg[0] == pytest.approx(0.075, abs=0.002)
    elif fault == "unpaced-dma":
        # every chunk lands in CC at bus speed: no tone of any length survives
        assert all(e - s < 0.01 for s, e in segments(x, RATE)), segments(x, RATE)
    else:
        # trailing-edge at twice the sample rate: an octave up, half as long
        lo, hi = two_peaks(x)
        assert lo == pytest.approx(2 * 697, rel=3e-3)
        assert hi == pytest.approx(2 * 1209, rel=3e-3)
        (seg,) = segments(x, RATE)
        assert seg[1] - seg[0] == pytest.approx(0.050, abs=0.003)


def test_control_the_unseeded_firmware_plays_the_right_tone(provisioned):
    res, x = play(provisioned())
    assert res.played == 1
    lo, hi = two_peaks(x)
    assert lo == pytest.approx(697, rel=5e-4) and hi == pytest.approx(1209, rel=5e-4)
    (seg,) = segments(x, RATE)
    assert seg[1] - seg[0] == pytest.approx(0.100, abs=0.0005)
