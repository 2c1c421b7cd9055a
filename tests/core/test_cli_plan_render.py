"""`tonebridge plan` and `tonebridge render`, called in-process."""

import sys
import types

import numpy as np
import pytest
from tonebridge.analysis import decode_multimon, read_wav, segments
from tonebridge.cli import main
from tonebridge.commands.render import parse_rate


def test_plan_prints_steps_and_total(capsys):
    assert main(["plan", "catapult", "1WWW,59#"]) == 0
    out = capsys.readouterr().out
    assert "3500 ms  silence" in out
    assert "tone 1  697 + 1209 Hz" in out
    assert "tone #  941 + 1477 Hz" in out
    assert out.strip().endswith("4 digits (159#), 7 steps, total 4100 ms")


def test_plan_timing_options(capsys):
    assert main(["plan", "gws", "12", "--tone-ms", "40", "--gap-ms", "60"]) == 0
    out = capsys.readouterr().out
    assert "tone 40 ms, gap 60 ms" in out
    assert "total 140 ms" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plan", "catapult", "1234x6"], "error: invalid character 'x' at position 4"),
        (["plan", "gws", "12,3"], "error: invalid character ',' at position 2"),
        (["plan", "gws", "1a"], "error: invalid character 'a' at position 1"),
        (["plan", "catapult", "1" * 93], "error: dial string too long: 93 characters, at most 92"),
        (["plan", "catapult", ""], "error: empty dial string"),
        (["plan", "sip", "1"], "error: unknown dialect 'sip'"),
        (["plan", "catapult", "1", "--tone-ms", "39"], "error: tone_ms 39 is outside 40-5000 ms"),
        (["plan", "catapult", "1", "--gap-ms", "5001"], "error: gap_ms 5001 is outside 40-5000 ms"),
    ],
)
def test_plan_errors_exit_2(capsys, argv, message):
    assert main(argv) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.startswith(message)


def test_plan_error_points_at_the_character(capsys):
    main(["plan", "catapult", "1234x6"])
    lines = capsys.readouterr().err.splitlines()
    assert lines[1] == "  1234x6"
    assert lines[2] == "      ^"


def test_render_writes_a_decodable_wav(tmp_path, capsys):
    out = tmp_path / "d.wav"
    assert main(["render", "--out", str(out), "1WWW,59#"]) == 0
    assert "wrote" in capsys.readouterr().out
    x, rate = read_wav(out)
    assert rate == 48000
    assert decode_multimon(x, rate) == "159#"
    seg = segments(x, rate)
    assert len(seg) == 4
    assert abs((seg[1][0] - seg[0][1]) - 3.5) * rate < 1


def test_render_options(tmp_path):
    out = tmp_path / "g.wav"
    argv = ["render", "--dialect", "gws", "--tone-ms", "40", "--gap-ms", "40"]
    argv += ["--rate", "125000000/8192", "--bits", "12", "--out", str(out), "0123456789*#ABCD"]
    assert main(argv) == 0
    x, rate = read_wav(out)
    assert rate == 15259  # WAV headers hold whole hertz
    fs = 125e6 / 8192
    assert decode_multimon(x, fs) == "0123456789*#ABCD"
    seg = segments(x, fs)
    assert len(seg) == 16
    assert all(abs((e - s) - 0.040) * fs < 1 for s, e in seg)
    # 12-bit codes scaled to 16 bits: every sample is a multiple of 16
    assert np.all(np.round(x * 32768) % 16 == 0)


