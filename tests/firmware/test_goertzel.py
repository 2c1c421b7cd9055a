"""The generic Goertzel bank (firmware/tonebridge_fw/goertzel.py); runs under CPython and under
real MicroPython (the WebAssembly port), where the same inputs must give the same integers."""

from array import array
from math import pi, sin

from fwtest import raises
from tonebridge_fw import goertzel
from tonebridge_fw.goertzel import Bank

DTMF = (697, 770, 852, 941, 1209, 1336, 1477, 1633)


def tones(n, parts, rate=8000, mid=2048, noise=0):
    """n unsigned 12-bit codes: mid + sum of amplitude * sin(2 pi f t) for (f, amplitude) in
    parts, plus a deterministic +-noise (a linear congruential sequence)."""
    buf = array("H", [0] * n)
    seed = 12345
    for i in range(n):
        v = mid
        for f, a in parts:
            v += a * sin(2 * pi * f * i / rate)
        if noise:
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            v += (seed >> 16) % (2 * noise + 1) - noise
        v = int(v + 0.5) if v >= 0 else int(v - 0.5)
        buf[i] = 0 if v < 0 else (4095 if v > 4095 else v)
    return buf


def run(bank, buf, chunks=(1000000,)):
    """Feed buf in pieces of the given sizes (cycled); the (power list, total) of every block."""
    out = []
    i = 0
    k = 0
    while i < len(buf):
        n = chunks[k % len(chunks)]
        k += 1
        if n > len(buf) - i:
            n = len(buf) - i
        while n:
            used = bank.feed(buf, i, n)
            assert 0 < used <= n
            i += used
            n -= used
            if bank.ready:
                out.append((list(bank.power), bank.total))
    return out


def test_constructor_checks_its_arguments():
    raises(ValueError, Bank, (), 100, 8000)
    raises(ValueError, Bank, (697,), 4, 8000)
    raises(ValueError, Bank, (4000,), 100, 8000)
    raises(ValueError, Bank, (0,), 100, 8000)
    raises(ValueError, Bank, (697,), 100, 8000, bits=20)


def test_coefficients_and_the_input_shift():
    b = Bank(DTMF, 160, 8000)
    assert list(b.coef) == [3497, 3370, 3213, 3027, 2384, 2041, 1636, 1164]
    # worst case (A + 1) n / sin(w) below 2**18: 4096 >> 3 = 512, (513) 160 / 0.52 < 2**18
    assert b.shift == 3
    assert Bank(DTMF, 80, 8000).shift == 2
    assert Bank((350, 440), 400, 8000).shift == 5  # low frequencies, long blocks: more shift
    for n in (8, 160, 205, 400, 1024, 4096):
        for fs in ((350,), DTMF, (3900,), (20,)):
            if n == 4096 and fs == (20,):
                raises(ValueError, Bank, fs, n, 8000)  # no shift keeps that bounded
                continue
            bk = Bank(fs, n, 8000)
            amax = (1 << 12) >> bk.shift
            for f in fs:
                s = sin(2 * pi * f / 8000)
                assert (amax + 1) * n / s < goertzel.STATE_MAX, (n, fs)


def test_an_on_bin_tone_fills_its_bin():
    # 1000 Hz is on bin 20 of a 160-sample block at 8 kHz
    b = Bank((697, 1000, 1633), 160, 8000)
    res = run(b, tones(480, ((1000, 600),)))
    assert len(res) == 3
    for power, total in res:
        assert abs(power[1] - total) < total // 100
        assert power[0] < total // 20 and power[2] < total // 100
    assert abs(b.amplitude(1) - 600) < 6


def test_a_dtmf_pair_is_found_in_its_bins():
    b = Bank(DTMF, 160, 8000)
    res = run(b, tones(640, ((852, 500), (1477, 630))))
    for power, total in res:
        order = sorted(range(8), key=lambda k: -power[k])
        assert sorted(order[:2]) == [2, 6]
        # the two tones hold nearly all the energy
        assert power[2] + power[6] > total * 8 // 10
    assert 440 < b.amplitude(2) < 520 and 560 < b.amplitude(6) < 650


