"""The fleet end to end (docs/fleet.md): a real Mosquitto on loopback, `tonebridge agent`
processes with simulated Picos, `tonebridge serve --broker` front ends; what the boards
play is recorded and decoded by multimon-ng."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from fleethelpers import (
    PW,
    USER,
    Observer,
    cat_url,
    decode_dir,
    http,
    need_tools,
    wait_digits_sent,
    wait_field,
    wait_line_ready,
    wait_recordings,
)


@pytest.mark.slow
def test_sends_through_either_front_end_play_once_on_the_agents_boards(fleet):
    need_tools("multimon-ng")
    fleet.agent("a1")
    fleet.agent("a2")
    _, f1 = fleet.frontend("f1")
    _, f2 = fleet.frontend("f2")
    wait_line_ready(f1, "c-a1-1")
    wait_line_ready(f2, "c-a2-1")
    key = {"Idempotency-Key": "fleet-1"}
    with http() as h:
        # Catapult through f1 to a1's board
        r = h.post(cat_url(f1, "c-a1-1") + "/dtmf", json={"dtmfOut": "123#"}, headers=key)
        assert r.status_code == 200, r.text
        # the same key through the other front end: the agent's record answers, nothing plays
        r = h.post(cat_url(f2, "c-a1-1") + "/dtmf", json={"dtmfOut": "123#"}, headers=key)
        assert r.status_code == 200 and r.headers.get("Idempotent-Replayed") == "true", r.text
        # the same key with another body: 409, wherever it arrives
        r = h.post(cat_url(f2, "c-a1-1") + "/dtmf", json={"dtmfOut": "9"}, headers=key)
        assert r.status_code == 409, r.text
        # GWS through f2 to a2's board (session cookie, then SendDtmf)
        me = h.get(f"{f2}/api/v2/me")
        assert me.status_code == 200 and me.json()["statusCode"] == 0
        r = h.post(
            f"{f2}/api/v2/me/calls/c-a2-1",
            json={"operationName": "SendDtmf", "digits": "456"},
            headers={"X-CSRF-HEADER": me.headers.get("X-CSRF-HEADER", "X-CSRF-TOKEN"),
                     "X-CSRF-TOKEN": me.headers.get("X-CSRF-TOKEN", "")},
        )  # fmt: skip
        assert r.status_code == 200 and r.json()["statusCode"] == 0, r.text
        # lists through any front end: the fleet's calls
        ids = {c["id"] for c in h.get(f"{f1}/v1/users/{USER}/calls").json()}
        assert {"c-a1-1", "c-a2-1"} <= ids
    assert wait_digits_sent(f2, "c-a1-1", 4)["dtmfDigitsSent"] == 4
    assert wait_digits_sent(f1, "c-a2-1", 3)["dtmfDigitsSent"] == 3
    # the boards (simulated Picos) heard their digits: every front end reports it as the agent
    # does (the verified count travelled in the line's state; it read null before)
    assert wait_field(f2, "c-a1-1", "dtmfDigitsVerified", 4)["dtmfDigitsVerified"] == 4
    assert wait_field(f1, "c-a2-1", "dtmfDigitsVerified", 3)["dtmfDigitsVerified"] == 3
    wait_recordings(fleet.tmp / "rec" / "a1", 1)
    wait_recordings(fleet.tmp / "rec" / "a2", 1)
    time.sleep(0.5)
    assert len(list((fleet.tmp / "rec" / "a1").glob("*.wav"))) == 1  # one send, not two
    assert decode_dir(fleet.tmp / "rec" / "a1") == "123#"
    assert decode_dir(fleet.tmp / "rec" / "a2") == "456"


@pytest.mark.slow
def test_front_end_killed_mid_request_retry_elsewhere_plays_once(fleet):
    need_tools("multimon-ng")
    fleet.agent("a1")
    doomed, f1 = fleet.frontend("f1")
    _, f2 = fleet.frontend("f2")
    wait_line_ready(f1, "c-a1-1")
    obs = Observer(fleet.broker, ["tonebridge/v1/line/+/cmd"])
    key = {"Idempotency-Key": "pin-7"}
    body = {"dtmfOut": "13579"}
    first: dict = {}

    def client():
        try:
            with httpx.Client(auth=(USER, PW), timeout=10) as h:
                first["r"] = h.post(cat_url(f1, "c-a1-1") + "/dtmf", json=body, headers=key)
        except httpx.HTTPError as exc:
            first["error"] = exc

    t = threading.Thread(target=client)
    t.start()
    # the front end published the command and waits for the agent's answer: kill it now
    seen = obs.wait(lambda topic, payload, retain: json.loads(payload).get("op") == "send")
    obs.close()
    assert seen is not None, "the front end never sent the command"
    doomed.kill()
    t.join(15)
    assert "error" in first, f"the first request was answered before the kill: {first}"
    with http() as h:  # the client's retry through the other front end, same key
        r = h.post(cat_url(f2, "c-a1-1") + "/dtmf", json=body, headers=key)
        assert r.status_code == 200, r.text
        assert r.headers.get("Idempotent-Replayed") == "true"  # answered by the agent's record
        r = h.post(cat_url(f2, "c-a1-1") + "/dtmf", json=body, headers=key)
        assert r.status_code == 200, r.text
    assert wait_digits_sent(f2, "c-a1-1", 5)["dtmfDigitsSent"] == 5
    time.sleep(1.0)  # nothing more may come
    wait_recordings(fleet.tmp / "rec" / "a1", 1)
    assert len(list((fleet.tmp / "rec" / "a1").glob("*.wav"))) == 1
    assert decode_dir(fleet.tmp / "rec" / "a1") == "13579"
    with http() as h:
        assert h.get(cat_url(f2, "c-a1-1")).json()["dtmfDigitsSent"] == 5


@pytest.mark.slow
def test_agent_killed_lines_offline_503_within_2s_then_back(fleet):
    need_tools("multimon-ng")
    agent = fleet.agent("a1")
    _, f1 = fleet.frontend("f1")
    wait_line_ready(f1, "c-a1-1")
    obs = Observer(fleet.broker, ["tonebridge/v1/agent/+/status"])
    obs.wait(lambda *m: True, 2)  # the retained "online"
    agent.kill()
    t0 = time.monotonic()
    will = obs.wait(lambda topic, payload, retain: json.loads(payload)["online"] is False, 2)
    obs.close()
    assert will is not None, "no last will within 2 s"
    with http() as h:
        while True:
            r = h.post(cat_url(f1, "c-a1-1") + "/dtmf", json={"dtmfOut": "1"})
            if r.status_code == 503:
                break
            assert time.monotonic() - t0 < 2.0, r.text
            time.sleep(0.05)
        assert time.monotonic() - t0 < 2.0
        assert r.json()["code"] == "send-dtmf-failure"
        assert "offline" in r.json()["message"] and "nothing was sent" in r.json()["message"]
        assert "offline" in h.get(cat_url(f1, "c-a1-1")).json()["lineFault"]
        # GWS answers in its own dialect
        me = h.get(f"{f1}/api/v2/me")
        r = h.post(
            f"{f1}/api/v2/me/calls/c-a1-1", json={"operationName": "SendDtmf", "digits": "2"},
            headers={"X-CSRF-TOKEN": me.headers.get("X-CSRF-TOKEN", "")},
        )  # fmt: skip
        assert r.status_code == 503 and r.json()["statusCode"] != 0, r.text
        t = time.monotonic() - t0
        assert t < 2.0 + 1.0, t
    # the agent returns (same state): its lines are back, no front-end restart
    fleet.agent("a1")
    wait_line_ready(f1, "c-a1-1")
    with http() as h:
        r = h.post(cat_url(f1, "c-a1-1") + "/dtmf", json={"dtmfOut": "88"})
        assert r.status_code == 200, r.text
    wait_digits_sent(f1, "c-a1-1", 2)
    wait_recordings(fleet.tmp / "rec" / "a1", 1)
    assert decode_dir(fleet.tmp / "rec" / "a1") == "88"


@pytest.mark.slow
def test_hangup_through_one_front_end_is_seen_through_the_other(fleet):
    fleet.agent("a1")
    _, f1 = fleet.frontend("f1")
    _, f2 = fleet.frontend("f2")
    wait_line_ready(f1, "c-a1-1")
    with http() as h:
        devices = h.get(f"{f2}/api/v2/me/devices").json()["devices"]
        assert [d["id"] for d in devices] == ["a1-1"] and devices[0]["phoneNumber"] == "15000"
        # the dashboard and /metrics of a front end show the agent's line
        page = h.get(f"{f2}/")
        assert page.status_code == 200 and "a1-1" in page.text, page.text[:500]
        metrics = h.get(f"{f2}/metrics")
        assert metrics.status_code == 200, metrics.text
        assert 'tonebridge_line_up{line="a1-1"} 1.0' in metrics.text, metrics.text
        r = h.post(cat_url(f1, "c-a1-1"), json={"state": "completed"})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 5
        while h.get(cat_url(f2, "c-a1-1")).json()["state"] != "completed":
            assert time.monotonic() < deadline, "the agent's state never said completed"
            time.sleep(0.05)
        r = h.post(cat_url(f2, "c-a1-1") + "/dtmf", json={"dtmfOut": "1"})
        assert r.status_code == 403 and r.json()["code"] == "call-invalid-state", r.text
        # placing calls is not carried over the broker yet: a clear 503, not a 5xx crash
        r = h.post(f"{f2}/v1/users/{USER}/calls", json={"from": "15000", "to": "123"})
        assert r.status_code == 503 and "not carried" in r.json()["message"], r.text
