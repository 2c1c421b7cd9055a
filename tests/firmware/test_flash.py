"""Hook flash (issue 12 item 5): the tonebridge dialect's '!' and 'p', the FLASH request, the
line's timed break and the player's flash step. Runs under CPython and MicroPython."""

from fwtest import raises
from test_engine import Rig, kv
from tonebridge_fw import dialstring, engine
from tonebridge_fw.dialstring import DialStringError, compile_plan, validate
from tonebridge_fw.line import Line
from tonebridge_fw.player import Player

# ---- dial strings --------------------------------------------------------------------------


def test_bang_is_a_flash_step_spaced_like_a_key():
    assert compile_plan("1!2", "tonebridge") == [
        ("1", 100),
        (None, 100),
        ("!", 100),
        (None, 100),
        ("2", 100),
    ]
    assert compile_plan("!", "tonebridge", flash_ms=600) == [("!", 600)]
    # a pause replaces the gap after a flash (a PBX's recall dial tone), as after a key
    assert compile_plan("!p5", "tonebridge", pause_ms=1500) == [
        ("!", 100),
        (None, 1500),
        ("5", 100),
    ]


def test_p_is_the_lines_pause_like_comma():
    a = compile_plan("1p2,3pp", "tonebridge", pause_ms=700)
    assert a == [("1", 100), (None, 700), ("2", 100), (None, 700), ("3", 100), (None, 1400)]


def test_flash_counts_as_a_step():
    plan = compile_plan("12!3", "tonebridge")
    assert dialstring.digits_in(plan) == 4
    assert dialstring.plan_text(plan) == "12!3"


def test_catapult_and_gws_keep_refusing_bang_and_p():
    for d in ("catapult", "gws"):
        e = raises(DialStringError, validate, "12!3", d)
        assert e.position == 2 and e.char == "!"
        assert str(e) == "invalid character '!' at position 2"
        e = raises(DialStringError, validate, "1p", d)
        assert e.position == 1 and e.char == "p"
    e = raises(DialStringError, compile_plan, "P", "tonebridge")  # lower-case only
    assert e.position == 0


def test_flash_cannot_be_held():
    e = raises(DialStringError, validate, "!(300)", "tonebridge")
    assert e.position == 1 and e.char == "("
    assert "does not follow a key" in str(e)


def test_flash_length_limits():
    assert compile_plan("!", "tonebridge", flash_ms=50) == [("!", 50)]
    assert compile_plan("!", "tonebridge", flash_ms=1500) == [("!", 1500)]
    for bad in (49, 1501, 0, -100):
        e = raises(DialStringError, compile_plan, "1", "tonebridge", flash_ms=bad)
        assert str(e) == "flash_ms %d is outside 50-1500 ms" % bad
    for bad in (100.0, "100", True, None):
        e = raises(DialStringError, compile_plan, "1", "tonebridge", flash_ms=bad)
        assert str(e) == "flash_ms must be a whole number of milliseconds, got " + repr(bad)
    # the limit is checked even when the string has no flash (like pause_ms)
    raises(DialStringError, compile_plan, "1", "catapult", flash_ms=10)


def test_flash_string_length_limit_counts_the_bang():
    validate("!" * 92, "tonebridge")
    e = raises(DialStringError, validate, "!" * 93, "tonebridge")
    assert e.position == 92


# ---- engine --------------------------------------------------------------------------------


class FlashRig(Rig):
    def __init__(self, boot="b007"):
        self.flashes = []
        Rig.__init__(self, boot)
        actions = self.eng.actions

        def spy():
            a = actions()
            for act in a:
                if act[0] == "flash":
                    self.flashes.append(act[1])
            return a

        self.eng.actions = spy


def test_flash_request_needs_the_line_held():
    r = FlashRig()
    rep = r.request("1", "FLASH")
    assert rep.startswith("ERR on-hook ") and r.flashes == []
    r.request("2", "HOOK off")
    assert r.request("3", "FLASH") == "OK flash=100"
    assert r.request("4", "FLASH 600") == "OK flash=600"
    assert r.flashes == [100, 600]


def test_flash_request_is_executed_once():
    r = FlashRig()
    r.request("1", "HOOK off")
    assert r.request("2", "FLASH 250") == "OK flash=250"
    assert r.request("2", "FLASH 250") == "OK flash=250 dup=1"
    assert r.flashes == [250]
    assert r.request("2", "FLASH 300").startswith("ERR id-reused")


