"""The firmware renderer's audio, measured with the analysis toolkit (not with the renderer's
own numbers): frequencies by least-squares fit, purity, edge timing, multimon-ng decoding."""

import numpy as np
import pytest
from tonebridge.analysis import decode_multimon, fit_tones, segments, unwanted_db
from tonebridge_fw.dialstring import compile_plan
from tonebridge_fw.keypad import KEYS, freqs
from tonebridge_fw.synth import Renderer

# Sample rates the firmware uses: rp2 PWM at 125 MHz / 8192 and / 4096, I2S and common rates.
# (125 MHz * 16) / (20 * 4096) = 24414.0625 Hz is what backends/pwm_dma_rp2.py picks at
# 125 MHz (12-bit TOP, DIV 1.25) and, with DIV 1.5, at the RP2350's 150 MHz.
RATES = [
    8000,
    (125_000_000, 8192),
    16000,
    22050,
    (125_000_000 * 16, 20 * 4096),
    (125_000_000, 4096),
    44100,
    48000,
]
RATE_IDS = ["8000", "15258.789", "16000", "22050", "24414.0625", "30517.578", "44100", "48000"]


def render(rate, plan, **kw):
    r = Renderer(rate, **kw)
    buf = r.render(plan)
    x = np.asarray(buf, dtype=np.float64) - r.mid
    return r, x


def expected_segments(r, plan):
    """(start, end) sample indices of each tone from the plan alone (not from the renderer)."""
    fs = r.rate_num / r.rate_den
    h = int(np.floor(2.0 * fs / 2000 + 0.5))  # ramp 2 ms
    out, t = [], 0
    for key, ms in plan:
        if key is not None:
            out.append(
                (
                    h + int(np.floor(t * fs / 1000 + 0.5)),
                    h + int(np.floor((t + ms) * fs / 1000 + 0.5)),
                )
            )
        t += ms
    return out


def steady(x, a, b, fs, margin_ms=4):
    m = int(round(margin_ms * fs / 1000))
    return x[a + m : b - m]


@pytest.fixture(scope="module")
def all_keys():
    """Every key at every firmware rate, default timing, 12-bit unsigned."""
    plan = compile_plan(KEYS)
    out = {}
    for rate in RATES:
        r, x = render(rate, plan)
        out[rate] = (r, x, plan)
    return out


@pytest.mark.parametrize("rate", RATES, ids=RATE_IDS)
def test_every_tone_frequency_within_0_05_percent(all_keys, rate):
    r, x, plan = all_keys[rate]
    fs = r.sample_rate
    worst = 0.0
    for (a, b), key in zip(expected_segments(r, plan), KEYS, strict=True):
        fl, al, fh, ah, _ = fit_tones(steady(x, a, b, fs), fs)
        lo, hi = freqs(key)
        worst = max(worst, abs(fl / lo - 1), abs(fh / hi - 1))
        # twist: high group 2 dB above low
        assert abs(20 * np.log10(ah / al) - 2.0) < 0.1, key
    assert worst < 0.0005
    # and in fact far better: the DDS error is ~1e-7
    assert worst < 1e-5


@pytest.mark.parametrize("rate", RATES, ids=RATE_IDS)
def test_unwanted_power_at_least_45_db_below_low_tone(all_keys, rate):
    r, x, plan = all_keys[rate]
    fs = r.sample_rate
    for (a, b), key in zip(expected_segments(r, plan), KEYS, strict=True):
        s = steady(x, a, b, fs)
        assert unwanted_db(s, fs, band=(300, 3400)) < -45, key
        if fs / 2 > 3400:
            assert unwanted_db(s, fs, band=(3400, None)) < -45, key


@pytest.mark.parametrize("rate", RATES, ids=RATE_IDS)
def test_tone_and_gap_durations_match_plan_to_one_sample(all_keys, rate):
    r, x, plan = all_keys[rate]
    fs = r.sample_rate
    got = segments(x, fs)
    want = expected_segments(r, plan)
    assert len(got) == len(want) == 16
    for (gs, ge), (ws, we) in zip(got, want, strict=True):
        assert abs(gs * fs - ws) < 1.0 and abs(ge * fs - we) < 1.0
    for i in range(16):
        tone = got[i][1] - got[i][0]
        assert abs(tone - 0.100) * fs < 1.0
        if i:
            gap = got[i][0] - got[i - 1][1]
            assert abs(gap - 0.100) * fs < 1.0


