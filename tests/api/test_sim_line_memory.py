"""A long-running `serve` with simulated boards keeps what it needs of each line, not all of it:
the line signal older than RECORD_KEEP_S is forgotten between jobs (api/recording.trim), so a
line held off-hook does not grow by ~2 MB a second for as long as serve runs. The trim was
there since the recordings came in, but asked the recorder for a method it never had, so
nothing was ever forgotten (the demo serve grew from 141 to 377 MB over six sends)."""

from __future__ import annotations

import time
from pathlib import Path

from apihelpers import need_tools
from tonebridge.analysis.multimon import decode_multimon
from tonebridge.api import line as api_line
from tonebridge.api import recording
from tonebridge.api.recording import sim_of

USER, PW = "ops", "ops-pw"
CALL = "c-mem"


def _tweak(cfg):
    cfg.lines[0].call_id = CALL
    cfg.lines[0].tone_ms, cfg.lines[0].gap_ms = 40, 40
    cfg.rate, cfg.burst = 100.0, 100


def _oldest_us(board, lock):
    with lock:
        starts = [segs[0][0] for segs in board.line.segments() if segs]
        return min(starts) if starts else None, board.now_us()


def test_serve_forgets_line_signal_older_than_it_keeps(start_server, monkeypatch):
    need_tools("multimon-ng")
    monkeypatch.setattr(recording, "RECORD_KEEP_S", 1)
    monkeypatch.setattr(api_line, "TRIM_EVERY_S", 0.3)
    srv = start_server(ports=["sim://pico"], auth=[f"{USER}:{PW}"], tweak=_tweak)
    srv.wait_boards()
    board, lock = sim_of(srv.bridge.board.lines[0].client)
    url = f"/v1/users/{USER}/calls/{CALL}/dtmf"
    with srv.client(USER, PW) as http:
        for digits in ("1234", "5678", "90*#"):
            assert http.post(url, json={"dtmfOut": digits}).status_code == 200
            time.sleep(1.2)
        calls = http.get(f"/v1/users/{USER}/calls/{CALL}").json()
        assert calls["dtmfDigitsSent"] == 12, calls
    deadline = time.monotonic() + 10
    while True:
        oldest, now = _oldest_us(board, lock)
        if oldest is not None and now - oldest < 2.5e6:
            break
        assert time.monotonic() < deadline, (oldest, now)
        time.sleep(0.2)
    assert now > 3.5e6  # the board ran longer than what is kept
    # each send's recording is whole (written before any trim), decoded by multimon-ng
    recs = sorted(Path(srv.cfg.record_dir).glob(f"{CALL}-*.wav"))
    assert [decode_multimon(str(p)) for p in recs] == ["1234", "5678", "90*#"], recs
