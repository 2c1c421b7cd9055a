"""A board that dies or drops off the link mid-sequence: every request in flight and every
new one is answered within the bound (accept_timeout) with the count of digits played, and
after the board is back nothing plays twice (over real pseudo-terminals)."""

from __future__ import annotations

import time

import httpx
import pytest
from apihelpers import SpyFactory
from tonebridge.analysis import decode_multimon, read_wav
from tonebridge.link.pty import PtyBridge

USER, PW = "ops", "ops-pw"
CALL = "c-f"
HW = "e6614103e73f4a2b"
BOUND_S = 1.5
MARGIN_S = 2.0  # a loaded 2-core machine
RATE = 22050


def wait_until(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def heard(bridge):
    with bridge.port.lock:
        x = bridge.board.line.samples(RATE, start_us=0, end_us=bridge.board.now_us())
    return decode_multimon(x, RATE)


def timed(fn):
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t


def serve(start_server, path):
    def tweak(cfg):
        cfg.lines[0].call_id = CALL
        cfg.accept_timeout_ms = int(BOUND_S * 1000)
        cfg.rate, cfg.burst = 100.0, 100

    return start_server(
        ports=[path], auth=[f"{USER}:{PW}"], tweak=tweak, factory=SpyFactory(reconnect_timeout=2.0)
    )


def bayeux(http, msg):
    r = http.post("/api/v2/notifications", json=[msg])
    assert r.status_code == 200
    return r.json()


def transcript(bridge):
    return bytes(bridge.board.link.transcript_to_host).decode("ascii", "replace")


def failures(http):
    return http.get(f"/v1/users/{USER}/calls/{CALL}").json().get("unreportedDtmfFailures", [])


@pytest.mark.slow
def test_board_dies_mid_sequence(start_server, tmp_path):
    path = str(tmp_path / "ttyACM0")
    wav = tmp_path / "first-board.wav"
    a = PtyBridge(f"sim://pico?hwid={HW}&record={wav}", link_path=path)
    a.start()
    srv = serve(start_server, path)
    again = None
    try:
        srv.wait_boards()
        cat = f"/v1/users/{USER}/calls/{CALL}/dtmf"
        with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
            # a GWS client on CometD (HTTP Basic only, as out of the box)
            hs = {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
            cid = bayeux(http, hs)[0]["clientId"]
            sub = {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/v2/me/calls"}
            assert bayeux(http, sub)[0]["successful"]
            bayeux(
                http,
                {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"},
            )
            assert http.post(cat, json={"dtmfOut": "1234567890"}).status_code == 200
            assert http.post(cat, json={"dtmfOut": "55"}).status_code == 200  # queued
            wait_until(
                lambda: "START 2" in bytes(a.board.link.transcript_to_host).decode(),
                what="3rd digit",
            )
            a.stop()  # the board dies (power lost): the pty goes, its recording is written

            r, took = timed(lambda: http.post(cat, json={"dtmfOut": "7"}))
            assert took < BOUND_S + MARGIN_S
            assert r.status_code == 503 and "(0 of 1 digits played)" in r.json()["message"]
            r, took = timed(
                lambda: http.post(
                    f"/api/v2/me/calls/{CALL}", json={"operationName": "SendDtmf", "digits": "8"}
                )
            )
            assert took < BOUND_S + MARGIN_S
            assert r.status_code == 503 and r.json()["statusCode"] == 4
            connect = {"channel": "/meta/connect", "clientId": cid, "advice": {"timeout": 0}}
            notes = [m["data"] for m in bayeux(http, connect) if m["channel"] == "/v2/me/calls"]
            failed = [n for n in notes if n["notificationType"] == "DtmfSendFailed"]
            assert any(
                n["accepted"] is False and (n["digitsPlayed"], n["digitsTotal"]) == (0, 1)
                for n in failed
            ), notes
            # the two accepted sequences end as failures, each with its own counts
            wait_until(lambda: len(failures(http)) == 2, what="two failures")
            first, second = failures(http)
            on_line = decode_multimon(*read_wav(wav))
            assert "1234567890".startswith(on_line) and len(on_line) >= 2
            assert first["dtmfOut"] == "1234567890"
            assert first["digitsPlayed"] <= len(on_line) <= first.get("digitsPlayedAtMost", 10)
            assert second["dtmfOut"] == "55" and second["digitsPlayed"] == 0

            # the board comes back (rebooted: it remembers nothing): nothing is resent
            again = PtyBridge(f"sim://pico?hwid={HW}", link_path=path)
            again.start()
            line = srv.bridge.board.lines[0]
            wait_until(lambda: line.fault is None, what="the board back")
            time.sleep(1.0)
            assert heard(again) == ""
            assert srv.bridge.store.seq_open(line.device_id) == []  # all reconciled
            # the next request reports the first failure, then the second; then it plays once
            assert http.post(cat, json={"dtmfOut": "9"}).status_code == 503
            assert http.post(cat, json={"dtmfOut": "9"}).status_code == 503
            assert http.post(cat, json={"dtmfOut": "9"}).status_code == 200
            wait_until(lambda: heard(again) == "9", what="9 on the board")
            time.sleep(0.5)
            assert heard(again) == "9"
    finally:
        srv.stop()
        a.stop()
        if again is not None:
            again.stop()


@pytest.mark.slow
def test_uart_board_unplugged_plays_on_and_is_reconciled(start_server, tmp_path):
    """The USB-UART adapter is pulled for longer than the link waits: the sequence is first
    reported as unknown; when the adapter is back, the board (which played on) says how it
    ended, and that is what the API reports. It never plays twice."""
    path = str(tmp_path / "ttyUSB0")
    a = PtyBridge(f"sim://pico?hwid={HW}", link_path=path)
    a.start()
    srv = serve(start_server, path)
    try:
        srv.wait_boards()
        cat = f"/v1/users/{USER}/calls/{CALL}"
        with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
            assert http.post(cat + "/dtmf", json={"dtmfOut": "1234W5678"}).status_code == 200
            wait_until(
                lambda: "START 1" in bytes(a.board.link.transcript_to_host).decode(),
                what="2nd digit",
            )
            a.unplug()
            wait_until(lambda: len(failures(http)) == 1, what="the failure")  # reconnect_timeout
            (f,) = failures(http)
            assert f["digitsPlayed"] < 8 and "outcome unknown" in f["message"]
            # the board plays on meanwhile (a sequence still playing when the link is back
            # would be cancelled: its failure was reported already)
            wait_until(lambda: "DONE 8" in transcript(a), what="the board done")
            a.replug(path)
            line = srv.bridge.board.lines[0]
            wait_until(lambda: srv.bridge.store.seq_open(line.device_id) == [], what="reconciled")
            wait_until(lambda: http.get(cat).json()["dtmfDigitsSent"] == 8, what="8 digits counted")
            (f,) = failures(http)  # not reported yet: it now carries the board's own count
            assert f["digitsPlayed"] == 8
            time.sleep(0.5)
            assert heard(a) == "12345678"  # once
    finally:
        srv.stop()
        a.stop()
