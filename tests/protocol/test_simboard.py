"""End to end on a simulated board running the firmware itself (main.py -> App -> engine ->
player -> PWM/DMA backend -> simulated hardware -> line recorder), driven by BoardClient.

The line signal is decoded by multimon-ng (an independent decoder): what the host was told
was played must be what is on the line.
"""

import pytest
from simport import SimRig
from tonebridge.analysis import decode_multimon
from tonebridge.link import SendError, SendResult
from tonebridge_fw import codec

RATE = 22050


@pytest.fixture
def rig():
    r = SimRig("pico")
    yield r
    r.close()


def line_digits(rig, start_us=0, end_us=None):
    x = rig.board.line.samples(RATE, start_us=start_us, end_us=end_us or rig.board.now_us())
    return decode_multimon(x, RATE)


@pytest.mark.slow
def test_send_plays_on_the_line(rig):
    c = rig.client()
    c.open()
    assert c.hello()["backend"] == "pwm_dma"
    t0 = rig.board.now_us()
    prog = []
    r = c.send("1WWW,59#", on_progress=prog.append)
    assert r == SendResult(4, 4)
    rig.advance(100)
    assert line_digits(rig, t0) == "159#"
    # the 3.5 s pause happened in virtual time
    assert 4.0 <= (rig.board.now_us() - t0) / 1e6 < 4.6
    assert [p["key"] for p in prog if p["event"] == "finished"] == list("159#")


def test_all_keys_and_short_timing(rig):
    c = rig.client()
    c.open()
    t0 = rig.board.now_us()
    assert c.send("123A456B789C*0#D", tone_ms=50, gap_ms=50) == SendResult(16, 16)
    rig.advance(60)
    assert line_digits(rig, t0) == "123A456B789C*0#D"


def test_invalid_string_puts_nothing_on_the_line(rig):
    from tonebridge.link import DialStringError

    c = rig.client()
    c.open()
    t0 = rig.board.now_us()
    with pytest.raises(DialStringError):
        c.send("12x4")
    # and straight at the board, bypassing the host check: refused as a whole
    rig.board.write(codec.encode(">", "raw1", "SEND 12x4"))
    rig.advance(500)
    out = rig.board.read()
    assert b"<raw1 ERR dial pos=2" in out
    assert line_digits(rig, t0) == ""


def test_board_reset_mid_sequence_reports_and_never_replays(rig):
    c = rig.client()
    c.open()
    old_boot = c.boot_id
    t0 = rig.board.now_us()
    b = rig.board
    b.clock.call_at(t0 + 450_000, lambda: b.request_reset("test"))
    with pytest.raises(SendError) as ei:
        c.send("1234567890", tone_ms=50, gap_ms=50)
    e = ei.value
    assert e.uncertain and "outcome unknown" in e.message
    assert c.boot_id != old_boot
    rig.advance(200)
    heard = line_digits(rig, t0)
    print("reset test:", heard, e.played, e.at_most, e.message)
    # 0.45 s into 50/50 ms digits: 4 or 5 digits went out before the reset, none after
    assert heard in ("1234", "12345"), heard
    assert e.played <= len(heard) <= e.at_most
    # the board works on, the old sequence is not replayed
    t1 = rig.board.now_us()
    assert c.send("99") == SendResult(2, 2)
    rig.advance(100)
    assert line_digits(rig, t1) == "99"


def test_unplug_replug_without_reset_completes(rig):
    c = rig.client()
    c.open()
    t0 = rig.board.now_us()
    b = rig.board
    b.clock.call_at(t0 + 200_000, rig.unplug)
    b.clock.call_at(t0 + 700_000, rig.replug)
    assert c.send("1234567890", tone_ms=50, gap_ms=50) == SendResult(10, 10)
    assert c.reconnects >= 1
    rig.advance(100)
    assert line_digits(rig, t0) == "1234567890"


def test_ctrl_c_reaches_the_repl_and_hangs_up(rig):
    c = rig.client()
    c.open()
    c.hook(True)
    prof = rig.board.profile
    assert rig.board.bus.level(prof["hook_pin"]) == 1  # relay energised: off-hook
    rig.board.write(codec.encode(">", "s1", "SEND 123456789"))
    rig.advance(250)
    rig.board.write(b"\x03")  # Ctrl-C, as mpremote sends it
    rig.advance(100)
    assert rig.board.state == "repl"
    out = rig.board.read()
    assert b"KeyboardInterrupt" in out and b">>> " in out
    # the REPL text is not a frame: the host decoder skips it
    frames = codec.Decoder(accept="<!").feed(out)
    assert all(f[2] for f in frames)
    assert not any(b"KeyboardInterrupt" in codec.encode(*f) for f in frames)
    # hook relay released (pin low) and tone muted (pin high) by App.shutdown
    assert rig.board.bus.level(prof["hook_pin"]) == 0
    assert rig.board.bus.level(prof["mute_pin"]) == 1
    t = rig.board.now_us()
    rig.advance(300)
    assert line_digits(rig, t) == ""


