"""Ordering, concurrency, idempotent retries and failure reporting, on simulated boards."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from apihelpers import SpyFactory, wait_for_file
from tonebridge.analysis import decode_multimon, read_wav

USER, PW = "ops", "ops-pw"
C1, C2 = "c-one", "c-two"


def _tweak(cfg):
    cfg.lines[0].call_id = C1
    if len(cfg.lines) > 1:
        cfg.lines[1].call_id = C2


def dtmf(http, call, text, **headers):
    return http.post(f"/v1/users/{USER}/calls/{call}/dtmf", json={"dtmfOut": text}, headers=headers)


def call_info(http, call):
    return http.get(f"/v1/users/{USER}/calls/{call}").json()


def decode(path):
    x, rate = read_wav(path)
    return decode_multimon(x, rate)


@pytest.mark.slow
def test_fifo_per_call_and_concurrent_lines(start_server, tmp_path):
    srv = start_server(sims=["pico", "pico"], auth=[f"{USER}:{PW}"], tweak=_tweak)
    srv.wait_boards()
    rec = tmp_path / "rec"
    with srv.client(USER, PW) as http:
        # three sends on one call, arriving 100 ms apart while the first still plays
        results = {}

        def post(text):
            with srv.client(USER, PW) as own:
                results[text] = dtmf(own, C1, text).status_code

        threads = []
        for text in ("1WW2", "34", "56"):
            t = threading.Thread(target=post, args=(text,))
            t.start()
            threads.append(t)
            time.sleep(0.1)
        # line two plays at once, while line one is still inside its 2 s pause
        r = dtmf(http, C2, "9")
        assert r.status_code == 200
        wait_for_file(rec / f"{C2}-1.wav")
        assert call_info(http, C2)["dtmfDigitsSent"] == 1
        assert call_info(http, C1)["dtmfDigitsSent"] == 0  # "1WW2" not finished yet
        for t in threads:
            t.join(30)
        assert results == {"1WW2": 200, "34": 200, "56": 200}
        for n, digits in ((1, "12"), (2, "34"), (3, "56")):
            assert decode(wait_for_file(rec / f"{C1}-{n}.wav")) == digits
        assert decode(rec / f"{C2}-1.wav") == "9"
    # what reached the boards, per line, in order
    sends = srv.factory.sends
    assert [t for u, t in sends if t != "9"] == ["1WW2", "34", "56"]
    # nothing interleaved or dropped on the line itself: the whole line signal decodes in order
    x = srv.line_samples(0, 22050)
    assert decode_multimon(x, 22050) == "123456"


@pytest.mark.slow
def test_retry_with_idempotency_key_plays_once(start_server, tmp_path):
    srv = start_server(sims=["pico"], auth=[f"{USER}:{PW}"], tweak=_tweak)
    srv.wait_boards()
    rec = tmp_path / "rec"
    with srv.client(USER, PW) as http:
        # keep the line busy, so the keyed request and its retry are both in flight together
        assert dtmf(http, C1, "1W").status_code == 200
        answers = []

        def keyed():
            with srv.client(USER, PW) as own:
                answers.append(dtmf(own, C1, "47", **{"Idempotency-Key": "order-1"}))

        threads = [threading.Thread(target=keyed) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(30)
        assert [a.status_code for a in answers] == [200, 200]
        assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
        retry = dtmf(http, C1, "47", **{"Idempotency-Key": "order-1"})
        assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
        clash = dtmf(http, C1, "48", **{"Idempotency-Key": "order-1"})
        assert clash.status_code == 409 and clash.json()["code"] == "call-update-conflict"
        # GWS clients use X-Request-Id the same way
        token = http.get("/api/v2/me").headers["X-CSRF-TOKEN"]
        gws = [
            http.post(
                f"/api/v2/me/calls/{C1}",
                json={"operationName": "SendDtmf", "digits": "5"},
                headers={"X-CSRF-TOKEN": token, "X-Request-Id": "gws-req-1"},
            )
            for _ in range(2)
        ]
        assert [g.json() for g in gws] == [{"statusCode": 0}] * 2
        assert decode(wait_for_file(rec / f"{C1}-1.wav")) == "1"
        assert decode(wait_for_file(rec / f"{C1}-2.wav")) == "47"
        assert decode(wait_for_file(rec / f"{C1}-3.wav")) == "5"
        assert dtmf(http, C1, "8").status_code == 200
        assert decode(wait_for_file(rec / f"{C1}-4.wav")) == "8"  # no send numbered for retries
    assert [t for _, t in srv.factory.sends] == ["1W", "47", "5", "8"]
    x = srv.line_samples(0, 22050)
    assert decode_multimon(x, 22050) == "14758"


@pytest.mark.slow
def test_failure_after_acceptance_is_reported_on_the_next_request(start_server, tmp_path):
    def tweak(cfg):
        _tweak(cfg)
        cfg.rate, cfg.burst = 100.0, 100  # this test polls

    srv = start_server(sims=["pico"], auth=[f"{USER}:{PW}"], tweak=tweak)
    srv.wait_boards()
    with srv.client(USER, PW) as http:
        # a GWS client listening on CometD
        token = http.get("/api/v2/me").headers["X-CSRF-TOKEN"]

        def bayeux(msg):
            r = http.post("/api/v2/notifications", json=[msg], headers={"X-CSRF-TOKEN": token})
            return r.json()

        cid = bayeux(
            {
                "channel": "/meta/handshake",
                "id": "1",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
        )[0]["clientId"]
        bayeux({"channel": "/meta/subscribe", "clientId": cid, "subscription": "/v2/me/calls"})
        bayeux({"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"})

        assert dtmf(http, C1, "1111111111").status_code == 200  # 10 digits, ~2 s
        time.sleep(0.7)
        # the board aborts the sequence half-way (as a fault or a local cancel would)
        srv.factory.clients[srv.cfg.lines[0].url].cancel()
        deadline = time.monotonic() + 15
        while "lastDtmfFailure" not in call_info(http, C1):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        failure = call_info(http, C1)["lastDtmfFailure"]
        played = failure["digitsPlayed"]
        assert failure["digitsTotal"] == 10 and 0 < played < 10
        events = bayeux({"channel": "/meta/connect", "clientId": cid, "advice": {"timeout": 0}})
        (note,) = [m["data"] for m in events if m["channel"] == "/v2/me/calls"]
        assert note["messageType"] == "ErrorMessage"
        assert note["notificationType"] == "DtmfSendFailed"
        assert (note["digitsPlayed"], note["digitsTotal"]) == (played, 10)
        assert note["call"]["id"] == C1
        r = dtmf(http, C1, "2")
        assert r.status_code == 503
        body = r.json()
        assert body["code"] == "send-dtmf-failure"
        assert f"({played} of 10 digits played)" in body["message"]
        # reported once: the next request goes out
        assert dtmf(http, C1, "2").status_code == 200
        rec = tmp_path / "rec"
        heard = decode(wait_for_file(rec / f"{C1}-1.wav"))
        assert heard in ("1" * played, "1" * (played + 1))  # a digit cut mid-tone may be heard
        # the refused request was not sent and took no recording number
        assert decode(wait_for_file(rec / f"{C1}-2.wav")) == "2"
        assert not (rec / f"{C1}-3.wav").exists()
    assert [t for _, t in srv.factory.sends] == ["1111111111", "2"]


def test_failure_before_acceptance_answers_503_at_once(start_server, tmp_path):
    factory = SpyFactory(reconnect_timeout=0.1, open_timeout=0.1)

    def tweak(cfg):
        _tweak(cfg)
        cfg.accept_timeout_ms = 500  # the bound: a board missing for longer fails at once

    srv = start_server(
        ports=[str(tmp_path / "no-such-port")], auth=[f"{USER}:{PW}"], tweak=tweak, factory=factory
    )
    with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
        t0 = time.monotonic()
        r = dtmf(http, C1, "123")
        assert time.monotonic() - t0 < 0.5 + 2.0
        assert r.status_code == 503
        body = r.json()
        assert body["code"] == "send-dtmf-failure"
        assert "cannot open" in body["message"] and "(0 of 3 digits played)" in body["message"]
        assert "lastDtmfFailure" not in call_info(http, C1)
