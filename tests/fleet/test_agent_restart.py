"""An agent killed (kill -9) in the middle of a long sequence, its board (a simulated Pico in
its own `tonebridge sim` process behind a pseudo-terminal) playing on. While the agent is
away its line answers 503 at once; when it starts again on the same state file it
reconciles with the board, and the client's retry with the same key (through the front
end, which was not restarted) gets the answer recorded in the agent's store: the line
recording has every digit exactly once and the call reports the count."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from fleethelpers import cat_url, http, need_tools, wait_digits_sent, wait_line_ready
from tonebridge.analysis import decode_multimon, read_wav

HW = "e6614103e73f4a2b"
DIGITS = "1W2W3W4W5W6"


@pytest.mark.slow
def test_agent_killed_mid_sequence_retry_after_restart_plays_once(fleet):
    need_tools("multimon-ng")
    link, wav = fleet.tmp / "board", fleet.tmp / "line.wav"
    sim = subprocess.Popen(
        [sys.executable, "-m", "tonebridge.cli", "sim", "--board", "pico", "--hwid", HW,
         "--record", str(wav), "--link", str(link)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sim.stdout.readline().strip() == str(link)
        agent = fleet.agent("a1", sims=0, extra=["--port", str(link)])
        _, fe = fleet.frontend("f1")
        wait_line_ready(fe, "c-a1-1")
        url = cat_url(fe, "c-a1-1") + "/dtmf"
        key = {"Idempotency-Key": "pin-entry-42"}
        with http() as h:
            r = h.post(url, json={"dtmfOut": DIGITS}, headers=key)
            assert r.status_code == 200, r.text
            time.sleep(1.6)  # two digits out, four to go
            agent.kill()
            time.sleep(0.3)
            r = h.post(url, json={"dtmfOut": DIGITS}, headers={"Idempotency-Key": "other"})
            assert r.status_code == 503 and "offline" in r.json()["message"], r.text
            fleet.agent("a1", sims=0, extra=["--port", str(link)])
            wait_line_ready(fe, "c-a1-1")
            r = h.post(url, json={"dtmfOut": DIGITS}, headers=key)
            assert r.status_code == 200, r.text
            assert r.headers.get("Idempotent-Replayed") == "true"  # the agent's record answered
            data = wait_digits_sent(fe, "c-a1-1", 6)
            assert data["dtmfDigitsSent"] == 6, data
            assert data["lineHardwareId"] == HW
            time.sleep(1.0)
            assert h.get(cat_url(fe, "c-a1-1")).json()["dtmfDigitsSent"] == 6
    finally:
        fleet.close()
        sim.terminate()
        sim.wait(20)
    x, rate = read_wav(wav)
    assert decode_multimon(x, rate) == "123456"