def test_chunking_does_not_change_a_result():
    buf = tones(1000, ((770, 700), (1209, 700)), noise=40)
    whole = run(Bank(DTMF, 205, 8000), buf)
    for chunks in ((1,), (7, 13, 64, 3), (205,), (204, 1, 500)):
        assert run(Bank(DTMF, 205, 8000), buf, chunks) == whole, chunks
    assert len(whole) == 4  # 1000 // 205 blocks; the rest waits for more samples


def test_feed_stops_at_the_block_end():
    b = Bank(DTMF, 100, 8000)
    buf = tones(300, ((941, 300),))
    assert b.feed(buf, 0, 60) == 60 and not b.ready
    assert b.feed(buf, 60, 240) == 40 and b.ready and b.blocks == 1
    assert b.feed(buf, 100, 0) == 0 and not b.ready
    assert b.feed(buf, 100, 200) == 100 and b.ready and b.blocks == 2


def test_dc_offset_is_tracked_and_not_counted():
    b = Bank(DTMF, 160, 8000)
    res = run(b, tones(1600, ((941, 400),), mid=2048 + 300))
    # the bias follows the block means (a tone that is not a whole number of cycles per
    # block leaves a few counts of its own in each mean)
    assert 2338 <= b.mid <= 2358, b.mid
    power, total = res[-1]
    assert abs(power[3] - total) < total // 50
    # and with tracking off, the offset stays energy
    b = Bank(DTMF, 160, 8000)
    b.track_dc = False
    power, total = run(b, tones(1600, ((941, 400),), mid=2048 + 300))[-1]
    assert total > 2 * power[3]


def test_reset_forgets_a_partial_block():
    buf = tones(400, ((697, 500),))
    b = Bank(DTMF, 160, 8000)
    b.feed(tones(100, ((1633, 900),)), 0, 100)
    b.reset()
    first = run(b, buf)
    assert first == run(Bank(DTMF, 160, 8000), buf)


def test_exact_integers():
    # the same integers on every interpreter (CPython, MicroPython's portable loop, the viper
    # kernel): these values pin them
    b = Bank(DTMF, 205, 8000)
    res = run(b, tones(410, ((697, 510), (1336, 640)), noise=25), (33, 100))
    assert res[0] == (
        [10889929, 37269, 14146, 17761, 88180, 16965872, 115506, 22856],
        27718050,
    ), res[0]
    assert res[1][0][0] == 10012669 and res[1][0][5] == 16484212, res[1]


def test_feed_allocates_nothing():
    try:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    except (ImportError, AttributeError):
        return  # CPython: the MicroPython run of this test is the proof
    b = Bank(DTMF + (350, 440, 480, 620), 205, 8000)
    buf = tones(1000, ((697, 2000), (1633, 2000)))
    mv = memoryview(buf)
    blocks = 0
    lock()
    try:
        i = 0
        while i < 1000:
            used = b.feed(mv, i, 1000 - i if i else 77)
            i += used
            if b.ready:
                blocks += 1
    finally:
        unlock()
    assert blocks == 4


def test_probe_measures_another_frequency_over_the_same_block():
    side = (662, 732)  # 697 Hz -5 % / +5 %
    b = Bank(DTMF, 160, 8000, probes=side)
    c = [b.coefficient(f) for f in side]
    buf = tones(160, ((697 * 1.03, 600),))  # 3 % high: nearer the +5 % probe than 697
    assert run(b, buf) and b.ready
    lo, hi = b.probe(c[0]), b.probe(c[1])
    assert hi > b.power[0] > lo
    # probing a bin's own frequency gives that bin's power
    assert b.probe(b.coef[0]) == b.power[0]
    raises(ValueError, b.coefficient, 4000)
