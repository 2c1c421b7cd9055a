"""The frame codec's viper kernels (firmware/tonebridge_fw/frame_viper.py): the CRC-16 and the
body check every frame the board sends or receives goes through. Under tests/core/viper_shim.py
and under MicroPython's unix port (a real native emitter) they must give codec's portable loops'
results, codec must pick them there (and keep its portable loops under CPython, where the host
and the simulator import the same codec), and mpy-cross's armv6m output shows their loops call
nothing. Why they exist: on the emulated RP2040 an event frame cost ~7.7 ms of the chip through
the portable per-character loops, enough to starve the tone DMA once a run at 40/40 ms with the
receiver on (tests/emu/test_verified_40ms.py)."""

import os
import random
from pathlib import Path

import pytest
import viper_cycles
from mp_unix import run_script
from tonebridge_fw import codec
from viper_shim import load_viper_module

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "firmware" / "tonebridge_fw" / "frame_viper.py"


_PORTABLE = (
    codec.crc16_portable,
    codec.first_bad_portable,
    codec.last_mark_portable,
    codec.find_byte_portable,
)


@pytest.fixture(scope="module")
def fast():
    mod = load_viper_module(SRC, "frame_viper_shim")
    mod.init(codec._TABLE)
    return mod


def test_the_host_keeps_the_portable_loops():
    assert codec.crc16 is codec.crc16_portable and codec.first_bad is codec.first_bad_portable
    assert codec.crc16(b"123456789") == 0x29B1


def test_kernels_give_the_portable_results(fast):
    assert fast.selftest(*_PORTABLE)
    rnd = random.Random(7)
    for n in (0, 1, 2, 17, 64, 255):
        data = bytes(rnd.randrange(256) for _ in range(n))
        assert fast.crc16(data) == codec.crc16_portable(data)
        assert fast.crc16(data, 0x1234) == codec.crc16_portable(data, 0x1234)
        body = bytes(rnd.randrange(0x20, 0x7F) for _ in range(n))
        for p in range(0, n, 5):
            assert fast.first_bad(body, p, n) == codec.first_bad_portable(body, p, n)


def test_mark_and_byte_search_give_the_portable_results(fast):
    rnd = random.Random(11)
    alphabet = b"ab<>!\n \x00\xff"
    for n in (0, 1, 2, 9, 64, 300):
        data = bytes(rnd.choice(alphabet) for _ in range(n))
        for p in range(0, n + 1, 3):
            for q in range(p, n + 1, 7):
                assert fast.last_mark(data, p, q) == codec.last_mark_portable(data, p, q)
                for c in (10, 33, 0, 255):
                    assert fast.find_byte(data, p, q, c) == codec.find_byte_portable(data, p, q, c)


def test_a_reversed_range_is_empty_in_every_kernel(fast):
    # q < p: data[p:q] is empty, so -1 as the portable loops answer (not a run off the end)
    data = b"ab<\n!x\x00"
    for p in range(1, len(data) + 1):
        for q in range(p):
            assert fast.first_bad(data, p, q) == codec.first_bad_portable(data, p, q) == -1
            assert fast.last_mark(data, p, q) == codec.last_mark_portable(data, p, q) == -1
            assert fast.find_byte(data, p, q, 10) == codec.find_byte_portable(data, p, q, 10) == -1


def _crc_with(table, data, crc=0xFFFF):
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc


@pytest.mark.parametrize("entry", [0, 0x8000])  # CRCs below and above the check value 0x29B1
def test_the_selftest_refuses_a_table_that_is_not_ccitt_false(entry):
    # a kernel and a reference that agree, both on the wrong table: only the check value of
    # b"123456789" can tell, and it must (one source of the table: codec's, pinned here)
    mod = load_viper_module(SRC, "frame_viper_table")
    table = [entry] * 256
    mod.init(table)

    def crc_ref(data, crc=0xFFFF):
        return _crc_with(table, data, crc)

    assert mod.crc16(b"123456789") == crc_ref(b"123456789") != 0x29B1
    assert not mod.selftest(crc_ref, *_PORTABLE[1:])


