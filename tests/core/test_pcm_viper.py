"""The ESP32 receive path's sample conversion (firmware/tonebridge_fw/pcm_viper.py): signed
16-bit I2S samples -> unsigned 12-bit codes, as backends/adc_i2s.to_codes does portably. Under
tests/core/viper_shim.py and under MicroPython's unix port (a real native emitter) it must give
the portable loop's codes; mpy-cross's armv6m output shows its loop calls nothing."""

import os
from array import array
from pathlib import Path

import pytest
import viper_cycles
from mp_unix import run_script
from tonebridge_fw.backends import adc_i2s
from viper_shim import load_viper_module

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "firmware" / "tonebridge_fw" / "pcm_viper.py"


@pytest.fixture(scope="module")
def fast():
    return load_viper_module(SRC, "pcm_viper_shim")


def test_portable_codes():
    a = array("H", [0x0000, 0x7FFF, 0x8000, 0xFFFF, 0x0010, 0xFFF0])  # 0, max, min, -1, 16, -16
    adc_i2s.to_codes(a, 0, len(a))
    assert list(a) == [2048, 4095, 0, 2047, 2049, 2047]


def test_kernel_gives_the_portable_codes(fast):
    assert fast.selftest(adc_i2s.to_codes)
    src = array("H", [(i * 7919) & 0xFFFF for i in range(600)])
    a, b = array("H", src), array("H", src)
    fast.to_codes(a, 37, 500)
    adc_i2s.to_codes(b, 37, 500)
    assert a == b and a[:37] == src[:37] and a[537:] == src[537:]


def test_a_kernel_without_the_offset_is_caught(tmp_path):
    bad = tmp_path / "bad_pcm.py"
    bad.write_text(SRC.read_text().replace("(b[p] ^ 0x8000) >> 4", "b[p] >> 4"))
    assert not load_viper_module(bad, "pcm_viper_bad").selftest(adc_i2s.to_codes)


_REAL = """
import sys
sys.path.insert(0, {fw!r})
from array import array
from tonebridge_fw.backends import adc_i2s
print("KERNEL", adc_i2s._kernel() is not adc_i2s.to_codes)
src = array("H", [(i * 7919) & 0xFFFF for i in range(600)])
a = array("H", src)
b = array("H", src)
adc_i2s._kernel()(a, 37, 500)
adc_i2s.to_codes(b, 37, 500)
print("SAME", a == b)
"""


def test_kernel_under_real_micropython(tmp_path):
    script = tmp_path / "real.py"
    script.write_text(_REAL.format(fw=str(REPO / "firmware")))
    assert run_script(script).split() == ["KERNEL", "True", "SAME", "True"]


@pytest.mark.skipif(
    not viper_cycles.available() and os.environ.get("CI") != "true",
    reason="arm-none-eabi-objdump not installed",
)
def test_armv6m_loop_calls_nothing():
    costs = viper_cycles.loop_costs(SRC)
    assert len(costs) == 1 and costs[0] is not None
    _n, cycles, path = costs[0]
    assert not any(t.split()[0] in ("bl", "blx", "svc") for t in path), path
    assert cycles < 40, cycles  # 32 (24 instructions) with mpy-cross 1.2x
