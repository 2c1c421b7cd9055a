"""The MT8880 chip model's call-progress mode (sim/mt8880_cp.py) alone, driven on its bus: CRA
CP+IRQ puts the band-passed line on the IRQ/CP pin as a rectangular wave while a tone in band is
above the detection level; out of band or below it, nothing; the DTMF receiver decodes nothing
in CP mode and again in DTMF mode; CP with burst mode doubles the burst."""

import numpy as np
import pytest
from test_mt8880_chip import PROF, Host
from tonebridge.sim.mt8880_rx import dbm_amp
from tonebridge.sim.pinbus import PULL_UP


def _host(line):
    h = Host(power_up_ms=100)
    h.bus.configure(PROF["irq_pin"], mode=0, pull=PULL_UP)
    h.chip.listen(line)
    h.read(1)  # the datasheet's initialisation
    for tok in ((1, 0), (1, 0), (1, 8), (1, 0)):
        h.write(*tok)
    h.read(1)
    assert h.chip.initialised
    return h


def _tone(hz, dbm):
    a = dbm_amp(dbm)
    return lambda t_us: a * np.sin(2 * np.pi * hz * np.asarray(t_us) / 1e6)


def _pin_wave(h, ms=100):
    """(falling edges, fraction low) of IRQ/CP read every 50 us for ms."""
    lows, edges, last = 0, 0, 1
    for _ in range(ms * 20):
        h.clock.advance_us(50)
        v = h.bus.read(PROF["irq_pin"])
        lows += v == 0
        edges += last == 1 and v == 0
        last = v
    return edges, lows / (ms * 20)


@pytest.mark.parametrize("hz, dbm, wave", [(425, -16, True), (350, -25, True),
                                           (620, -20, True), (1209, -10, False),
                                           (150, -10, False), (425, -40, False)])  # fmt: skip
def test_a_tone_in_band_above_the_level_is_a_rectangular_wave_on_irq_cp(hz, dbm, wave):
    h = _host(_tone(hz, dbm))
    h.write(1, 0x6)  # CRA: CP + IRQ
    _pin_wave(h, 20)  # the filter settles
    edges, low = _pin_wave(h, 100)
    if wave:
        assert abs(edges - hz / 10) <= 2, edges  # one falling edge a period
        assert 0.2 < low < 0.5, low
    else:
        assert edges == 0 and low == 0
    h.write(1, 0x4)  # back to DTMF mode: the pin is IRQ again (nothing pending: high)
    assert h.bus.read(PROF["irq_pin"]) == 1


def test_cp_needs_the_irq_bit():
    h = _host(_tone(425, -16))
    h.write(1, 0x2)  # CP without IRQ: nothing on the pin
    assert _pin_wave(h, 50) == (0, 0)


def test_the_receiver_decodes_nothing_in_cp_mode():
    def dtmf(t_us):
        t = np.asarray(t_us) / 1e6
        return dbm_amp(-10) * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))

    h = _host(dtmf)
    h.write(1, 0x6)
    h.clock.advance_us(100_000)
    assert not h.read(1) & 0x04  # no code latched
    h.write(1, 0x0)  # DTMF mode: the same tone is a 5
    h.clock.advance_us(100_000)
    assert h.read(1) & 0x04 and h.read(0) == 0x5


def test_cp_and_burst_mode_double_the_burst():
    h = _host(_tone(425, -60))
    h.write(1, 0xB)  # CRA: TOUT + CP + RSEL
    h.write(1, 0x0)  # CRB: burst mode
    h.write(0, 0x5)
    h.clock.advance_us(60_000)
    assert h.chip.sounding  # still on after DTMF mode's 51 ms
    h.clock.advance_us(50_000)
    assert not h.chip.sounding
