"""The broker restarted in the middle of a sequence: the board plays on, the agent records
each digit in its store and republishes the line's state (with the counts) when the broker is
back; a send during the outage is answered 503 at once with its counts (nothing sent) and
its retry with the same key plays once. The recordings, decoded by multimon-ng, have every
digit exactly once."""

from __future__ import annotations

import time

import pytest
from fleethelpers import cat_url, decode_dir, http, need_tools, wait_digits_sent, wait_line_ready


@pytest.mark.slow
def test_broker_restart_mid_sequence_loses_nothing_plays_nothing_twice(fleet):
    need_tools("multimon-ng")
    fleet.agent("a1")
    _, f1 = fleet.frontend("f1")
    wait_line_ready(f1, "c-a1-1")
    url = cat_url(f1, "c-a1-1") + "/dtmf"
    with http() as h:
        r = h.post(url, json={"dtmfOut": "1W2W3W4W5W6"}, headers={"Idempotency-Key": "long"})
        assert r.status_code == 200, r.text
        time.sleep(1.2)  # a digit or two out
        fleet.broker.stop()
        t0 = time.monotonic()
        r = h.post(url, json={"dtmfOut": "78"}, headers={"Idempotency-Key": "during"})
        assert time.monotonic() - t0 < 2.0
        assert r.status_code == 503, r.text
        message = r.json()["message"]
        # (the broker may send the agent's will as it shuts down: either is the reason)
        assert "broker is unreachable" in message or "agent a1 is offline" in message, message
        assert "nothing was sent" in message and "(0 of 2 digits" in message
        time.sleep(1.0)
        fleet.broker.start()
        wait_line_ready(f1, "c-a1-1", timeout=20)
        data = wait_digits_sent(f1, "c-a1-1", 6)  # the board played on; the agent counted
        assert data["dtmfDigitsSent"] == 6 and "lastDtmfFailure" not in data, data
        # the same long request again: the agent's record answers, nothing plays
        r = h.post(url, json={"dtmfOut": "1W2W3W4W5W6"}, headers={"Idempotency-Key": "long"})
        assert r.status_code == 200, r.text
        r = h.post(url, json={"dtmfOut": "78"}, headers={"Idempotency-Key": "during"})
        assert r.status_code == 200, r.text
        assert wait_digits_sent(f1, "c-a1-1", 8)["dtmfDigitsSent"] == 8
        time.sleep(1.0)
        assert h.get(cat_url(f1, "c-a1-1")).json()["dtmfDigitsSent"] == 8
    rec = fleet.tmp / "rec" / "a1"
    assert len(list(rec.glob("*.wav"))) == 2
    assert decode_dir(rec) == "12345678"