def test_flash_request_limits_and_busy():
    r = FlashRig()
    r.request("1", "HOOK off")
    assert r.request("2", "FLASH 49").startswith("ERR bad-arg flash_ms 49 is outside 50-1500")
    assert r.request("3", "FLASH 1501").startswith("ERR bad-arg")
    assert r.request("4", "FLASH x").startswith("ERR bad-arg flash must be an integer")
    assert r.request("5", "FLASH 100 200").startswith("ERR bad-arg")
    r.request("6", "SEND 123")
    assert r.request("7", "FLASH").startswith("ERR busy")
    assert r.flashes == []
    r.run(1000)
    assert r.request("8", "FLASH") == "OK flash=100"


def test_config_flash_is_the_default_for_flash_and_bang():
    r = FlashRig()
    assert kv(r.request("1", "CONFIG flash=400"))["flash"] == "400"
    assert r.request("2", "CONFIG flash=40").startswith("ERR bad-arg flash_ms 40")
    assert kv(r.request("3", "CONFIG"))["flash"] == "400"
    r.request("4", "HOOK off")
    assert r.request("5", "FLASH") == "OK flash=400"
    r.request("6", "SEND dialect=tonebridge 1^2")
    assert r.player.plans[-1][1][2] == ("!", 400)
    r.run(2000)
    r.request("7", "SEND dialect=tonebridge flash=75 ^")
    assert r.player.plans[-1][1] == [("!", 75)]
    assert r.request("8", "SEND dialect=tonebridge flash=20 ^").startswith("ERR dial flash_ms 20")


def test_profile_flash_length_and_counts():
    r = Rig()
    r.eng = engine.Engine(r.clock, "b007", flash_ms=1200)
    assert kv(r.request("1", "CONFIG"))["flash"] == "1200"
    raises(ValueError, engine.Engine, r.clock, "b007", None, 32, 4, None, 0, 0, 30)
    rep = kv(r.request("2", "SEND dialect=tonebridge 1^2"))
    assert rep["digits"] == "3" and rep["ms"] == str(100 + 100 + 1200 + 100 + 100)
    r.run(2000)
    assert r.events("2")[-1] == "DONE 3"
    assert "START 1 ^" in r.events("2") and "END 1 ^" in r.events("2")  # the wire form


def test_bang_refused_in_catapult_send():
    r = Rig()
    rep = r.request("1", "SEND dialect=catapult 1^2")
    assert rep == "ERR dial pos=1 invalid character '^' at position 1"


# ---- line ----------------------------------------------------------------------------------


class Pin:
    OUT = 1

    def __init__(self, id, mode=-1, value=None):
        self.id = id
        self.log = LOG
        if value is not None:
            self.value(value)

    def value(self, v=None):
        self.log.append((self.id, v, US[0]))


LOG = []
US = [0]


def _us():
    return US[0]


def _sleep_us(n):
    US[0] += n


def _ms():
    return US[0] // 1000


def _line():
    del LOG[:]
    US[0] = 5000
    # no machine.Timer: service() alone ends the flash (the timer path: test_flash_timer_...)
    return Line({"hook_pin": 14, "mute_pin": 15}, _ms, Pin, None, _us, _sleep_us, False)


def _hook_edges():
    return [(v, t) for (p, v, t) in LOG if p == 14]


def test_line_flash_opens_the_relay_for_exactly_the_time():
    line = _line()
    line.off_hook()
    US[0] = 10300  # not on a ms boundary
    line.flash(100)
    assert line.flashing() and line.is_off_hook()
    for _ in range(200):  # main-loop passes every 1 ms (+ 37 us of work)
        if not line.flashing():
            break
        US[0] += 1037
        line.service()
    assert not line.flashing() and line.flashes == 1
    edges = _hook_edges()
    assert edges[-2:] == [(0, 10300), (1, 110300)], edges
    assert line.is_off_hook()


def test_line_flash_late_pass_ends_late_not_early():
    line = _line()
    line.off_hook()
    line.flash(50)
    US[0] += 49000
    line.service()  # 1 ms left: slept out here, not left to the next pass
    assert not line.flashing()
    assert _hook_edges()[-1] == (1, 5000 + 50000)
    line.flash(50)
    US[0] += 60000  # a pass that came late: the break ends at once
    line.service()
    assert _hook_edges()[-1] == (1, 5000 + 50000 + 60000)


def test_line_flash_needs_the_line_held_and_hangup_ends_it():
    line = _line()
    raises(ValueError, line.flash, 100)
    assert _hook_edges() == [(0, 5000)]
    line.off_hook()
    line.flash(1500)
    assert line.flash_left_ms() == 1500
    line.on_hook()
    assert not line.flashing() and not line.is_off_hook()
    US[0] += 2000000
    line.service()
    assert _hook_edges()[-1][0] == 0  # stays released: hanging up is not undone
    line.off_hook()
    line.flash(100)
    line.off_hook()  # seizing again ends the flash at once
    assert not line.flashing() and _hook_edges()[-1][0] == 1


