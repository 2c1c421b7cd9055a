"""A held ADC ring channel (rp2_dma.DmaEngine.held): the receive path's DMA ring makes its
transfers only when the CPU looks at the channel or writes a register that could change them.
Nothing the firmware sees (the ring's samples, WRITE_ADDR, its progress events) and nothing on
the line may differ from running the ring's transfers at every catch-up."""

import numpy as np
from tonebridge.sim import SimBoard, VirtualClock, play_on_board
from tonebridge.sim.rp2_adc import AdcModel
from tonebridge.sim.rp2_dma import DmaEngine


def _play(monkeypatch, lazy: bool):
    heard = []  # every batch of ADC codes the model made, with their instants
    ring_runs = []
    real_codes, real_transfer = AdcModel._codes, DmaEngine.transfer

    def codes(self, t_us):
        out = real_codes(self, t_us)
        heard.append((np.array(t_us), out.copy()))
        return out

    def transfer(self, ch, tt):
        if self.is_ring(ch):
            ring_runs.append(tt.size)
        return real_transfer(self, ch, tt)

    monkeypatch.setattr(AdcModel, "_codes", codes)
    monkeypatch.setattr(DmaEngine, "transfer", transfer)
    monkeypatch.setattr(DmaEngine, "lazy_rings", lazy)
    sb = SimBoard("pico", VirtualClock())
    try:
        res = play_on_board(sb, "1#D", "catapult", 40, 40, lead_ms=20)
        sb.run_for(30)  # the receiver's view of the tail
        x = sb.recorder.samples(48000, start_us=0, end_us=res["end_us"])
        ring = bytes(sb.app.ears.ear.buf)
        return x, res["events"], [f[:2] for f in res["frames"]], heard, ring_runs, ring
    finally:
        sb.close()
        monkeypatch.undo()


def test_held_ring_changes_nothing_the_firmware_or_the_line_sees(monkeypatch):
    x0, ev0, fr0, heard0, runs0, ring0 = _play(monkeypatch, lazy=False)
    x1, ev1, fr1, heard1, runs1, ring1 = _play(monkeypatch, lazy=True)
    assert ev1 == ev0 and fr1 == fr0
    assert x1.shape == x0.shape and np.array_equal(x1, x0)
    # the same samples, at the same instants, looked at in the same batches
    assert len(heard1) == len(heard0) > 10
    for (t0, c0), (t1, c1) in zip(heard0, heard1, strict=True):
        assert np.array_equal(t1, t0) and np.array_equal(c1, c0)
    assert ring1 == ring0 and len(ring0) > 0
    # and the ring's transfers did wait: one run per look instead of one per catch-up
    assert sum(runs1) == sum(runs0)
    assert len(runs1) < len(runs0) * 0.7, (len(runs1), len(runs0))
