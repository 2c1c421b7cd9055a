"""The analysis toolkit measured against synthetic numpy signals with known answers."""

import numpy as np
import pytest
from tonebridge import analysis
from tonebridge.analysis import (
    MultimonError,
    decode_multimon,
    fit_tones,
    read_wav,
    segments,
    steady_slices,
    unwanted_db,
    write_wav,
)

KEYS = "123A456B789C*0#D"
ROW = (697, 770, 852, 941)
COL = (1209, 1336, 1477, 1633)


def key_freqs(key):
    i = KEYS.index(key)
    return ROW[i // 4], COL[i % 4]


def synth(rate, steps, ramp_s=0.002, amp=0.3, twist_db=2.0, freqs=None, phase=(0.3, 1.1)):
    """numpy reference: steps [(key|None, seconds)], raised-cosine edges centred on boundaries,
    preceded by ramp/2 of lead-in. Returns (signal, list of expected (start, end) in seconds)."""
    half = ramp_s / 2
    total = sum(d for _, d in steps) + ramp_s
    n = int(round(total * rate))
    t = np.arange(n) / rate
    x = np.zeros(n)
    expect = []
    tcur = half
    g = 10 ** (twist_db / 20)
    for key, d in steps:
        if key is not None:
            a, b = tcur, tcur + d
            u = np.minimum((t - (a - half)) / ramp_s, ((b + half) - t) / ramp_s)
            env = 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0, 1))
            fl, fh = freqs if freqs else key_freqs(key)
            x += (
                env
                * amp
                * (
                    np.cos(2 * np.pi * fl * t + phase[0])
                    + g * np.cos(2 * np.pi * fh * t + phase[1])
                )
            )
            expect.append((a, b))
        tcur += d
    return x, expect


RATES = [8000, 125e6 / 8192, 16000, 22050, 44100, 48000]


@pytest.mark.parametrize("rate", RATES)
def test_fit_tones_exact_on_clean_tone(rate):
    n = int(0.04 * rate)
    t = np.arange(n) / rate
    x = 0.25 * np.cos(2 * np.pi * 852.0 * t + 2.0) + 0.31 * np.sin(2 * np.pi * 1477.0 * t)
    fl, al, fh, ah, res = fit_tones(x, rate)
    assert abs(fl / 852 - 1) < 1e-6 and abs(fh / 1477 - 1) < 1e-6
    assert abs(al - 0.25) < 1e-6 and abs(ah - 0.31) < 1e-6
    assert res < 1e-9


def test_fit_tones_with_quantisation_and_noise_well_under_0_01_percent():
    rate = 16000
    rng = np.random.default_rng(1)
    n = int(0.04 * rate)
    t = np.arange(n) / rate
    x = 0.3 * np.cos(2 * np.pi * 941 * t + 0.4) + 0.38 * np.cos(2 * np.pi * 1633 * t + 2.5)
    x = np.round(x * 2048) / 2048 + rng.normal(0, 1e-3, n)  # 12-bit + noise (~ -50 dB)
    fl, al, fh, ah, res = fit_tones(x, rate)
    assert abs(fl / 941 - 1) < 2e-5  # 0.002 %
    assert abs(fh / 1633 - 1) < 2e-5


def test_detuned_tone_is_measured_as_detuned():
    rate = 8000
    n = int(0.05 * rate)
    t = np.arange(n) / rate
    # an MT8880-style pair: 699.13 Hz and 1645.01 Hz instead of 697 / 1633
    x = np.cos(2 * np.pi * 699.13 * t) + 1.2 * np.cos(2 * np.pi * 1645.01 * t + 1)
    fl, _, fh, _, _ = fit_tones(x, rate)
    assert abs(fl - 699.13) < 0.01 and abs(fh - 1645.01) < 0.01
    assert abs(fl / 697 - 1) > 0.003  # i.e. a 0.05 % tolerance check would fail it
    # a 1 Hz error on 770 Hz (0.13 %) is resolved too
    x = np.cos(2 * np.pi * 771.0 * t) + np.cos(2 * np.pi * 1336 * t)
    fl, _, fh, _, _ = fit_tones(x, rate)
    assert abs(fl - 771.0) < 1e-3 and abs(fh - 1336) < 1e-3


