"""The analog design as circuits (hw/spice/), simulated with ngspice (the component values
are hw/filter.json's: tests/hw/test_filter_values.py).

- the transmit chain (tx_pwm.cir, op-amps as MCP6002 macromodels): passband ripple 697-1633 Hz
  within 0.5 dB, the PWM carrier at least 60 dB down at the firmware's carrier frequencies
  (RP2040 and RP2350), every DTMF tone on the line within the stated level (-11 dBm low
  group, -9 dBm high group, +-0.5 dB) with the firmware's own renderer gains;
- the simulator's model of the chain (tonebridge.sim.analog) against the netlist: AC response
  within 0.1 dB across 200-4000 Hz, and a transient of a real PWM burst (the firmware's duty
  values as pulse edges) matching sample for sample;
- the receive hybrid (rx_hybrid.cir): the board's own transmit signal at least 20 dB down at
  RX (trans-hybrid loss, 300-3400 Hz), the far end's signal at RX within 1 dB of its level on
  the line.
"""

import math

import numpy as np
import pytest
from tonebridge import spice
from tonebridge.analysis import fit_tones
from tonebridge.sim.analog import OutputChain, load_filter_spec, response
from tonebridge_fw import outchain
from tonebridge_fw.keypad import COL_HZ, ROW_HZ
from tonebridge_fw.synth import Renderer

pytestmark = pytest.mark.skipif(
    not spice.available() and not __import__("os").environ.get("CI"),
    reason="ngspice not installed (make setup installs it)",
)

DTMF = list(ROW_HZ) + list(COL_HZ)
LOW_DBM, HIGH_DBM, LEVEL_TOL_DB = -11.0, -9.0, 0.5


def _backend_module():
    # the rp2 backend imports machine/rp2: load it as a simulated board does
    from tonebridge.sim import SimBoard, VirtualClock

    sb = SimBoard("pico", VirtualClock(), run_main=False)
    try:
        return sb.load("tonebridge_fw.backends.pwm_dma_rp2")
    finally:
        sb.close()


_PWM = _backend_module()


def carrier_hz(clk_hz):
    """The rp2 backend's PWM carrier = sample rate, from its own registers' arithmetic."""
    top = (1 << _PWM.BITS) - 1
    div16 = _PWM.pwm_divider(clk_hz, top, _PWM.TARGET_RATE)
    return clk_hz * 16 / (div16 * 2 * (top + 1))


# ---------------------------------------------------------------- transmit chain
@pytest.fixture(scope="module")
def tx_ac():
    freqs = np.geomspace(200, 4000, 41)
    extra = [carrier_hz(125_000_000), carrier_hz(150_000_000), 1000.0]
    allf = np.concatenate([freqs, DTMF, extra])
    h = spice.ac("tx_pwm.cir", "PIN", "LINE", allf)
    n = len(freqs)
    return {
        "freqs": freqs,
        "sweep": h[:n],
        "dtmf": h[n : n + 8],
        "carrier": h[n + 8 : n + 10],
        "ref": h[n + 10],
    }


@pytest.mark.slow
def test_passband_ripple_697_to_1633_within_half_a_db(tx_ac):
    db = 20 * np.log10(np.abs(tx_ac["dtmf"]))
    assert db.max() - db.min() <= 0.5, np.round(db, 3)


def test_pwm_carrier_at_least_60_db_down(tx_ac):
    ref = abs(tx_ac["ref"])
    carriers = (carrier_hz(125_000_000), carrier_hz(150_000_000))
    for f, h in zip(carriers, tx_ac["carrier"], strict=True):
        att = 20 * math.log10(ref / abs(h))
        assert att >= 60.0, (f, round(att, 1))


def test_simulator_chain_matches_the_netlist_within_0_1_db(tx_ac):
    sim = response(load_filter_spec(), tx_ac["freqs"])
    diff = 20 * np.log10(np.abs(sim) / np.abs(tx_ac["sweep"]))
    assert np.max(np.abs(diff)) <= 0.1, np.round(diff, 3)


def _line_dbm(amp_pin_v, h):
    v_rms = amp_pin_v * abs(h) / math.sqrt(2)
    return 10 * math.log10(v_rms**2 / 600 / 1e-3)


def test_line_level_per_tone_in_dbm_into_600_ohm(tx_ac):
    # the firmware's renderer as the rp2 backend makes it: its per-tone gains are the duty
    # amplitudes (1/64 counts of 1024); the netlist gives the rest of the way to the line
    fs = carrier_hz(125_000_000)
    r = Renderer((125_000_000 * 16, 32768), bits=10, shaping=True, response=outchain.response(fs))
    vdd = load_filter_spec()["vdd_v"]
    for i, f in enumerate(ROW_HZ):
        amp = r._g_row[i] / 64 / 1024 * vdd
        assert abs(_line_dbm(amp, tx_ac["dtmf"][i]) - LOW_DBM) <= LEVEL_TOL_DB, f
    for i, f in enumerate(COL_HZ):
        amp = r._g_col[i] / 64 / 1024 * vdd
        assert abs(_line_dbm(amp, tx_ac["dtmf"][4 + i]) - HIGH_DBM) <= LEVEL_TOL_DB, f


