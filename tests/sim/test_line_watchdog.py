"""Line control and watchdog on a simulated board, in virtual time."""

import numpy as np
import pytest
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge.sim import machine as sim_machine


@pytest.fixture
def board():
    boards = []

    def make(name="pico", **kw):
        sb = SimBoard(name, VirtualClock(), run_main=False, **kw)
        boards.append(sb)
        return sb

    yield make
    for sb in boards:
        sb.close()


def _line(sb):
    prof = sb.load("tonebridge_fw.boards").load_config()
    return sb.load("tonebridge_fw.line").Line(prof, sb.modules["time"].ticks_ms), prof


def test_offhook_timeout_hangs_up_by_itself(board):
    sb = board(config={"max_offhook_s": 2})
    line, prof = _line(sb)
    assert sb.bus.level(prof["hook_pin"]) == 0
    line.off_hook()
    t0 = sb.now_us()
    assert sb.bus.level(prof["hook_pin"]) == 1
    events = []
    while sb.now_us() - t0 < 1_990_000:
        assert line.service() == ()
        sb.run_for(10)
    assert line.is_off_hook()
    while not events:
        events = list(line.service())
        sb.run_for(10)
    assert events == [("hangup", "timeout")]
    assert 2_000_000 <= sb.now_us() - t0 <= 2_020_000
    assert not line.is_off_hook()
    assert sb.bus.level(prof["hook_pin"]) == 0
    assert sb.line_if.hook_log[-1][1] is False
    assert sb.bus.level(prof["mute_pin"]) == 1


def test_offhook_timeout_aborts_a_playing_sequence():
    # the board's own main loop: the off-hook limit counts from going off-hook, so a sequence
    # that would fit on its own but starts late in the call is cut by the line controller's
    # hang-up, reported as ABORT with what was played, and the line goes quiet. (One longer
    # than the limit on its own is refused before it plays.)
    from tonebridge_fw import codec

    sb = SimBoard("pico", VirtualClock(), config={"max_offhook_s": 1})
    try:
        sb.run_for(20)
        sb.read()
        sb.write(codec.encode(">", "6", "SEND 123456789"))  # 1700 ms > 1 s
        sb.run_for(50)
        (reply,) = [f[2] for f in codec.Decoder(accept="<!").feed(sb.read()) if f[0] == "<"]
        assert reply.startswith("ERR dial sequence lasts 1700 ms, longer than"), reply
        assert not sb.line_if.hook_log  # the line was never taken
        sb.write(codec.encode(">", "5", "HOOK off"))
        sb.run_for(550)
        sb.write(codec.encode(">", "7", "SEND 12345"))  # 900 ms: fits alone, not in what is left
        sb.run_for(2500)
        frames = list(codec.Decoder(accept="<!").feed(sb.read()))
        events = [f[2] for f in frames if f[0] == "!"]
        assert any(e.split()[:3] == ["ABORT", "2", "hangup"] for e in events), events
        assert "HOOK on timeout" in events
        assert not any(e.startswith("DONE") for e in events)
        # nothing reaches the line after the hang-up
        t_hang = sb.line_if.hook_log[-1][0]
        x = sb.recorder.samples(8000, start_us=t_hang + 1, end_us=sb.now_us())
        assert np.all(x == 0)
        before = sb.recorder.samples(8000, start_us=0, end_us=t_hang)
        assert np.max(np.abs(before)) > 0.1  # floor: it did play until then
    finally:
        sb.close()


def test_watchdog_fed_keeps_running_and_starved_resets(board):
    sb = board()
    wd = sb.load("tonebridge_fw.line").Watchdog(200)
    line, prof = _line(sb)
    line.off_hook()
    for _ in range(50):  # 1 s of a healthy main loop feeding every 20 ms
        wd.feed()
        sb.run_for(20)
    assert sb.resets == []
    t_last = sb.now_us() - 20_000  # the last feed
    sb.run_for(500)  # the main loop hangs: nobody feeds
    assert len(sb.resets) == 1
    t, reason = sb.resets[0]
    assert reason == "watchdog"
    assert t == t_last + 200_000
    assert sb.reset_cause == sim_machine.WDT_RESET
    # after the reset the pins float: the relay drops (pull-down) and the tone is muted
    assert sb.bus.level(prof["hook_pin"]) is None
    assert sb.line_if.off_hook is False
    assert sb.line_if.muted is True
    # the firmware is loaded afresh after the reboot
    assert sb.modules["machine"].reset_cause() == sim_machine.WDT_RESET


def test_reset_stops_pwm_and_dma(board):
    sb = board()
    prof = sb.load("tonebridge_fw.boards").load_config()
    backend, line = sb.load("tonebridge_fw.board").make_board(prof)
    backend.start(sb.load("tonebridge_fw.dialstring").compile_plan("1"))
    sb.run_for(10)
    assert any(ch.busy for ch in sb.hw.dma)
    sb.reset()
    assert not any(ch.busy for ch in sb.hw.dma)
    assert not any(s.running for s in sb.hw.slices)
    assert sb.resets[-1][1] == "harness"


def test_offhook_timeout_across_the_ticks_ms_wrap(board):
    # ticks_ms wraps at 2**30 ms on MicroPython: start 0.5 s before the wrap
    sb = board(config={"max_offhook_s": 2}, ticks_offset_us=(2**30 - 500) * 1000)
    line, prof = _line(sb)
    t = sb.modules["time"]
    line.off_hook()
    t0 = sb.now_us()
    events = []
    while not events:
        events = list(line.service())
        sb.run_for(10)
    assert t.ticks_ms() < 10_000  # wrapped
    assert events == [("hangup", "timeout")]
    assert 2_000_000 <= sb.now_us() - t0 <= 2_020_000
