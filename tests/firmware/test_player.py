"""Player logic against a small scripted backend (runs under CPython and MicroPython).

The backend double only reports a position (the step being emitted), as a real backend derives
it from hardware progress; the tests move it and check the events the player reports."""

from fwtest import raises
from tonebridge_fw.player import Player

PLAN = [("1", 100), (None, 100), ("2", 100), (None, 3500), ("#", 100)]


class Backend:
    def __init__(self):
        self.pos = 0
        self.plan = None
        self.starts = 0
        self.aborts = 0
        self.services = 0
        self.positions = 0

    def start(self, plan):
        self.plan = plan
        self.pos = 0
        self.starts += 1

    def service(self):
        self.services += 1

    def position(self):
        self.positions += 1
        return self.pos

    def abort(self):
        self.aborts += 1


class Line:
    def __init__(self):
        self.off = False
        self.muted = True
        self.events = []

    def is_off_hook(self):
        return self.off

    def off_hook(self):
        self.off = True

    def on_hook(self):
        self.off = False
        self.muted = True

    def mute(self):
        self.muted = True

    def unmute(self):
        self.muted = False

    def service(self):
        ev = self.events
        self.events = []
        return ev


def ticks():
    return 0


def test_events_step_by_step():
    b = Backend()
    p = Player(b, ticks)
    p.play(9, PLAN)
    assert b.starts == 1 and p.busy()
    assert p.service() == [("started", 9, 0, "1")]
    assert p.service() == []
    b.pos = 1
    assert p.service() == [("finished", 9, 0, "1")]
    b.pos = 2
    assert p.service() == [("started", 9, 1, "2")]
    b.pos = 3
    assert p.service() == [("finished", 9, 1, "2")]
    b.pos = 4
    assert p.service() == [("started", 9, 2, "#")]
    b.pos = 5
    assert p.service() == [("finished", 9, 2, "#"), ("done", 9, 3)]
    assert not p.busy()
    assert p.service() == []
    assert b.services == 7


def test_jump_to_end_reports_everything_in_order():
    b = Backend()
    p = Player(b, ticks)
    p.play(1, PLAN)
    b.pos = len(PLAN)
    ev = p.service()
    assert ev == [
        ("started", 1, 0, "1"),
        ("finished", 1, 0, "1"),
        ("started", 1, 1, "2"),
        ("finished", 1, 1, "2"),
        ("started", 1, 2, "#"),
        ("finished", 1, 2, "#"),
        ("done", 1, 3),
    ]


def test_leading_pause_reports_nothing_until_the_tone():
    b = Backend()
    p = Player(b, ticks)
    p.play(2, [(None, 500), ("5", 100)])
    assert p.service() == []
    b.pos = 1
    assert p.service() == [("started", 2, 0, "5")]


def test_cancel_reports_aborted_with_digits_finished():
    b = Backend()
    p = Player(b, ticks)
    p.play(3, PLAN)
    b.pos = 2
    p.service()
    p.cancel()
    assert b.aborts == 1
    assert not p.busy()
    assert p.service() == [("aborted", 3, 1, "cancelled")]
    p.cancel()  # nothing playing: no second event
    assert p.service() == []


def test_play_while_busy_is_refused_and_nothing_is_lost():
    b = Backend()
    p = Player(b, ticks)
    p.play(4, PLAN)
    e = raises(RuntimeError, p.play, 5, PLAN)
    assert "busy" in str(e)
    assert b.starts == 1
    b.pos = len(PLAN)
    assert p.service()[-1] == ("done", 4, 3)
    p.play(5, PLAN)  # accepted once idle
    assert b.starts == 2


def test_line_is_taken_unmuted_and_muted_again():
    b = Backend()
    line = Line()
    p = Player(b, ticks, line)
    p.play(6, PLAN)
    assert line.off and not line.muted
    b.pos = len(PLAN)
    p.service()
    assert line.muted
    assert line.off  # hanging up is the app's decision