def _pwm_pin(duty, period_s, m):
    """The phase-correct pin as PWL points (edges 2 ns) and as m area-exact sub-samples per
    period (the simulator's input form): high for CC ticks at each end of the period."""
    ticks = 2 * 1024
    segs = []  # (start time, level) of every stretch
    sub = np.empty((len(duty), m))
    j = np.arange(m, dtype=float)
    for k, cc in enumerate(duty):
        t0 = k * period_s
        segs += [
            (t0, 3.3 if cc > 0 else 0.0),
            (t0 + cc / ticks * period_s, 0.0),
            (t0 + (ticks - cc) / ticks * period_s, 3.3 if cc > 0 else 0.0),
        ]
        h = cc / ticks * m
        sub[k] = np.clip(h - j, 0, 1) + np.clip(j + 1 - (m - h), 0, 1)
    pts = [(0.0, 0.0)]
    level = 0.0
    for t, v in segs:
        if v != level:
            pts += [(max(t, pts[-1][0] + 1e-12), level), (t + 2e-9, v)]
            level = v
    pts.append((len(duty) * period_s, level))
    return np.array(pts), 3.3 * sub.ravel()


class _Capture:
    def __init__(self):
        self.parts = []

    def add_segment(self, source, start_us, rate, volts):
        self.parts.append(np.asarray(volts))


@pytest.mark.slow
def test_transient_of_a_real_pwm_burst_matches_the_simulator():
    fs = carrier_hz(125_000_000)
    r = Renderer((125_000_000 * 16, 32768), bits=10, shaping=True, response=outchain.response(fs))
    duty = list(r.render([(None, 4), ("5", 30), (None, 4)]))
    period = 1.0 / fs
    m = 16
    pwl, sub = _pwm_pin(duty, period, m)
    t_stop = len(duty) * period
    t, v = spice.tran("tx_pwm.cir", "PIN", pwl, "LINE", t_stop, 1e-6, max_step=2e-7)
    cap = _Capture()
    OutputChain(cap, "pwm").feed(0.0, fs * m, sub)
    y = np.concatenate(cap.parts)
    ts = np.arange(y.size) / (fs * m)
    # the sub-sample grid resolves edges to 1/16 period: compare the audio band
    vs = np.interp(ts, t, v)
    rate = fs * m
    from scipy import signal

    sos = signal.butter(6, 8000, fs=rate, output="sos")
    a = signal.sosfiltfilt(sos, y)
    b = signal.sosfiltfilt(sos, vs)
    sel = (ts > 0.010) & (ts < t_stop - 0.006)
    err = np.sqrt(np.mean((a[sel] - b[sel]) ** 2)) / np.sqrt(np.mean(b[sel] ** 2))
    assert err < 0.01, err
    # and the tones' levels on the line agree within 0.05 dB
    dec = 8
    fa = fit_tones(a[sel][::dec], rate / dec)
    fb = fit_tones(b[sel][::dec], rate / dec)
    assert abs(20 * math.log10(fa.a_low / fb.a_low)) < 0.05
    assert abs(20 * math.log10(fa.a_high / fb.a_high)) < 0.05
    assert abs(fa.f_low - fb.f_low) < 0.01 and abs(fa.f_high - fb.f_high) < 0.01


# ---------------------------------------------------------------- receive hybrid
def test_hybrid_cancels_the_boards_own_signal_and_passes_the_far_end():
    freqs = np.geomspace(300, 3400, 12)
    rx_tx = spice.ac("rx_hybrid.cir", "U2B", "RX", freqs, extra="VFAR FAR 0 0")
    line_tx = spice.ac("rx_hybrid.cir", "U2B", "LINE", freqs, extra="VFAR FAR 0 0")
    thl = 20 * np.log10(np.abs(line_tx) / np.abs(rx_tx))
    assert thl.min() >= 20.0, np.round(thl, 1)
    rx_far = spice.ac("rx_hybrid.cir", "FAR", "RX", freqs, extra="VTX U2B 0 0")
    line_far = spice.ac("rx_hybrid.cir", "FAR", "LINE", freqs, extra="VTX U2B 0 0")
    gain = 20 * np.log10(np.abs(rx_far) / np.abs(line_far))
    assert np.max(np.abs(gain)) <= 1.0, np.round(gain, 2)
