"""Hook flash (issue 12 item 5) on every simulated board: main.py's own loop gets a SEND with '!'
(the tonebridge dialect) or a FLASH request over the serial link, and the break is measured where
an exchange sees it: the hook relay's pin on the simulated line (``LineSwitches.hook_log``, and
the line signal the relay gates). The break must last the requested time to within 1 ms."""

import pytest
from tonebridge.analysis import decode_multimon, segments
from tonebridge.sim import SimBoard, play_on_board, render_on_board
from tonebridge.sim.clock import VirtualClock

BOARDS = ["pico", "pico2", "picow", "esp32-i2s", "esp32s3-i2s", "pico-mt8880"]
TOL_US = 1000


def breaks(hook_log):
    """(start_us, length_us) of each on-hook interval that ends off-hook again."""
    out = []
    for (t0, off0), (t1, off1) in zip(hook_log, hook_log[1:], strict=False):
        if off0 is False and off1 is True:
            out.append((t0, t1 - t0))
    return out


@pytest.mark.parametrize("board", BOARDS)
def test_flash_in_a_dial_string_breaks_the_line_for_the_flash_time(board):
    res = render_on_board(board, "1!p2", "tonebridge", pause_ms=400, flash_ms=300, rate=22050)
    log = res["board"].line_if.hook_log
    br = breaks(log)
    assert len(br) == 1, log
    t_break, length = br[0]
    assert abs(length - 300_000) <= TOL_US, (board, length)
    # where the plan puts it: after tone 1 and its gap, i.e. 200 ms after the first tone starts
    t_tone1 = [t for t, ev in res["events"] if ev[0] == "started" and ev[3] == "1"][0]
    assert 0 <= t_break - t_tone1 - 200_000 <= 1500, (board, t_break - t_tone1)
    # the sequence counts the flash as a step; the keys around it reach the line
    kinds = [ev for _, ev in res["events"]]
    assert ("started", "1", 1, "!") in kinds and ("finished", "1", 1, "!") in kinds
    assert kinds[-1] == ("done", "1", 3)
    assert decode_multimon(res["samples"], res["rate"]) == "12"
    segs = segments(res["samples"], res["rate"])
    gap = (segs[1][0] - segs[0][1]) * 1000
    assert abs(gap - (100 + 300 + 400)) <= 1.0, (board, gap)  # gap, flash, pause
    print(board, "flash", length / 1000, "ms")


@pytest.mark.parametrize("ms", [50, 100, 1500])
def test_flash_lengths_on_the_pico(ms):
    res = render_on_board("pico", "!", "tonebridge", flash_ms=ms)
    (br,) = breaks(res["board"].line_if.hook_log)
    assert abs(br[1] - ms * 1000) <= TOL_US, br


def _request(sb, codec, rid, body, ms=20):
    dec = codec.Decoder(accept=codec.REPLY + codec.EVENT)
    sb.write(codec.encode(codec.REQUEST, rid, body))
    sb.run_for(ms)
    frames = dec.feed(sb.link.host_read(-1))
    return [f[2] for f in frames if f[0] == codec.REPLY and f[1] == rid]


@pytest.mark.parametrize("board", ["pico", "pico-mt8880"])
def test_flash_request_while_idle(board):
    """FLASH on a held, idle line: the main loop sleeps 20 ms between idle passes, yet the
    break lasts the flash time (the loop passes every 1 ms while the line flashes)."""
    sb = SimBoard(board, VirtualClock(), config={"flash_ms": 250})
    try:
        codec = sb.load("tonebridge_fw.codec")
        sb.run_for(500)  # boot (the MT8880 board resets and checks its chip first)
        sb.link.host_read(-1)
        assert _request(sb, codec, "1", "FLASH") == [
            "ERR on-hook line is on-hook: a flash needs the line held (HOOK off)"
        ]
        assert _request(sb, codec, "2", "HOOK off", ms=33) == ["OK hook=off"]
        assert _request(sb, codec, "3", "FLASH", ms=400) == ["OK flash=250"]
        assert _request(sb, codec, "4", "FLASH 777", ms=17) == ["OK flash=777"]
        sb.run_for(1000)
        assert _request(sb, codec, "4", "FLASH 777", ms=900) == ["OK flash=777 dup=1"]
        lengths = [b[1] for b in breaks(sb.line_if.hook_log)]
        assert len(lengths) == 2, sb.line_if.hook_log
        assert abs(lengths[0] - 250_000) <= TOL_US and abs(lengths[1] - 777_000) <= TOL_US
        assert sb.line_if.off_hook  # the line is held again
    finally:
        sb.close()


def test_hangup_during_a_flash_leaves_the_line_released():
    sb = SimBoard("pico", VirtualClock())
    try:
        codec = sb.load("tonebridge_fw.codec")
        sb.run_for(50)
        _request(sb, codec, "1", "HOOK off")
        _request(sb, codec, "2", "FLASH 1000", ms=100)
        _request(sb, codec, "3", "HOOK on", ms=2000)
        assert breaks(sb.line_if.hook_log) == [] and not sb.line_if.off_hook
    finally:
        sb.close()


def test_catapult_refuses_the_flash_before_anything_plays():
    sb = SimBoard("pico", VirtualClock())
    try:
        with pytest.raises(ValueError, match="invalid character .p. at position 1"):
            play_on_board(sb, "1p2", "catapult")
    finally:
        sb.close()
