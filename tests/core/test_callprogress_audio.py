"""Call progress on recorded-style line signals: every signal of every country in
firmware/tonebridge_fw/cptones.py, synthesised as a line delivers it (random phase, a frequency
error of +-1.5 %, cadence jitter of +-3 %, two levels, white noise, ADC quantisation and an ADC
offset), through the firmware's own Detector (goertzel.Bank + callprogress.Classifier) as 12-bit
ADC codes in DMA-sized pieces. Each must read as its state from its first decision to the end
and never as anything else; a line that never gives dial tone never reads as dial tone; a
ringback never reads as an answer, and a voice after it does, within a second."""

import zlib
from array import array

import numpy as np
import pytest
from tonebridge_fw import callprogress as cp
from tonebridge_fw import cptones

RATE = 8000


def burst(freqs, ms, amp, err, rng):
    n = int(RATE * ms / 1000)
    t = np.arange(n) / RATE
    x = np.zeros(n)
    for f in freqs:
        x += amp * np.sin(2 * np.pi * f * (1 + err) * t + rng.uniform(0, 2 * np.pi))
    return x


def cadenced(freqs, cadence, total_ms, amp, err, rng, jitter=0.03):
    parts = []
    ms = 0.0
    i = int(rng.integers(0, len(cadence))) if len(cadence) > 1 else 0  # start anywhere
    first = True
    while ms < total_ms:
        d = cadence[i % len(cadence)] * (1 + rng.uniform(-jitter, jitter))
        if first and len(cadence) > 1:
            d *= rng.uniform(0.1, 1.0)  # listening starts part-way through an element
            first = False
        if i % 2 == 0:
            parts.append(burst(freqs, d, amp, err, rng))
        else:
            parts.append(np.zeros(int(RATE * d / 1000)))
        ms += d
        i += 1
    return np.concatenate(parts)


def voice(ms, amp, rng):
    """Speech-like: syllables of 120-350 ms (a glottal pulse train at 90-230 Hz, gliding,
    through two random formant weightings), gaps of 40-250 ms."""
    parts = []
    total = 0
    while total < ms:
        d = rng.uniform(120, 350)
        n = int(RATE * d / 1000)
        f0 = rng.uniform(90, 230) * np.linspace(1, rng.uniform(0.8, 1.2), n)
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        x = np.zeros(n)
        f1, f2 = rng.uniform(300, 900), rng.uniform(900, 2500)
        for h in range(1, 30):
            fh = h * f0.mean()
            if fh > 3400:
                break
            w = np.exp(-(((fh - f1) / 200) ** 2)) + 0.6 * np.exp(-(((fh - f2) / 300) ** 2)) + 0.05
            x += w * np.sin(h * phase)
        x *= np.hanning(n) * amp / max(1e-9, np.abs(x).max())
        parts.append(x)
        g = rng.uniform(40, 250)
        parts.append(np.zeros(int(RATE * g / 1000)))
        total += d + g
    return np.concatenate(parts)


def adc(x, noise, rng, offset=0):
    x = x + rng.normal(0, noise, len(x)) + 2048 + offset
    return array("H", np.clip(np.round(x), 0, 4095).astype(np.uint16).tobytes())


def run(country, codes, piece=160):
    """[(t_s, state name)] at each change, feeding the codes in DMA-sized pieces."""
    det = cp.Detector(country, RATE)
    out = []
    for i in range(0, len(codes), piece):
        k = min(piece, len(codes) - i)
        if det.feed(codes, i, k):
            out.append((round((i + k) / RATE, 3), cp.NAMES[det.state]))
    return out


SIGNALS = [
    (c, s[0], s[1], s[2], s[3]) for c in sorted(cptones.COUNTRIES) for s in cptones.COUNTRIES[c][2]
]


def _id(p):
    return f"{p[0]}-{p[1]}-{'+'.join(map(str, p[2]))}-{'/'.join(map(str, p[3]))}"


