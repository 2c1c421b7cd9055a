"""Held keys (the tonebridge dialect's `5(2000)`) on every simulated board: main.py's own loop
gets the SEND over the serial link, the backend plays the long tone step, and its length is
measured on the recorded line (tonebridge.analysis.segments, 50 % amplitude points), as a
receiver hears it (multimon-ng: one digit per held key)."""

import pytest
from tonebridge.analysis import decode_multimon, segments
from tonebridge.sim import render_on_board

SYNTH = ["pico", "pico2", "picow", "esp32-i2s", "esp32s3-i2s"]
# The synthesising boards put every edge on its sample (the renderer's exact boundaries);
# the MT8880 in manual mode switches TOUT on the main-loop pass at a step's boundary (the loop
# sleeps until the backend's due_ms(), rounded up to the ms), so each edge is late by less
# than a ms.
TOL_MS = {"pico-mt8880": 1.0}


def lengths(res):
    segs = segments(res["samples"], res["rate"])
    tones = [(e - s) * 1000 for s, e in segs]
    gaps = [(b[0] - a[1]) * 1000 for a, b in zip(segs, segs[1:], strict=False)]
    return tones, gaps


@pytest.mark.parametrize("board", [*SYNTH, "pico-mt8880"])
@pytest.mark.slow
def test_a_key_held_for_two_seconds(board):
    res = render_on_board(board, "15(2000)2", "tonebridge", rate=22050)
    tones, gaps = lengths(res)
    tol = TOL_MS.get(board, 0.1)
    assert len(tones) == 3, tones
    assert abs(tones[1] - 2000) <= tol, (board, tones)
    assert all(abs(t - 100) <= tol for t in (tones[0], tones[2])), (board, tones)
    assert all(abs(g - 100) <= tol for g in gaps), (board, gaps)
    assert decode_multimon(res["samples"], res["rate"]) == "152"
    assert [e[1] for e in res["events"]][-1] == ("done", "1", 3)
    print(board, "held 5:", round(tones[1], 3), "ms")


@pytest.mark.slow
@pytest.mark.parametrize("board", ["pico", "esp32-i2s", "pico-mt8880"])
def test_the_longest_hold_ten_seconds(board):
    """10 s, the dialect's limit: the stall guard (plan + 2 s), the renderer's boundaries and
    the MT8880's microsecond schedule all take it."""
    res = render_on_board(board, "5(10000)#", "tonebridge", rate=22050)
    tones, gaps = lengths(res)
    tol = TOL_MS.get(board, 0.1)
    assert len(tones) == 2 and abs(tones[0] - 10000) <= tol, (board, tones)
    assert abs(gaps[0] - 100) <= tol, (board, gaps)
    assert decode_multimon(res["samples"], res["rate"]) == "5#"
    print(board, "held 5:", round(tones[0], 3), "ms")


def test_the_tonebridge_pause_on_the_line():
    res = render_on_board("pico", "1,2w3", "tonebridge", pause_ms=1200, rate=22050)
    tones, gaps = lengths(res)
    assert all(abs(t - 100) <= 0.1 for t in tones) and len(tones) == 3, tones
    assert abs(gaps[0] - 1200) <= 0.1 and abs(gaps[1] - 500) <= 0.1, gaps


@pytest.mark.slow
def test_mt8880_burst_mode_refuses_held_keys_and_stays_silent():
    """Burst tones are the chip's ~51 ms: the board refuses a held key (ERR dial, before
    anything plays) rather than play it short."""
    from tonebridge.sim import SimBoard, play_on_board
    from tonebridge.sim.clock import VirtualClock

    sb = SimBoard("pico-mt8880", VirtualClock(), config={"mt8880_mode": "burst"})
    try:
        with pytest.raises(RuntimeError, match="ERR dial pos=2 held key at position 1: this board"):
            play_on_board(sb, "15(2000)", "tonebridge")
        sb.run_for(300)
        x = sb.recorder.samples(22050, start_us=0, end_us=sb.now_us())
        assert segments(x, 22050) == [] and float(abs(x).max()) < 1e-3
        assert sb.app.player.backend.hold_max_ms == 0
        # without a held key the same board plays
        res = play_on_board(sb, "15", "tonebridge", rid="2")
        x = sb.recorder.samples(22050, start_us=res["start_us"], end_us=res["end_us"])
        assert decode_multimon(x, 22050) == "15"
    finally:
        sb.close()
