"""The DTMF receiver (firmware/tonebridge_fw/dtmf_rx.py) on synthetic line samples; runs under
CPython and under real MicroPython (the WebAssembly port): the same decisions on both."""

from array import array
from math import pi, sin

from tonebridge_fw import keypad
from tonebridge_fw.dtmf_rx import Receiver, isqrt

RATE = 8000


class Line:
    """Unsigned 12-bit ADC codes of a DTMF sequence: steps (key or None, ms), tone amplitude
    `amp` counts per tone (high group `twist_db` louder), frequencies scaled by (1 + offset),
    deterministic noise of +-`noise` counts."""

    def __init__(self, steps, amp=400, twist_db=2.0, offset=0.0, noise=8, lo_off=None):
        n = 0
        for _, ms in steps:
            n += ms * RATE // 1000
        self.buf = array("H", [0] * n)
        hi_amp = amp * 10 ** (twist_db / 20)
        i = 0
        seed = 99
        for key, ms in steps:
            m = ms * RATE // 1000
            if key is not None:
                lo, hi = keypad.freqs(key)
                lo *= 1 + (offset if lo_off is None else lo_off)
                hi *= 1 + offset
            for j in range(m):
                v = 2048.0
                if key is not None:
                    t = j / RATE
                    v += amp * sin(2 * pi * lo * t) + hi_amp * sin(2 * pi * hi * t + 1.0)
                seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
                v += ((seed >> 16) % (2 * noise + 1)) - noise
                self.buf[i] = int(v + 0.5)
                i += 1


def hear(steps, chunk=37, rx=None, **kw):
    rx = rx or Receiver(RATE, measure_hz=True)
    buf = Line(steps, **kw).buf
    i = 0
    out = []
    while i < len(buf):
        n = min(chunk, len(buf) - i)
        rx.feed(buf, i, n)
        i += n
        out.extend(rx.take())
    rx.feed(array("H", [2048] * 400), 0, 400)  # enough silence to end the last digit
    out.extend(rx.take())
    return out


def keys_40_40(keys):
    steps = [(None, 60)]
    for k in keys:
        steps.append((k, 40))
        steps.append((None, 40))
    steps.append((None, 40))
    return steps


def test_every_key_at_40_on_40_off():
    got = hear(keys_40_40(keypad.KEYS))
    assert "".join(d.key for d in got) == keypad.KEYS
    for d in got:
        assert 30 <= d.ms <= 50, d


def test_digits_at_100_ms_have_their_duration_levels_and_frequencies():
    got = hear([(None, 50), ("5", 100), (None, 100), ("D", 100), (None, 50)], amp=500)
    assert [d.key for d in got] == ["5", "D"]
    for d in got:
        assert 95 <= d.ms <= 105, d
        # levels within 0.6 dB (the other tone's leakage through the block's sidelobes)
        assert 470 <= d.lo_amp <= 535, d.lo_amp
        assert 1.4 <= d.twist_db <= 2.6, d.twist_db
        lo, hi = keypad.freqs(d.key)
        assert abs(d.lo_hz - lo) < 0.008 * lo and abs(d.hi_hz - hi) < 0.003 * hi, d
    # the tone's first and last sample, within 3 ms
    assert abs(got[0].on - 400) < 25 and abs(got[1].on - 2000) < 25
    assert abs(got[0].off - 1200) < 25 and abs(got[1].off - 2800) < 25


def test_frequency_offsets_within_1_5_percent_are_heard():
    for off in (-0.015, 0.015):
        got = hear(keys_40_40(keypad.KEYS), offset=off)
        assert "".join(d.key for d in got) == keypad.KEYS, off
        for d in got:
            lo, hi = keypad.freqs(d.key)
            # measured within 0.3 % (high group) and 0.8 % (low group)
            assert abs(d.hi_hz / hi - 1 - off) < 0.003, (off, d)
            assert abs(d.lo_hz / lo - 1 - off) < 0.008, (off, d)


def test_frequency_offsets_of_3_5_percent_are_not():
    for off in (-0.035, 0.035):
        assert hear(keys_40_40(keypad.KEYS), offset=off) == [], off
        # one group off is enough
        assert hear(keys_40_40(keypad.KEYS), offset=0.0, lo_off=off) == [], off


def test_short_tones_are_not_digits():
    # blocks a tone covers less than ~70 % of do not count, and a digit needs two: a 15 ms
    # tone is never heard whatever its alignment with the blocks
    steps = []
    for lead in range(40, 53):
        steps += [(None, lead), ("1", 15), (None, 60), ("9", 15), (None, 60)]
    assert hear(steps) == []


def test_weak_tones_and_excess_twist_are_not_digits():
    assert hear(keys_40_40("123"), amp=8) == []  # below min_amp (12 counts)
    assert [d.key for d in hear(keys_40_40("123"), amp=20)] == ["1", "2", "3"]
    assert hear(keys_40_40("123"), twist_db=10) == []
    assert hear(keys_40_40("123"), twist_db=-10) == []
    assert len(hear(keys_40_40("123"), twist_db=-6)) == 3


def test_noise_alone_is_not_a_digit():
    assert hear([(None, 500)], noise=300) == []


def test_a_held_key_is_one_digit_and_key_says_what_is_heard():
    rx = Receiver(RATE)
    buf = Line([(None, 30), ("#", 400)]).buf
    rx.feed(buf, 0, 30 * 8 + 15 * 8)  # 15 ms of tone: within the guard time
    assert rx.key is None
    rx.feed(buf, 360, 320)
    assert rx.key == "#"
    rx.feed(buf, 680, len(buf) - 680)
    assert rx.key == "#" and rx.take() == ()
    rx.feed(array("H", [2048] * 300), 0, 300)
    assert rx.key is None
    got = rx.take()
    assert [d.key for d in got] == ["#"] and 390 <= got[0].ms <= 410


def test_piece_sizes_do_not_change_the_decisions():
    steps = keys_40_40("1A*D")
    a = [(d.key, d.on, d.off) for d in hear(steps, chunk=1000)]
    b = [(d.key, d.on, d.off) for d in hear(steps, chunk=7)]
    assert a == b and len(a) == 4


def test_isqrt():
    for v in (0, 1, 2, 3, 4, 99, 100, 10**6, (1 << 30) - 1):
        r = isqrt(v)
        assert r * r <= v < (r + 1) * (r + 1), v


def test_feed_allocates_nothing_between_digits():
    try:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    except (ImportError, AttributeError):
        return  # CPython: the MicroPython run of this test is the proof
    rx = Receiver(RATE)
    buf = Line([(None, 30), ("8", 300)]).buf
    rx.feed(buf, 0, 600)  # the digit has started (its record is made at its end)
    assert rx.key == "8"
    lock()
    try:
        i = 600
        while i < len(buf):
            n = len(buf) - i if len(buf) - i < 50 else 50
            rx.feed(buf, i, n)
            i += n
    finally:
        unlock()
    assert rx.key == "8"
