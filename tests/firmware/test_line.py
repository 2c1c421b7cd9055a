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


# ---- edges a mutation run found unchecked ----------------------------------------------------


def test_defaults_and_negative_max_offhook():
    line = Line({}, Clock(), pin_class=Pin)
    assert line.max_offhook_ms == 600 * 1000  # 10 minutes unless the profile says
    raises(ValueError, Line, {"max_offhook_s": -1}, Clock(), Pin)
    WDT.made = []
    w = Watchdog(wdt_class=WDT)
    assert WDT.made[0].timeout == 5000 and w.repl_grace_ms == 600000


def test_ready_and_timeout_hold_after_the_moment_passed():
    # a main loop that looks late still sees the relay settled and the timeout due
    line, clock = _line()
    line.off_hook()
    clock.ms += 25
    assert line.ready()
    clock.ms += 3000 + 40  # well past max_offhook_s = 3
    assert line.service() == [("hangup", "timeout")]
    assert not line.is_off_hook()


def test_is_muted_follows_mute_and_unmute():
    line, clock = _line()
    assert line.is_muted()
    line.unmute()
    assert not line.is_muted()
    line.mute()
    assert line.is_muted()
    line.unmute()
    line.on_hook()
    assert line.is_muted()


class Timer:
    PERIODIC = 1
    made = []
    refuse = ()  # ids this port's Timer() refuses, and how

    def __init__(self, id):
        for bad_id, exc in Timer.refuse:
            if id == bad_id:
                raise exc("no such timer")
        self.id = id
        self.cb = None
        self.off = False
        Timer.made.append(self)

    def init(self, mode=0, period=0, callback=None):
        self.mode = mode
        self.period = period
        self.cb = callback

    def deinit(self):
        self.off = True


class _Machine:
    pass


def _keep_alive(timeout_ms, grace_ms, refuse=()):
    import sys

    m = _Machine()
    m.Timer = Timer
    Timer.made = []
    Timer.refuse = refuse
    WDT.made = []
    w = Watchdog(timeout_ms, wdt_class=WDT, repl_grace_ms=grace_ms)
    old = sys.modules.get("machine")
    sys.modules["machine"] = m
    try:
        w.keep_alive_for_repl()
    finally:
        if old is None:
            del sys.modules["machine"]
        else:
            sys.modules["machine"] = old
    return w, Timer.made[-1], WDT.made[0]


def test_repl_keep_alive_feeds_for_the_grace_then_stops():
    w, t, wdt = _keep_alive(1000, 3000)
    assert t.id == -1 and t.mode == Timer.PERIODIC
    assert t.period == 250  # a quarter of the watchdog timeout
    for _ in range(12):  # 3000 ms / 250 ms
        t.cb(t)
    assert wdt.fed == 12 and not t.off
    t.cb(t)
    assert wdt.fed == 12 and t.off  # grace over: the watchdog will reset the board
    t.cb(t)
    assert wdt.fed == 12


def test_repl_keep_alive_period_has_a_floor():
    w, t, wdt = _keep_alive(196, 1000)  # a quarter would be 49 ms
    assert t.period == 50
    w, t, wdt = _keep_alive(204, 1000)
    assert t.period == 51


def test_repl_keep_alive_falls_back_to_timer_0():
    for exc in (ValueError, TypeError):  # rp2-style Timer(-1) refused as on esp32
        w, t, wdt = _keep_alive(1000, 500, refuse=((-1, exc),))
        assert t.id == 0
        t.cb(t)
        assert wdt.fed == 1


def test_repl_keep_alive_grace_rounds_down_to_whole_periods():
    w, t, wdt = _keep_alive(1000, 1100)  # 1100 ms / 250 ms: 4 whole periods
    for _ in range(10):
        t.cb(t)
    assert wdt.fed == 4 and t.off
