"""Fault injection on the link, in virtual time: dropped, flipped and duplicated bytes,
board resets in the middle of a sequence, unplug and re-plug.

The board is the real firmware (main.py -> App) on a simulated Pico; ground truth is its line
signal, decoded after the test (vworld.Ledger attributes each tone to a request). Invariants,
checked for every request once the board has had time to finish whatever it still played:
  * no digit is ever played twice, for the wrong request, or out of order (the ledger's own
    attribution fails otherwise);
  * a SendResult means every digit sounded for its whole length;
  * a SendError never claims a digit that did not sound in full (played <= finished), and
    when the outcome is uncertain its upper bound covers every digit that was heard.
Every test also has a floor: digits must have been played and decoded, so a test cannot pass
on a board that plays nothing.
"""

import random

import pytest
from tonebridge.link import LinkError, SendError, SendResult
from tonebridge_fw import dialstring
from vworld import World, marked_strings


@pytest.fixture
def worlds():
    made = []

    def make(**kw):
        w = World(**kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def run_send(world, client, text, **kw):
    rid = client.new_id()
    world.sent.append((rid, text, kw.get("tone_ms", 100)))
    try:
        out = client.send(text, request_id=rid, **kw)
    except SendError as e:
        out = e
    world.outcomes = getattr(world, "outcomes", []) + [(rid, text, out)]
    return out


def check_outcomes(world, settle_s=3.0):
    """Let the board finish, decode the line, check every request's outcome against it.
    Returns the ledger."""
    world.advance(settle_s)
    led = world.ledger()
    for rid, text, out in getattr(world, "outcomes", []):
        total = dialstring.digits_in(dialstring.compile_plan(text, "catapult", 100, 100))
        finished, started = led.finished(rid), led.started(rid)
        if isinstance(out, SendResult):
            assert out.played == total == finished, (rid, text, out, finished)
        else:
            e = out
            assert e.played <= finished, (rid, e.message, e.played, finished)
            if e.uncertain:
                assert e.at_most >= started, (rid, e.message, e.at_most, started)
            else:
                assert e.played == finished, (rid, e.message, e.played, finished)
    return led


def open_with_retries(w, c, tries):
    for _ in range(tries):
        try:
            c.open()
            return
        except LinkError:
            w.advance(0.1)
    c.open()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rate", [0.003, 0.01])
@pytest.mark.slow
def test_lossy_link_sends(worlds, seed, rate):
    """`rate` is the chance per byte of a fault (a third each: drop, bit flip, duplicate)."""
    w = worlds(seed=seed, drop=rate / 3, flip=rate / 3, dup=rate / 3)
    rnd = random.Random(1000 + seed)
    c = w.client(retries=8)
    open_with_retries(w, c, 20)
    ok = 0
    for text in marked_strings(rnd, 6, max_body=7):
        out = run_send(w, c, text, tone_ms=50, gap_ms=50)
        ok += isinstance(out, SendResult)
    assert w.h2b.faults + w.b2h.faults > 0
    led = check_outcomes(w)
    # floor: most requests got through, and what they played was heard and decoded
    assert ok >= (4 if rate <= 0.003 else 2), ok
    assert led.total_tones() >= ok


@pytest.mark.slow
def test_heavy_loss_never_duplicates(worlds):
    """Bursts of heavy loss (7 % of bytes dropped, flipped or doubled, both ways) of 0.1-0.5 s,
    0.1-0.4 s apart: replies and events go missing mid-sequence, requests are retried into the
    noise; nothing is played twice, and the clean gaps let requests through (the floor)."""
    w = worlds(seed=99)
    heavy = {"drop": 0.03, "flip": 0.02, "dup": 0.02}

    def set_loss(on):
        for link in (w.h2b, w.b2h):
            for k, v in heavy.items():
                setattr(link, k, v if on else 0.0)

    burst = random.Random(99)
    t = w.t
    while t < 120:  # bursts of random length (not in step with the client's retry period)
        w.at(t, lambda: set_loss(True))
        t += burst.uniform(0.1, 0.5)
        w.at(t, lambda: set_loss(False))
        t += burst.uniform(0.1, 0.4)
    rnd = random.Random(7)
    c = w.client(retries=10)
    open_with_retries(w, c, 50)
    for text in marked_strings(rnd, 8, max_body=5):
        try:
            run_send(w, c, text, tone_ms=40, gap_ms=40)
        except LinkError:
            pass
    led = check_outcomes(w)
    assert w.h2b.faults > 0 and w.b2h.faults > 0
    assert sum(1 for *_x, out in w.outcomes if isinstance(out, SendResult)) >= 2
    assert led.total_tones() >= 2  # floor: something was played and decoded


@pytest.mark.parametrize("at", [0.05, 0.25, 0.42, 0.75])
def test_board_reset_mid_sequence(worlds, at):
    w = worlds(seed=3)
    c = w.client()
    c.open()
    w.board.run_for(100)  # past the output stage's power-up settling (pwm_dma_rp2.SETTLE_MS)
    t0 = w.t
    w.at(t0 + at, w.reset_board)
    out = run_send(w, c, "12345678", tone_ms=50, gap_ms=50)
    assert isinstance(out, SendError)
    assert out.uncertain and out.code == "unknown"
    assert "outcome unknown" in out.message and "not resent" in out.message
    # the host learnt the new boot and works on
    assert c.boot_id == w.boot_id
    assert run_send(w, c, "90") == SendResult(2, 2)
    led = check_outcomes(w)
    assert led.started(out.request_id) >= 1  # floor: the reset came mid-sequence
    assert led.finished(out.request_id) < 8
    assert [k for _s, _e, k in led.runs[w.sent[-1][0]]] == ["9", "0"]


def test_reset_while_idle_is_transparent(worlds):
    w = worlds(seed=4)
    c = w.client()
    c.open()
    old = c.boot_id
    w.reset_board()  # the host does not read in between: it has a stale boot id
    w.board.run_for(50)
    w.board.read()  # and it missed the BOOT event
    assert run_send(w, c, "123") == SendResult(3, 3)
    assert c.boot_id != old
    led = check_outcomes(w, settle_s=0.5)
    assert w.keys_heard() == "123" and led.finished(w.sent[0][0]) == 3


def test_reset_with_lost_events_still_bounded(worlds):
    w = worlds(seed=5)
    c = w.client()
    c.open()
    t0 = w.t
    # the board->host direction goes deaf, then the board resets
    w.at(t0 + 0.12, lambda: setattr(w.b2h, "drop", 1.0))
    w.at(t0 + 0.6, w.reset_board)
    w.at(t0 + 0.65, lambda: setattr(w.b2h, "drop", 0.0))
    out = run_send(w, c, "1234567890", tone_ms=50, gap_ms=50)
    assert isinstance(out, SendError) and out.uncertain
    led = check_outcomes(w)
    assert out.played <= 2
    # floor: the board played several digits before the reset (0.6 s at 100 ms a digit)
    assert led.started(out.request_id) >= 5


def test_unplug_replug_uart_board_keeps_playing(worlds):
    """A USB-serial adapter unplugged: the board (on its UART) plays on; the host reconnects."""
    w = worlds(seed=6)
    c = w.client()
    c.open()
    t0 = w.t
    w.at(t0 + 0.2, w.unplug)
    w.at(t0 + 0.9, w.replug)
    out = run_send(w, c, "1234567890", tone_ms=50, gap_ms=50)
    assert out == SendResult(10, 10)
    assert c.reconnects >= 1
    check_outcomes(w, settle_s=0.5)
    assert w.keys_heard() == "1234567890"


def test_unplug_replug_usb_board_resets(worlds):
    """USB-CDC board unplugged: it loses power and reboots; the host reports, never resends."""
    w = worlds(seed=7, uart=False)
    c = w.client()
    c.open()
    t0 = w.t
    w.at(t0 + 0.3, lambda: w.unplug(reset_board=True))
    w.at(t0 + 1.0, w.replug)
    out = run_send(w, c, "1234567890", tone_ms=50, gap_ms=50)
    assert isinstance(out, SendError) and out.uncertain
    assert c.reconnects >= 1
    assert run_send(w, c, "AB") == SendResult(2, 2)
    led = check_outcomes(w)
    assert 1 <= led.started(out.request_id) < 10  # floor: cut off mid-sequence
    assert w.keys_heard().endswith("AB")


def test_unplugged_for_good_gives_clear_error(worlds):
    w = worlds(seed=8)
    c = w.client(reconnect_timeout=2.0)
    c.open()
    t0 = w.t
    w.at(t0 + 0.2, w.unplug)
    out = run_send(w, c, "123456", tone_ms=50, gap_ms=50)
    assert isinstance(out, SendError) and out.uncertain
    assert out.played <= 2
    led = check_outcomes(w)
    # the board (on its UART) played the whole string though nobody heard it finish
    assert led.finished(out.request_id) == 6


@pytest.mark.slow
def test_duplicate_frames_on_the_wire(worlds):
    """Every frame the host writes arrives twice: nothing plays twice."""
    w = worlds(seed=9)
    c = w.client()
    c.open()
    orig = w.h2b.pass_bytes
    w.h2b.pass_bytes = lambda data: orig(data) * 2
    for text in ("123", "4W5", "#*0"):
        assert run_send(w, c, text) == SendResult(len(text.replace("W", "")), 3 - text.count("W"))
    assert c.status()["dups"] >= 3
    check_outcomes(w, settle_s=0.5)
    assert w.keys_heard() == "12345#*0"
