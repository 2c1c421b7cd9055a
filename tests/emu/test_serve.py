"""`tonebridge serve --port` with the emulated Pico as its board: a Catapult `dtmfOut` request
through the HTTP API puts the digits on the emulated chip's line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tonebridge.analysis import decode_multimon, read_wav

pytestmark = pytest.mark.emu
REPO = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_port_drives_the_emulated_board(emu_cli, provisioned, tmp_path):
    wav = tmp_path / "line.wav"
    cli = emu_cli("--flash", str(provisioned()), "--record", str(wav))
    port = free_port()
    # the emulator runs the chip at ~1x real time on an idle machine and slower under load;
    # the 3 s acceptance bound is for silicon, so give the emulated chip more (config file)
    conf = tmp_path / "serve.toml"
    conf.write_text("[limits]\naccept_timeout_ms = 20000\n")
    base = f"http://127.0.0.1:{port}/v1/users/ops"
    serve = subprocess.Popen(
        [sys.executable, "-m", "tonebridge.cli", "serve", "--port", cli.path,
         "--auth", "ops:pw-1", "--listen", f"127.0.0.1:{port}", "--config", str(conf)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        calls = None
        deadline = time.monotonic() + 60
        while calls is None:
            assert serve.poll() is None, serve.stderr.read()
            assert time.monotonic() < deadline, "serve did not come up"
            try:
                r = httpx.get(f"{base}/calls", auth=("ops", "pw-1"), timeout=5)
                if r.status_code == 200 and r.json():
                    calls = r.json()
            except httpx.HTTPError:
                time.sleep(0.2)
        call_id = calls[0]["id"]
        r = httpx.post(
            f"{base}/calls/{call_id}/dtmf",
            auth=("ops", "pw-1"),
            json={"dtmfOut": "47#"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        # Catapult answers on acceptance; the board reports each digit as it has played it
        deadline = time.monotonic() + 60
        while (
            httpx.get(f"{base}/calls/{call_id}", auth=("ops", "pw-1")).json()["dtmfDigitsSent"] < 3
        ):
            assert time.monotonic() < deadline, "the board never reported 3 digits played"
            time.sleep(0.2)
        time.sleep(0.3)  # the last tone's gap and the analog chain's tail reach the recording
    finally:
        serve.terminate()
        serve.wait(30)
    assert cli.stop() == 0
    x, rate = read_wav(wav)
    assert decode_multimon(x, rate) == "47#"
