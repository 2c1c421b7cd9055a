"""A line is bound to its board's hardware id, over real pseudo-terminals and pyserial.

Board A is unplugged and board B appears under the very same path (as /dev/ttyACM0 does
when another board is plugged in): nothing is played on B, the line reports the fault, and
clients of both APIs get an error naming it. A comes back under another path: the line
finds it by its hardware id and plays there again.
"""

from __future__ import annotations

import time

import httpx
import pytest
from tonebridge.analysis import decode_multimon
from tonebridge.link.pty import PtyBridge

USER, PW = "ops", "ops-pw"
CALL = "c-id"
HW_A, HW_B = "e6614103e73f4a2b", "0123456789abcdef"
RATE = 22050


def wait_until(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def heard(bridge):
    board = bridge.board
    with bridge.port.lock:
        x = board.line.samples(RATE, start_us=0, end_us=board.now_us())
    return decode_multimon(x, RATE), float(abs(x).max()) if x.size else 0.0


@pytest.mark.slow
def test_a_swapped_board_is_refused_and_the_right_one_found_again(start_server, tmp_path):
    byid = tmp_path / "by-id"
    byid.mkdir()
    path = str(tmp_path / "ttyACM0")
    a = PtyBridge(f"sim://pico?hwid={HW_A}", link_path=path)
    a.start()
    b = PtyBridge(f"sim://pico?hwid={HW_B}", link_path=path)

    def tweak(cfg):
        cfg.lines[0].call_id = CALL
        cfg.lines[0].search = [str(byid / "*")]
        cfg.accept_timeout_ms = 1500
        cfg.rate, cfg.burst = 100.0, 100

    srv = start_server(ports=[path], auth=[f"{USER}:{PW}"], tweak=tweak)
    try:
        srv.wait_boards()
        line = srv.bridge.board.lines[0]
        with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
            cat = f"/v1/users/{USER}/calls/{CALL}"
            assert http.post(cat + "/dtmf", json={"dtmfOut": "1"}).status_code == 200
            assert http.get(cat).json()["lineHardwareId"] == HW_A  # bound to the first board
            assert srv.bridge.store.line_hwid(line.device_id) == HW_A  # and recorded
            wait_until(lambda: heard(a)[0] == "1", what="1 on board A")

            a.unplug()  # board A goes away, board B takes its path
            b.start()
            wait_until(lambda: "wrong board" in (line.fault or ""), what="the line's fault")
            fault = http.get(cat).json()["lineFault"]
            assert f"wrong board on {path}" in fault and HW_A in fault and HW_B in fault
            (dev,) = http.get("/api/v2/me/devices").json()["devices"]
            assert dev["deviceState"] == "Inactive" and dev["hardwareId"] == HW_A
            assert "wrong board" in dev["fault"]

            t0 = time.monotonic()
            r = http.post(cat + "/dtmf", json={"dtmfOut": "5"})
            assert r.status_code == 503 and r.json()["code"] == "send-dtmf-failure"
            assert "wrong board" in r.json()["message"] and HW_B in r.json()["message"]
            assert "(0 of 1 digits played)" in r.json()["message"]
            r = http.post(
                f"/api/v2/me/calls/{CALL}", json={"operationName": "SendDtmf", "digits": "6"}
            )
            assert r.status_code == 503 and r.json()["statusCode"] == 4
            assert "wrong board" in r.json()["statusMessage"]
            assert time.monotonic() - t0 < 2 * (1.5 + 2.0)  # each within the bound (+ margin)
            # nothing reached board B's line, and it never got a SEND
            time.sleep(0.3)
            digits, peak = heard(b)
            assert digits == "" and peak < 1e-3
            assert b"SEND" not in bytes(b.board.link.transcript_to_host)

            a.replug(str(byid / "usb-MicroPython_Board_e6614103e73f4a2b-if00"))  # new path
            wait_until(lambda: line.fault is None, what="board A found again")
            assert line.path.startswith(str(byid))
            assert http.post(cat + "/dtmf", json={"dtmfOut": "2"}).status_code == 200
            wait_until(lambda: heard(a)[0] == "12", what="12 on board A")
            assert heard(b)[0] == ""
            (dev,) = http.get("/api/v2/me/devices").json()["devices"]
            assert dev["deviceState"] == "Active" and dev["port"] == line.path
    finally:
        srv.stop()
        a.stop()
        b.stop()
    sends = [t for _, t in srv.factory.sends]
    # "5" and "6" reach the link only while the link has been down for less than the
    # bound (after that, sends fail at once); either way they never reached a board
    assert sends[0] == "1" and sends[-1] == "2" and set(sends[1:-1]) <= {"5", "6"}
