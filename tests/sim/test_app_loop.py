"""The firmware's main loop (app.py) on a simulated Pico, in virtual time: its pacing, its error
paths and the watchdog, driven only through the serial link (and, for faults, through a
hardware failure injected into the board's own loaded firmware)."""

import numpy as np
import pytest
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge_fw import codec


@pytest.fixture
def board():
    made = []

    def make(config=None, name="pico"):
        sb = SimBoard(name, VirtualClock(), config=config)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.close()


class Talk:
    """Frames in and out of a board, each stamped with the board time it was written at."""

    def __init__(self, sb):
        self.sb = sb
        self.frames = []
        self._dec = codec.Decoder(accept="<!")
        sb.link.host_listeners.append(self._heard)

    def _heard(self):
        for f in self._dec.feed(self.sb.link.host_read(-1)):
            self.frames.append((self.sb.now_us(), f[0], f[1], f[2]))

    def send(self, rid, body, ms=20):
        self.sb.write(codec.encode(">", rid, body))
        self.sb.run_for(ms)
        got = [f[3] for f in self.frames if f[1] == "<" and f[2] == rid]
        return got[-1] if got else None

    def events(self, rid="-"):
        """A request's events; HEARD without its measurements (HEARD <index> <key>): a Pico
        hears its own line and confirms each digit (verified sends)."""
        out = []
        for f in self.frames:
            if f[1] == "!" and f[2] == rid:
                out.append(" ".join(f[3].split()[:3]) if f[3].startswith("HEARD") else f[3])
        return out


def test_loop_pacing_busy_and_idle(board):
    # idle, the loop sleeps IDLE_MS (20 ms) a pass; while a sequence plays, BUSY_MS (1 ms)
    sb = board()
    sb.run_for(50)
    app = sb.app
    n0 = app.passes
    sb.run_for(1000)
    idle = app.passes - n0
    assert 45 <= idle <= 55, idle
    t = Talk(sb)
    t.send("1", "SEND tone=1000 gap=100 5", ms=100)
    n1 = app.passes
    sb.run_for(500)
    busy = app.passes - n1
    assert 400 <= busy <= 520, busy


def test_backend_failure_is_reported_and_the_next_send_plays(board):
    sb = board()
    mod = sb.load("tonebridge_fw.backends.pwm_dma_rp2")
    orig = mod.PwmDmaBackend.start
    fail = {"n": 1}

    def start(self, plan):
        if fail["n"]:
            fail["n"] -= 1
            raise OSError(16, "DMA channel busy")
        return orig(self, plan)

    mod.PwmDmaBackend.start = start
    sb.run_for(20)
    t = Talk(sb)
    assert t.send("1", "SEND 12").startswith("OK state=playing")
    sb.run_for(50)
    assert t.events("1") == ["ABORT 0 error verified=0"]
    fault = [e for e in t.events() if e.startswith("FAULT backend")]
    assert fault and "OSError" in fault[0] and "DMA channel busy" in fault[0]
    assert sb.line_if.muted  # nothing reached the line
    assert t.send("2", "SEND 12").startswith("OK state=playing")
    sb.run_for(400)
    assert t.events("2")[-1] == "DONE 2 verified=2"
    x = sb.line.samples(8000)
    assert np.max(np.abs(x)) > 0.1


def test_a_pass_that_raises_is_reported_and_not_fed(board):
    # the hook relay driver fails: HOOK off raises inside a pass; the loop reports FAULT error,
    # sleeps ERROR_MS, carries on; that pass does not feed the watchdog
    sb = board(config={"watchdog_ms": 1000})
    line_mod = sb.load("tonebridge_fw.line")

    def off_hook(self):
        raise OSError(5, "EIO")

    line_mod.Line.off_hook = off_hook
    sb.run_for(50)
    app = sb.app
    t = Talk(sb)
    feeds, passes = sb.wdt.feeds, app.passes
    sb.write(codec.encode(">", "1", "HOOK off"))
    sb.run_for(1)
    assert app.errors == 1
    assert sb.wdt.feeds == feeds and app.passes == passes  # the failed pass fed nothing
    fault = [e for e in t.events() if e.startswith("FAULT error")]
    assert fault == ["FAULT error OSError [Errno 5] EIO"]
    sb.run_for(98)
    assert app.passes == passes  # ERROR_MS (100 ms) before the next pass
    sb.run_for(3)
    assert app.passes == passes + 1 and sb.wdt.feeds == feeds + 1
    assert t.send("2", "PING").startswith("OK pong")
    assert sb.resets == []


