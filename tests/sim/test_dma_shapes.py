"""The DMA model's shortcuts against the general path: a channel's recognised shape (rp2_dma.py
``_kind``, kept on the channel) is looked up again when the CPU rewrites its addresses, and the
ADC's request instants in integers equal the general formula ``start + floor(k p) + latency``."""

import math
from array import array

import numpy as np
import pytest
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge.sim import rp2 as sim_rp2
from tonebridge.sim.rp2_mcu import DMA_LATENCY

PWM0 = sim_rp2.MCU["rp2040"]["pwm_base"]


@pytest.fixture
def sb():
    b = SimBoard("pico", VirtualClock(), run_main=False)
    yield b
    b.close()


def test_a_channel_rewritten_from_a_cc_register_to_ram_writes_ram(sb):
    rp2 = sb.modules["rp2"]
    src = array("H", [100 + i for i in range(64)])
    dst = array("H", [0] * 4)
    d = rp2.DMA()
    ctrl = d.pack_ctrl(size=1, inc_write=0)  # unpaced, a run into one fixed address
    d.config(read=src, write=PWM0 + 0x0C, count=32, ctrl=ctrl, trigger=True)  # slice 0's CC
    sb.run_for(1)
    assert not d.active() and sb.hw.slices[0].cc == (131 | 131 << 16)
    # only WRITE_ADDR rewritten (CTRL the same, READ_ADDR where the run left it): the next
    # run's transfers must land in RAM, not in the CC log
    cc_writes = sb.hw.slices[0].cc_writes
    d.write = dst
    d.count = 32
    d.active(1)
    sb.run_for(1)
    assert not d.active()
    assert list(dst) == [163, 0, 0, 0]  # the last element, every transfer to dst[0]
    assert sb.hw.slices[0].cc_writes == cc_writes
    d.close()


def _general(adc, after, limit, n, latency):
    """The DREQ instants by the general formula (floating-point conversion period)."""
    p = adc.period16()
    k0 = max(math.floor((after - latency - adc.start16) / p) + 1, 1)
    k1 = min(math.floor((limit - latency - adc.start16) / p), k0 + n - 1)
    k = np.arange(k0, k1 + 1, dtype=np.int64)
    return (adc.start16 + np.floor(k * p)).astype(np.int64) + latency


@pytest.mark.parametrize("div", [5999 << 8, (5999 << 8) | 77, 95 << 8])
def test_adc_request_instants_equal_the_general_formula(sb, div):
    adc = sb.hw.adc
    m = sb.modules["machine"]
    m.mem32[adc.base + 0x10] = div  # DIV (8 kHz; with a fraction; the fastest: 500 kHz)
    m.mem32[adc.base + 0x08] = 0x01 | 0x08 | (1 << 24)  # FCS: EN, DREQ_EN, THRESH 1
    m.mem32[adc.base + 0x00] = 0x01 | 0x08  # CS: EN, START_MANY
    assert adc.start16 is not None
    rng = np.random.default_rng(7)
    p = adc.period16()
    for _ in range(300):
        after = adc.start16 + int(rng.integers(-3 * p, 400 * p))
        limit = after + int(rng.integers(0, 300 * p))
        n = int(rng.integers(1, 400))
        got = adc.requests(after, limit, n, 2)
        want = _general(adc, after, limit, n, 2)
        assert np.array_equal(got, want), (after, limit, n)
        assert adc.request_count(after, limit, 2) >= got.size
        assert adc.request_count(after, limit, 2) == _general(adc, after, limit, 10**9, 2).size


@pytest.mark.parametrize("div", [5999 << 8, 95 << 8])
def test_a_ring_is_held_exactly_until_it_would_complete(sb, div):
    """``DmaEngine.held``'s shortcut (no count while even the ADC's fastest pace cannot
    finish TRANS_COUNT) gives what counting the conversions gives, up to the completion."""
    m, rp2, hw = sb.modules["machine"], sb.modules["rp2"], sb.hw
    adc = hw.adc
    raw = array("H", [0] * 256)
    d = rp2.DMA()
    ring = (hw.mem.address_of(raw) + 255) & ~255
    ctrl = d.pack_ctrl(size=1, inc_read=0, inc_write=1, ring_size=8, ring_sel=1,
                       treq_sel=adc.dreq, irq_quiet=1, chain_to=d.channel)  # fmt: skip
    m.mem32[adc.base + 0x10] = div
    d.config(read=adc.base + 0x0C, write=ring, count=60, ctrl=ctrl, trigger=True)
    m.mem32[adc.base + 0x08] = 0x01 | 0x08 | (1 << 24)
    m.mem32[adc.base + 0x00] = 0x01 | 0x08
    ch = hw.dma[d.channel]
    assert hw.dmac.is_ring(ch) and ch.busy
    p = adc.period16()
    checked = 0
    for step in range(0, int(70 * p), max(1, int(p) // 7)):
        limit = ch.after + step
        want = adc.request_count(ch.after, limit, DMA_LATENCY) < ch.count
        assert hw.dmac.held(ch, limit) == want, (step, p)
        checked += want
    assert 0 < checked < 70 * 7
    d.close()