@pytest.mark.parametrize("sig", SIGNALS, ids=[_id(p) for p in SIGNALS])
@pytest.mark.parametrize("err", [-0.015, 0.0, 0.015])
@pytest.mark.parametrize("level", ["strong", "weak"])
def test_each_signal_of_each_country(sig, err, level):
    country, state, freqs, cadence, need = sig
    rng = np.random.default_rng(zlib.crc32(f"{_id(sig)} {err} {level}".encode()))
    # strong: about -14 dBFS per tone, 40 dB above the noise; weak: 20 dB lower, 26 dB SNR
    amp, noise = (400, 2.0) if level == "strong" else (40, 1.0)
    total_ms = 12000 if need else cadence[0] + 6000
    if need:
        x = cadenced(freqs, cadence, total_ms, amp, err, rng)
    else:
        x = burst(freqs, total_ms, amp, err, rng)
    got = run(country, adc(x, noise, rng, offset=int(rng.integers(-60, 60))))
    names = [s for _, s in got]
    assert names and names[0] == state and set(names) == {state}, got
    t_first = got[0][0]
    budget = (cadence[0] + 400) / 1000 if not need else (sum(cadence) * 2 + 800) / 1000
    assert t_first <= budget, got


def test_no_dial_tone_line_is_silence_or_noise_never_dial():
    rng = np.random.default_rng(7)
    for country in cptones.COUNTRIES:
        got = run(country, adc(np.zeros(RATE * 8), 2.0, rng))
        assert [s for _, s in got] == ["silence"], (country, got)
        assert 5.0 <= got[0][0] <= 5.2
        # hum and a click now and then: still no dial tone
        t = np.arange(RATE * 8) / RATE
        x = 30 * np.sin(2 * np.pi * 50 * t) + 10 * np.sin(2 * np.pi * 150 * t)
        x[::4000] += 800
        got = run(country, adc(x, 2.0, rng))
        assert "dial" not in [s for _, s in got], (country, got)


@pytest.mark.parametrize("country", sorted(cptones.COUNTRIES))
def test_a_long_ringback_is_never_an_answer(country):
    """Two minutes of ringback with noise, jitter and frequency error: ringing throughout."""
    rng = np.random.default_rng(11)
    ring = [s for s in cptones.COUNTRIES[country][2] if s[0] == "ringing"][0]
    x = cadenced(ring[1], ring[2], 120_000, 150, 0.012, rng)
    got = run(country, adc(x, 3.0, rng))
    assert [s for _, s in got] == ["ringing"], got


@pytest.mark.parametrize("country", sorted(cptones.COUNTRIES))
def test_ringback_then_answer(country):
    rng = np.random.default_rng(13)
    ring = [s for s in cptones.COUNTRIES[country][2] if s[0] == "ringing"][0]
    x = cadenced(ring[1], ring[2], 2 * sum(ring[2]) + 300, 200, -0.01, rng)
    t_answer = len(x) / RATE
    codes = adc(np.concatenate([x, voice(4000, 250, rng)]), 2.0, rng)
    got = run(country, codes)
    names = [s for _, s in got]
    assert names[0] == "ringing" and "voice" in names, got
    t_voice = [t for t, s in got if s == "voice"][0]
    assert t_answer < t_voice <= t_answer + 1.0, (t_answer, got)
    assert "ringing" not in names[names.index("voice") :], got


def test_busy_line_after_dialling():
    """Dial tone, then (our digits elsewhere) busy: the classifier reset after dialling reads
    busy, on each country's busy tone."""
    rng = np.random.default_rng(17)
    for country in cptones.COUNTRIES:
        sigs = cptones.COUNTRIES[country][2]
        dial = [s for s in sigs if s[0] == "dial"][0]
        busy = [s for s in sigs if s[0] == "busy"][0]
        det = cp.Detector(country, RATE)
        codes = adc(burst(dial[1], dial[2][0] + 500, 300, 0.01, rng), 2.0, rng)
        det.feed(codes, 0, len(codes))
        assert det.state == cp.DIAL, country
        det.reset()
        codes = adc(cadenced(busy[1], busy[2], 6000, 300, -0.01, rng), 2.0, rng)
        det.feed(codes, 0, len(codes))
        assert det.state == cp.BUSY, country
