"""The Goertzel bank's viper kernels (firmware/tonebridge_fw/goertzel_viper.py).

Under tests/core/viper_shim.py (viper's 32-bit words and zero-extending ptr16 loads emulated)
and under MicroPython's unix port (a real native emitter) they must give the portable loops'
exact integers; mpy-cross's armv6m output gives their cost per sample on the RP2040.
"""

import os
import sys
from array import array
from pathlib import Path

import pytest
import viper_cycles
from mp_unix import run_script
from tonebridge_fw import goertzel
from viper_shim import load_viper_module

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "firmware" / "tonebridge_fw" / "goertzel_viper.py"
sys.path.insert(0, str(REPO / "tests" / "firmware"))
from test_goertzel import DTMF, run, tones  # noqa: E402


@pytest.fixture(scope="module")
def fast():
    return load_viper_module(SRC, "goertzel_viper_shim")


def banks(kernel):
    out = []
    for freqs, n in ((DTMF, 160), (DTMF, 205), ((350, 440, 480, 620), 400), ((1000, 3000), 37)):
        b = goertzel.Bank(freqs, n, 8000, probes=(662.15,))
        b._fast = kernel
        out.append(b)
    return out


def test_shim_kernels_pass_the_self_test(fast):
    assert fast.VIPER_FUNCTIONS == ["bin1", "prep"]
    assert fast.selftest(goertzel._prep, goertzel._bin1)


def test_kernels_give_the_portable_integers(fast):
    bufs = [
        tones(1700, ((697, 900), (1477, 1100)), noise=60),
        tones(1700, ((440, 2000), (350, 1900)), mid=1500),
        array("H", [4095 if (i // 3) % 2 else 0 for i in range(1700)]),  # full-scale square
    ]
    for buf in bufs:
        for slow, quick in zip(banks(None), banks(fast), strict=True):
            a = run(slow, buf, (7, 250, 1, 64))
            b = run(quick, buf, (7, 250, 1, 64))
            assert a == b and len(a) >= 4
            c = slow.coefficient(662.15)
            assert slow.probe(c) == quick.probe(c)


def test_a_kernel_with_an_unsigned_load_is_caught(tmp_path):
    bad = tmp_path / "bad_viper.py"
    bad.write_text(SRC.read_text().replace("((x[i] ^ 0x8000) - 0x8000)", "x[i]"))
    mod = load_viper_module(bad, "goertzel_viper_bad")
    assert not mod.selftest(goertzel._prep, goertzel._bin1)


def test_fast_is_off_in_cpython():
    assert goertzel.FAST is False


_REAL = """
import sys
sys.path.insert(0, {fw!r})
sys.path.insert(0, {tests!r})
from tonebridge_fw import goertzel
print("FAST", goertzel.FAST)
from test_goertzel import DTMF, run, tones
buf = tones(1200, ((697, 900), (1477, 1100)), noise=60)
for freqs, n in ((DTMF, 160), (DTMF, 205), ((350, 440), 400)):
    b = goertzel.Bank(freqs, n, 8000)
    r1 = run(b, buf, (7, 250, 1, 64))
    b2 = goertzel.Bank(freqs, n, 8000)
    b2._fast = None
    r2 = run(b2, buf, (7, 250, 1, 64))
    print("CASE", len(r1), r1 == r2, b._fast is not None)
"""


def test_kernels_under_real_micropython(tmp_path):
    script = tmp_path / "real.py"
    script.write_text(
        _REAL.format(fw=str(REPO / "firmware"), tests=str(REPO / "tests" / "firmware"))
    )
    lines = run_script(script).splitlines()
    assert lines[0] == "FAST True"  # the import-time self-test passed on a real viper
    cases = [ln.split() for ln in lines if ln.startswith("CASE")]
    assert len(cases) == 3
    for _, blocks, same, fast in cases:
        assert int(blocks) >= 2 and same == "True" and fast == "True"


@pytest.mark.skipif(
    not viper_cycles.available() and os.environ.get("CI") != "true",
    reason="arm-none-eabi-objdump not installed",
)
def test_armv6m_loops_call_nothing():
    costs = viper_cycles.loop_costs(SRC)
    assert len(costs) == 2 and all(c is not None for c in costs)  # bin1, prep
    for _n, cycles, path in costs:
        assert not any(t.split()[0] in ("bl", "blx", "svc") for t in path), path
        assert cycles < 120, cycles
