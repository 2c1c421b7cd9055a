"""The simulated machine.I2S alone: MicroPython API, ring buffer and DMA pacing in virtual time,
non-blocking irq semantics, and the PCM5102A output on the line recorder."""

from array import array

import numpy as np
import pytest
from tonebridge.sim.clock import VirtualClock
from tonebridge.sim.i2s import make_i2s_class
from tonebridge.sim.line_recorder import LineRecorder
from tonebridge.sim.pinbus import PinBus

FS_PEAK = 2.1 * np.sqrt(2)


def make(mcu="esp32", **kw):
    clock = VirtualClock()
    bus = PinBus(clock)
    rec = LineRecorder()
    I2S = make_i2s_class(clock, rec, {"mcu": mcu}, bus=bus)
    args = dict(sck=0, ws=1, sd=2, mode=I2S.TX, bits=16, format=I2S.MONO, rate=16000, ibuf=2048)
    args.update(kw)
    return clock, rec, bus, I2S, I2S(0, **args)


def sine(f, rate, n, amp=0.5):
    t = np.arange(n) / rate
    return array("h", (np.round(amp * 32767 * np.sin(2 * np.pi * f * t))).astype(int).tolist())


def fit_freq(x, rate):
    from tonebridge.analysis import fit_sinusoids

    n = 1 << 18
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    f0 = np.fft.rfftfreq(n, 1 / rate)[np.argmax(spec)]
    freqs, amps, *_ = fit_sinusoids(x, rate, [f0])
    return freqs[0], amps[0]


def test_blocking_write_waits_for_the_dma_in_virtual_time():
    clock, rec, bus, I2S, i2s = make(ibuf=2048)  # 1024 mono frames
    buf = sine(1000, 16000, 8000)  # 0.5 s
    assert i2s.write(buf) == 16000
    # the call returned once the last byte fitted in the ring: ~0.5 s - ring (64 ms) later
    assert 0.40e6 < clock.now_us() < 0.5e6
    clock.advance_us(300_000)
    x = rec.samples(48000, start_us=0, end_us=clock.now_us())
    assert i2s.frames_played == 8000
    on = np.flatnonzero(np.abs(x) > 0.01)
    assert (on[-1] - on[0]) / 48000 == pytest.approx(0.5, abs=0.001)
    f, a = fit_freq(x[on[0] + 480 : on[-1] - 480], 48000)
    assert f == pytest.approx(1000, rel=1e-6)
    assert a == pytest.approx(0.5 * FS_PEAK, rel=1e-3)
    assert bus.function(2) == "i2s"


def test_non_blocking_write_returns_at_once_and_calls_handler_when_copied():
    clock, rec, bus, I2S, i2s = make(ibuf=1024)  # 512 frames of ring
    calls = []
    i2s.irq(lambda obj: calls.append((clock.now_us(), obj)))
    buf = sine(500, 16000, 2048)
    assert i2s.write(buf) == 4096
    assert clock.now_us() == 0 and calls == []
    clock.advance_us(200_000)
    ((t, obj),) = calls
    assert obj is i2s
    # 2048 frames through a 512-frame ring drained 256 frames per DMA buffer (16 ms):
    # the last bytes enter the ring at a DMA boundary
    assert t % 16000 == 0 and 80_000 <= t <= 112_000
    assert i2s.overlapping_writes == 0


def test_non_blocking_write_reads_the_callers_buffer_late():
    # On a board the port copies from the caller's buffer as space frees: changing the buffer
    # before the handler ran changes what plays. The model does the same.
    clock, rec, bus, I2S, i2s = make(ibuf=512)
    i2s.irq(lambda obj: None)
    buf = array("h", [8000] * 4096)
    i2s.write(buf)
    clock.advance_us(20_000)
    for i in range(len(buf)):
        buf[i] = -8000
    clock.advance_us(400_000)
    x = rec.samples(16000, start_us=0, end_us=clock.now_us(), gated=False)
    assert x.max() > 0.5 and x.min() < -0.5


def test_overlapping_non_blocking_writes_are_counted():
    clock, rec, bus, I2S, i2s = make(ibuf=512)
    i2s.irq(lambda obj: None)
    i2s.write(bytes(4096))
    i2s.write(bytes(4096))
    assert i2s.overlapping_writes == 1


