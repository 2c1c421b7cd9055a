"""`make bench`: the measures themselves (they must be able to fail) and a --quick smoke run."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tonebridge.bench import report, signal
from tonebridge_fw.dialstring import compile_plan

needs_multimon = pytest.mark.skipif(
    shutil.which("multimon-ng") is None and os.environ.get("CI") != "true",
    reason="multimon-ng not installed",
)


def test_decode_share_counts_lost_and_duplicated_digits():
    assert signal.decode_share("1234", "1234") == (1.0, 0, 0)
    assert signal.decode_share("1234", "124") == (0.75, 1, 0)
    assert signal.decode_share("1234", "12234") == (1.0, 0, 1)
    assert signal.decode_share("1234", "") == (0.0, 4, 0)


def test_timing_errors_see_a_late_tone():
    plan = compile_plan("123", "catapult", 100, 100)
    x, rate = signal.ref_signal(signal.MT8880SinesRef, "123", 100, 100)
    tone, gap, _ = signal.timing_errors(x, rate, plan)
    assert tone < 0.5 and gap < 0.5
    # the second tone 2 ms late (and 2 ms shorter): the measure must see it
    t0 = int(round((0.05 + 0.2) * rate))
    y = x.copy()
    y[t0 : t0 + int(0.002 * rate)] = 0
    tone, gap, errs = signal.timing_errors(y, rate, plan)
    assert 1.5 < tone < 2.5 and 1.5 < gap < 2.5, (tone, gap)


def test_square_reference_is_impure_and_mt8880_reference_is_off_frequency():
    from tonebridge.analysis import fit_tones, steady_slices, unwanted_db

    x, rate = signal.ref_signal(signal.SquareRef, "5", 100, 100)
    (sl,) = steady_slices(x, rate)
    assert unwanted_db(sl, rate) > -15  # 3rd harmonics are in band
    x, rate = signal.ref_signal(signal.MT8880SinesRef, "1", 100, 100)
    (sl,) = steady_slices(x, rate)
    fl, _, fh, _, _ = fit_tones(sl, rate)
    assert abs(fl / 697 - 1) > 0.002  # 3.579545 MHz / (32 * 160) = 699.1 Hz


def test_report_marks_misses():
    rows = report.build_rows(
        {
            "signal": {
                "pico": {"name": "p", "measures": {"freq_err_pct": 0.01, "decoded_min": 1.0}},
                "square-ref": {"name": "s", "measures": {"freq_err_pct": 0.5}},
            }
        }
    )
    acc = rows[0]
    assert acc["pass"] == {"pico": True, "square-ref": False}
    table = report.format_table(rows)
    assert "0.5000 MISS" in table and "0.0100 " in table
    dec = [r for r in rows if r["metric"].endswith("40/40 ms") and r["group"] == "4 decode"][0]
    assert dec["values"]["pico"] == 100.0


def _val(rows, metric, subject):
    (r,) = [r for r in rows if r["metric"] == metric]
    return r["values"][subject]


@pytest.mark.slow
@needs_multimon
def test_quick_bench_runs_and_discriminates(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tonebridge.bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    for needle in (
        "1 accuracy",
        "2 purity",
        "3 timing",
        "4 decode",
        "5 latency",
        "6 scale",
        "7 footprint",
        "8 bridge",
        "ref:square",
        "ref:MT8880 sines",
        "ref:spandsp",
        "RP2350 PWM",
    ):
        assert needle in table, needle
    res = json.loads(out.read_text())
    assert set(res) >= {
        "meta",
        "signal",
        "footprint",
        "latency",
        "scale",
        "bridge",
        "rows",
        "timings_s",
    }
    for row in res["rows"]:
        assert set(row) >= {"group", "metric", "unit", "goal", "values", "pass"}
    sig = {k: v["measures"] for k, v in res["signal"].items()}
    assert set(sig) == {
        "pico",
        "pico2",
        "esp32-i2s",
        "pico-mt8880",
        "spandsp-ref",
        "square-ref",
        "mt8880-sines-ref",
    }
    # every subject was measured on all 16 keys and every plan
    for m in sig.values():
        assert m["keys_found"] == 16
        for key in (
            "freq_err_pct",
            "unwanted_inband_db",
            "tone_err_ms",
            "tone_err_min_ms",
            "pause_w_err_ms",
            "decoded_min",
        ):
            assert key in m and np.isfinite(m[key]), key
    # the references come out worse where they should: the measures discriminate
    synth = ("pico", "esp32-i2s")
    for s in synth:
        assert sig["square-ref"]["unwanted_inband_db"] > sig[s]["unwanted_inband_db"] + 10
        assert sig["mt8880-sines-ref"]["freq_err_pct"] > 10 * sig[s]["freq_err_pct"]
    # the rp2 boards' shaped PWM line is cleaner in band than spandsp's 8 kHz generator
    for s in ("pico", "pico2"):
        assert sig[s]["unwanted_inband_db"] <= -65.0
        assert sig[s]["unwanted_inband_db"] < sig["spandsp-ref"]["unwanted_inband_db"] - 5
    # the MT8880 board is as far off frequency as its crystal divider makes it
    assert sig["pico-mt8880"]["freq_err_pct"] == pytest.approx(
        sig["mt8880-sines-ref"]["freq_err_pct"], rel=0.01
    )
    # row 5: every request measured, latency positive
    lat = res["latency"]["sim"]
    assert lat["failed"] == 0 and lat["measured"] == lat["requests"]
    assert lat["api_to_tone"]["min_ms"] > 0
    # row 6: nothing lost, nothing duplicated, by both counts
    sc = res["scale"]
    assert sc["failed_requests"] == 0 and sc["requests"] > 0
    assert sc["digits_reported_played"] == sc["digits_requested"]
    assert sc["lines_decoded_exactly"] == sc["lines"]
    assert sc["decoded_lost"] == 0 and sc["decoded_extra"] == 0
    # row 7: the sample path allocates nothing (heap_lock and GC-off count)
    for h in res["footprint"]["heap"].values():
        assert h["locked_alloc_errors"] == 0 and h["bytes_allocated_in_fills"] == 0
        assert h["samples"] == h["total_samples"]
        assert h["heap_hw"] > 0
    assert res["footprint"]["mpy_armv6m"] > 0
    # row 8: every request measured on each kind of connection; the idle serve was measured
    br = res["bridge"]
    for kind in ("fresh", "keepalive", "keepalive_raw"):
        assert br["latency"][kind]["n"] == 60 and br["latency"][kind]["p50_ms"] > 0
    assert br["idle"]["lines"] == 4 and br["idle"]["seconds"] >= 3.0 and br["idle"]["cpu_s"] >= 0


def test_emulated_rp2040_rows_carry_every_figure_and_mark_a_slow_send():
    m = {
        "boot_to_hello_s": 4.0,
        "idle_cpu_share": 0.02,
        "playing_cpu_share": 0.47,
        "renderer_cpu_share": 0.057,
        "latency_ms": [19.5, 20.5],
        "latency_p50_ms": 20.0,
        "latency_max_ms": 20.5,
        "fill": {"fast": True, "steady": 117.0, "idle": 22.0, "portable_steady": 2700.0},
        "heap": {"free_ready": 180000, "free_min": 169000, "live_hw": 5400},
    }
    rows = report.build_rows({"emu": {"mpy": m, "py": dict(m, latency_p50_ms=5.0)}})
    table = report.format_table(rows)
    assert "9 emulated RP2040" in table
    assert "fill() cycles/sample, steady two-tone (viper) (.mpy)" in table
    lat = [r for r in rows if r["metric"].startswith("SEND frame in")]
    assert [r["pass"]["emu"] for r in lat] == [False, True]  # 20 ms misses the 10 ms goal
    assert report.build_rows({"emu": {"skipped": "no image"}}) == []


def test_lines_in_real_time_needs_every_digit_and_no_lag():
    from tonebridge.bench import simcost

    ok = {
        "lines": 4,
        "lines_decoded_exactly": 4,
        "decoded_lost": 0,
        "decoded_extra": 0,
        "failed_requests": 0,
        "digits_requested": 400,
        "board_lag_s_max": 0.01,
        "digits_per_s": 49.0,
        "ideal_digits_per_s": 50.0,
    }
    assert simcost._passes(ok)
    for bad in (
        {"lines_decoded_exactly": 3, "decoded_lost": 1},
        {"lines_decoded_exactly": 3, "decoded_extra": 1},
        {"failed_requests": 1},
        {"board_lag_s_max": simcost.LAG_OK_S + 0.01},
        {"board_lag_s_max": None},
        {"digits_requested": 0},
        {"digits_per_s": 40.0},  # the boards did not keep pace
    ):
        assert not simcost._passes(dict(ok, **bad)), bad


@pytest.mark.slow
def test_board_cost_splits_firmware_renderer_and_simulator():
    """Row 10's split: a playing board runs its firmware's renderer, an idle one does not;
    the board process is measured from /proc, the split from its threads' profiles."""
    from tonebridge.bench import simcost

    r = simcost.board_cost("pico", idle_s=1.5, play_s=3.0, profile=True, log=lambda *_: None)
    idle, play = r["idle"], r["play"]
    assert r["play_cores"] > r["idle_cores"]
    assert play["renderer_share"] > 0 and idle["renderer_share"] == 0
    assert 0 < play["firmware_share"] < 1 and 0 < play["sim_share"] < 1
    assert play["firmware_share"] + play["sim_share"] == pytest.approx(1.0)
    assert play["renderer_share"] < play["firmware_share"]
    assert any("tonebridge/sim/" in k for k in play["top_sim"])


