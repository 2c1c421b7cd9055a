"""Verified sends through the APIs: the board (a simulated Pico, which hears its line through
its ADC, or an ESP32 through its I2S ADC) confirms every digit; a broken line interface makes
the send fail like any other failure, with the digit not heard named, and both APIs carry the
verified count."""

from __future__ import annotations

import re
import time

import pytest
from tonebridge.api.recording import sim_of

USER, PW = "ops", "ops-pw"
CALL = "c-ver"


def _tweak(cfg):
    cfg.lines[0].call_id = CALL
    cfg.rate, cfg.burst = 100.0, 100


def _call(http):
    return http.get(f"/v1/users/{USER}/calls/{CALL}").json()


def _wait(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("board", ["pico", "esp32-i2s"])
def test_digits_are_verified_and_a_dead_relay_is_a_failure(start_server, board):
    srv = start_server(sims=[board], auth=[f"{USER}:{PW}"], tweak=_tweak)
    srv.wait_boards()
    seen = []  # what the switchboard tells its listeners (GWS publishes from these)
    srv.bridge.board.listeners.append(lambda kind, call, info: seen.append((kind, info)))
    url = f"/v1/users/{USER}/calls/{CALL}/dtmf"
    with srv.client(USER, PW) as http:
        assert http.post(url, json={"dtmfOut": "1A#"}).status_code == 200
        _wait(lambda: _call(http)["dtmfDigitsVerified"] == 3, what="3 digits verified")
        assert _call(http)["dtmfDigitsSent"] == 3
        _wait(lambda: any(k == "dtmf_sent" for k, _ in seen), what="DtmfSent")
        # each HEARD went to the live progress and the metrics
        heard = [i["event"] for k, i in seen if k == "digit" and i["event"]["event"] == "heard"]
        assert [h["key"] for h in heard] == ["1", "A", "#"]
        assert all(-13 < h["level_dbm"][0] < -9 for h in heard)
        m = http.get("/metrics").text
        assert re.search(r"^tonebridge_digits_verified_total 3\.0$", m, re.M), m

        board, lock = sim_of(srv.bridge.board.lines[0].client)
        with lock:
            board.seed_line_fault("relay")  # the hook relay no longer closes
        assert http.post(url, json={"dtmfOut": "47"}).status_code == 200  # accepted
        fails = _wait(
            lambda: _call(http).get("unreportedDtmfFailures"), what="the failure reported"
        )
        f = fails[0]
        assert f["dtmfOut"] == "47" and f["digitsVerified"] == 0
        assert "not-heard" in f["message"] and "digit 0 key 4 not heard" in f["message"]
        assert _call(http)["dtmfDigitsVerified"] == 3  # nothing more was heard
        failed = [i for k, i in seen if k == "send_failed"]
        assert failed and failed[0]["failure"].verified == 0
        # the next request gets the failure in Catapult's own way
        r = http.post(url, json={"dtmfOut": "5"})
        assert r.status_code == 503 and r.json()["code"] == "send-dtmf-failure"
        assert "digit 0 key 4 not heard" in r.json()["message"]


HW = "5eed0000c0ffee12"


def test_the_verified_counts_survive_a_restart_of_serve(start_server, tmp_path):
    state = str(tmp_path / "verified-state.db")
    port = f"sim://pico?hwid={HW}"  # the same board (hardware id) both times
    url = f"/v1/users/{USER}/calls/{CALL}/dtmf"
    srv = start_server(ports=[port], auth=[f"{USER}:{PW}"], tweak=_tweak, state=state)
    srv.wait_boards()
    with srv.client(USER, PW) as http:
        assert http.post(url, json={"dtmfOut": "1A#"}).status_code == 200
        _wait(lambda: _call(http)["dtmfDigitsVerified"] == 3, what="3 digits verified")
        board, lock = sim_of(srv.bridge.board.lines[0].client)
        with lock:
            board.seed_line_fault("relay")
        assert http.post(url, json={"dtmfOut": "47"}).status_code == 200
        _wait(lambda: _call(http).get("unreportedDtmfFailures"), what="the failure")
    srv.stop()

    srv = start_server(ports=[port], auth=[f"{USER}:{PW}"], tweak=_tweak, state=state)
    srv.wait_boards()
    with srv.client(USER, PW) as http:
        call = _call(http)
        # "47": its first digit played, not heard, and the sequence stopped
        assert call["dtmfDigitsSent"] == 4 and call["dtmfDigitsVerified"] == 3, call
        f = call["unreportedDtmfFailures"][0]
        assert f["dtmfOut"] == "47" and f["digitsVerified"] == 0, f
        gws = http.get(f"/api/v2/me/calls/{CALL}").json()["data"]["call"]
        assert gws["dtmfDigitsVerified"] == 3
        seqs = srv.bridge.store.sequences_of(CALL)
        assert sorted((s["text"], s["verified"]) for s in seqs) == [("1A#", 3), ("47", 0)]
        # the next sequence adds to the count kept across the restart
        r = http.post(url, json={"dtmfOut": "5"})
        assert r.status_code == 503  # the failure from before the restart, reported now
        assert http.post(url, json={"dtmfOut": "5"}).status_code == 200
        _wait(lambda: _call(http)["dtmfDigitsVerified"] == 4, what="4 digits verified")


def test_a_board_that_does_not_verify_reports_no_verified_count(start_server):
    # a Pico built without its line sense (tonebridge.json "rx_adc": null): no claim at all
    srv = start_server(ports=["sim://pico?rx_adc=null"], auth=[f"{USER}:{PW}"], tweak=_tweak)
    srv.wait_boards()
    url = f"/v1/users/{USER}/calls/{CALL}/dtmf"
    with srv.client(USER, PW) as http:
        assert _call(http)["dtmfDigitsVerified"] is None
        assert http.post(url, json={"dtmfOut": "12"}).status_code == 200
        _wait(lambda: _call(http)["dtmfDigitsSent"] == 2, what="2 digits sent")
        assert _call(http)["dtmfDigitsVerified"] is None
        gws = http.get(f"/api/v2/me/calls/{CALL}").json()["data"]["call"]
        assert gws["dtmfDigitsVerified"] is None
