"""`make fleet` (tonebridge.fleet.demo): Mosquitto with generated users and ACL, two agents,
a simulated Pico W on the broker behind a third, one front end; every curl line it prints
works (the Pico W's recording decodes), and SIGTERM stops everything it started."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest
from fleethelpers import need_mosquitto
from tonebridge.fleet.broker import free_port


@pytest.mark.slow
def test_make_fleet_serves_both_agents_lines_and_stops_cleanly(tmp_path):
    need_mosquitto()
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "tonebridge.fleet.demo", "--listen", f"127.0.0.1:{port}",
         "--dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        out = []
        deadline = time.monotonic() + 120
        for line in demo.stdout:
            out.append(line)
            if "Ctrl-C stops" in line:
                break
            assert time.monotonic() < deadline, "".join(out)
        curls = [line.split() for line in out if "curl -X POST" in line]
        assert len(curls) == 3, "".join(out)
        with httpx.Client(auth=("demo", "tonebridge-demo"), timeout=30) as h:
            for words in curls:
                r = h.post(words[3], json={"dtmfOut": "1234#"})
                assert r.status_code == 200, r.text
            wifi_call = curls[2][3].rsplit("/", 1)[0]  # .../calls/c-agent-w-1 (the Pico W's)
            end = time.monotonic() + 30
            while h.get(wifi_call).json().get("dtmfDigitsSent", 0) < 5:
                assert time.monotonic() < end, h.get(wifi_call).text
                time.sleep(0.1)
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(30)
    assert "".join(out).count("curl -X POST") == 3
    from tonebridge.analysis import decode_multimon

    assert decode_multimon(tmp_path / "demo" / "recordings" / "wifi-line.wav") == "1234#"
    children = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True
    )
    assert children.stdout.strip() == "", children.stdout  # broker and agents are gone too
