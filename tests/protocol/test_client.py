"""BoardClient against the firmware engine in virtual time (clean link)."""

import pytest
from tonebridge.link import BoardError, DialStringError, SendError, SendResult
from vworld import World


def open_client(world, **kw):
    c = world.client(**kw)
    c.open()
    return c


def test_hello_and_status():
    w = World()
    c = open_client(w)
    h = c.hello()
    assert h["boot"] == w.board.boot_id
    assert h["proto"] == 1
    assert h["keys"] == "123A456B789C*0#D"
    st = c.status()
    assert st["state"] == "idle" and st["boot"] == w.board.boot_id


def test_send_reports_progress_and_completes():
    w = World()
    c = open_client(w)
    progress = []
    accepted = []
    t0 = w.t
    r = c.send(
        "1WWW,59#",
        tone_ms=100,
        gap_ms=100,
        on_accepted=lambda: accepted.append(w.t),
        on_progress=progress.append,
    )
    assert r == SendResult(4, 4)
    assert accepted and accepted[0] - t0 < 0.1
    fin = [(p["index"], p["key"]) for p in progress if p["event"] == "finished"]
    assert fin == [(0, "1"), (1, "5"), (2, "9"), (3, "#")]
    assert [p["event"] for p in progress].count("started") == 4
    # 1WWW,59# takes 100 + 3500 + 100 + 100 + 100 + 100 + 100 ms
    assert 4.0 <= w.t - t0 < 4.3
    assert [x[2] for x in w.board.ledger.finished] == ["1", "5", "9", "#"]


def test_invalid_string_raises_before_sending():
    w = World()
    c = open_client(w)
    frames_before = w.board.engine.decoder.frames
    with pytest.raises(DialStringError) as ei:
        c.send("12x4")
    assert ei.value.position == 2
    with pytest.raises(DialStringError):
        c.send("123", tone_ms=10)
    assert w.board.engine.decoder.frames == frames_before
    assert w.board.ledger.started == []


def test_board_defaults_used_when_timing_omitted():
    w = World()
    c = open_client(w)
    c.config_set(tone_ms=50, gap_ms=60)
    assert c.config_get()["tone"] == 50
    t0 = w.t
    assert c.send("123") == SendResult(3, 3)
    assert 0.27 <= w.t - t0 < 0.45  # 3*50 + 2*60 = 270 ms


def test_cancel_from_another_call_aborts_send():
    w = World()
    c = open_client(w)
    w.at(0.35, lambda: w.board.engine.receive(b""))  # no-op marker
    seen = []

    def prog(ev):
        seen.append(ev)
        if ev["event"] == "finished" and ev["index"] == 1:
            c.cancel()

    with pytest.raises(SendError) as ei:
        c.send("123456", on_progress=prog)
    e = ei.value
    assert e.code == "cancelled"
    assert e.played == 2 == w.board.ledger.count(e.request_id)
    assert e.total == 6 and not e.uncertain


def test_hook_and_events():
    w = World()
    events = []
    c = open_client(w, on_event=events.append)
    assert c.hook(True)["hook"] == "off"
    c.status()
    assert {"event": "hook", "off_hook": True} in events
    w.board.engine.line_event("timeout")
    c.ping()
    assert {"event": "hook", "off_hook": False, "reason": "timeout"} in events


def test_board_error_surfaces():
    w = World()
    c = open_client(w)
    with pytest.raises(BoardError) as ei:
        c.config_set(twist_db=20)
    assert ei.value.code == "bad-arg"


def test_explicit_request_id_retry_is_exactly_once():
    w = World()
    c = open_client(w)
    assert c.send("12", request_id="api-key-1") == SendResult(2, 2)
    # the API retries the same logical request: answered from the board's record
    assert c.send("12", request_id="api-key-1") == SendResult(2, 2)
    assert w.board.ledger.count("api-key-1") == 2
    assert len(w.board.ledger.started) == 2


def test_busy_board_refuses_with_clear_error():
    w = World()
    c = open_client(w)
    for i in range(4):
        w.board.engine.receive(
            __import__("tonebridge_fw.codec", fromlist=["x"]).encode(">", f"o{i}", "SEND 1")
        )
    with pytest.raises(SendError) as ei:
        c.send("5")
    assert ei.value.code == "busy" and ei.value.played == 0


def test_too_long_for_the_board_refused_on_the_host():
    w = World()
    c = open_client(w)
    assert c.info["chars"] == 150
    c.info["chars"] = 3
    frames_before = w.board.engine.decoder.frames
    with pytest.raises(SendError) as ei:
        c.send("1234")
    assert ei.value.code == "too-long" and ei.value.played == 0
    assert w.board.engine.decoder.frames == frames_before


class EchoReplPort:
    """A board sitting in the MicroPython REPL: echoes what it gets, then a SyntaxError."""

    def __init__(self, world):
        self.w = world
        self.out = bytearray(b"MicroPython v1.24.1 on 2024-11-29; Raspberry Pi Pico\r\n>>> ")
        self.got = 0

    in_waiting = 0

    def read(self, n=1):
        if not self.out:
            self.w.advance(0.01)
        d = bytes(self.out[:n])
        del self.out[:n]
        return d

    def write(self, data):
        self.got += len(data)
        self.out += data.replace(b"\n", b"\r\n")
        self.out += b'Traceback (most recent call last):\r\n  File "<stdin>", line 1\r\n'
        self.out += b"SyntaxError: invalid syntax\r\n>>> "
        return len(data)

    def close(self):
        pass


def test_a_board_in_the_repl_never_answers():
    from tonebridge.link import BoardClient, LinkError

    w = World()
    port = EchoReplPort(w)
    c = BoardClient(
        "repl://", timeout=0.2, port_factory=lambda: port, clock=w.now, sleep=w.advance,
        background=False,
    )  # fmt: skip
    with pytest.raises(LinkError, match="no answer"):
        c.open()
    assert port.got > 0  # it did try (HELLO, retried with the same id)


def test_protocol_version_mismatch_is_refused():
    from tonebridge_fw import engine

    w = World()
    c = w.client()
    orig = engine.Engine._hello

    def hello_v2(self, rid, args):
        return orig(self, rid, args).replace("proto=1", "proto=2")

    engine.Engine._hello = hello_v2
    engine._VERBS["HELLO"] = hello_v2
    try:
        with pytest.raises(BoardError) as ei:
            c.open()
        assert ei.value.code == "proto"
    finally:
        engine.Engine._hello = orig
        engine._VERBS["HELLO"] = orig
