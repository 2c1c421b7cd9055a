"""Failures after acceptance are queued per call, never overwritten: Catapult reports each,
in order, with its own counts; the second sequence queued on the board while the first
plays is accepted at once (the board queues it)."""

from __future__ import annotations

import time

import pytest
from apihelpers import wait_for_file
from tonebridge.analysis import decode_multimon, read_wav

USER, PW = "ops", "ops-pw"
CALL = "c-one"


def _tweak(cfg):
    cfg.lines[0].call_id = CALL
    cfg.rate, cfg.burst = 100.0, 100


def dtmf(http, text):
    return http.post(f"/v1/users/{USER}/calls/{CALL}/dtmf", json={"dtmfOut": text})


@pytest.mark.slow
def test_two_failures_are_reported_one_by_one_in_order(start_server, tmp_path):
    srv = start_server(sims=["pico"], auth=[f"{USER}:{PW}"], tweak=_tweak)
    srv.wait_boards()
    with srv.client(USER, PW) as http:
        t0 = time.monotonic()
        assert dtmf(http, "1111111111").status_code == 200
        assert dtmf(http, "2222222222").status_code == 200  # queued on the board
        assert time.monotonic() - t0 < 1.0  # answered while the first one plays
        deadline = time.monotonic() + 10
        while srv.sim(0) is None or "START 2" not in _events(srv):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        srv.factory.clients[srv.cfg.lines[0].url].cancel()  # both end: one cut, one unplayed
        deadline = time.monotonic() + 15
        while (
            len(http.get(f"/v1/users/{USER}/calls/{CALL}").json().get("unreportedDtmfFailures", []))
            < 2
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        call = http.get(f"/v1/users/{USER}/calls/{CALL}").json()
        first, second = call["unreportedDtmfFailures"]
        assert first["dtmfOut"] == "1111111111" and 2 <= first["digitsPlayed"] < 10
        assert second["dtmfOut"] == "2222222222" and second["digitsPlayed"] == 0
        played = first["digitsPlayed"]

        r = dtmf(http, "3")
        assert r.status_code == 503
        body = r.json()
        assert body["code"] == "send-dtmf-failure"
        assert "DTMF digits 1111111111 could not be sent" in body["message"]
        assert f"({played} of 10 digits played)" in body["message"]
        assert "1 more unreported failure" in body["message"]
        assert {"name": "digitsPlayed", "value": str(played)} in body["details"]
        r = dtmf(http, "3")
        assert r.status_code == 503
        assert "DTMF digits 2222222222 could not be sent" in r.json()["message"]
        assert "(0 of 10 digits played)" in r.json()["message"]
        assert dtmf(http, "3").status_code == 200  # both reported: this one goes out
        assert call["dtmfDigitsSent"] == played
        heard = decode_multimon(*read_wav(wait_for_file(tmp_path / "rec" / f"{CALL}-1.wav")))
        assert heard in ("1" * played, "1" * (played + 1))  # a digit cut mid-tone may be heard
        assert decode_multimon(*read_wav(wait_for_file(tmp_path / "rec" / f"{CALL}-3.wav"))) == "3"
    assert [t for _, t in srv.factory.sends] == ["1111111111", "2222222222", "3"]


def _events(srv):
    board = srv.sim(0)
    return bytes(board.link.transcript_to_host).decode("ascii", "replace")