def test_a_loop_that_keeps_failing_is_reset_by_the_watchdog(board):
    # every pass raises (the link read fails): nothing feeds the watchdog, the board resets
    sb = board(config={"watchdog_ms": 500})
    tr = sb.load("tonebridge_fw.transport")

    def read(self):
        raise OSError(5, "EIO")

    sb.run_for(50)
    tr.StdioLink.read = read
    sb.run_for(700)
    assert [r[1] for r in sb.resets] == ["watchdog"]


def test_config_reaches_the_backend(board):
    sb = board()
    sb.run_for(20)
    t = Talk(sb)
    assert t.send("1", "CONFIG twist=0.5 level=0.4") == (
        "OK dialect=catapult tone=100 gap=100 pause=500 flash=100 twist=0.5 level=0.4"
    )
    be = sb.app.backend
    assert be.configure() == {"twist": 0.5, "level": 0.4}
    assert t.send("2", "CONFIG tone=50").startswith("OK")
    assert be.configure() == {"twist": 0.5, "level": 0.4}  # only twist/level go to it


def test_hook_state_follows_the_line(board):
    # the line controller hangs up by itself (max_offhook_s): the loop tells the host
    sb = board(config={"max_offhook_s": 1})
    sb.run_for(20)
    t = Talk(sb)
    assert t.send("1", "HOOK off") == "OK hook=off"
    sb.run_for(1100)
    assert t.events()[-1] == "HOOK on timeout"
    assert t.send("2", "STATUS").split()[4] == "hook=on"


def test_stalled_sequence_then_the_next_one_plays(board):
    # the backend never progresses (a dead DMA): the engine's stall guard aborts, the loop
    # silences the player before the next sequence starts, and that one plays
    sb = board()
    mod = sb.load("tonebridge_fw.backends.pwm_dma_rp2")
    orig = mod.PwmDmaBackend.position
    stuck = {"on": True}

    def position(self):
        return 0 if stuck["on"] else orig(self)

    mod.PwmDmaBackend.position = position
    sb.run_for(20)
    t = Talk(sb)
    t.send("1", "SEND tone=100 gap=100 1")
    t.send("2", "SEND tone=100 gap=100 2")
    sb.run_for(2200)
    assert any(e.startswith("FAULT stall") for e in t.events())
    stuck["on"] = False
    sb.run_for(2500)
    assert t.events("1")[-1].startswith("ABORT 0 stalled")
    assert t.events("2")[-1] == "DONE 1 verified=1"


def test_idle_pacing_is_exactly_idle_ms(board):
    sb = board()
    sb.run_for(50)
    app = sb.app
    assert app.passes == 3  # passes at 0, 20 and 40 ms since boot
    n0 = app.passes
    sb.run_for(1000)
    assert app.passes - n0 == 50  # IDLE_MS = 20: one pass every 20 ms of virtual time


def test_error_pause_is_exactly_error_ms(board):
    sb = board()
    line_mod = sb.load("tonebridge_fw.line")

    def off_hook(self):
        raise OSError(5, "EIO")

    line_mod.Line.off_hook = off_hook
    sb.run_for(50)
    app = sb.app
    passes = app.passes
    t0 = sb.now_us()
    sb.write(codec.encode(">", "1", "HOOK off"))
    sb.run_until_us(t0 + 99_500)
    assert app.errors == 1 and app.passes == passes
    sb.run_until_us(t0 + 100_500)
    assert app.passes == passes + 1  # the next pass 100 ms (ERROR_MS) after the failed one


def test_watchdog_grace_default(board):
    sb = board(config={"watchdog_ms": 1000})
    sb.run_for(20)
    assert sb.app.wdt.timeout_ms == 1000 and sb.app.wdt.repl_grace_ms == 600_000


def test_backend_failing_to_start_on_a_settled_line(board):
    # the line is already off-hook and settled: the backend starts inside the SEND's pass
    sb = board()
    mod = sb.load("tonebridge_fw.backends.pwm_dma_rp2")
    orig = mod.PwmDmaBackend.start
    fail = {"n": 1}

    def start(self, plan):
        if fail["n"]:
            fail["n"] -= 1
            raise OSError(16, "DMA channel busy")
        return orig(self, plan)

    mod.PwmDmaBackend.start = start
    sb.run_for(20)
    t = Talk(sb)
    assert t.send("1", "HOOK off", ms=50) == "OK hook=off"
    assert t.send("2", "SEND 12").startswith("OK state=playing")
    assert t.events("2") == ["ABORT 0 error verified=0"]
    assert any(e.startswith("FAULT backend OSError") for e in t.events())
    assert sb.app.errors == 0  # reported as a backend fault, not a failed pass
    assert t.send("3", "SEND 3").startswith("OK")
    sb.run_for(300)
    assert t.events("3")[-1] == "DONE 1 verified=1"


