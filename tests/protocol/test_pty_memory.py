"""A simulated board behind a pty (`tonebridge sim`) without `record=` keeps only the recent
line signal (PtyBridge.KEEP_S): nobody reads the past, and a line held off-hook grows by ~2 MB
a second. With `record=` it keeps all of it, for the recording written when it stops."""

from __future__ import annotations

import time

import pytest
from tonebridge.link.client import BoardClient
from tonebridge.link.pty import PtyBridge


def _oldest_and_now(bridge):
    with bridge.port.lock:
        starts = [segs[0][0] for segs in bridge.board.line.segments() if segs]
        return (min(starts) if starts else None), bridge.board.now_us()


@pytest.mark.parametrize("record", [False, True])
def test_a_pty_board_without_record_keeps_only_the_recent_line(record, tmp_path, monkeypatch):
    monkeypatch.setattr(PtyBridge, "KEEP_S", 0.5, raising=False)
    monkeypatch.setattr(PtyBridge, "TRIM_EVERY_S", 0.2, raising=False)
    url = f"sim://pico?record={tmp_path / 'line.wav'}" if record else "sim://pico"
    bridge = PtyBridge(url)
    path = bridge.start()
    try:
        c = BoardClient(path, timeout=5.0)
        c.open()
        try:
            first = None
            for digits in ("12", "34", "56", "78"):
                assert c.send(digits, tone_ms=40, gap_ms=40).played == 2
                oldest, _ = _oldest_and_now(bridge)
                first = oldest if first is None else first
                time.sleep(0.4)
            c.send("9", tone_ms=40, gap_ms=40)  # (a write after the last pause: a trim)
            oldest, now = _oldest_and_now(bridge)
        finally:
            c.close()
    finally:
        bridge.stop()
    if record:
        assert oldest == first  # everything, for the recording
    else:
        assert now - oldest < 1.5e6, (oldest, now)  # KEEP_S, a trim period, one send
        assert oldest > first