def test_deinit_stops_output_at_once():
    clock, rec, bus, I2S, i2s = make(ibuf=8192)
    i2s.irq(lambda obj: None)
    i2s.write(sine(800, 16000, 4000))
    clock.advance_us(100_000)
    i2s.deinit()
    t_stop = clock.now_us()
    clock.advance_us(200_000)
    x = rec.samples(48000, start_us=0, end_us=clock.now_us(), gated=False)
    on = np.flatnonzero(np.abs(x) > 0.01)
    assert on[-1] / 48000 * 1e6 <= t_stop + 50


def test_api_errors():
    clock, rec, bus, I2S, i2s = make()
    with pytest.raises(ValueError):
        I2S(0, sck=0, ws=1, sd=2, mode=I2S.TX, bits=24, format=I2S.MONO, rate=16000, ibuf=1024)
    with pytest.raises(ValueError):
        I2S(0, sck=0, ws=1, sd=2, mode=I2S.TX, bits=16, format=7, rate=16000, ibuf=1024)
    rx = I2S(1, sck=0, ws=1, sd=3, mode=I2S.RX, bits=16, format=I2S.MONO, rate=16000, ibuf=1024)
    with pytest.raises(ValueError):
        rx.write(bytes(4))
    with pytest.raises(ValueError):
        i2s.readinto(bytearray(4))
    # rp2: WS must be SCK + 1 (PIO side-set)
    clock, rec, bus, I2S, _ = make(mcu="rp2040", sck=18, ws=19, sd=20)
    with pytest.raises(ValueError, match="sck\\+1"):
        I2S(0, sck=18, ws=17, sd=20, mode=I2S.TX, bits=16, format=I2S.MONO, rate=16000, ibuf=1024)


def test_stereo_32_bit_left_channel_reaches_the_line():
    clock, rec, bus, I2S, i2s = make(bits=32, format=1, rate=48000, ibuf=8192)
    left = np.round(0.25 * 2**31 * np.sin(2 * np.pi * 1209 * np.arange(4800) / 48000))
    frames = np.zeros(9600, dtype="<i4")
    frames[0::2] = left.astype("<i4")
    frames[1::2] = 2**30  # right channel: not on the line
    i2s.write(frames.tobytes())
    clock.advance_us(300_000)
    x = rec.samples(48000, start_us=0, end_us=clock.now_us(), gated=False)
    on = np.flatnonzero(np.abs(x) > 0.01)
    f, a = fit_freq(x[on[0] + 480 : on[-1] - 480], 48000)
    assert f == pytest.approx(1209, rel=1e-6)
    assert a == pytest.approx(0.25 * FS_PEAK, rel=1e-3)


def test_shift():
    from tonebridge.sim.i2s import SimI2S

    buf = array("h", [100, -100, 3])
    SimI2S.shift(buf=buf, bits=16, shift=2)
    assert list(buf) == [400, -400, 12]
    SimI2S.shift(buf=buf, bits=16, shift=-3)
    assert list(buf) == [50, -50, 1]


def test_rp2_sample_clock_is_the_pio_divider_rate():
    from tonebridge.sim.i2s import rp2_actual_rate

    # 125 MHz / (48000 * 64) = 40.6901 -> 16.8 fixed point truncates to 40 + 176/256
    assert rp2_actual_rate(48000, 16, 125_000_000) == pytest.approx(125e6 / (40.6875 * 64))
    clock, rec, bus, I2S, i2s = make(mcu="rp2040", sck=18, ws=19, sd=20, rate=48000)
    assert i2s.actual_rate == pytest.approx(48003.072, abs=1e-3)
    assert i2s.dma_frames == 32
    i2s.write(sine(1000, 48000, 9600))  # blocking
    clock.advance_us(100_000)
    x = rec.samples(96000, start_us=0, end_us=clock.now_us(), gated=False)
    on = np.flatnonzero(np.abs(x) > 0.01)
    f, _ = fit_freq(x[on[0] + 960 : on[-1] - 960], 96000)
    assert f == pytest.approx(1000 * 48003.072 / 48000, rel=1e-6)
