"""Each synthesising board puts a sane level on the line: -7 to -13 dBm per tone into 600 ohm
(dtmf-facts.md §2), measured on the simulated line signal in volts, with the high group louder."""

import math

import pytest
from tonebridge.analysis import fit_tones, segments
from tonebridge.sim.play import render_on_board


def dbm(amplitude_v):
    return 20 * math.log10(amplitude_v / math.sqrt(2) / 0.7746)


@pytest.mark.parametrize("board", ["pico", "pico2", "esp32-i2s", "esp32s3-i2s"])
def test_tone_levels_on_the_line(board):
    res = render_on_board(board, "5", tone_ms=200, gap_ms=100, rate=48000)
    x, rate = res["samples"], res["rate"]
    (start, end) = segments(x, rate)[0]
    steady = x[int((start + 0.02) * rate) : int((end - 0.02) * rate)]
    _f_low, a_low, _f_high, a_high, _res = fit_tones(steady, rate)
    low, high = dbm(a_low), dbm(a_high)
    assert -13.0 <= low <= -7.0, f"{board}: low tone {low:.1f} dBm"
    assert -13.0 <= high <= -7.0, f"{board}: high tone {high:.1f} dBm"
    assert 0.5 <= high - low <= 4.0, f"{board}: twist {high - low:.2f} dB"


@pytest.mark.parametrize("board", ["esp32-i2s", "pico"])
def test_protocol_config_retunes_level_and_twist_on_the_line(board):
    """CONFIG twist=/level= over the serial protocol changes what the next sequence puts on
    the line (measured on simulated boards running the firmware in real time)."""
    from tonebridge.link import BoardClient

    def measure(client):
        board = client.board
        t0 = board.clock.now_us()
        client.send("5", tone_ms=300, gap_ms=100)
        x = board.line.samples(48000, start_us=t0, end_us=board.clock.now_us())
        (start, end) = segments(x, 48000)[0]
        steady = x[int((start + 0.03) * 48000) : int((end - 0.03) * 48000)]
        _fl, a_low, _fh, a_high, _res = fit_tones(steady, 48000)
        return dbm(a_low), dbm(a_high)

    with BoardClient(f"sim://{board}") as client:
        client.hello()
        client.hook(True)
        cfg = client.config_get()
        level = float(cfg["level"])
        assert float(cfg["twist"]) == 2.0
        low0, high0 = measure(client)
        cfg = client.config_set(twist=0.5, level=level / 2)
        assert float(cfg["twist"]) == 0.5 and float(cfg["level"]) == level / 2
        low1, high1 = measure(client)
    # the renderer's twist, less the reconstruction filter's droop on the PWM board
    assert high1 - low1 == pytest.approx(high0 - low0 - 1.5, abs=0.1)
    # half the level: the two-tone sum drops 6 dB, redistributed by the new twist
    total0 = 10 * math.log10(10 ** (low0 / 10) + 10 ** (high0 / 10))
    total1 = 10 * math.log10(10 ** (low1 / 10) + 10 ** (high1 / 10))
    assert total1 - total0 == pytest.approx(-6.0, abs=0.5)
