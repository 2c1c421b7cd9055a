"""MT8880 board (pico-mt8880) end to end in the simulator: the firmware's own driver, loaded
unmodified, drives the bus-level chip model; the recorded line is checked with independent
tools (multimon-ng, least-squares tone fit, envelope timing). Fault seeding shows that a wrong
code table, a skipped power-up step or a wrong register bit gives wrong audio."""

import numpy as np
import pytest
from tonebridge.analysis import decode_multimon, fit_tones, segments, steady_slices
from tonebridge.sim import SimBoard, play_on_board
from tonebridge.sim.clock import VirtualClock
from tonebridge.sim.mt8880_chip import F_OSC, tone_hz
from tonebridge_fw.keypad import MT8880_CODE

RATE = 48000
ALL = "123A456B789C*0#D"


class Played:
    pass


def play(text, tone_ms=60, gap_ms=50, config=None, patch=None):
    sb = SimBoard("pico-mt8880", VirtualClock(), config=config)
    try:
        if patch is not None:
            patch(sb)
        res = play_on_board(sb, text, "catapult", tone_ms, gap_ms)
        p = Played()
        p.t0 = res["start_us"] - 50_000
        p.x = sb.recorder.samples(RATE, start_us=p.t0, end_us=res["end_us"])
        p.rate = RATE
        p.events = res["events"]
        p.plan = res["plan"]
        p.chip = sb.chip
        p.backend = res["backend"]
        p.bus = sb.bus
        return p
    finally:
        sb.close()


def durations(p):
    seg = segments(p.x, p.rate)
    tones = [(e - s) * 1000 for s, e in seg]
    gaps = [(seg[i + 1][0] - seg[i][1]) * 1000 for i in range(len(seg) - 1)]
    return seg, tones, gaps


def expected_hz(key):
    return tone_hz(MT8880_CODE[key])


def test_chip_table_matches_datasheet_figures():
    # dtmf-facts.md section 4: actual Hz of f_osc / (32 N)
    rows = [tone_hz(MT8880_CODE[k])[0] for k in "147*"]
    cols = [tone_hz(MT8880_CODE[k])[1] for k in "123A"]
    assert np.allclose(rows, [699.13, 766.17, 847.43, 947.97], atol=0.006)
    assert np.allclose(cols, [1215.88, 1331.68, 1471.85, 1645.01], atol=0.006)
    assert F_OSC == 3_579_545.0


def test_manual_mode_all_keys_decode_with_chip_frequencies_and_plan_timing():
    p = play(ALL, tone_ms=60, gap_ms=50)
    assert p.chip.initialised
    assert decode_multimon(p.x, p.rate) == ALL
    seg, tones, gaps = durations(p)
    assert len(seg) == 16
    assert max(abs(t - 60) for t in tones) < 1.0
    assert max(abs(g - 50) for g in gaps) < 1.0
    for key, sl in zip(ALL, steady_slices(p.x, p.rate), strict=True):
        f = fit_tones(sl, p.rate)
        lo, hi = expected_hz(key)
        assert f.f_low == pytest.approx(lo, rel=1e-6)
        assert f.f_high == pytest.approx(hi, rel=1e-6)
        twist = 20 * np.log10(f.a_high / f.a_low)
        assert twist == pytest.approx(2.0, abs=0.05)
    assert p.chip.bus_conflicts == 0


def test_manual_mode_long_tone_and_pause():
    # any tone length from the plan, and a Catapult pause (W = 1 s) as silence
    p = play("5W9", tone_ms=250, gap_ms=120)
    assert decode_multimon(p.x, p.rate) == "59"
    seg, tones, gaps = durations(p)
    assert [round(t) for t in tones] == [250, 250]
    assert abs(tones[0] - 250) < 1 and abs(tones[1] - 250) < 1
    assert abs(gaps[0] - 1000) < 1


def test_manual_mode_events_follow_the_audio():
    p = play("12", tone_ms=80, gap_ms=80)
    seg, _, _ = durations(p)
    ev = [(t, e[0], e[2]) for t, e in p.events if e[0] in ("started", "finished")]
    # loop every 1 ms: the events are reported within 1 ms of the audio edges
    edges = [seg[0][0], seg[0][1], seg[1][0], seg[1][1]]
    for (t_us, _, _), edge_s in zip(ev, edges, strict=True):
        t_audio_us = p.t0 + edge_s * 1e6
        assert -1 <= (t_us - t_audio_us) / 1000 <= 1.0


