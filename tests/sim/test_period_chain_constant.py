"""The analog chain's shortcuts for a pin left at one duty (sim/period_chain.py
``_run_constant``): stretches the line switches cut off advance in closed form, settled ones
repeat the settled period. They must give the line the per-period update gives, and make an
idle board's catch-up cost independent of how long it idled (a paced board that idled 40 s
spent 1.5-2 s of CPU and 300 MB on its next SEND and missed the host's 0.8 s link bound:
"the board does not answer", a 503 on the API)."""

import numpy as np
import pytest
from tonebridge.sim import SimBoard, VirtualClock, play_on_board
from tonebridge.sim.analog import load_filter_spec
from tonebridge.sim.line_recorder import LineRecorder
from tonebridge.sim.period_chain import PeriodChain

PERIOD_S = 1 / 61_035.15625  # the pico's carrier
FULL = 1024
RATE = 48_000


def _per_period_only(ch):
    """The chain without the constant-input shortcuts: every period updated one by one."""

    def run(t, index, scale, start_us, period_s, parts):
        for k0 in range(0, index.size, ch.chunk):
            k1 = min(index.size, k0 + ch.chunk)
            ch._run_full(t, index[k0:k1], scale, start_us + k0 * period_s * 1e6, period_s, parts)

    ch._run_constant = run


def _play(shortcuts: bool):
    """A tone, 0.6 s at mid-scale with the line muted for 0.1-0.4 s of it, a second tone,
    then 4 s at mid-scale (settles), a third tone: the line at 48 kHz and the chain."""
    rec = LineRecorder(drop_gated=True)
    ch = PeriodChain(rec, "pwm", load_filter_spec())
    if not shortcuts:
        _per_period_only(ch)
    p_us = PERIOD_S * 1e6
    tone = (512 + 300 * np.sin(2 * np.pi * 941 * PERIOD_S * np.arange(4000))).astype(np.int64)
    t = 0.0
    rec.set_gate("mute", 0.0, True)
    for quiet_s, mute in ((0.6, (0.1, 0.4)), (4.0, None), (0.0, None)):
        ch.pwm(t, PERIOD_S, FULL, False, False, tone, 3.3)
        t += tone.size * p_us
        if mute:
            rec.set_gate("mute", t + mute[0] * 1e6, False)
            rec.set_gate("mute", t + mute[1] * 1e6, True)
        n = int(quiet_s / PERIOD_S)
        if n:
            ch.pwm(t, PERIOD_S, FULL, False, False, np.full(n, FULL // 2), 3.3)
            t += n * p_us
    return rec.samples(RATE, 0.0, t), ch


def test_a_constant_duty_gives_the_line_the_per_period_update_gives():
    ref, ref_ch = _play(shortcuts=False)
    got, ch = _play(shortcuts=True)
    assert ch.cut_periods > 0.25 * 61_035 and ch.settled_periods > 61_035  # both were used
    assert ch.periods == ref_ch.periods
    assert got.shape == ref.shape
    # volts; the tones are ~0.5 V, the coupling transient after a tone ~1e-4 V
    assert np.max(np.abs(got - ref)) < 1e-9, np.max(np.abs(got - ref))
    assert np.max(np.abs(ch.z - ref_ch.z)) < 1e-9


@pytest.mark.parametrize("seed", ["closed-form", "settled-too-early"])
def test_the_comparison_fails_when_a_shortcut_is_wrong(seed, monkeypatch):
    if seed == "closed-form":  # one period too many in the cut stretch's closed form
        orig = LineRecorder.note_cut

        def note_cut(self, start_us, end_us, samples):
            orig(self, start_us, end_us, samples)
            self.last_chain.z = self.last_chain.z * self.last_phi

        monkeypatch.setattr(LineRecorder, "note_cut", note_cut)
        orig_const = PeriodChain._run_constant

        def run_constant(self, t, *a):
            self.recorder.last_chain, self.recorder.last_phi = self, t.phi
            orig_const(self, t, *a)

        monkeypatch.setattr(PeriodChain, "_run_constant", run_constant)
    else:  # "settled" while the coupling's transient is still 1e-6 of a volt away
        monkeypatch.setattr(PeriodChain, "settled_v", 1e-6)
    ref, _ = _play(shortcuts=False)
    got, _ = _play(shortcuts=True)
    assert np.max(np.abs(got - ref)) > 1e-9


def test_an_idle_board_does_not_update_its_line_period_by_period():
    """A Pico idles 20 s after a send (the line muted: the tone pin at mid-scale is cut off):
    its chain runs no per-period update for that stretch (the old model ran all 1.2 million
    periods), and its next send plays and is heard as before."""
    sb = SimBoard("pico", VirtualClock())
    try:
        (ch,) = [o.chain for o in sb.hw.outputs.values()]
        play_on_board(sb, "1", "catapult", 40, 40, lead_ms=50)

        def per_period():  # periods run through the per-period update
            return ch.periods - ch.settled_periods - getattr(ch, "cut_periods", 0)

        full0 = per_period()
        sb.run_for(20_000)
        sb.line.flush()
        full = per_period() - full0
        assert full < 61_035 // 2, full  # at most the tail before the line was muted
        assert ch.cut_periods > 19 * 61_035, ch.cut_periods
        res = play_on_board(sb, "2", "catapult", 40, 40, lead_ms=50, rid="2")
        done = [ev for _t, ev in res["events"] if ev[0] == "done"]
        assert done, res["events"]
    finally:
        sb.close()