def test_boot_event_after_reset_reaches_client(rig):
    events = []
    c = rig.client(on_event=events.append)
    c.open()
    rig.board.reset()
    rig.advance(50)
    old = c.boot_id
    c.ping()
    boots = [e["boot"] for e in events if e["event"] == "boot" and e["boot"] != old]
    assert len(boots) == 1
    assert c.boot_id == boots[0] == c.hello()["boot"]


def test_offhook_timeout_is_an_unsolicited_event():
    r = SimRig("pico", config={"max_offhook_s": 1})
    try:
        events = []
        c = r.client(on_event=events.append)
        c.open()
        c.hook(True)
        r.advance(1200)
        c.ping()
        assert {"event": "hook", "off_hook": False, "reason": "timeout"} in events
        assert r.board.bus.level(r.board.profile["hook_pin"]) == 0
        assert c.status()["hook"] == "on"
    finally:
        r.close()


def test_watchdog_fed_by_healthy_loop_and_fires_when_it_stops():
    r = SimRig("pico", config={"watchdog_ms": 500, "repl_grace_s": 1})
    try:
        c = r.client()
        c.open()
        boot = c.boot_id
        assert c.send("12", tone_ms=50, gap_ms=50) == SendResult(2, 2)
        r.advance(2000)  # idle much longer than the watchdog timeout: the loop feeds it
        assert r.board.resets == []
        assert c.status()["boot"] == boot
        r.board.write(b"\x03")  # the loop stops (REPL); a timer feeds it for repl_grace_s
        r.advance(100)
        assert r.board.state == "repl"
        r.advance(800)
        assert r.board.resets == []  # mpremote has its grace period at the REPL
        r.advance(1000)
        assert [why for _t, why in r.board.resets] == ["watchdog"]  # then back into service
        r.advance(50)
        assert c.hello()["boot"] != boot
    finally:
        r.close()


@pytest.mark.parametrize(
    "board", ["pico", "pico2", "picow", "pico-mt8880", "esp32-i2s", "esp32s3-i2s"]
)
def test_every_board_profile_speaks_the_protocol(board):
    r = SimRig(board)
    try:
        c = r.client()
        c.open()
        assert c.info["board"] == board
        t0 = r.board.now_us()
        assert c.send("159#D", tone_ms=100, gap_ms=100) == SendResult(5, 5)
        r.advance(100)
        assert line_digits(r, t0) == "159#D"
    finally:
        r.close()


def test_backend_failure_is_reported_not_fatal(rig):
    events = []
    c = rig.client(on_event=events.append)
    c.open()
    mod = rig.board.loader.modules["tonebridge_fw.backends.pwm_dma_rp2"]
    original = mod.PwmDmaBackend.start

    def broken(self, plan):
        raise OSError(5, "EIO")

    mod.PwmDmaBackend.start = broken
    try:
        with pytest.raises(SendError) as ei:
            c.send("123")
        assert ei.value.code == "error" and ei.value.played == 0
        st = c.status()
        assert any(e["event"] == "fault" and e["code"] == "backend" for e in events)
        assert st["state"] == "idle"
        assert rig.board.bus.level(rig.board.profile["mute_pin"]) == 1  # tone path muted
    finally:
        mod.PwmDmaBackend.start = original
    t0 = rig.board.now_us()
    assert c.send("45", tone_ms=50, gap_ms=50) == SendResult(2, 2)  # the loop carried on
    rig.advance(60)
    assert line_digits(rig, t0) == "45"


def test_protocol_over_a_uart_profile():
    """A profile with "uart": the App talks through machine.UART (tonebridge_fw.transport)."""
    r = SimRig("esp32-i2s", config={"uart": {"id": 1, "tx": 17, "rx": 16, "baudrate": 115200}})
    try:
        tr = r.board.loader.modules["tonebridge_fw.transport"]
        calls = {"uart": 0, "stdio": 0}
        for cls, key in ((tr.UartLink, "uart"), (tr.StdioLink, "stdio")):
            orig = cls.read

            def counting(self, _orig=orig, _key=key):
                calls[_key] += 1
                return _orig(self)

            cls.read = counting
        c = r.client()
        c.open()
        t0 = r.board.now_us()
        assert c.send("*0#", tone_ms=60, gap_ms=60) == SendResult(3, 3)
        r.advance(60)
        assert line_digits(r, t0) == "*0#"
        assert calls["uart"] > 0 and calls["stdio"] == 0
    finally:
        r.close()