@pytest.mark.parametrize(
    "abort_fails, t_fail_ms, want",
    [
        (False, 210, ["START 0 1", "END 0 1", "HEARD 0 1", "ABORT 1 error verified=1"]),
        (True, 210, ["START 0 1", "END 0 1", "HEARD 0 1", "ABORT 1 error verified=1"]),
        # fails as the first tone has just ended, before the player saw it end: the abort
        # still reports that digit finished (before the receiver could confirm it)
        (False, 111, ["START 0 1", "END 0 1", "ABORT 1 error verified=0"]),
    ],
)
def test_backend_failing_mid_sequence_reports_what_was_heard(board, abort_fails, t_fail_ms, want):
    # the backend's service() fails just as the hardware moved into the second tone (and, in
    # the second case, its abort() fails too): the first digit is reported finished, the second
    # never "started" (its sound is not known), the sequence ends as an error, the loop goes on
    sb = board()
    mod = sb.load("tonebridge_fw.backends.pwm_dma_rp2")
    cls = mod.PwmDmaBackend
    orig_service, orig_pos, orig_abort = cls.service, cls.position, cls.abort
    state = {"armed": True}

    clock = sb.clock

    def service(self):
        orig_service(self)
        # the first pass after the hardware moved into the second tone (plan: tone, gap, tone)
        if state["armed"] and clock.now_us() >= state["t2"]:
            state["armed"] = False
            raise OSError(5, "DMA bus error")

    def abort(self):
        orig_abort(self)
        if abort_fails and not state["armed"]:  # (start() aborts too: only this one fails)
            raise OSError(5, "still failing")

    cls.service, cls.abort = service, abort
    sb.run_for(20)
    t = Talk(sb)
    # relay settle 10 ms + tone 100 + gap 100: the second tone starts 210 ms after the SEND
    state["t2"] = sb.now_us() + t_fail_ms * 1000 + 500
    t.send("1", "SEND tone=100 gap=100 12", ms=600)
    assert orig_pos is not None
    assert t.events("1") == want
    assert any(e.startswith("FAULT backend OSError") for e in t.events())
    cls.abort = orig_abort
    assert t.send("2", "PING").startswith("OK pong")


def test_a_sequence_starting_as_the_line_times_out_is_aborted(board):
    # the SEND is taken in the very pass in which the line controller hangs up (max_offhook_s):
    # the hang-up is not lost, and nothing plays on the dropped line
    sb = board(config={"max_offhook_s": 1})
    sb.run_for(20)
    t = Talk(sb)
    sb.run_until_us(20_500)  # off the millisecond grid: the idle passes then are too
    sb.write(codec.encode(">", "1", "HOOK off"))
    sb.run_for(5)
    t_off = [f[0] for f in t.frames if f[1] == "<" and f[2] == "1"][0]
    assert t_off == 20_500
    # ticks_ms reaches since + 1000 at 1.020 s, between two idle passes (1.0005, 1.0205 s):
    # the SEND written then wakes the loop for a pass that also finds the line timed out
    sb.run_until_us((t_off // 1000 + 1000) * 1000)
    t_due = sb.now_us()
    sb.write(codec.encode(">", "2", "SEND 5"))
    sb.run_for(300)
    assert "HOOK on timeout" in t.events()
    ev = t.events("2")
    assert ev[-1] == "ABORT 0 hangup verified=0" and not any(
        e.startswith(("END", "DONE")) for e in ev
    )
    x = sb.line.samples(8000, start_us=t_due, end_us=sb.now_us())
    assert np.max(np.abs(x)) < 0.01  # nothing reached the dropped line


def test_hook_on_drops_the_relay(board):
    sb = board()
    sb.run_for(20)
    t = Talk(sb)
    assert t.send("1", "HOOK off") == "OK hook=off"
    assert sb.line_if.off_hook
    assert t.send("2", "HOOK on") == "OK hook=on"
    assert not sb.line_if.off_hook and sb.line_if.muted


def test_a_broken_link_does_not_stop_the_loop(board):
    # writing to the host fails for a while (a USB host that stopped reading): the passes
    # fail, the error report fails too, and the loop still goes on and answers afterwards
    sb = board()
    tr = sb.load("tonebridge_fw.transport")
    orig = tr.StdioLink.write
    broken = {"on": True}

    def write(self, data):
        if broken["on"]:
            raise OSError(5, "EIO")
        return orig(self, data)

    sb.run_for(20)
    tr.StdioLink.write = write
    sb.write(codec.encode(">", "1", "PING"))
    sb.run_for(300)
    assert sb.state == "running" and sb.app is not None and sb.app.errors >= 1
    broken["on"] = False
    t = Talk(sb)
    assert t.send("2", "PING", ms=150).startswith("OK pong")
