"""Fault seeding: break one configuration value the firmware writes (through a hook on the
simulated register bus, or by patching a constant in the board's loaded firmware module) and
check that the recorded audio is then wrong. Proof that the simulator derives the line signal
from what the firmware really configured, not from what it meant."""

import numpy as np
import pytest
from tonebridge.analysis import band_power, fit_sinusoids, fit_tones, segments, steady_slices
from tonebridge.sim import rp2 as sim_rp2

PWM0 = sim_rp2.MCU["rp2040"]["pwm_base"]  # GP16 -> slice 0
DMA = sim_rp2.MCU["rp2040"]["dma_base"]


def _replace(addr, old, new):
    def hook(a, v):
        if a == addr and v == old:
            return new
        return v

    return hook


def _first_tone(p):
    sl = steady_slices(p.x, p.rate)
    assert sl, "no tone at all"
    return fit_tones(sl[0], p.rate)


def _two_peaks(p):
    """The two strongest spectral peaks (Hz, ascending) of the first tone: no band
    assumptions, so tones moved far from their groups are still found."""
    x = steady_slices(p.x, p.rate)[0]
    n = 1 << 20
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    f = np.fft.rfftfreq(n, 1 / p.rate)
    spec[f < 200] = 0
    i1 = int(np.argmax(spec))
    spec2 = spec.copy()
    spec2[np.abs(f - f[i1]) < 60] = 0
    i2 = int(np.argmax(spec2))
    return sorted((f[i1], f[i2]))


def test_control_healthy_run(play):
    p = play("pico", "1")
    fl, _, fh, _, _ = _first_tone(p)
    assert abs(fl / 697 - 1) < 5e-4 and abs(fh / 1209 - 1) < 5e-4


def test_wrong_top_gives_wrong_frequency_and_timing(play):
    p = play("pico", "1", hooks=[_replace(PWM0 + 0x10, 1023, 767)])
    fl, _, fh, _, _ = _first_tone(p)
    # periods are 768/1024 as long: every frequency is 4/3 too high
    assert fl == pytest.approx(697 * 1024 / 768, rel=1e-3)
    assert fh == pytest.approx(1209 * 1024 / 768, rel=1e-3)
    (seg,) = segments(p.x, p.rate)
    assert seg[1] - seg[0] == pytest.approx(0.075, abs=0.001)


def test_phase_correct_bit_dropped_doubles_frequency_and_dirties_the_band(play):
    # CSR written as EN only: trailing-edge PWM, half the period, so every tone an octave up
    # and the plan over in half the time; the one-edge modulation's products are back
    fault = [_replace(PWM0 + 0x00, 0x3, 0x1)]
    # (whether the DMA, twice as fast as the main loop believes, also runs dry between its
    # passes depends on where in a chunk the loop happens to wake: it did before the first
    # chunk was shortened to 384 samples, it does not since; not asserted)
    # the tones themselves, with a main loop passing every ms (no underrun breaks them)
    p = play("pico", "1", hooks=fault, busy_ms=1)
    assert p.backend.underruns == 0
    assert p.board.hw.slices[0].csr == 0x1
    lo, hi = _two_peaks(p)
    assert lo == pytest.approx(2 * 697, rel=2e-3)
    assert hi == pytest.approx(2 * 1209, rel=2e-3)
    (seg,) = segments(p.x, p.rate)
    # half of the planned 100 ms (the envelope of an octave-up pair at the filter's edge is
    # less sharp: 3 ms tolerance)
    assert seg[1] - seg[0] == pytest.approx(0.050, abs=0.003)
    healthy = play("pico", "1")

    def unwanted(q, seeds):
        # in-band power left after fitting the two tones, vs the lower tone (as unwanted_db)
        x = steady_slices(q.x, q.rate)[0]
        _f, amps, _ph, _dc, model, _rms = fit_sinusoids(x, q.rate, seeds)
        return 10 * np.log10(band_power(x - model, q.rate, (300.0, 3400.0)) / (amps[0] ** 2 / 2))

    ok = unwanted(healthy, [697.0, 1209.0])
    bad = unwanted(p, [lo, hi])
    assert ok < -50
    assert bad > ok + 12, (ok, bad)  # about -42 vs -60 dB


def test_wrong_divider_gives_wrong_frequency(play):
    ok = play("pico", "1").board.hw.slices[0].div
    p = play("pico", "1", hooks=[_replace(PWM0 + 0x04, ok, ok + 4)])
    lo, hi = _two_peaks(p)
    assert lo == pytest.approx(697 * ok / (ok + 4), rel=2e-3)
    assert hi == pytest.approx(1209 * ok / (ok + 4), rel=2e-3)