class Timer:
    """machine.Timer double: records init(); the test fires the callback."""

    ONE_SHOT = 0
    made = []

    def __init__(self, id):
        self.id = id
        self.inits = []
        Timer.made.append(self)

    def init(self, mode=1, period=0, callback=None):
        self.inits.append((mode, period))
        self.cb = callback

    def fire(self):
        self.cb(self)


def test_flash_timer_closes_the_relay_whatever_the_main_loop_does():
    del LOG[:]
    del Timer.made[:]
    US[0] = 5000
    line = Line({"hook_pin": 14}, _ms, Pin, None, _us, _sleep_us, Timer)
    line.off_hook()
    line.flash(300)
    assert len(Timer.made) == 1 and Timer.made[0].id == -1
    t = Timer.made[0]
    assert t.inits == [(Timer.ONE_SHOT, 300)]
    US[0] += 300000
    t.fire()  # the timer's callback, between two main-loop passes
    assert not line.flashing() and _hook_edges()[-1] == (1, 305000)
    line.service()
    assert line.flashes == 1 and _hook_edges()[-1] == (1, 305000)  # closed once
    line.flash(100)
    assert len(Timer.made) == 1 and t.inits[-1] == (Timer.ONE_SHOT, 100)  # the same timer
    line.on_hook()  # hang up during the break
    t.fire()
    assert _hook_edges()[-1][0] == 0 and not line.is_off_hook()  # stays released


# ---- player --------------------------------------------------------------------------------


class Backend:
    def __init__(self):
        self.pos = 0
        self.plan = None

    def start(self, plan):
        self.plan = plan
        self.pos = 0

    def service(self):
        pass

    def position(self):
        return self.pos

    def abort(self):
        pass


def test_player_flash_step_is_silence_for_the_backend_and_a_break_on_the_line():
    line = _line()
    b = Backend()
    p = Player(b, _ms, line)
    plan = compile_plan("1!2", "tonebridge", flash_ms=300)
    p.play("f", plan)
    US[0] += 20000  # relay settled
    evs = p.service()
    assert b.plan == [("1", 100), (None, 100), (None, 300), (None, 100), ("2", 100)]
    assert plan[2] == ("!", 300)  # the caller's plan is not changed
    assert evs == [("started", "f", 0, "1")]
    b.pos = 2
    t_open = US[0]
    evs = p.service()
    assert evs == [("finished", "f", 0, "1"), ("started", "f", 1, "!")]
    assert line.flashing() and _hook_edges()[-1] == (0, t_open)
    while line.flashing():
        US[0] += 1000
        p.service()
    assert _hook_edges()[-1] == (1, t_open + 300000)
    b.pos = 4
    assert p.service() == [("finished", "f", 1, "!"), ("started", "f", 2, "2")]
    b.pos = 5
    assert p.service()[-1] == ("done", "f", 3)


def test_a_plan_that_is_only_a_flash_is_silence_for_the_backend():
    # "!" alone (a hook flash with no digit, e.g. to recall the operator): no other key in the
    # plan, yet the backend must still get silence, never the key "!" it has no tone for
    line = _line()
    b = Backend()
    p = Player(b, _ms, line)
    p.play("o", compile_plan("!", "tonebridge", flash_ms=300))
    US[0] += 20000  # relay settled
    assert p.service() == [("started", "o", 0, "!")]
    assert b.plan == [(None, 300)]
    assert line.flashing()


def test_wire_form_of_the_flash():
    from tonebridge_fw import codec

    assert codec.dial_to_wire("1!2(300)!") == "1^2(300)^"
    assert codec.dial_from_wire("1^2^") == "1!2!"
    codec.encode(">", "1", "SEND dialect=tonebridge " + codec.dial_to_wire("1!2"))
    raises(codec.FrameError, codec.encode, ">", "1", "SEND dialect=tonebridge 1!2")
    # '^' is no dial-string character: a host validates before it writes the wire form
    for d in dialstring.DIALECTS:
        raises(DialStringError, validate, "1^", d)


def test_a_sequence_waits_for_a_flash_to_end():
    """A SEND that arrives while the line is flashing (FLASH, then at once a SEND) must not
    play into the open relay: the player waits until the flash ended and the relay settled."""
    line = _line()
    b = Backend()
    p = Player(b, _ms, line)
    line.off_hook()
    US[0] += 50000
    line.flash(90)
    p.play("s", compile_plan("1", "catapult"))
    assert b.plan is None and not line.ready()  # waiting, nothing started
    while line.flashing():
        US[0] += 1000
        p.service()
    assert b.plan is None  # the relay is settling (relay_settle_ms, 10 ms)
    for _ in range(12):
        US[0] += 1000
        p.service()
    assert b.plan == [("1", 100)]