# A kernel that is wrong only where `when` holds (its arguments), by -1 or +1: the selftest must
# refuse it whichever way it errs. Each case is one of the selftest's checks on its own: _AB is
# its every-byte-value sample A B <i> C, the other samples are its ranges' ones.


def _ab(d):
    return len(d) == 4 and d[0] == 65


_WRONG_WHERE = {
    "crc16 of other lengths than 9": ("crc16", lambda d, c=0xFFFF: c == 0xFFFF and len(d) != 9),
    "crc16 continued": ("crc16", lambda d, c=0xFFFF: c != 0xFFFF),
    "first_bad AB.C [1:4]": ("first_bad", lambda d, p, q: _ab(d) and (p, q) == (1, 4)),
    "first_bad AB.C [3:4]": ("first_bad", lambda d, p, q: _ab(d) and (p, q) == (3, 4)),
    "first_bad over the ranges": ("first_bad", lambda d, p, q: not _ab(d)),
    "last_mark AB.C [0:3]": ("last_mark", lambda d, p, q: _ab(d) and (p, q) == (0, 3)),
    "last_mark AB.C [0:2]": ("last_mark", lambda d, p, q: _ab(d) and (p, q) == (0, 2)),
    "last_mark up to the end": ("last_mark", lambda d, p, q: not _ab(d) and q == len(d)),
    "last_mark empty at the end": ("last_mark", lambda d, p, q: not _ab(d) and p == len(d)),
    "find_byte AB.C [1:4]": ("find_byte", lambda d, p, q, c: _ab(d) and (p, q) == (1, 4)),
    "find_byte 'A' at 0": ("find_byte", lambda d, p, q, c: _ab(d) and c == 65 and p == 0),
    "find_byte of 0xFF": ("find_byte", lambda d, p, q, c: c == 0xFF),
    "find_byte up to the end": ("find_byte", lambda d, p, q, c: not _ab(d) and q == len(d)),
    "find_byte empty at the end": ("find_byte", lambda d, p, q, c: not _ab(d) and p == len(d)),
}


@pytest.mark.parametrize("delta", [-1, 1])
@pytest.mark.parametrize("case", list(_WRONG_WHERE))
def test_the_selftest_refuses_a_kernel_wrong_either_way(fast, monkeypatch, case, delta):
    name, when = _WRONG_WHERE[case]
    right = getattr(fast, name)
    hits = []

    def wrong(*args):
        r = right(*args)
        if when(*args):
            hits.append(args)
            return r + delta
        return r

    monkeypatch.setattr(fast, name, wrong)
    assert not fast.selftest(*_PORTABLE)
    assert hits  # the selftest did ask where this kernel is wrong


@pytest.mark.parametrize(
    "old, new",
    [
        # the body check skipping the first or the last byte of its range (passed before the
        # selftest checked first_bad over every range of its samples)
        (
            "def _bad(p: int, q: int, buf) -> int:\n    b = ptr8(buf)\n",
            "def _bad(p: int, q: int, buf) -> int:\n    b = ptr8(buf)\n    p += 1\n",
        ),
        ("    while p < q:\n        o = b[p]", "    while p < q - 1:\n        o = b[p]"),
        ("t[((c >> 8) ^ b[p]) & 0xFF]", "t[(c ^ b[p]) & 0xFF]"),  # wrong table index
        ("or o == 33", "or o == 34"),  # '!' allowed in a body
        ("o > 0x7E", "o > 0x7F"),  # DEL allowed
        ("    while q > p:\n        q -= 1", "    while q > p + 1:\n        q -= 1"),  # misses p
        ("o == 60 or o == 33:\n            return q", "o == 60:\n            return q"),
        ("        if b[p] == c:", "        if b[p] == c or b[p] == 0:"),  # stops at a NUL
    ],
)
def test_a_wrong_kernel_is_caught_by_its_selftest(tmp_path, old, new):
    src = SRC.read_text()
    assert old in src
    bad = tmp_path / "bad_frame.py"
    bad.write_text(src.replace(old, new))
    mod = load_viper_module(bad, "frame_viper_bad")
    mod.init(codec._TABLE)
    assert not mod.selftest(*_PORTABLE)


