"""A Raspberry Pi + MT8880 rig without the Pi: the fake RPi.GPIO (fake_rpi_gpio.py) on the
simulator's PinBus, the real sim MT8880Chip model and hook/mute/loop line interface on that bus,
and the line recorder behind them. The chip's receive side (IN+/IN-) hears the line through
the hybrid as on the pico-mt8880 board (sim/board.py): the line as the line sense hears it at
unity gain, the board's own tones included (through the loop relay K2 in a self-test)."""

import pytest
import tonebridge.sbc as sbc
from tonebridge.sim.clock import RealClock, VirtualClock
from tonebridge.sim.line_recorder import LineRecorder
from tonebridge.sim.line_sense import BIAS_V, LineSense
from tonebridge.sim.line_switches import LineInterface
from tonebridge.sim.mt8880_chip import MT8880Chip
from tonebridge.sim.pinbus import PinBus
from tonebridge_fw import boards

from .fake_rpi_gpio import FakeGPIO


class Rig:
    def __init__(self, clock, wires=None, board="rpi-mt8880", config=None):
        self.clock = clock
        self.profile = boards.profile(board, config)
        self.bus = PinBus(clock)
        self.recorder = LineRecorder(drop_gated=True)
        # the chip and line interface sit on the wires: bus numbers = Pi BCM numbers
        self.chip = MT8880Chip(self.bus, clock, self.recorder, self.profile)
        self.recorder.add_flusher(self.chip.flush)
        self.line_if = LineInterface(self.bus, self.recorder, self.profile, relay_us=5000)
        if self.profile.get("mt8880_rx"):
            hybrid = LineSense(self.recorder, self.line_if, 0)
            self.chip.listen(lambda t_us: hybrid(t_us, 0) - BIAS_V)
        self.gpio = FakeGPIO(self.bus, wires)

    def samples(self, rate=48000, start_us=0):
        return self.recorder.samples(rate, start_us=start_us, end_us=self.clock.now_us())

    def tx_codes(self):
        return [v for (_t, kind, rs0, v) in self.chip.log if kind == "w" and rs0 == 0]


@pytest.fixture
def vrig():
    return Rig(VirtualClock())


@pytest.fixture
def rrig():
    """Real-time rig injected for sbc:// URLs."""
    rig = Rig(RealClock())
    sbc.set_gpio_module(rig.gpio)
    yield rig
    sbc.set_gpio_module(None)