def test_a_local_play_leaves_the_line_on_hook():
    # the self-test (SELFTEST) plays through the board's loop relay: the line stays on hook (no
    # tone reaches the exchange), the output is still unmuted for the plan and muted after
    b = Backend()
    line = Line()
    p = Player(b, ticks, line)
    p.play(7, PLAN, True)
    assert not line.off and not line.muted and b.starts == 1
    b.pos = len(PLAN)
    assert p.service()[-1] == ("done", 7, 3)
    assert line.muted and not line.off


def test_line_hangup_aborts_the_sequence():
    b = Backend()
    line = Line()
    p = Player(b, ticks, line)
    p.play(8, PLAN)
    b.pos = 3
    p.service()
    line.events.append(("hangup", "timeout"))
    ev = p.service()
    assert ev[-2:] == [("aborted", 8, 2, "hangup"), ("hangup", "timeout")]
    assert b.aborts == 1
    assert line.muted


def test_empty_plan_is_done_at_once():
    b = Backend()
    p = Player(b, ticks)
    p.play(10, [])
    assert p.service() == [("done", 10, 0)]


class SlowLine(Line):
    """A line whose hook relay needs 10 ms to close after off_hook()."""

    def __init__(self, clock):
        Line.__init__(self)
        self.clock = clock
        self.since = None

    def off_hook(self):
        self.off = True
        self.since = self.clock[0]

    def ready(self):
        return self.off and self.clock[0] - self.since >= 10


def test_plan_waits_for_the_hook_relay():
    clock = [0]
    b = Backend()
    line = SlowLine(clock)
    p = Player(b, lambda: clock[0], line)
    p.play(11, PLAN)
    assert p.busy() and b.starts == 0  # relay still closing: nothing plays yet
    assert p.service() == []
    clock[0] = 9
    assert p.service() == []
    # a backend that was not started is neither serviced nor asked where it is
    assert b.services == 0 and b.positions == 0
    clock[0] = 10
    assert p.service() == [("started", 11, 0, "1")]
    assert b.starts == 1
    raises(RuntimeError, p.play, 12, PLAN)


def test_cancel_while_waiting_for_the_relay():
    clock = [0]
    b = Backend()
    p = Player(b, lambda: clock[0], SlowLine(clock))
    p.play(13, PLAN)
    p.cancel()
    assert p.service() == [("aborted", 13, 0, "cancelled")]
    assert b.starts == 0 and b.aborts == 0 and not p.busy()


class FailingBackend(Backend):
    def start(self, plan):
        raise OSError(5)


def test_backend_that_fails_to_start_reports_no_digit():
    line = Line()
    p = Player(FailingBackend(), lambda: 0, line)
    raises(OSError, p.play, "r1", PLAN)
    assert not p.busy() and line.muted
    p.cancel()
    assert p.service() == []  # nothing started, nothing to abort


def test_backend_failing_after_the_relay_settles_raises_idle_and_muted():
    class SlowLine(Line):
        settled = False

        def ready(self):
            return self.settled

    line = SlowLine()
    p = Player(FailingBackend(), lambda: 0, line)
    p.play("r2", PLAN)
    assert p.service() == []  # waiting for the relay
    line.settled = True
    raises(OSError, p.service)  # the app reports it as a backend fault, 0 digits played
    assert not p.busy() and line.muted
    assert p.service() == []


def test_position_past_the_end_is_done():
    # a backend may report any position at or past the end once it has emitted the plan
    b = Backend()
    p = Player(b, ticks)
    p.play(5, [("1", 100)])
    assert p.service() == [("started", 5, 0, "1")]
    b.pos = 3
    assert p.service() == [("finished", 5, 0, "1"), ("done", 5, 1)]
    assert not p.busy()


def test_other_line_events_pass_through_without_aborting():
    line = Line()
    b = Backend()
    p = Player(b, ticks, line)
    p.play(6, PLAN)
    assert p.service() == [("started", 6, 0, "1")]
    line.events = [("alarm", "x"), ("zz", 1)]  # kinds sorting before and after "hangup"
    assert p.service() == [("alarm", "x"), ("zz", 1)]
    assert p.busy() and b.aborts == 0
