"""The rp2 boards' line signal, recorded from the simulated PWM/DMA hardware the unmodified
firmware configured, measured with independent tools (multimon-ng, least-squares tone fits,
envelope edges)."""

import os
import shutil

import numpy as np
import pytest
from tonebridge.analysis import decode_multimon, fit_tones, segments, steady_slices
from tonebridge_fw.keypad import freqs

ALL = "123A456B789C*0#D"
needs_multimon = pytest.mark.skipif(
    shutil.which("multimon-ng") is None and os.environ.get("CI") != "true",
    reason="multimon-ng not installed",
)


def _tone_gaps(x, rate):
    seg = segments(x, rate)
    tones = [e - s for s, e in seg]
    gaps = [seg[i + 1][0] - seg[i][1] for i in range(len(seg) - 1)]
    return seg, tones, gaps


@needs_multimon
@pytest.mark.parametrize("board", ["pico", "pico2"])
def test_all_keys_decode_with_exact_frequencies_and_timing(play, board):
    p = play(board, ALL)
    assert decode_multimon(p.x, p.rate) == ALL
    seg, tones, gaps = _tone_gaps(p.x, p.rate)
    assert len(seg) == 16
    assert max(abs(t - 0.100) for t in tones) < 0.001, tones
    assert max(abs(g - 0.100) for g in gaps) < 0.001, gaps
    for key, sl in zip(ALL, steady_slices(p.x, p.rate), strict=True):
        fl, _al, fh, _ah, _res = fit_tones(sl, p.rate)
        lo, hi = freqs(key)
        assert abs(fl / lo - 1) < 0.0005, (key, fl)
        assert abs(fh / hi - 1) < 0.0005, (key, fh)
    # the player's events: started/finished per digit, then done
    kinds = [e[1][0] for e in p.events]
    assert kinds == ["started", "finished"] * 16 + ["done"]
    assert p.events[-1][1] == ("done", "1", 16)
    assert p.backend.underruns == 0
    # events come from hardware progress: each within a main-loop pass (2 ms) of the audio
    # (the first "started" comes with the 1 ms lead-in ramp, before its 50 % point; the 50 %
    # point of a ramp-down is ~0.85 ms before its step ends, so "finished" may trail it by
    # that plus one pass: the last one, seen only when the final DMA chunk is found complete)
    started = [t for t, e in p.events if e[0] == "started"]
    finished = [t for t, e in p.events if e[0] == "finished"]
    for (s, e), ts, tf in zip(seg, started, finished, strict=True):
        assert -1500 < ts - (p.t0 + s * 1e6) < 2500, (s, ts)
        assert -500 < tf - (p.t0 + e * 1e6) < 3000, (e, tf)


def test_sample_rate_comes_from_clock_and_registers(play):
    p = play("pico", "1")
    be = p.backend
    s = p.board.hw.slices[be.slice]
    assert s.top == 1023
    assert s.csr & 0x3 == 0x3  # enabled, phase-correct: one sample per up-and-down count
    div16 = s.div
    assert div16 == 16
    assert be.sample_rate == pytest.approx(125e6 * 16 / (div16 * 2 * 1024))
    assert s.rate_hz() == pytest.approx(be.sample_rate)
    # the DMA moved exactly one sample per PWM period (wrap DREQ of the phase-correct slice)
    period_s = 1 / s.rate_hz()
    fl, _al, fh, _ah, _res = fit_tones(steady_slices(p.x, p.rate)[0], p.rate)
    assert abs(fl / 697 - 1) < 5e-4 and abs(fh / 1209 - 1) < 5e-4
    assert 16.3e-6 < period_s < 16.4e-6
    p2 = play("pico2", "1")
    assert p2.board.hw.freq == 150_000_000
    s2 = p2.board.hw.slices[0]
    assert p2.backend.sample_rate == pytest.approx(150e6 * 16 / (s2.div * 2 * 1024))
    assert s2.rate_hz() == pytest.approx(p2.backend.sample_rate)


def test_pause_timing_and_idle_silence(play):
    # "1WWW,59#": 1, 3.5 s pause, 5, 9, #
    p = play("pico", "1WWW,59#")
    seg, tones, gaps = _tone_gaps(p.x, p.rate)
    assert len(seg) == 4
    assert abs(gaps[0] - 3.5) < 0.001
    assert max(abs(t - 0.1) for t in tones) < 0.001
    # during the pause the line is quiet (muted? no: unmuted, tone output idle at mid-scale)
    a = int((seg[0][1] + 0.05) * p.rate)
    b = int((seg[1][0] - 0.05) * p.rate)
    assert np.max(np.abs(p.x[a:b])) < 0.01