def test_burst_mode_uses_chip_timing():
    p = play("1590#", tone_ms=60, gap_ms=50, config={"mt8880_mode": "burst"})
    assert p.backend.burst
    assert decode_multimon(p.x, p.rate) == "1590#"
    seg, tones, gaps = durations(p)
    # chip-timed: 51 ms tone; the gap is the chip's 51 ms pause (plan gap 50 is shorter)
    # plus at most one main-loop pass (1 ms) of status polling latency
    assert max(abs(t - 51) for t in tones) < 0.5
    assert all(51 - 0.5 < g < 52 + 0.5 for g in gaps), gaps
    for key, sl in zip("1590#", steady_slices(p.x, p.rate), strict=True):
        f = fit_tones(sl, p.rate)
        assert f.f_low == pytest.approx(expected_hz(key)[0], rel=1e-6)
        assert f.f_high == pytest.approx(expected_hz(key)[1], rel=1e-6)


def test_burst_mode_longer_gaps_and_pauses_are_kept():
    p = play("12W3", tone_ms=100, gap_ms=150, config={"mt8880_mode": "burst"})
    assert decode_multimon(p.x, p.rate) == "123"
    seg, tones, gaps = durations(p)
    assert max(abs(t - 51) for t in tones) < 0.5
    assert 150 - 0.5 < gaps[0] < 151 + 0.5
    assert 1000 - 0.5 < gaps[1] < 1001 + 0.5


# ---- fault seeding --------------------------------------------------------------------


def test_fault_wrong_code_in_firmware_table_plays_wrong_digit():
    def patch(sb):
        # the board's own loaded keypad table (the driver imported the same dict)
        sb.load("tonebridge_fw.keypad").MT8880_CODE["5"] = 0x6

    # a board without the chip's receive side plays on (with it: test_mt8880_rx.py's FAULT)
    p = play("555", patch=patch, config={"mt8880_rx": None})
    assert decode_multimon(p.x, p.rate) == "666"
    good = play("555")
    assert decode_multimon(good.x, good.rate) == "555"


def test_fault_power_up_too_early_chip_stays_silent():
    def patch(sb):
        sb.load("tonebridge_fw.backends.mt8880")._POWER_UP_MS = 60  # datasheet: >= 100 ms

    p = play("123", patch=patch)
    assert not p.chip.initialised
    assert p.chip.ignored_early > 0
    assert np.max(np.abs(p.x)) == 0.0
    assert decode_multimon(p.x, p.rate) == ""


def test_fault_skipped_power_up_write_chip_stays_silent():
    def patch(sb):
        cls = sb.load("tonebridge_fw.backends.mt8880").MT8880Backend
        orig = cls.write_cra
        state = {"skipped": False}

        def write_cra(self, v):
            if v == 0 and not state["skipped"]:
                state["skipped"] = True  # drop the first CRA=0000 of the power-up sequence
                self.cra = v
                return
            orig(self, v)

        cls.write_cra = write_cra

    p = play("123", patch=patch)
    assert not p.chip.initialised
    assert np.max(np.abs(p.x)) == 0.0


def test_fault_wrong_burst_bit_gives_chip_timed_tones():
    # CRB BURST bit written as 0 in manual mode: the chip runs burst timing, not the plan's
    def patch(sb):
        sb.load("tonebridge_fw.backends.mt8880")._CRB_BURST = 0

    p = play("12", tone_ms=80, gap_ms=80, patch=patch)
    seg, tones, _ = durations(p)
    assert all(abs(t - 51) < 0.5 for t in tones)
    assert all(abs(t - 80) > 20 for t in tones)


def test_fault_wrong_tout_bit_gives_no_tone():
    def patch(sb):
        sb.load("tonebridge_fw.backends.mt8880")._CRA_TOUT = 0x2  # CP bit instead of TOUT

    p = play("1", patch=patch)
    assert p.chip.initialised
    assert np.max(np.abs(p.x)) == 0.0


def test_fault_board_wired_differently_from_profile():
    # D0/D1 swapped on the board: CRA TOUT (0001) arrives as CP (0010), CRB BURST as TEST
    def patch(sb):
        sb.chip.d_pins = [3, 2, 4, 5]

    p = play("12", patch=patch)
    assert p.chip.initialised  # 0000/1000 survive the swap
    assert p.chip.crb == 0b0010
    assert np.max(np.abs(p.x)) == 0.0