def _treq_hook(new_treq):
    lsb, width = sim_rp2.MCU["rp2040"]["ctrl"]["treq_sel"]
    mask = ((1 << width) - 1) << lsb

    def hook(a, v):
        off = a - DMA
        if 0 <= off < 0x40 * 12 and off % 0x40 in (0x0C, 0x10, 0x20, 0x30):
            return (v & ~mask) | (new_treq << lsb)
        return v

    return hook


def test_dma_paced_by_the_wrong_slice_stalls(play):
    # DREQ_PWM_WRAP1: slice 1 is not running, so no transfer ever happens
    with pytest.raises(RuntimeError, match="never finished"):
        play("pico", "1", hooks=[_treq_hook(25)])


def test_unpaced_dma_plays_nothing_usable(play):
    p = play("pico", "12", hooks=[_treq_hook(0x3F)])
    # every chunk is dumped into CC at bus speed: no tone of any length survives
    assert all(e - s < 0.01 for s, e in segments(p.x, p.rate))


def test_dma_paced_by_a_timer_at_the_wrong_rate(play):
    # pacing timer 0 programmed by someone else to clk_sys * 1/4000 (31.25 kHz)
    def patch(sb):
        sb.hw.reg_write(DMA + sim_rp2.MCU["rp2040"]["dma_timer0"], (1 << 16) | 4000)

    p = play("pico", "1", hooks=[_treq_hook(59)], patch=patch)
    lo, hi = _two_peaks(p)
    rate = p.backend.sample_rate
    assert lo == pytest.approx(697 * 31250 / rate, rel=2e-3)
    assert hi == pytest.approx(1209 * 31250 / rate, rel=2e-3)


def test_patched_firmware_constant_wrong_dreq_base(play):
    # the RP2350's DREQ_PWM_WRAP0 (32) on an RP2040 is I2C0_TX: the DMA never moves
    def patch(sb):
        mod = sb.load("tonebridge_fw.backends.pwm_dma_rp2")
        mod._MCU["rp2040"] = (0x40050000, 8, 32)

    with pytest.raises(RuntimeError, match="never finished"):
        play("pico", "1", patch=patch)


def test_patched_firmware_constant_wrong_pwm_base(play):
    # the RP2350's PWM base on an RP2040: the slice is never set up, the line stays silent
    def patch(sb):
        mod = sb.load("tonebridge_fw.backends.pwm_dma_rp2")
        mod._MCU["rp2040"] = (0x400A8000, 12, 24)

    with pytest.raises(RuntimeError, match="never finished"):
        play("pico", "1", patch=patch)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_cc_written_as_32_bit_words(play):
    # DATA_SIZE 2 instead of 1: pairs of 10-bit samples land as one word, B half = next sample
    lsb, width = sim_rp2.MCU["rp2040"]["ctrl"]["size"]

    def hook(a, v):
        off = a - DMA
        if 0 <= off < 0x40 * 12 and off % 0x40 in (0x0C, 0x10):
            return (v & ~(3 << lsb)) | (2 << lsb)
        return v

    # each transfer now moves 4 bytes: the channel runs through its chunk at twice the pace
    # and past the end of the buffer. A real RP2040 would read whatever RAM follows into CC;
    # the simulator's bus faults there, and the firmware's main loop dies with it
    with pytest.raises(sim_rp2.BusFault, match="DMA read runs past the end of its buffer"):
        play("pico", "1", hooks=[hook])


def test_pico2_with_rp2040_dreq_numbers_stalls(play):
    # RP2040's DREQ_PWM_WRAP0 (24) on an RP2350 is SPI0_TX: nothing paces the DMA
    def patch(sb):
        mod = sb.load("tonebridge_fw.backends.pwm_dma_rp2")
        mod._MCU["rp2350"] = (0x400A8000, 12, 24)

    with pytest.raises(RuntimeError, match="never finished"):
        play("pico2", "1", patch=patch)


def test_pico2_with_rp2040_pwm_base_is_silent(play):
    def patch(sb):
        mod = sb.load("tonebridge_fw.backends.pwm_dma_rp2")
        mod._MCU["rp2350"] = (0x40050000, 8, 32)

    with pytest.raises(RuntimeError, match="never finished"):
        play("pico2", "1", patch=patch)
