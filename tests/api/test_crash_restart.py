"""kill -9 of `tonebridge serve` in the middle of a long sequence; the board (a simulated
Pico in its own `tonebridge sim` process, behind a pseudo-terminal) plays on. serve starts
again on the same state file and reconciles with the board; the client retries with the
same idempotency key and gets the recorded answer. The line recording, decoded by
multimon-ng, has every digit exactly once; GET (Catapult) and GWS report the count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from apihelpers import need_tools, wait_for_file
from tonebridge.analysis import decode_multimon, read_wav

USER, PW = "ops", "ops-pw"
CALL = "c-crash"
HW = "e6614103e73f4a2b"
DIGITS = "1W2W3W4W5W6"  # 6 digits over about 5.6 s


def start_serve(conf, state):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tonebridge.cli",
            "serve",
            "--config",
            str(conf),
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if "listening on " in line:
            base = line.split("listening on ", 1)[1].strip()
            break
        assert time.monotonic() < deadline, "serve did not start"
    else:
        raise AssertionError("serve exited before listening")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # never let its pipe fill
    return proc, base


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_kill_9_mid_sequence_then_retry_after_restart(tmp_path):
    need_tools("multimon-ng")
    link = tmp_path / "board"
    wav = tmp_path / "line.wav"
    sim = subprocess.Popen(
        [sys.executable, "-m", "tonebridge.cli", "sim", "--board", "pico", "--hwid", HW,
         "--record", str(wav), "--link", str(link)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    serve = None
    try:
        assert sim.stdout.readline().strip() == str(link)
        conf = tmp_path / "serve.toml"
        conf.write_text(
            f'listen = "127.0.0.1:0"\nauth = ["{USER}:{PW}"]\n'
            f'[[lines]]\nurl = "{link}"\ncall_id = "{CALL}"\n'
        )
        state = tmp_path / "state.db"
        serve, base = start_serve(conf, state)
        key = {"Idempotency-Key": "pin-entry-42"}
        cat = f"{base}/v1/users/{USER}/calls/{CALL}"
        with httpx.Client(auth=(USER, PW), timeout=30) as http:
            deadline = time.monotonic() + 20
            while True:  # the line opens its board in the background
                r = http.post(cat + "/dtmf", json={"dtmfOut": DIGITS}, headers=key)
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert r.status_code == 200, r.text
            time.sleep(1.6)  # two digits out, four to go
            os.kill(serve.pid, signal.SIGKILL)
            serve.wait(10)

            serve, base = start_serve(conf, state)
            cat = f"{base}/v1/users/{USER}/calls/{CALL}"
            r = http.post(cat + "/dtmf", json={"dtmfOut": DIGITS}, headers=key)
            assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
            deadline = time.monotonic() + 30
            while http.get(cat).json()["dtmfDigitsSent"] != 6:
                assert time.monotonic() < deadline, http.get(cat).json()
                time.sleep(0.2)
            assert http.get(cat).json()["lineHardwareId"] == HW  # tonebridge sim --hwid
            gws = http.get(f"{base}/api/v2/me/calls/{CALL}").json()
            assert gws["statusCode"] == 0 and gws["data"]["call"]["dtmfDigitsSent"] == 6
            # the same key again: still the recorded answer, still nothing sent
            r = http.post(cat + "/dtmf", json={"dtmfOut": DIGITS}, headers=key)
            assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
    finally:
        if serve is not None:
            stop(serve)
        stop(sim)
    x, rate = read_wav(wait_for_file(wav))
    assert decode_multimon(x, rate) == "123456"
