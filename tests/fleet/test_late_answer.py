"""The agent's answer does not come in time: the agent is stopped (SIGSTOP) before the
request, so the front end answers 503 on its own bound
(accept_timeout + 1.5 s) and cancels the send at the agent. When the agent runs again
(SIGCONT) the command has expired or is cancelled: whatever went out on the line is what
the call reports, never a digit played silently after a 503."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest
from fleethelpers import PW, USER, Observer, cat_url, decode_dir, need_tools, wait_line_ready


@pytest.mark.slow
def test_a_late_agent_answer_plays_nothing_unreported(fleet):
    need_tools("multimon-ng")
    agent = fleet.agent("a1")
    _, fe = fleet.frontend("f1")
    wait_line_ready(fe, "c-a1-1")
    obs = Observer(fleet.broker, ["tonebridge/v1/line/+/cmd"])
    answer = {}

    def client():
        with httpx.Client(auth=(USER, PW), timeout=30) as h:
            t = time.monotonic()
            answer["r"] = h.post(cat_url(fe, "c-a1-1") + "/dtmf", json={"dtmfOut": "2468"},
                                 headers={"Idempotency-Key": "late-1"})  # fmt: skip
            answer["s"] = time.monotonic() - t

    # stopped before the request: it cannot answer (for less than the broker's keep-alive
    # bound, so the broker does not declare it gone and its line stays online)
    agent.proc.send_signal(signal.SIGSTOP)
    t = threading.Thread(target=client)
    t.start()
    try:
        seen = obs.wait(lambda topic, payload, retain: json.loads(payload).get("op") == "send")
        assert seen is not None, "the front end never sent the command"
        t.join(15)
        r = answer["r"]
        assert r.status_code == 503, r.text
        assert 4.0 <= answer["s"] < 7.0, answer["s"]  # 3 s + 1.5 s grace, not forever
        assert "(0 of 4 digits played)" in r.json()["message"], r.text
        cancel = obs.wait(lambda topic, payload, retain: json.loads(payload).get("op") == "cancel")
        assert cancel is not None, "the front end never cancelled the send at the agent"
    finally:
        agent.proc.send_signal(signal.SIGCONT)
        obs.close()
    time.sleep(3.0)  # whatever the agent does now has happened
    with httpx.Client(auth=(USER, PW), timeout=30) as h:
        data = h.get(cat_url(fe, "c-a1-1")).json()
    heard = decode_dir(fleet.tmp / "rec" / "a1")
    reported = data.get("lastDtmfFailure", {}).get("digitsPlayed", 0) if heard else 0
    assert data["dtmfDigitsSent"] == len(heard), (data, heard)
    assert reported == len(heard), (data, heard)  # a digit that played is reported
    assert heard in ("", "2468"[: len(heard)]), heard