def test_virtual_cost_splits_renderer_receiver_and_the_rest():
    """Row 10 in virtual time: the firmware makes its own passes while playing (as a paced
    board does), the renderer and the receiver are timed in place, and a sleep before each
    pass changes nothing but the CPU (the same passes)."""
    from tonebridge.bench import simcost_virtual

    r = simcost_virtual.virtual_cost("pico", board_s=2.0)
    assert 50 < r["passes_per_s"] < 150, r
    assert r["renderer"] > 0 and r["receiver"] > 0 and r["rest"] > 0
    assert r["renderer"] + r["receiver"] + r["rest"] == pytest.approx(r["cores"])
    s = simcost_virtual.virtual_cost("pico", sleep_s=0.001, board_s=2.0)
    assert s["passes_per_s"] == pytest.approx(r["passes_per_s"], rel=0.02)


def test_sim_cost_rows_go_to_the_measured_table():
    from tonebridge.bench import simcost

    split = {"sim_cores": 0.08, "firmware_cores": 0.02, "renderer_cores": 0.005}
    res = {
        "pico": {
            "idle_cores": 0.01,
            "play_cores": 0.1,
            "idle": split,
            "play": split,
            "virtual": {"cores": 0.07, "renderer": 0.02, "receiver": 0.015, "rest": 0.035},
        },
        "load_average_before": 3.0,
        "realtime": {"lines": 7, "first_failing": 8, "one_line_digits_per_s": 11.3},
    }
    table = report.format_table(simcost.rows(res))
    # "10 ..." is row 10, not one of the signal rows 1-4 (which have a column per subject)
    assert table.splitlines()[0].split()[-1] == "measured"
    assert "pico: one board process idle" in table and "0.010" in table
    assert "lines in real time" in table
    assert "7 (first failing: 8; one line alone: 11.3 digits/s)" in table
    assert "pico: playing in virtual time, no waits" in table
    assert "(renderer 0.0200, receiver 0.0150, rest 0.0350)" in table


def test_esp32_receive_cost_is_estimated_from_the_xtensawin_loops():
    from tonebridge.bench import rxcost

    res = rxcost.run(log=lambda m: None)
    assert "skipped" not in res, res  # binutils-xtensa-lx106 (make setup installs it)
    # each loop found, none calls out (a call in a per-sample loop would cost hundreds)
    for f in ("pcm_viper.py", "goertzel_viper.py"):
        for n, cycles, path in rxcost.loop_costs(rxcost.FW / f):
            assert 5 < n < 80 and cycles < 120, (f, n, cycles)
            assert not any(t.split()[0].startswith(("call", "excw")) for t in path), path
    assert res["per_sample"] == res["convert"] + res["prep"] + 8 * res["bin1"]
    assert res["ring_bytes"] == 2048 and res["dma_bytes"] == 8192
    table = report.format_table(rxcost.rows(res))
    assert "9 receive path, ESP32 (estimate)" in table
    assert "RAM: I2S RX DMA buffers" in table
