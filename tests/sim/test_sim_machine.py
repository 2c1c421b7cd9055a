"""The simulated machine/rp2/time modules as firmware sees them: MicroPython's PWM API and raw
registers meet in one register model, the PWM pulse train itself goes through the filter,
Timer and time run on the board clock, pins are views on the bus."""

import numpy as np
import pytest
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge.sim import rp2 as sim_rp2

PWM0 = sim_rp2.MCU["rp2040"]["pwm_base"]


@pytest.fixture
def sb():
    b = SimBoard("pico", VirtualClock(), run_main=False)
    yield b
    b.close()


def _line_open(sb):
    m = sb.modules["machine"]
    m.Pin(14, m.Pin.OUT, value=1)  # off-hook
    m.Pin(15, m.Pin.OUT, value=0)  # unmuted


def _peak(x, rate, f0, width=30.0):
    n = 1 << 19
    f = np.fft.rfftfreq(n, 1 / rate)
    X = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size), n))
    band = (f > f0 - width) & (f < f0 + width)
    return f[band][np.argmax(X[band])], 20 * np.log10(X[band].max())


def test_pwm_api_programs_registers_like_micropython(sb):
    m = sb.modules["machine"]
    pwm = m.PWM(m.Pin(16), freq=1000, duty_u16=32768)
    s = sb.hw.slices[0]
    # MicroPython rp2 algorithm: smallest divider keeping TOP <= 65534
    assert s.div == 31 and s.top == 64515
    assert pwm.freq() == 125_000_000 * 16 // (31 * 64516)
    assert s.cc & 0xFFFF == 32768 * 64516 // 65535
    assert s.running and sb.bus.function(16) == "pwm"
    assert m.mem32[PWM0 + 0x10] == 64515  # the same registers through mem32


def test_audio_band_pwm_is_heard_as_a_square_wave(sb):
    # a firmware that (wrongly) toggles the pin at 1 kHz with PWM: the line carries that
    # square wave, its 3rd harmonic attenuated only by the filter (what a real board does)
    m = sb.modules["machine"]
    _line_open(sb)
    m.PWM(m.Pin(16), freq=1000, duty_u16=32768)
    t0 = sb.now_us()
    sb.run_for(300)
    rate = 48000
    x = sb.line.samples(rate, start_us=t0 + 100_000, end_us=sb.now_us())
    f1, l1 = _peak(x, rate, 1000)
    f3, l3 = _peak(x, rate, 3000)
    assert f1 == pytest.approx(1000, abs=2)
    # square wave: 3rd harmonic -9.5 dB, plus the filter's extra loss at 3 kHz
    assert -20 < l3 - l1 < -9


def test_pwm_carrier_leaks_through_the_filter_as_designed():
    # the DTMF backend's own carrier (phase-correct PWM, one period per sample: 61.0 kHz)
    # appears on the line, ~-68 dB under the tones
    from tonebridge.sim import play_on_board

    sb = SimBoard("pico", VirtualClock())
    try:
        r = play_on_board(sb, "1", tone_ms=200)
        _carrier_checks(sb, r)
    finally:
        sb.close()


def _carrier_checks(sb, r):
    fs = r["backend"].sample_rate
    assert fs == pytest.approx(61035.16, abs=0.01)
    rate = 192000
    x = sb.line.samples(rate, start_us=r["start_us"] + 50_000, end_us=r["start_us"] + 150_000)
    _, lt = _peak(x, rate, 1209)
    fc, lc = _peak(x, rate, fs, width=100)
    assert fc == pytest.approx(fs, abs=20)
    assert -80 < lc - lt < -55


def test_timer_and_time_run_on_the_board_clock(sb):
    m = sb.modules["machine"]
    t = sb.modules["time"]
    ticks = []
    tim = m.Timer(period=10, callback=lambda _t: ticks.append(t.ticks_ms()))
    t0 = t.ticks_ms()
    sb.run_for(105)
    assert ticks == [t0 + 10 * k for k in range(1, 11)]
    tim.deinit()
    sb.run_for(50)
    assert len(ticks) == 10
    a = t.ticks_us()
    t.sleep_ms(3)
    assert t.ticks_diff(t.ticks_us(), a) == 3000
    assert t.ticks_diff(t.ticks_add(0, -5), 0) == -5