_REAL = """
import sys
sys.path.insert(0, {fw!r})
from tonebridge_fw import codec
print("KERNELS", codec.crc16 is not codec.crc16_portable, codec.first_bad is not codec.first_bad_portable,
      codec.last_mark is not codec.last_mark_portable, codec.find_byte is not codec.find_byte_portable)
dec = codec.Decoder(accept=">")
stream = {stream!r}
got = []
for i in range(0, len(stream), 5):
    got.extend(dec.feed(memoryview(stream)[i : i + 5]))
print("DECODED", got == {want!r}, dec.frames, dec.dropped, dec.overflows)
data = bytes([(i * 37 + 11) & 0xFF for i in range(300)])
print("SAME", codec.crc16(data) == codec.crc16_portable(data), codec.crc16(b"123456789") == 0x29B1)
f = codec.encode("!", "k", "HEARD 3 A ms=40 lvl=-11.0,-9.0 twist=2.0")
print("FRAME", f == {frame!r})
try:
    codec.encode("!", "k", "HEARD 3 > x")
    print("BAD", False)
except codec.FrameError:
    print("BAD", True)
"""


def test_kernels_under_real_micropython(tmp_path):
    frame = codec.encode("!", "k", "HEARD 3 A ms=40 lvl=-11.0,-9.0 twist=2.0")
    script = tmp_path / "real.py"
    req = codec.encode(">", "r-1.x", "SEND dialect=catapult tone=40 gap=40 123#")
    want = [(">", "r-1.x", "SEND dialect=catapult tone=40 gap=40 123#")] * 3
    # the same stream through the portable decoder on the host: the figures the kernels must give
    dec = codec.Decoder(accept=">")
    stream = b"noise>x\r\n" + req + b"junk\x01" + req + b"\n" + b"z" * 400 + b"\n" + req
    got = []
    for i in range(0, len(stream), 5):
        got.extend(dec.feed(memoryview(stream)[i : i + 5]))
    assert got == want
    counts = [str(dec.frames), str(dec.dropped), str(dec.overflows)]
    script.write_text(
        _REAL.format(fw=str(REPO / "firmware"), frame=frame, stream=stream, want=want)
    )
    out = run_script(script).split()
    assert out[5:10] == ["DECODED", "True", *counts]
    del out[5:10]
    assert out == [
        "KERNELS",
        "True",
        "True",
        "True",
        "True",
        "SAME",
        "True",
        "True",
        "FRAME",
        "True",
        "BAD",
        "True",
    ]


@pytest.mark.skipif(
    not viper_cycles.available() and os.environ.get("CI") != "true",
    reason="arm-none-eabi-objdump not installed",
)
def test_armv6m_crc_loop_calls_nothing(tmp_path):
    # the CRC's loop alone (viper_cycles walks one loop's straight path; the body check's loop
    # has an exit in the middle)
    src = SRC.read_text()
    crc = src[src.index("@micropython.viper\ndef _crc") : src.index("@micropython.viper\ndef _bad")]
    one = tmp_path / "crc_only.py"
    one.write_text("# ruff: noqa\nimport micropython\n\n\n" + crc)
    costs = viper_cycles.loop_costs(one)
    assert len(costs) == 1 and costs[0] is not None
    _n, cycles, path = costs[0]
    assert not any(t.split()[0] in ("bl", "blx", "svc") for t in path), path
    assert cycles < 60, cycles  # 52 (39 instructions) with mpy-cross 1.2x: ~21 us for 50 bytes