def test_unwanted_db_clean_pair_is_low_and_square_wave_is_high():
    rate = 48000
    n = int(0.08 * rate)
    t = np.arange(n) / rate
    clean = np.round(
        (0.4 * np.cos(2 * np.pi * 697 * t) + 0.5 * np.cos(2 * np.pi * 1209 * t)) * 2047
    )
    assert unwanted_db(clean, rate) < -60  # 12-bit quantisation only
    square = np.sign(np.sin(2 * np.pi * 697 * t)) + np.sign(np.sin(2 * np.pi * 1209 * t + 0.5))
    u = unwanted_db(square, rate)
    assert u > -15  # 3rd harmonic of 697 Hz (2091 Hz) is only ~9.5 dB down
    assert unwanted_db(square, rate, band=(3400, None)) > -20


def test_unwanted_db_sees_a_single_spur():
    rate = 22050
    n = int(0.06 * rate)
    t = np.arange(n) / rate
    x = (
        np.cos(2 * np.pi * 770 * t)
        + np.cos(2 * np.pi * 1477 * t)
        + 0.01 * np.cos(2 * np.pi * 2500 * t)
    )
    u = unwanted_db(x, rate)
    assert -41 < u < -39  # 0.01 amplitude vs 1.0: -40 dB
    assert unwanted_db(x, rate, band=(3400, None)) < -100


@pytest.mark.parametrize("rate", RATES)
def test_segments_find_raised_cosine_edges_to_a_fraction_of_a_sample(rate):
    steps = [
        ("1", 0.1),
        (None, 0.1),
        ("5", 0.04),
        (None, 0.04),
        ("#", 0.1),
        (None, 0.5),
        ("D", 0.06),
    ]
    x, expect = synth(rate, steps)
    x = np.round(x * 2047) / 2047  # 12-bit
    got = segments(x, rate)
    assert len(got) == len(expect)
    for (gs, ge), (es, ee) in zip(got, expect, strict=True):
        assert abs(gs - es) * rate < 0.5, (gs * rate, es * rate)
        assert abs(ge - ee) * rate < 0.5, (ge * rate, ee * rate)


def test_segments_constant_delay_cancels_in_durations():
    """A causal low-pass (an analog-chain stand-in) delays both edges alike."""
    from scipy import signal

    rate = 48000
    x, expect = synth(rate, [(None, 0.05), ("9", 0.1), (None, 0.1), ("0", 0.1), (None, 0.05)])
    b, a = signal.butter(2, 3400, fs=rate)
    y = signal.lfilter(b, a, x) + 1.65  # plus a DC bias
    got = segments(y, rate)
    assert len(got) == 2
    for (gs, ge), (es, ee) in zip(got, expect, strict=True):
        assert abs((ge - gs) - (ee - es)) * rate < 1.0
    assert abs((got[1][0] - got[0][1]) - 0.1) * rate < 1.0


def test_segments_negative_cases():
    rate = 8000
    assert segments(np.zeros(8000), rate) == []
    assert segments(np.full(100, 3.0), rate) == []
    # a 5 ms blip is below min_ms and is not a tone
    x, _ = synth(rate, [(None, 0.1), ("1", 0.005), (None, 0.1)], ramp_s=0.001)
    assert segments(x, rate) == []
    # a longer tone (60 ms) measures 60 ms, not 100
    x, _ = synth(rate, [(None, 0.1), ("1", 0.06), (None, 0.1)])
    ((s, e),) = segments(x, rate)
    assert abs((e - s) - 0.06) * rate < 0.5


def test_segments_without_refinement_is_coarse_but_close():
    rate = 16000
    x, expect = synth(rate, [("4", 0.1), (None, 0.1), ("B", 0.1)])
    got = segments(x, rate, refine=False)
    for (gs, ge), (es, ee) in zip(got, expect, strict=True):
        assert abs(gs - es) < 1.5e-3 and abs(ge - ee) < 1.5e-3


