"""Line control (hook relay, mute, off-hook timeout) and the watchdog helper against pin and
WDT doubles (runs under CPython and MicroPython)."""

from fwtest import raises
from tonebridge_fw.line import Line, Watchdog

PROFILE = {"hook_pin": 14, "mute_pin": 15, "max_offhook_s": 3}


class Pin:
    OUT = 1
    IN = 0
    levels = {}
    history = []

    def __init__(self, id, mode=-1, value=None):
        self.id = id
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return Pin.levels.get(self.id, 0)
        Pin.levels[self.id] = v
        Pin.history.append((self.id, v))


class Clock:
    def __init__(self):
        self.ms = 1000

    def __call__(self):
        return self.ms


def _line(profile=PROFILE):
    Pin.levels = {}
    Pin.history = []
    clock = Clock()
    return Line(profile, clock, pin_class=Pin), clock


def test_starts_on_hook_and_muted_with_glitch_free_init():
    line, _ = _line()
    assert Pin.levels == {14: 0, 15: 1}
    assert Pin.history == [(14, 0), (15, 1)]  # levels set while the pins became outputs
    assert not line.is_off_hook() and line.is_muted()


def test_hook_and_mute_drive_the_pins():
    line, _ = _line()
    line.off_hook()
    assert Pin.levels[14] == 1
    line.unmute()
    assert Pin.levels[15] == 0
    line.on_hook()
    assert Pin.levels == {14: 0, 15: 1}  # hanging up also mutes


def test_offhook_timeout():
    line, clock = _line()
    line.off_hook()
    clock.ms += 2999
    assert line.service() == ()
    assert line.offhook_ms() == 2999
    clock.ms += 1
    assert line.service() == [("hangup", "timeout")]
    assert not line.is_off_hook()
    assert Pin.levels[14] == 0
    assert line.service() == ()
    assert line.offhook_ms() == 0


def test_timeout_restarts_with_each_offhook():
    line, clock = _line()
    line.off_hook()
    clock.ms += 2000
    line.on_hook()
    line.off_hook()
    clock.ms += 2000
    assert line.service() == ()
    line.off_hook()  # already off-hook: does not extend the hold
    clock.ms += 1000
    assert line.service() == [("hangup", "timeout")]


def test_bad_max_offhook_is_refused():
    raises(ValueError, Line, {"hook_pin": 1, "mute_pin": 2, "max_offhook_s": 0}, Clock(), Pin)
    raises(ValueError, Line, {"hook_pin": 1, "mute_pin": 2, "max_offhook_s": "9"}, Clock(), Pin)


def test_no_pins_is_allowed():
    line = Line({}, Clock(), pin_class=Pin)
    line.off_hook()
    assert line.is_off_hook()


class WDT:
    made = []

    def __init__(self, timeout=0):
        self.timeout = timeout
        self.fed = 0
        WDT.made.append(self)

    def feed(self):
        self.fed += 1


def test_watchdog_helper_feeds_the_machine_wdt():
    WDT.made = []
    w = Watchdog(2500, wdt_class=WDT)
    assert WDT.made[0].timeout == 2500
    w.feed()
    w.feed()
    assert WDT.made[0].fed == 2 and w.feeds == 2


def test_ready_once_the_relay_has_settled():
    line, clock = _line()
    assert not line.ready()
    line.off_hook()
    assert not line.ready()
    clock.ms += 9
    assert not line.ready()
    clock.ms += 1
    assert line.ready()
    line.on_hook()
    assert not line.ready()
