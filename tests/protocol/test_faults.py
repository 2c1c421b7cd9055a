"""Fault injection on the link, in virtual time: dropped, flipped and duplicated bytes,
board resets in the middle of a sequence, unplug and re-plug.

Ground truth is the board-side ledger (every digit the player started / finished).
Invariants checked after every send:
  * no digit of any request is ever started twice (at most once, across resets);
  * a SendResult means every digit finished, on one boot;
  * a SendError never claims a digit that did not finish (played <= finished), and when
    the outcome is uncertain the upper bound covers every digit that started.
"""

import random
from collections import Counter

import pytest
from tonebridge.link import LinkError, SendError, SendResult
from tonebridge_fw import dialstring
from vworld import World

ALPHABET = "0123456789*#ABCD"


def check_at_most_once(ledger):
    c = Counter((rid, di) for rid, di, _key, _boot in ledger.started)
    dup = [k for k, n in c.items() if n > 1]
    assert not dup, f"digits started twice: {dup}"


def check_outcome(world, rid, total, outcome):
    led = world.board.ledger
    finished = led.count(rid, "finished")
    started = led.count(rid, "started")
    if isinstance(outcome, SendResult):
        assert outcome.played == total == finished, (outcome, total, finished)
        boots = {b for r, _d, _k, b in led.finished if r == rid}
        assert len(boots) == 1
    else:
        e = outcome
        assert e.played <= finished, (e.message, e.played, finished)
        if e.uncertain:
            assert e.at_most >= started, (e.message, e.at_most, started)
        else:
            assert e.played == finished, (e.message, e.played, finished)
    check_at_most_once(led)


def run_send(world, client, text, **kw):
    rid = client.new_id()
    plan = dialstring.compile_plan(text, "catapult", kw.get("tone_ms", 100), kw.get("gap_ms", 100))
    total = dialstring.digits_in(plan)
    try:
        out = client.send(text, request_id=rid, **kw)
    except SendError as e:
        out = e
    check_outcome(world, rid, total, out)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rate", [0.003, 0.01])
def test_lossy_link_sends(seed, rate):
    """`rate` is the chance per byte of a fault (a third each: drop, bit flip, duplicate)."""
    w = World(seed=seed, drop=rate / 3, flip=rate / 3, dup=rate / 3)
    rnd = random.Random(1000 + seed)
    c = w.client(retries=8)
    for _ in range(20):
        try:
            c.open()
            break
        except LinkError:
            w.advance(0.1)
    ok = 0
    for _ in range(6):
        text = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(1, 8)))
        out = run_send(w, c, text, tone_ms=50, gap_ms=50)
        ok += isinstance(out, SendResult)
    assert w.h2b.faults + w.b2h.faults > 0
    if rate <= 0.003:
        assert ok >= 4  # a slightly lossy link still gets nearly everything through


def test_heavy_loss_never_duplicates():
    w = World(seed=99, drop=0.03, flip=0.02, dup=0.02)
    rnd = random.Random(7)
    c = w.client(retries=10)
    for _ in range(50):
        try:
            c.open()
            break
        except LinkError:
            w.advance(0.1)
    for _ in range(8):
        text = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(1, 6)))
        try:
            run_send(w, c, text, tone_ms=40, gap_ms=40)
        except LinkError:
            pass
    check_at_most_once(w.board.ledger)


@pytest.mark.parametrize("at", [0.05, 0.25, 0.42, 0.75])
def test_board_reset_mid_sequence(at):
    w = World(seed=3)
    c = w.client()
    c.open()
    t0 = w.t
    w.at(t0 + at, w.board.reset)
    out = run_send(w, c, "12345678", tone_ms=50, gap_ms=50)
    assert isinstance(out, SendError)
    assert out.uncertain and out.code == "unknown"
    assert "outcome unknown" in out.message and "not resent" in out.message
    # the host learnt the new boot and works on
    assert c.boot_id == w.board.boot_id
    assert run_send(w, c, "99") == SendResult(2, 2)


def test_reset_while_idle_is_transparent():
    w = World(seed=4)
    c = w.client()
    c.open()
    old = c.boot_id
    w.board.reset()  # the host does not read in between: it has a stale boot id
    w.board.outbox.clear()  # and it missed the BOOT event
    assert run_send(w, c, "123") == SendResult(3, 3)
    assert c.boot_id != old


def test_reset_with_lost_events_still_bounded():
    w = World(seed=5)
    c = w.client()
    c.open()
    t0 = w.t
    # the board->host direction goes deaf, then the board resets
    w.at(t0 + 0.12, lambda: setattr(w.b2h, "drop", 1.0))
    w.at(t0 + 0.6, w.board.reset)
    w.at(t0 + 0.65, lambda: setattr(w.b2h, "drop", 0.0))
    out = run_send(w, c, "1234567890", tone_ms=50, gap_ms=50)
    assert isinstance(out, SendError) and out.uncertain
    assert out.played <= 2 and out.at_most >= w.board.ledger.count(out.request_id, "started")


def test_unplug_replug_uart_board_keeps_playing():
    """A USB-serial adapter unplugged: the board (on its UART) plays on; the host reconnects."""
    w = World(seed=6)
    c = w.client()
    c.open()
    t0 = w.t
    w.at(t0 + 0.2, w.unplug)
    w.at(t0 + 0.9, w.replug)
    out = run_send(w, c, "1234567890", tone_ms=50, gap_ms=50)
    assert out == SendResult(10, 10)
    assert c.reconnects >= 1


def test_unplug_replug_usb_board_resets():
    """USB-CDC board unplugged: it loses power and reboots; the host reports, never resends."""
    w = World(seed=7)
    c = w.client()
    c.open()
    t0 = w.t
    w.at(t0 + 0.3, lambda: w.unplug(reset_board=True))
    w.at(t0 + 1.0, w.replug)
    out = run_send(w, c, "1234567890", tone_ms=50, gap_ms=50)
    assert isinstance(out, SendError) and out.uncertain
    assert c.reconnects >= 1
    assert run_send(w, c, "55") == SendResult(2, 2)


def test_unplugged_for_good_gives_clear_error():
    w = World(seed=8)
    c = w.client(reconnect_timeout=2.0)
    c.open()
    t0 = w.t
    w.at(t0 + 0.2, w.unplug)
    out = run_send(w, c, "123456", tone_ms=50, gap_ms=50)
    assert isinstance(out, SendError) and out.uncertain
    assert out.played <= 2


def test_duplicate_frames_on_the_wire():
    """Every frame the host writes arrives twice: nothing plays twice."""
    w = World(seed=9)
    c = w.client()
    c.open()
    orig = w.h2b.pass_bytes
    w.h2b.pass_bytes = lambda data: orig(data) * 2
    for text in ("123", "4W5", "#*0"):
        assert run_send(w, c, text) == SendResult(len(text.replace("W", "")), 3 - text.count("W"))
    assert w.board.engine.duplicates >= 3
