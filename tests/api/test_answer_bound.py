"""A request whose answer timed out never plays later: one still queued behind a slow job is
never sent; one whose SEND was on its way when the answer went out is asked about at once
and cancelled on the board. Here the link is made slow on purpose (a BoardClient whose
submit takes 2.5 s for one string, which starts with a 1 s pause), with a 1 s bound."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from tonebridge.analysis import decode_multimon
from tonebridge.link.client import BoardClient

USER, PW = "ops", "ops-pw"
CALL = "c-b"
RATE = 22050


class SlowFactory:
    def __init__(self, slow_text, delay_s):
        self.slow_text = slow_text
        self.delay_s = delay_s
        self.submitted = []
        self.clients = []

    def __call__(self, url, on_event, **kw):
        client = BoardClient(url, on_event=on_event, **kw)
        real = client.submit

        def submit(text, *args, **kwargs):
            self.submitted.append(text)
            if text == self.slow_text:
                time.sleep(self.delay_s)  # a slow link: the SEND goes out late
            return real(text, *args, **kwargs)

        client.submit = submit
        self.clients.append(client)
        return client


def line_digits(srv):
    return decode_multimon(srv.line_samples(0, RATE), RATE)


@pytest.mark.slow
def test_timed_out_requests_never_play(start_server):
    def tweak(cfg):
        cfg.lines[0].call_id = CALL
        cfg.accept_timeout_ms = 1000

    srv = start_server(
        sims=["pico"], auth=[f"{USER}:{PW}"], tweak=tweak, factory=SlowFactory("W1", 2.5)
    )
    srv.wait_boards()
    cat = f"/v1/users/{USER}/calls/{CALL}/dtmf"
    answers = {}

    def post(text):
        with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
            t = time.monotonic()
            r = http.post(cat, json={"dtmfOut": text})
            answers[text] = (r.status_code, r.json() if r.content else None, time.monotonic() - t)

    first = threading.Thread(target=post, args=("W1",))
    first.start()
    time.sleep(0.2)
    post("2")  # queued behind the slow one
    first.join(10)
    for text in ("W1", "2"):
        status, body, took = answers[text]
        assert status == 503 and took < 1.0 + 2.0, answers
        assert "did not accept the sequence within 1 s" in body["message"]
    assert "cancelled" in answers["W1"][1]["message"]
    assert "nothing was sent" in answers["2"][1]["message"]
    time.sleep(3.0)  # the slow SEND went out late; the board was asked at once and cancelled
    # it in its leading 1 s pause
    with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
        assert http.post(cat, json={"dtmfOut": "3"}).status_code == 200
        time.sleep(0.6)
        call = http.get(f"/v1/users/{USER}/calls/{CALL}").json()
    assert line_digits(srv) == "3"  # neither "1" (cancelled) nor "2" (never sent) played
    assert srv.factory.submitted == ["W1", "3"]  # "2" expired in the queue: never submitted
    assert call["dtmfDigitsSent"] == 1 and "unreportedDtmfFailures" not in call
    transcript = bytes(srv.sim(0).link.transcript_to_host).decode()
    assert "OK cancelled=" in transcript and "ABORT 0 cancelled" in transcript
