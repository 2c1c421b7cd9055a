"""The MT8880 chip model alone, driven cycle by cycle on a PinBus (no firmware)."""

import pytest
from tonebridge.sim.clock import VirtualClock
from tonebridge.sim.line_recorder import LineRecorder
from tonebridge.sim.mt8880_chip import MT8880Chip, tone_hz
from tonebridge.sim.pinbus import IN, OUT, PinBus

PROF = {
    "d_pins": [2, 3, 4, 5],
    "rs0_pin": 6,
    "rw_pin": 7,
    "cs_pin": 8,
    "phi2_pin": 9,
    "irq_pin": 10,
}


class Host:
    """Bus master doing 6800-style cycles on the pin bus."""

    def __init__(self, power_up_ms=0):
        self.clock = VirtualClock()
        self.bus = PinBus(self.clock)
        self.rec = LineRecorder()
        self.chip = MT8880Chip(self.bus, self.clock, self.rec, PROF)
        for p in (PROF["cs_pin"], PROF["rw_pin"]):
            self.bus.configure(p, mode=OUT, value=1)
        for p in (PROF["rs0_pin"], PROF["phi2_pin"]):
            self.bus.configure(p, mode=OUT, value=0)
        for p in PROF["d_pins"]:
            self.bus.configure(p, mode=IN)
        self.clock.advance_us(power_up_ms * 1000)

    def write(self, rs0, v):
        b = self.bus
        b.set_output(PROF["rw_pin"], 0)
        b.set_output(PROF["rs0_pin"], rs0)
        for i, p in enumerate(PROF["d_pins"]):
            b.configure(p, mode=OUT, value=(v >> i) & 1)
        b.set_output(PROF["cs_pin"], 0)
        b.set_output(PROF["phi2_pin"], 1)
        b.set_output(PROF["phi2_pin"], 0)
        b.set_output(PROF["cs_pin"], 1)
        b.set_output(PROF["rw_pin"], 1)
        for p in PROF["d_pins"]:
            b.configure(p, mode=IN)

    def read(self, rs0, leave_d_out=False):
        b = self.bus
        if leave_d_out:
            for p in PROF["d_pins"]:
                b.configure(p, mode=OUT, value=0)
        b.set_output(PROF["rw_pin"], 1)
        b.set_output(PROF["rs0_pin"], rs0)
        b.set_output(PROF["cs_pin"], 0)
        b.set_output(PROF["phi2_pin"], 1)
        v = sum(b.read(p) << i for i, p in enumerate(PROF["d_pins"]))
        b.set_output(PROF["phi2_pin"], 0)
        self.after_read = [b.level(p) for p in PROF["d_pins"]]
        b.set_output(PROF["cs_pin"], 1)
        return v

    def init(self):
        self.read(1)
        self.write(1, 0)
        self.write(1, 0)
        self.write(1, 8)
        self.write(1, 0)
        self.read(1)

    def ms(self, n):
        self.clock.advance_us(int(n * 1000))


def test_datasheet_init_required_and_only_after_100ms():
    h = Host(power_up_ms=50)
    h.init()
    assert not h.chip.initialised and h.chip.ignored_early == 6
    h.ms(60)
    h.init()
    assert h.chip.initialised


def test_partial_init_does_not_initialise():
    h = Host(power_up_ms=120)
    h.read(1)
    h.write(1, 0)
    h.write(1, 8)  # one CRA=0 missing
    h.write(1, 0)
    h.read(1)
    assert not h.chip.initialised
    h.write(1, 1)  # TOUT
    h.write(0, 5)
    h.ms(30)
    assert h.chip.segments == [] and not h.chip.sounding


def test_rsel_redirects_next_control_write_to_crb():
    h = Host(power_up_ms=120)
    h.init()
    h.write(1, 0b1101)
    assert h.chip.cra == 0b1101 and h.chip.rsel
    h.write(1, 0b0001)
    assert h.chip.crb == 0b0001 and h.chip.cra == 0b1101 and not h.chip.rsel
    h.write(1, 0b0001)  # back to CRA
    assert h.chip.cra == 0b0001 and h.chip.crb == 0b0001


def test_status_read_drives_bus_then_releases_and_clears_bits():
    h = Host(power_up_ms=120)
    h.init()
    h.write(1, 0b1101)  # TOUT | IRQ | RSEL
    h.write(1, 0)  # CRB: burst mode
    h.write(0, 0xA)
    assert h.read(1) & 0x2 == 0  # burst running: transmit register not empty
    h.ms(101)
    assert h.bus.level(10) is None  # /IRQ released (open drain, no pull here)
    h.ms(1)
    assert h.bus.level(10) == 0  # /IRQ pulled low: pause over
    assert h.read(1) == 0x3  # IRQ + transmit register empty
    assert h.bus.level(10) is None
    assert h.after_read == [None] * 4  # released when phi2 fell
    assert h.read(1) == 0  # both cleared by the read
    assert h.chip.bus_conflicts == 0
    h.read(1, leave_d_out=True)
    assert h.chip.bus_conflicts == 1


def test_burst_timing_and_frequencies():
    h = Host(power_up_ms=120)
    h.init()
    h.write(1, 0b1101)
    h.write(1, 0)
    t0 = h.clock.now_us()
    h.write(0, 0xC)  # '#'
    h.ms(200)
    ((s, e, fr, fc),) = h.chip.segments
    assert (s - t0, e - t0) == (0, 51_000)
    assert (fr, fc) == tone_hz(0xC)
    assert fr == pytest.approx(947.97, abs=0.01) and fc == pytest.approx(1471.85, abs=0.01)


def test_manual_mode_gated_by_tout_and_code_change():
    h = Host(power_up_ms=120)
    h.init()
    h.write(1, 8)
    h.write(1, 1)  # CRB BURST=1: manual
    h.write(0, 1)
    h.ms(10)
    assert not h.chip.sounding  # TOUT off
    t0 = h.clock.now_us()
    h.write(1, 1)  # TOUT on
    h.ms(70)
    h.write(0, 2)  # new code while on: tone changes at once
    h.ms(30)
    h.write(1, 0)
    segs = [(s - t0, e - t0, fr, fc) for s, e, fr, fc in h.chip.segments]
    assert segs == [(0, 70_000, *tone_hz(1)), (70_000, 100_000, *tone_hz(2))]
    x = h.rec.samples(48000, start_us=t0, end_us=t0 + 100_000)
    assert x.size == 4800 and abs(x).max() > 0.3


def test_single_tone_mode_column_only():
    h = Host(power_up_ms=120)
    h.init()
    h.write(1, 8)
    h.write(1, 0b1101)  # manual, single tone, column
    h.write(0, 5)
    t0 = h.clock.now_us()
    h.write(1, 1)
    h.ms(50)
    h.write(1, 0)
    import numpy as np

    x = h.rec.samples(48000, start_us=t0, end_us=t0 + 50_000)
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), 1 << 16))
    f = np.fft.rfftfreq(1 << 16, 1 / 48000)
    peak = f[np.argmax(spec)]
    assert peak == pytest.approx(tone_hz(5)[1], abs=2)
    assert spec[np.argmin(abs(f - tone_hz(5)[0]))] < 1e-3 * spec.max()
