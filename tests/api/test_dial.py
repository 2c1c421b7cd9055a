"""Placing calls: GWS Dial and Catapult POST /calls on a simulated board's free line."""

from __future__ import annotations

import time

import pytest
from apihelpers import wait_for_file
from tonebridge.analysis import decode_multimon, read_wav

USER, PW = "dialer", "dial-pw"


def _tweak(cfg):
    cfg.lines[0].call_id = "c-first"
    cfg.lines[0].device_id = "desk-1"
    cfg.lines[0].dial_wait_ms = 300
    cfg.rate, cfg.burst = 100.0, 100  # this test polls


def bayeux(http, token, messages, path=""):
    r = http.post(f"/api/v2/notifications{path}", json=messages, headers={"X-CSRF-TOKEN": token})
    assert r.status_code == 200
    return r.json()


@pytest.mark.slow
def test_gws_dial_and_catapult_create_call(start_server, tmp_path):
    srv = start_server(sims=["pico"], auth=[f"{USER}:{PW}"], tweak=_tweak)
    srv.wait_boards()
    rec = tmp_path / "rec"
    with srv.client(USER, PW) as http:
        token = http.get("/api/v2/me").headers["X-CSRF-TOKEN"]
        csrf = {"X-CSRF-TOKEN": token}
        (hs,) = bayeux(
            http,
            token,
            [
                {
                    "channel": "/meta/handshake",
                    "id": "1",
                    "version": "1.0",
                    "supportedConnectionTypes": ["long-polling"],
                }
            ],
        )
        cid = hs["clientId"]
        bayeux(
            http,
            token,
            [
                {
                    "channel": "/meta/subscribe",
                    "clientId": cid,
                    "id": "2",
                    "subscription": "/v2/me/calls",
                }
            ],
        )
        bayeux(
            http,
            token,
            [
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "id": "3",
                    "connectionType": "long-polling",
                }
            ],
        )
        dial = {"operationName": "Dial", "destination": {"phoneNumber": "5001"}}
        # the line is busy with its first call
        r = http.post("/api/v2/me/devices/desk-1/calls", json=dial, headers=csrf)
        assert r.status_code == 409 and r.json()["statusCode"] == 19
        assert http.post(
            "/api/v2/me/calls/c-first", json={"operationName": "Hangup"}, headers=csrf
        ).json() == {"statusCode": 0}
        assert (
            http.post("/api/v2/me/devices/nope/calls", json=dial, headers=csrf).status_code == 404
        )
        r = http.post("/api/v2/me/devices/desk-1/calls", json=dial, headers=csrf)
        assert r.status_code == 200 and r.json()["statusCode"] == 0
        new_id = r.json()["id"]
        states = []
        deadline = time.monotonic() + 20
        while "Established" not in states:
            assert time.monotonic() < deadline, states
            msgs = bayeux(
                http,
                token,
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": cid,
                        "id": "4",
                        "connectionType": "long-polling",
                    }
                ],
                "/connect",
            )
            states += [
                m["data"]["call"]["state"]
                for m in msgs
                if m["channel"] == "/v2/me/calls" and m["data"]["call"]["id"] == new_id
            ]
        assert states == ["Dialing", "Established"]
        x, rate = read_wav(wait_for_file(rec / f"{new_id}-1.wav"))
        assert decode_multimon(x, rate) == "5001"
        call = http.get(f"/api/v2/me/calls/{new_id}").json()["data"]["call"]
        assert call["state"] == "Established" and call["participants"][0]["phoneNumber"] == "5001"

        # Catapult: no free line while that call is up; after hanging up, a new call dials
        r = http.post(f"/v1/users/{USER}/calls", json={"from": "+15000", "to": "+15559"})
        assert r.status_code == 409 and r.json()["code"] == "no-free-line"
        assert (
            http.post(f"/v1/users/{USER}/calls/{new_id}", json={"state": "completed"}).status_code
            == 200
        )
        r = http.post(f"/v1/users/{USER}/calls", json={"from": "+15000", "to": "+15559"})
        assert r.status_code == 201
        cat_id = r.headers["Location"].rsplit("/", 1)[1]
        deadline = time.monotonic() + 20
        while http.get(f"/v1/users/{USER}/calls/{cat_id}").json()["state"] != "active":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        x, rate = read_wav(wait_for_file(rec / f"{cat_id}-1.wav"))
        assert decode_multimon(x, rate) == "15559"  # the leading + is not a DTMF digit
        # and DTMF on the new call plays
        assert (
            http.post(f"/v1/users/{USER}/calls/{cat_id}/dtmf", json={"dtmfOut": "#"}).status_code
            == 200
        )
        x, rate = read_wav(wait_for_file(rec / f"{cat_id}-2.wav"))
        assert decode_multimon(x, rate) == "#"
    assert [t for _, t in srv.factory.sends] == ["5001", "15559", "#"]


def test_board_hanging_up_by_itself_releases_the_call(start_server):
    srv = start_server(sims=["pico"], auth=[f"{USER}:{PW}"], tweak=_tweak)
    srv.wait_boards()
    with srv.client(USER, PW) as http:
        assert http.get(f"/v1/users/{USER}/calls/c-first").json()["state"] == "active"
        # the line drops without the bridge asking (here: a HOOK on sent to the board
        # behind the bridge's back, as the board's own off-hook time limit would)
        srv.factory.clients[srv.cfg.lines[0].url].hook(False)
        deadline = time.monotonic() + 10
        while http.get(f"/v1/users/{USER}/calls/c-first").json()["state"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        r = http.post(f"/v1/users/{USER}/calls/c-first/dtmf", json={"dtmfOut": "1"})
        assert r.status_code == 403 and r.json()["code"] == "call-invalid-state"
    assert srv.factory.sends == []