@pytest.mark.parametrize(
    "rate", [8000, (125_000_000, 8192), 48000], ids=["8000", "15258.789", "48000"]
)
def test_pauses_are_exact(rate):
    plan = compile_plan("1WWW,59#")
    r, x = render(rate, plan)
    fs = r.sample_rate
    got = segments(x, fs)
    assert len(got) == 4
    assert abs((got[1][0] - got[0][1]) - 3.5) * fs < 1.0
    assert abs((got[2][0] - got[1][1]) - 0.1) * fs < 1.0
    plan = compile_plan("1Ww2Ww1Ww#")
    r, x = render(rate, plan)
    got = segments(x, fs)
    assert len(got) == 4
    for i in (1, 2, 3):
        assert abs((got[i][0] - got[i - 1][1]) - 1.5) * fs < 1.0


@pytest.mark.parametrize("tone_ms, gap_ms", [(100, 100), (40, 40)])
@pytest.mark.parametrize(
    "rate", [8000, (125_000_000, 8192), 48000], ids=["8000", "15258.789", "48000"]
)
def test_multimon_decodes_all_16_keys(rate, tone_ms, gap_ms):
    plan = compile_plan(KEYS, tone_ms=tone_ms, gap_ms=gap_ms)
    r, x = render(rate, plan)
    assert decode_multimon(x, r.sample_rate) == KEYS


def test_multimon_decodes_signed_16_bit_i2s_output():
    plan = compile_plan("0123456789*#ABCD", "gws", tone_ms=40, gap_ms=40)
    r, x = render(44100, plan, bits=16, signed=True)
    assert r.mid == 0
    assert decode_multimon(x, 44100) == "0123456789*#ABCD"


@pytest.mark.parametrize("twist", [0.0, 4.0])
def test_twist_measured_on_audio(twist):
    r, x = render(16000, [("5", 100)], twist_db=twist)
    fs = r.sample_rate
    ((a, b),) = expected_segments(r, [("5", 100)])
    fl, al, fh, ah, _ = fit_tones(steady(x, a, b, fs), fs)
    assert abs(20 * np.log10(ah / al) - twist) < 0.1


def test_edges_have_no_clicks():
    """Sample-to-sample steps during the ramps never exceed those inside the steady tone,
    and the signal leaves and returns to idle without a jump."""
    for rate in (8000, 48000):
        plan = [(None, 40), ("D", 100), (None, 40)]
        r, x = render(rate, plan)
        ((a, b),) = expected_segments(r, plan)
        h = r.lead_in
        d = np.abs(np.diff(x))
        steady_max = d[a + h : b - h].max()
        assert d[a - h - 1 : a + h].max() <= steady_max
        assert d[b - h - 1 : b + h + 1].max() <= steady_max
        assert x[a - h] == 0 and x[b + h] == 0


def test_wrong_sample_clock_is_caught_by_the_frequency_check():
    """The 0.05 % check can fail: audio rendered at 16 kHz, analysed as if the clock ran 0.1 % fast."""
    plan = [("1", 100)]
    r, x = render(16000, plan)
    ((a, b),) = expected_segments(r, plan)
    fl, _, fh, _, _ = fit_tones(steady(x, a, b, 16000), 16000 * 1.001)
    assert abs(fl / 697 - 1) > 0.0005 and abs(fh / 1209 - 1) > 0.0005


def test_unwanted_check_can_fail_at_low_resolution():
    """At 8 bits the quantisation noise is measurably higher than at 12 bits."""
    plan = [("1", 100)]
    u = {}
    for bits in (8, 12):
        r, x = render(8000, plan, bits=bits)
        ((a, b),) = expected_segments(r, plan)
        u[bits] = unwanted_db(steady(x, a, b, 8000), 8000)
    assert u[8] > u[12] + 10


def test_sine_table_built_from_a_quarter_is_the_direct_formula():
    # the renderer computes a quarter of its table and mirrors it (a quarter of the sin() calls
    # at boot); on this float64 host that is the direct formula, entry for entry
    import math

    t = Renderer(8000)._sin
    n = len(t)
    assert n == 4096
    want = [16384 + int(round(16384 * math.sin(2.0 * math.pi / n * i))) for i in range(n)]
    assert list(t) == want
