"""BoardClient against a simulated board running its own main.py, in virtual time (clean
link). What was played is read off the board's line signal (vworld.World.tones)."""

import pytest
from tonebridge.link import BoardError, DialStringError, SendError, SendResult
from tonebridge_fw import codec
from vworld import World


@pytest.fixture
def world():
    w = World()
    yield w
    w.close()


def open_client(world, **kw):
    c = world.client(**kw)
    c.open()
    return c


def test_hello_and_status(world):
    w = world
    c = open_client(w)
    h = c.hello()
    assert h["boot"] == w.boot_id
    assert h["proto"] == 1
    assert h["keys"] == "123A456B789C*0#D"
    st = c.status()
    assert st["state"] == "idle" and st["boot"] == w.boot_id


def test_send_reports_progress_and_completes(world):
    w = world
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
    w.advance(0.1)
    tones = w.tones()
    assert [k for _s, _e, k in tones] == ["1", "5", "9", "#"]
    assert all(abs((e - s) - 0.1) < 0.002 for s, e, _k in tones)


def test_invalid_string_raises_before_sending(world):
    w = world
    c = open_client(w)
    frames_before = c.status()["frames"]
    with pytest.raises(DialStringError) as ei:
        c.send("12x4")
    assert ei.value.position == 2
    with pytest.raises(DialStringError):
        c.send("123", tone_ms=10)
    assert c.status()["frames"] == frames_before + 1  # only that STATUS reached the board
    w.advance(0.5)
    assert w.tones() == []


def test_board_defaults_used_when_timing_omitted(world):
    w = world
    c = open_client(w)
    c.config_set(tone_ms=50, gap_ms=60)
    assert c.config_get()["tone"] == 50
    t0 = w.t
    assert c.send("123") == SendResult(3, 3)
    assert 0.27 <= w.t - t0 < 0.45  # 3*50 + 2*60 = 270 ms
    tones = w.tones()
    assert [k for _s, _e, k in tones] == ["1", "2", "3"]
    assert all(abs((e - s) - 0.05) < 0.002 for s, e, _k in tones)
    assert all(abs(tones[i + 1][0] - tones[i][1] - 0.06) < 0.002 for i in range(2))


def test_cancel_from_another_call_aborts_send(world):
    w = world
    c = open_client(w)
    seen = []

    def prog(ev):
        seen.append(ev)
        if ev["event"] == "finished" and ev["index"] == 1:
            c.cancel()

    with pytest.raises(SendError) as ei:
        c.send("123456", on_progress=prog)
    e = ei.value
    assert e.code == "cancelled"
    assert e.played == 2 and e.total == 6 and not e.uncertain
    w.advance(0.5)
    tones = w.tones()
    # the cancel came in the gap after the second digit: two whole tones, nothing after
    assert [k for _s, _e, k in tones] == ["1", "2"]
    assert all(abs((e - s) - 0.1) < 0.002 for s, e, _k in tones)


def test_hook_and_events():
    # the board's line controller hangs up by itself after max_offhook_s
    w = World(config={"max_offhook_s": 1})
    events = []
    c = open_client(w, on_event=events.append)
    assert c.hook(True)["hook"] == "off"
    c.status()
    assert {"event": "hook", "off_hook": True} in events
    assert w.board.line_if.off_hook
    w.advance(1.0)
    c.ping()
    assert {"event": "hook", "off_hook": False, "reason": "timeout"} in events
    assert not w.board.line_if.off_hook  # the relay really dropped
    w.close()


def test_board_error_surfaces(world):
    w = world
    c = open_client(w)
    with pytest.raises(BoardError) as ei:
        c.config_set(twist_db=20)
    assert ei.value.code == "bad-arg"


def test_explicit_request_id_retry_is_exactly_once(world):
    w = world
    c = open_client(w)
    assert c.send("12", request_id="api-key-1") == SendResult(2, 2)
    # the API retries the same logical request: answered from the board's record
    assert c.send("12", request_id="api-key-1") == SendResult(2, 2)
    assert c.status()["dups"] == 1
    w.advance(0.5)
    assert w.keys_heard() == "12"  # played once


def test_busy_board_refuses_with_clear_error(world):
    w = world
    c = open_client(w)
    # another host's four sequences fill the board's queue
    w.board.write(b"".join(codec.encode(">", f"o{i}", "SEND 1") for i in range(4)))
    with pytest.raises(SendError) as ei:
        c.send("5")
    assert ei.value.code == "busy" and ei.value.played == 0
    w.advance(1.5)
    assert w.keys_heard() == "1111"  # the four queued ones, never the refused 5


def test_too_long_for_the_board_refused_on_the_host(world):
    w = world
    c = open_client(w)
    assert c.info["chars"] == 112
    c.info["chars"] = 3
    frames_before = c.status()["frames"]
    with pytest.raises(SendError) as ei:
        c.send("1234")
    assert ei.value.code == "too-long" and ei.value.played == 0
    assert c.status()["frames"] == frames_before + 1  # only the STATUS


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


def test_a_board_in_the_repl_never_answers(world):
    from tonebridge.link import BoardClient, LinkError

    w = world
    port = EchoReplPort(w)
    c = BoardClient(
        "repl://", timeout=0.2, port_factory=lambda: port, clock=w.now, sleep=w.advance,
        background=False,
    )  # fmt: skip
    with pytest.raises(LinkError, match="no answer"):
        c.open()
    assert port.got > 0  # it did try (HELLO, retried with the same id)


def test_protocol_version_mismatch_is_refused(world):
    w = world
    c = w.client()
    # the board's own loaded engine answers HELLO as a protocol-2 firmware would
    verbs = w.board.load("tonebridge_fw.verbs")
    orig = verbs.VERBS["HELLO"]

    def hello_v2(eng, rid, args):
        return orig(eng, rid, args).replace("proto=1", "proto=2")

    verbs.VERBS["HELLO"] = hello_v2
    with pytest.raises(BoardError) as ei:
        c.open()
    assert ei.value.code == "proto"