def test_render_errors(tmp_path, capsys):
    out = tmp_path / "x.wav"
    assert main(["render", "--out", str(out), "12x"]) == 2
    assert "invalid character 'x' at position 2" in capsys.readouterr().err
    assert main(["render", "--dialect", "gws", "--out", str(out), "1W"]) == 2
    assert main(["render", "--rate", "fast", "--out", str(out), "1"]) == 2
    assert "bad sample rate 'fast'" in capsys.readouterr().err
    assert main(["render", "--rate", "3000", "--out", str(out), "1"]) == 2
    assert "too low" in capsys.readouterr().err
    assert main(["render", "--twist-db", "6", "--out", str(out), "1"]) == 2
    assert main(["render", "--bits", "20", "--out", str(out), "1"]) == 2
    assert not out.exists()
    capsys.readouterr()
    assert main(["render", "--out", str(tmp_path / "no" / "such" / "dir.wav"), "1"]) == 1
    assert "error: cannot write" in capsys.readouterr().err


def test_parse_rate():
    assert parse_rate("48000") == 48000
    assert parse_rate("125000000/8192") == (125000000, 8192)
    assert parse_rate("15258.7890625") == (1953125, 128)
    for bad in ("0", "-1", "1/0", "x", "1/-2"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_render_board_unavailable(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tonebridge.sim.play", None)  # import fails
    assert main(["render", "--board", "pico", "--out", str(tmp_path / "b.wav"), "1"]) == 2
    assert "board simulation not available yet" in capsys.readouterr().err


def test_render_board_calls_the_simulator_contract(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("tonebridge.sim.play")
    fake.render_on_board = lambda board, text, **kw: calls.append((board, text, kw))
    monkeypatch.setitem(sys.modules, "tonebridge.sim.play", fake)
    out = str(tmp_path / "b.wav")
    argv = ["render", "--board", "pico-mt8880", "--dialect", "gws", "--tone-ms", "60"]
    assert main(argv + ["--out", out, "42"]) == 0
    want = {"dialect": "gws", "tone_ms": 60, "gap_ms": 100, "pause_ms": 500, "out": out}
    assert calls == [("pico-mt8880", "42", want)]


def test_plan_tonebridge_dialect_held_key_and_pause(capsys):
    assert main(["plan", "tonebridge", "15(2000),#", "--pause-ms", "800"]) == 0
    out = capsys.readouterr().out
    assert "dialect tonebridge, tone 100 ms, gap 100 ms, ',' 800 ms" in out
    assert "   2      200 ms   2000 ms  tone 5" in out
    assert "   3     2200 ms    800 ms  silence" in out
    assert "3 digits (15#), 5 steps, total 3100 ms" in out
    # catapult's pauses are its document's, whatever --pause-ms says
    assert main(["plan", "catapult", "1,2", "--pause-ms", "800"]) == 0
    out = capsys.readouterr().out
    assert "',' 800" not in out and "total 700 ms" in out


def test_plan_held_key_error_points_at_it(capsys):
    assert main(["plan", "tonebridge", "15(20000)"]) == 2
    err = capsys.readouterr().err
    assert "error: held key at position 1: 20000 ms is outside 40-10000 ms" in err
    assert err.splitlines()[-1] == "     ^"


def test_render_tonebridge_held_key_and_pause_on_the_wav(tmp_path):
    """The renderer (no board) honours a held key and the tonebridge pause: measured on the
    WAV it writes (50 % amplitude points), decoded by multimon-ng as one digit per key."""
    out = tmp_path / "h.wav"
    argv = ["render", "--dialect", "tonebridge", "--pause-ms", "700", "--rate", "22050"]
    assert main(argv + ["--out", str(out), "15(2000),2"]) == 0
    x, rate = read_wav(out)
    assert decode_multimon(x, rate) == "152"
    seg = segments(x, rate)
    tones = [(e - s) * 1000 for s, e in seg]
    gaps = [(b[0] - a[1]) * 1000 for a, b in zip(seg, seg[1:], strict=False)]
    assert len(tones) == 3 and abs(tones[1] - 2000) <= 0.1, tones
    assert abs(tones[0] - 100) <= 0.1 and abs(tones[2] - 100) <= 0.1, tones
    assert abs(gaps[0] - 100) <= 0.1 and abs(gaps[1] - 700) <= 0.1, gaps
