"""Call-progress classifier (firmware/tonebridge_fw/callprogress.py, cptones.py) under CPython and
MicroPython: per-block powers built from the country data, the classifier's cadence tracking, no
allocation per block, and a short signal through the Goertzel bank (the Detector). The realistic
recorded-style signals (noise, frequency error, level, jitter, a voice) are in
tests/core/test_callprogress_audio.py."""

from math import pi, sin

from fwtest import raises
from tonebridge_fw import callprogress as cp
from tonebridge_fw import cptones

BLOCK = 32
TOTAL = 1000000


def tone_block(cls, freqs, fraction=1.0):
    """power/total of a block: the tone `freqs` fills `fraction` of it (energy share equal
    across the freqs), plus a little leakage."""
    power = [TOTAL // 500] * len(cls.freqs)
    total = TOTAL
    for f in freqs:
        power[cls.freqs.index(f)] = int(TOTAL * fraction * fraction / len(freqs))
    return power, int(total * fraction) if fraction < 1 else total


def quiet_block(cls):
    return [0] * len(cls.freqs), 10


def voice_block(cls):
    return [TOTAL // 40] * len(cls.freqs), TOTAL


def feed_cadence(cls, freqs, cadence, ms, states=None):
    """Blocks of a cadenced tone (on, off, ...; one element: continuous) for ms; returns the
    list of states, one per block."""
    out = [] if states is None else states
    t = 0
    i = 0
    left = cadence[0]
    while t < ms:
        on = (i % 2 == 0) and freqs
        p, tot = tone_block(cls, freqs) if on else quiet_block(cls)
        out.append(cls.block(p, tot))
        t += BLOCK
        left -= BLOCK
        if left <= 0 and len(cadence) > 1:
            i += 1
            left += cadence[i % len(cadence)]
    return out


def test_every_country_signal_is_recognised_from_block_powers():
    for name in cptones.COUNTRIES:
        for state, freqs, cadence, need in cptones.COUNTRIES[name][2]:
            cls = cp.Classifier(name, BLOCK, floor=100)
            ms = cadence[0] + 500 if not need else 4 * sum(cadence) + 1000
            got = feed_cadence(cls, freqs, cadence if need else (ms,), ms)
            want = cp.NAMES.index(state)
            seen = [s for s in got if s != cp.UNKNOWN]
            assert seen, (name, state, cadence)
            assert seen[0] == want and seen[-1] == want, (name, state, cadence, seen)
            for s in seen:
                assert s == want, (name, state, cadence, [cp.NAMES[x] for x in seen])


def test_dial_tone_needs_its_time_and_cept_bursts_are_not_dial_tone():
    cls = cp.Classifier("cept", BLOCK, floor=100)
    got = feed_cadence(cls, (425,), (1500, 3500), 3 * 5000)
    assert cp.DIAL not in got and got[-1] == cp.RINGING
    cls = cp.Classifier("us", BLOCK, floor=100)
    got = feed_cadence(cls, (350, 440), (2000,), 2000)
    first = got.index(cp.DIAL)
    assert 400 <= first * BLOCK <= 600, first * BLOCK


def test_ringback_then_voice_is_voice_never_before():
    cls = cp.Classifier("us", BLOCK, floor=100)
    got = feed_cadence(cls, (440, 480), (2000, 4000), 12500)
    assert cp.VOICE not in got and got[-1] == cp.RINGING
    n = 0
    while cls.state != cp.VOICE:
        p, t = voice_block(cls)
        cls.block(p, t)
        n += 1
        assert n < 100
    assert 400 <= n * BLOCK <= 500, n * BLOCK


def test_edge_blocks_do_not_make_a_voice():
    """A block a tone only partly fills is neither quiet nor the tone's: one at each edge
    of every burst, for a minute of busy tone, never adds up to a voice."""
    cls = cp.Classifier("cept", BLOCK, floor=100)
    for _ in range(60):
        for _ in range(15):
            cls.block(*tone_block(cls, (425,)))
        cls.block(*tone_block(cls, (425,), 0.2))  # 20 %: below the 1/4 a tone needs
        for _ in range(15):
            cls.block(*quiet_block(cls))
        cls.block(*tone_block(cls, (425,), 0.15))
        assert cls.state == cp.BUSY or cls.blocks < 80, cp.NAMES[cls.state]


def test_silence_after_a_while_and_reset():
    cls = cp.Classifier("uk", BLOCK, floor=100)
    states = [cls.block(*quiet_block(cls)) for _ in range(200)]
    assert states[0] == cp.UNKNOWN and states[-1] == cp.SILENCE
    assert states.index(cp.SILENCE) * BLOCK + BLOCK >= 5000
    cls.reset()
    assert cls.state == cp.UNKNOWN and cls.blocks == 0


def test_unknown_country():
    e = raises(ValueError, cp.Classifier, "atlantis")
    assert str(e) == "unknown country 'atlantis' (known: cept, uk, us)"


def test_country_data_is_consistent():
    for name in cptones.COUNTRIES:
        desc, freqs, signals = cptones.COUNTRIES[name]
        assert desc and len(freqs) <= 8
        for state, fs, cadence, need in signals:
            assert state in ("dial", "ringing", "busy", "reorder")
            for f in fs:
                assert f in freqs
            if need:
                assert len(cadence) % 2 == 0 and need <= len(cadence) + 1
            else:
                assert len(cadence) == 1
    us = cptones.COUNTRIES["us"][2]
    assert ("dial", (350, 440)) in [(s[0], s[1]) for s in us]
    assert ("ringing", (440, 480), (2000, 4000)) in [(s[0], s[1], s[2]) for s in us]
    assert ("busy", (480, 620), (500, 500)) in [(s[0], s[1], s[2]) for s in us]
    assert ("reorder", (480, 620), (250, 250)) in [(s[0], s[1], s[2]) for s in us]


def test_block_allocates_nothing():
    """Under MicroPython the per-block work runs with the heap locked."""
    cls = cp.Classifier("uk", BLOCK, floor=100)
    blocks = [tone_block(cls, (400,)), quiet_block(cls), voice_block(cls)]
    blocks.append(tone_block(cls, (400, 450)))
    try:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    except (ImportError, AttributeError):
        lock = unlock = None
    seq = [0] * 12 + [1] * 12 + [0] * 12 + [1] * 12 + [2] * 20 + [3] * 13 + [1] * 6 + [3] * 13
    if lock:
        lock()
    try:
        for i in seq:
            b = blocks[i]
            cls.block(b[0], b[1])
    finally:
        if unlock:
            unlock()
    assert cls.blocks == len(seq)


def _codes(freqs, ms, amp, rate=8000, silence_after=0):
    from array import array

    n = rate * ms // 1000
    out = array("H", [2048] * n)
    seed = 12345
    for i in range(n - rate * silence_after // 1000):
        v = 0.0
        for f in freqs:
            v += amp * sin(2 * pi * f * i / rate)
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = int(2048 + v + ((seed >> 16) & 7) - 3.5)
    return out


def test_detector_through_the_goertzel_bank():
    det = cp.Detector("us", rate=8000)
    assert det.bank.n == 256 and det.cls.block_ms == 32
    buf = _codes((350, 441), 900, 400)
    changed = False
    start = 0
    while start < len(buf):  # in DMA-sized pieces, not block-aligned
        k = min(100, len(buf) - start)
        changed = det.feed(buf, start, k) or changed
        start += k
    assert changed and det.state == cp.DIAL
    det.reset()
    assert det.state == cp.UNKNOWN
    buf = _codes((425,), 300, 400)
    det2 = cp.Detector("cept", rate=16000)
    assert det2.bank.n == 512 and det2.cls.block_ms == 32


def _in_band_states(country, pattern, ms):
    """A cadence-only Classifier (the MT8880's call-progress mode: mt8880_ear.py) fed 32 ms
    blocks of "tone in band" (power[0] = total = 1) or quiet, pattern: (on, off, ...) ms."""
    cls = cp.Classifier(country, BLOCK, 1, in_band=True)
    pw = [0]
    out = []
    t = 0
    while t < ms:
        u = t % sum(pattern)
        i = 0
        while u >= pattern[i]:
            u -= pattern[i]
            i += 1
        pw[0] = 0 if i & 1 else 1
        out.append(cls.block(pw, pw[0]))
        t += BLOCK
    return out


def test_in_band_every_country_signal_by_cadence_alone():
    for name in ("us", "uk", "cept"):
        for state, freqs, cad, need in cptones.COUNTRIES[name][2]:
            if not need and state != "dial":
                continue  # UK "number unobtainable", steady 400 Hz: in band, it is dial tone
            got = _in_band_states(name, cad if len(cad) > 1 else (60000, 1), 30000)
            want = cp._STATES[state]
            assert want in got, (name, state)
            first = got.index(want)
            assert all(s == want for s in got[first:]), (name, state)
            assert all(s == cp.UNKNOWN for s in got[:first]), (name, state)


def test_in_band_dial_tone_outlasts_every_other_tone_and_an_answer_breaks_ringback():
    us = _in_band_states("us", (60000, 1), 3000)
    assert us.index(cp.DIAL) * BLOCK >= 2250  # longer than a ringback burst (2 s)
    cls = cp.Classifier("us", BLOCK, 1, in_band=True)
    pw = [1]
    seq = [1] * 63 + [0] * 125 + [1] * 63 + [0] * 40 + [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1]
    got = [cls.block(pw, v) for v in seq]
    assert cp.RINGING in got and got[-1] == cp.VOICE
    assert got.index(cp.VOICE) > len(seq) - 14  # only once the far end spoke
