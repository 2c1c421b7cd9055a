"""DMA transfers that may wait (rp2_dma.DmaEngine.deferrable): a main-loop pass that only reads
a channel's TRANS_COUNT / busy bit gets counted values, and the transfers run at the next
completion, register write or flush. Nothing the firmware sees and nothing on the line may
differ from running every transfer at every clock move."""

import numpy as np
from tonebridge.sim import SimBoard, VirtualClock, play_on_board
from tonebridge.sim.rp2_dma import DmaEngine


def _play(monkeypatch, defer: bool):
    runs = []
    real_run = DmaEngine.run

    def run(self, limit):
        runs.append(limit)
        return real_run(self, limit)

    monkeypatch.setattr(DmaEngine, "run", run)
    if not defer:
        monkeypatch.setattr(DmaEngine, "deferrable", lambda self, limit: False)
    sb = SimBoard("pico", VirtualClock())
    try:
        res = play_on_board(sb, "1#D", "catapult", 40, 40, lead_ms=20)
        x = sb.recorder.samples(48000, start_us=0, end_us=res["end_us"])
        return x, res["events"], [f[:2] for f in res["frames"]], len(runs)
    finally:
        sb.close()
        monkeypatch.undo()


def test_deferred_transfers_change_nothing_the_firmware_or_the_line_sees(monkeypatch):
    x0, ev0, fr0, runs0 = _play(monkeypatch, defer=False)
    x1, ev1, fr1, runs1 = _play(monkeypatch, defer=True)
    assert ev1 == ev0  # every progress event at the same board time (the firmware's counts)
    assert fr1 == fr0
    assert x1.shape == x0.shape and np.array_equal(x1, x0)  # the same line, sample for sample
    # and the transfers did wait: 56 runs of 70 (the main loop passes at chunk ends and step
    # edges while playing, app.py; with a pass every ms it was 56 of 218)
    assert runs1 < runs0 - 5, (runs1, runs0)
