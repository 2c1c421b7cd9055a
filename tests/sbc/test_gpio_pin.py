"""The machine.Pin adapter over the RPi.GPIO API (fake RPi.GPIO on the sim pin bus)."""

import pytest
from tonebridge.sbc.gpio_pin import PinError, make_pin_class
from tonebridge.sim import pinbus
from tonebridge.sim.clock import VirtualClock
from tonebridge.sim.pinbus import PinBus

from .fake_rpi_gpio import BOARD, FakeGPIO


def _pin():
    bus = PinBus(VirtualClock())
    gpio = FakeGPIO(bus)
    return bus, gpio, make_pin_class(gpio)


def test_output_pin_sets_level_before_it_drives():
    bus, gpio, Pin = _pin()
    seen = []
    bus.watch(23, lambda g, lv, t: seen.append(lv))
    p = Pin(23, Pin.OUT, value=1)
    assert bus.mode(23) == pinbus.OUT and bus.level(23) == 1
    assert seen == [1]  # never low on the way to output-high
    p.value(0)
    assert bus.level(23) == 0 and p.value() == 0
    p.on()
    assert bus.level(23) == 1
    p(0)
    assert bus.level(23) == 0
    assert gpio.getmode() == gpio.BCM


def test_input_pin_reads_the_wire_and_pulls():
    bus, gpio, Pin = _pin()
    p = Pin(6, Pin.IN, Pin.PULL_UP)
    assert p.value() == 1
    bus.drive(6, 0)
    assert p.value() == 0
    bus.drive(6, None)
    p.init(Pin.IN, Pin.PULL_DOWN)
    assert p.value() == 0
    # direction flips as the MT8880 driver does it: init(mode) keeps the latched level
    q = Pin(5, Pin.IN)
    q.value(1)  # latched while an input, driven once an output
    assert bus.mode(5) == pinbus.IN
    q.init(Pin.OUT)
    assert bus.mode(5) == pinbus.OUT and bus.level(5) == 1
    q.init(Pin.IN)
    assert bus.mode(5) == pinbus.IN


def test_cleanup_releases_every_channel_set_up():
    bus, gpio, Pin = _pin()
    Pin(23, Pin.OUT, value=1)
    Pin(6, Pin.IN)
    assert Pin.channels == {23, 6}
    Pin.cleanup()
    assert bus.mode(23) == pinbus.IN and Pin.channels == set()
    with pytest.raises(RuntimeError):
        gpio.output(23, 1)  # RPi.GPIO's own rule: no longer an output


def test_pin_map_moves_a_profile_pin_to_another_channel():
    bus = PinBus(VirtualClock())
    Pin = make_pin_class(FakeGPIO(bus), {17: 4})
    Pin(17, Pin.OUT, value=1)
    assert bus.level(4) == 1 and bus.mode(17) is None


def test_bad_pins_and_modes_are_clear_errors():
    bus, gpio, Pin = _pin()
    with pytest.raises(PinError, match="BCM GPIO number"):
        Pin("GP5", Pin.OUT)
    with pytest.raises(PinError, match="not supported"):
        Pin(5, Pin.OPEN_DRAIN)
    with pytest.raises(PinError, match="set a mode"):
        Pin(5, value=1)
    with pytest.raises(ValueError, match="invalid on a Raspberry Pi"):
        Pin(40, Pin.OUT)


def test_board_numbering_is_refused():
    gpio = FakeGPIO(PinBus(VirtualClock()))
    gpio.setmode(BOARD)
    with pytest.raises(PinError, match="BCM"):
        make_pin_class(gpio)