def test_steady_slices_are_clean_tone_pairs():
    rate = 16000
    x, _ = synth(rate, [("7", 0.08), (None, 0.08), ("C", 0.08)])
    parts = steady_slices(x, rate)
    assert len(parts) == 2
    fl, _, fh, _, _ = fit_tones(parts[1], rate)
    assert abs(fl - 852) < 1e-3 and abs(fh - 1633) < 1e-3


def test_decode_multimon_all_16_keys_default_and_fast_timing():
    rate = 22050
    for tone, gap in ((0.1, 0.1), (0.05, 0.05)):
        steps = []
        for k in KEYS:
            steps += [(k, tone), (None, gap)]
        x, _ = synth(rate, steps)
        assert decode_multimon(x, rate) == KEYS


def test_decode_multimon_resamples_odd_rates_and_reads_wav(tmp_path):
    steps = [("9", 0.1), (None, 0.1), ("1", 0.1), (None, 0.1), ("1", 0.1)]
    for rate in (8000, 125e6 / 8192, 48000):
        x, _ = synth(rate, steps)
        assert decode_multimon(x * 1000 + 2048, rate) == "911"  # units and DC don't matter
    x, _ = synth(16000, steps)
    path = tmp_path / "t.wav"
    write_wav(path, x, 16000)
    assert decode_multimon(path) == "911"
    assert decode_multimon(str(path)) == "911"


def test_decode_multimon_hears_nothing_in_silence_and_a_square_wave_garbles():
    rate = 22050
    assert decode_multimon(np.zeros(rate), rate) == ""
    t = np.arange(rate // 5) / rate
    # wrong frequencies (5 % off) are not DTMF
    x = np.cos(2 * np.pi * 697 * 1.05 * t) + np.cos(2 * np.pi * 1209 * 1.05 * t)
    assert decode_multimon(x, rate) == ""


def test_decode_multimon_missing_tool_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(analysis.multimon.shutil, "which", lambda name: None)
    with pytest.raises(MultimonError, match="apt-get install multimon-ng"):
        decode_multimon(np.zeros(100), 8000)


def test_decode_multimon_needs_rate_for_arrays():
    with pytest.raises(ValueError, match="rate"):
        decode_multimon(np.zeros(100))


def test_wav_roundtrip(tmp_path):
    rate = 8000
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(800) / rate)
    p = tmp_path / "a.wav"
    write_wav(p, x, rate)
    y, r = read_wav(p)
    assert r == 8000 and y.dtype == np.float64
    assert np.max(np.abs(y - x)) <= 1 / 32768 + 1e-12
    # clipping, int16 input, float rate rounded in the header
    write_wav(p, np.array([2.0, -2.0, 0.0]), 125e6 / 8192)
    y, r = read_wav(p)
    assert r == 15259
    assert y[0] == 32767 / 32768 and y[1] == -1.0 and y[2] == 0.0
    write_wav(p, np.array([1, -2, 3], dtype=np.int16), 8000)
    y, _ = read_wav(p)
    assert list(np.round(y * 32768)) == [1, -2, 3]


@pytest.mark.parametrize("snr_db", [40, 25])
def test_segments_with_noise(snr_db):
    rate = 16000
    rng = np.random.default_rng(7)
    x, expect = synth(rate, [(None, 0.05), ("2", 0.1), (None, 0.1), ("*", 0.04), (None, 0.05)])
    noise_rms = 0.3 * 10 ** (-snr_db / 20)
    y = x + rng.normal(0, noise_rms, len(x))
    got = segments(y, rate)
    assert len(got) == 2
    tol = 1.0 if snr_db >= 40 else 3.0  # samples
    for (gs, ge), (es, ee) in zip(got, expect, strict=True):
        assert abs(gs - es) * rate < tol and abs(ge - ee) * rate < tol