def test_pins_are_views_on_the_bus(sb):
    m = sb.modules["machine"]
    seen = []
    sb.bus.watch(5, lambda g, lv, t: seen.append((g, lv, t)))
    p = m.Pin(5, m.Pin.OUT, value=0)
    p.value(1)
    assert sb.bus.level(5) == 1 and seen[-1] == (5, 1, sb.now_us())
    q = m.Pin(6, m.Pin.IN, m.Pin.PULL_UP)
    assert q.value() == 1
    sb.bus.drive(6, 0)  # an external chip pulls it low
    assert q.value() == 0
    sb.bus.drive(6, None)
    assert q.value() == 1


def test_dma_memory_to_memory_unpaced(sb):
    from array import array

    rp2 = sb.modules["rp2"]
    src = array("H", range(100))
    dst = array("H", [0] * 100)
    d = rp2.DMA()
    ctrl = d.pack_ctrl(size=1)  # defaults: unpaced, both addresses increment
    d.config(read=src, write=dst, count=100, ctrl=ctrl, trigger=True)
    sb.run_for(1)
    assert not d.active() and d.count == 0
    assert list(dst) == list(range(100))
    d.close()


def test_gpio_steps_on_the_tone_pin_reach_the_line_when_they_happen(sb):
    # the tone pin used as a plain GPIO (a firmware bug): each step is a click at its time
    m = sb.modules["machine"]
    _line_open(sb)
    p = m.Pin(16, m.Pin.OUT, value=0)
    sb.run_for(50)
    t_up = sb.now_us()
    p.value(1)
    sb.run_for(20)
    t_down = sb.now_us()
    p.value(0)
    sb.run_for(30)
    rate = 48000
    x = sb.line.samples(rate, start_us=0, end_us=sb.now_us())
    i_up = int(np.argmax(x))
    i_down = int(np.argmin(x))
    assert abs(i_up / rate * 1e6 - t_up) < 500
    assert abs(i_down / rate * 1e6 - t_down) < 500
    assert x[i_up] > 0.3 and x[i_down] < -0.3


def test_atomic_register_aliases(sb):
    m = sb.modules["machine"]
    m.mem32[PWM0 + 0x10] = 0x00F0  # TOP
    m.mem32[PWM0 + 0x10 + 0x2000] = 0x000F  # SET alias
    assert sb.hw.slices[0].top == 0x00FF
    m.mem32[PWM0 + 0x10 + 0x3000] = 0x00F0  # CLR alias
    assert sb.hw.slices[0].top == 0x000F
    m.mem32[PWM0 + 0x10 + 0x1000] = 0x0003  # XOR alias
    assert sb.hw.slices[0].top == 0x000C
    dma = sim_rp2.MCU["rp2040"]["dma_base"]
    m.mem32[dma + 0x420 + 0x2000] = 0x00010002  # DMA TIMER0 through the SET alias
    assert sb.hw.dma_timers[0] == 0x00010002


def test_dma_completion_flag_and_irq_handler(sb):
    from array import array

    rp2 = sb.modules["rp2"]
    m = sb.modules["machine"]
    dma_base = sim_rp2.MCU["rp2040"]["dma_base"]
    src = array("B", range(16))
    dst = array("B", [0] * 16)
    d = rp2.DMA()
    calls = []
    d.irq(lambda ch: calls.append(ch.channel))
    d.config(read=src, write=dst, count=16, ctrl=d.pack_ctrl(size=0, irq_quiet=0), trigger=True)
    sb.run_for(1)
    assert m.mem32[dma_base + 0x400] & (1 << d.channel)
    assert calls == [d.channel]
    m.mem32[dma_base + 0x400] = 1 << d.channel
    assert not m.mem32[dma_base + 0x400] & (1 << d.channel)
    d.close()