def test_line_silent_before_offhook_and_after_done(play):
    p = play("pico", "5")
    seg = segments(p.x, p.rate)
    assert len(seg) == 1
    # before play() the board was on-hook and muted: exact zeros on the line
    assert np.all(p.x[: int(0.04 * p.rate)] == 0)
    hook = p.board.recorder.gate_log("hook")
    mute = p.board.recorder.gate_log("mute")
    assert hook[-1][1] is True  # still off-hook (the app hangs up, not the player)
    assert mute[-1][1] is False  # muted again after the plan


def test_level_on_the_line(play):
    p = play("pico", "1")
    (sl,) = steady_slices(p.x, p.rate)
    fl, al, fh, ah, res = fit_tones(sl, p.rate)
    # high group ~2 dB over the low group (renderer twist), through the analog chain
    assert 1.0 < 20 * np.log10(ah / al) < 3.0
    # per-tone level in 600 ohm: between -16 and -4 dBm
    dbm_low = 10 * np.log10((al / np.sqrt(2)) ** 2 / 600 / 1e-3)
    assert -16 < dbm_low < -4, dbm_low
    assert res < 0.05 * al


@pytest.mark.slow
def test_92_characters_with_a_long_pause_simulate(play):
    import time

    digits = ("1234567890*#ABCD" * 6)[:88]
    text = digits[:44] + "WWW," + digits[44:]  # 92 characters, a 3.5 s pause in the middle
    t = time.perf_counter()
    p = play("pico", text, tone_ms=50, gap_ms=50)
    wall = time.perf_counter() - t
    seg, tones, gaps = _tone_gaps(p.x, p.rate)
    assert len(seg) == 88
    assert abs(gaps[43] - 3.5) < 0.001
    assert max(abs(t - 0.05) for t in tones) < 0.001
    assert max(abs(g - 0.05) for i, g in enumerate(gaps) if i != 43) < 0.001
    print(f"92 characters: {len(p.x) / p.rate:.2f} s of line simulated in {wall:.2f} s wall")


def test_late_main_loop_underruns_are_recovered(play):
    # a main loop slower than one DMA chunk (~17 ms at 61 kHz): the chain is set too late, the backend
    # notices (the armed channel never moved) and starts it itself; the plan still completes
    p = play("pico", "12", busy_ms=60)
    assert p.backend.underruns > 0
    assert p.events[-1][1] == ("done", "1", 2)
    seg = segments(p.x, p.rate)
    # the stalls (the PWM holds its last duty value) stretch what was planned
    assert (
        sum(e - s for s, e in seg) + sum(seg[i + 1][0] - seg[i][1] for i in range(len(seg) - 1))
        > 0.31
    )


def test_cancel_mid_tone_leaves_the_pwm_at_mid_scale():
    # CANCEL over the link while a tone plays: the DMA stops and the slice's CC goes back to
    # mid-scale (512 on both halves), so the filter output has no DC step and the next unmute
    # no click; the line is quiet at once
    from tonebridge.sim import SimBoard, VirtualClock
    from tonebridge_fw import codec

    sb = SimBoard("pico", VirtualClock())
    try:
        sb.run_for(20)
        sb.read()
        sb.write(codec.encode(">", "1", "SEND tone=1000 gap=100 5"))
        sb.run_for(300)
        s = sb.hw.slices[0]
        assert s.cc & 0xFFFF != 512  # mid-tone: CC holds tone samples
        assert any(ch.busy for ch in sb.hw.dma)
        sb.write(codec.encode(">", "2", "CANCEL 1"))
        sb.run_for(20)
        out = sb.read()
        assert b"!1 ABORT 0 cancelled" in out
        assert s.cc == 512 | (512 << 16)
        # no channel feeds the PWM (the receiver's ADC channel stops on its own, once it has
        # heard the digit end: a piece's polling cadence later)
        assert not any(ch.busy and 0x40050000 <= ch.write < 0x40050100 for ch in sb.hw.dma)
        assert s.csr & 1  # the slice keeps running: the output sits at mid-scale
        t = sb.now_us()
        sb.run_for(50)
        x = sb.line.samples(48000, start_us=t, end_us=sb.now_us(), gated=False)
        assert np.max(np.abs(x - np.mean(x))) < 0.01  # no tone, no step after the abort
    finally:
        sb.close()
