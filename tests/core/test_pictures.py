"""`tonebridge render --png` and `tonebridge analyze FILE.wav --png`: PNG spectrograms whose
marks line up with the tones, checked from the figures the commands print against
independent measurements (multimon-ng for the digits, the envelope's 50 % points for the
times) and against the plan itself."""

from __future__ import annotations

import re

import pytest
from tonebridge.analysis import decode_multimon, read_wav, segments
from tonebridge.cli import main
from tonebridge.commands.render import render_samples
from tonebridge_fw.dialstring import compile_plan

MARK = re.compile(r"mark (digit|pause) (.+?): ([0-9.]+)-([0-9.]+) s")
DIGIT = re.compile(r"digit (\d+) (\S): ([0-9.]+)-([0-9.]+) s, tone ([0-9.]+) ms")
TOL_S = 0.0002  # the renderer puts each edge on its sample (48 kHz: 21 us)


def is_png(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 600 and height >= 300
    return width, height


@pytest.fixture
def multimon():
    import shutil

    if shutil.which("multimon-ng") is None:
        pytest.fail("multimon-ng missing (make setup installs it)")


def test_render_png_marks_the_plan_where_the_tones_are(tmp_path, capsys, multimon):
    wav, png = tmp_path / "a.wav", tmp_path / "a.png"
    argv = ["render", "1W59#", "--tone-ms", "80", "--gap-ms", "60", "--out", str(wav)]
    assert main([*argv, "--png", str(png)]) == 0
    out = capsys.readouterr().out
    is_png(png)
    marks = [(k, label, float(a), float(b)) for k, label, a, b in MARK.findall(out)]
    digits = [m for m in marks if m[0] == "digit"]
    pauses = [m for m in marks if m[0] == "pause"]
    x, rate = read_wav(wav)
    heard = decode_multimon(x, rate)
    assert heard == "159#" == "".join(m[1] for m in digits)
    measured = segments(x, rate)
    assert len(measured) == len(digits) == 4
    for (_, key, a, b), (start, end) in zip(digits, measured, strict=True):
        assert abs(a - start) < TOL_S and abs(b - end) < TOL_S, (key, a, b, start, end)
    # Catapult's W: one second of silence between 1 and 5, marked as the pause it is
    assert [p[1] for p in pauses] == ["1000 ms"]
    assert abs(pauses[0][2] - measured[0][1]) < TOL_S
    assert abs(pauses[0][3] - measured[1][0]) < TOL_S


def test_render_png_fails_cleanly_on_a_bad_path(tmp_path, capsys):
    wav = tmp_path / "a.wav"
    png = tmp_path / "missing-dir" / "a.png"
    assert main(["render", "12", "--out", str(wav), "--png", str(png)]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_analyze_prints_the_plans_digits_and_figures(tmp_path, capsys, multimon):
    from tonebridge.analysis import write_wav

    plan = compile_plan("*0#D", "gws", 70, 90)
    samples, r = render_samples(plan, 44100)
    wav, png = tmp_path / "b.wav", tmp_path / "b.png"
    write_wav(str(wav), samples, r.sample_rate)
    lead = r.lead_in / r.sample_rate
    assert main(["analyze", str(wav), "--png", str(png), "--full-scale-v", "2.0"]) == 0
    out = capsys.readouterr().out
    is_png(png)
    assert "decoded: *0#D" in out
    x, rate = read_wav(wav)
    assert decode_multimon(x, rate) == "*0#D"
    rows = DIGIT.findall(out)
    assert [k for _, k, *_ in rows] == list("*0#D")
    t = lead
    for _, _key, a, b, tone in rows:
        assert abs(float(a) - t) < TOL_S and abs(float(b) - (t + 0.070)) < TOL_S
        assert abs(float(tone) - 70.0) < 0.2
        t += 0.070 + 0.090
    # frequencies exact to the DDS's resolution, the renderer's 2 dB twist, levels in dBm
    for err in re.findall(r"Hz \(([+-][0-9.]+) %\)", out):
        assert abs(float(err)) < 0.05
    assert all(abs(float(tw) - 2.0) < 0.1 for tw in re.findall(r"twist ([+-][0-9.]+) dB", out))
    assert "dBm 600 ohm" in out
    assert "wrote " + str(png) in out


def test_analyze_of_silence_and_of_a_missing_file(tmp_path, capsys):
    import numpy as np
    from tonebridge.analysis import write_wav

    wav = tmp_path / "quiet.wav"
    write_wav(str(wav), np.zeros(8000), 8000)
    assert main(["analyze", str(wav)]) == 0
    assert "decoded: (no digits)" in capsys.readouterr().out
    assert main(["analyze", str(tmp_path / "nope.wav")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.slow
def test_render_png_on_a_simulated_board_places_the_plan_on_its_tones(tmp_path, capsys, multimon):
    """On a board the recording starts before the first tone: the plan is placed at the first
    tone measured; every later mark must then fall on its tone by the board's own timing."""
    wav, png = tmp_path / "c.wav", tmp_path / "c.png"
    argv = ["render", "--board", "pico", "--gap-ms", "60", "--out", str(wav), "--png", str(png)]
    assert main([*argv, "1W9#"]) == 0
    out = capsys.readouterr().out
    is_png(png)
    digits = [(k, float(a), float(b)) for kind, k, a, b in MARK.findall(out) if kind == "digit"]
    x, rate = read_wav(wav)
    assert decode_multimon(x, rate) == "19#" == "".join(k for k, _, _ in digits)
    measured = segments(x, rate)
    assert len(measured) == 3
    for (key, a, b), (start, end) in zip(digits, measured, strict=True):
        assert abs(a - start) < 0.0005 and abs(b - end) < 0.0005, (key, a, b, start, end)
