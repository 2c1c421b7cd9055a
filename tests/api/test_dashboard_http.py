"""The dashboard over plain HTTP (httpx): who may see what, the send endpoint's answers, and
the server-sent events a page gets while a sequence plays on a simulated board."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

A, APW, B, BPW = "alice", "a-pw", "bob", "b-pw"


@pytest.fixture
def srv(start_server):
    def tweak(cfg):
        cfg.lines[0].call_id = "c-alice"
        cfg.lines[1].call_id = "c-bob"
        cfg.lines[1].owner = B
        cfg.rate, cfg.burst = 100.0, 100

    server = start_server(sims=["pico", "pico"], auth=[f"{A}:{APW}", f"{B}:{BPW}"], tweak=tweak)
    server.wait_boards()
    return server


def page(srv, user, pw, path="/"):
    http = httpx.Client(base_url=srv.base, auth=(user, pw), timeout=30)
    r = http.get(path)
    return http, r


def csrf_of(html: str) -> str:
    return html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_who_sees_what(srv):
    r = httpx.get(srv.base + "/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert httpx.get(srv.base + "/", auth=(A, "wrong")).status_code == 401
    assert httpx.get(srv.base + "/login").status_code == 200
    http, r = page(srv, A, APW)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert 'id="line-dev-1"' in r.text and "c-alice" in r.text
    assert "dev-2" not in r.text and "c-bob" not in r.text
    assert http.get("/ui/calls/c-bob").status_code == 404
    assert http.get("/ui/calls/c-alice").status_code == 200
    assert http.get("/ui/recordings/c-bob-1.wav").status_code == 404
    assert http.get("/ui/recordings/..%2f..%2fetc%2fpasswd").status_code == 404
    assert httpx.get(srv.base + "/ui/events").status_code == 401
    assert httpx.get(srv.base + "/metrics").status_code == 401


def test_login_form_makes_a_session(srv):
    with httpx.Client(base_url=srv.base, timeout=30) as http:
        bad = http.post("/login", data={"user": A, "password": "nope"})
        assert bad.status_code == 401 and "wrong user or password" in bad.text
        ok = http.post("/login", data={"user": A, "password": APW}, follow_redirects=False)
        assert ok.status_code == 303 and "tonebridge_session" in ok.headers["set-cookie"]
        r = http.get("/")
        assert r.status_code == 200 and "c-alice" in r.text
        http.post("/logout")
        assert http.get("/", follow_redirects=False).status_code == 303


def test_send_answers_like_the_api(srv):
    http, r = page(srv, A, APW)
    token = csrf_of(r.text)
    send = "/ui/calls/c-alice/send"
    # no CSRF token: refused (the cookie alone is not enough)
    assert http.post(send, json={"digits": "1"}).status_code == 403
    h = {"X-CSRF-TOKEN": token}
    bad = http.post(send, json={"digits": "12*x", "dialect": "catapult"}, headers=h)
    assert bad.status_code == 400
    assert bad.json() == {
        "kind": "validation",
        "message": "dtmfOut: invalid character 'x' at position 3",
        "field": "dtmfOut",
        "position": 3,
    }
    gws = http.post(send, json={"digits": "1,2", "dialect": "gws"}, headers=h).json()
    assert gws["message"] == "digits: invalid character ',' at position 1"
    assert gws["position"] == 1
    slow = http.post(send, json={"digits": "1", "toneDuration": 39}, headers=h)
    assert slow.status_code == 400 and "toneDuration" in slow.json()["message"]
    assert http.post("/ui/calls/c-bob/send", json={"digits": "1"}, headers=h).status_code == 404
    ok = http.post(send, json={"digits": "12", "toneDuration": 60}, headers=h)
    assert ok.status_code == 200 and ok.json()["total"] == 2


def read_events(
    srv, user, pw, out: list, stop: threading.Event, ready: threading.Event, held, until=None
):
    """Collect (time, event, data) until `until(event, data)` (default: a "recorded" event),
    or until the server stops (with `stop` set first: no error)."""
    until = until or (lambda name, data: name == "recorded")
    with httpx.Client(base_url=srv.base, auth=(user, pw), timeout=30) as http:
        try:
            with http.stream("GET", "/ui/events") as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                held.append(r)
                ready.set()
                name = None
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        out.append((time.monotonic(), name, json.loads(line[6:])))
                        if until(name, out[-1][2]):
                            return
        except (httpx.HTTPError, httpx.StreamError, OSError, ValueError):
            if not stop.is_set():
                raise


@pytest.mark.slow
def test_events_follow_each_digit_for_its_owner_only(srv):
    got_a, got_b = [], []
    stop = threading.Event()
    ready_a, ready_b = threading.Event(), threading.Event()
    held_b = []
    ta = threading.Thread(target=read_events, args=(srv, A, APW, got_a, stop, ready_a, []))
    tb = threading.Thread(
        target=read_events, args=(srv, B, BPW, got_b, stop, ready_b, held_b), daemon=True
    )
    ta.start()
    tb.start()
    assert ready_a.wait(10) and ready_b.wait(10)
    time.sleep(0.2)  # both subscribed
    with httpx.Client(base_url=srv.base, auth=(A, APW), timeout=30) as http:
        r = http.post("/v1/users/alice/calls/c-alice/dtmf", json={"dtmfOut": "159#"})
        assert r.status_code == 200
    ta.join(20)
    stop.set()
    assert not ta.is_alive()  # bob's stream ends with the server (stop is set: no error)
    finished = [(t, d) for t, n, d in got_a if n == "digit" and d["state"] == "finished"]
    assert [d["key"] for _, d in finished] == list("159#")
    assert [d["index"] for _, d in finished] == [0, 1, 2, 3]
    assert all(d["call"] == "c-alice" and d["text"] == "159#" for _, d in finished)
    # pushed as they played: 100 ms tones 100 ms apart
    times = [t for t, _ in finished]  # first to last: 600 ms on the line
    assert times == sorted(times) and times[-1] - times[0] > 0.3, times
    (seq,) = [d for _, n, d in got_a if n == "sequence"]
    assert seq["played"] == 4 and seq["total"] == 4 and seq["outcome"] is None
    (rec,) = [d for _, n, d in got_a if n == "recorded"]
    assert rec["href"] == "/ui/calls/c-alice#seq-1"
    # bob's page heard nothing of alice's call
    assert not [d for _, n, d in got_b if d.get("call") == "c-alice" or d.get("device") == "dev-1"]
    http, r = page(srv, A, APW, "/ui/calls/c-alice")
    assert 'class="decoded">159#<' in r.text
    wav = http.get("/ui/recordings/c-alice-1.wav")
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
    png = http.get("/ui/recordings/c-alice-1.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_hang_up_shows_on_the_page_as_it_happens(srv):
    got, stop, ready = [], threading.Event(), threading.Event()
    on_hook = lambda name, d: name == "line" and d["hook"] == "on-hook"  # noqa: E731
    t = threading.Thread(target=read_events, args=(srv, A, APW, got, stop, ready, [], on_hook))
    t.start()
    assert ready.wait(10)
    time.sleep(0.2)
    with httpx.Client(base_url=srv.base, auth=(A, APW), timeout=30) as http:
        r = http.post("/v1/users/alice/calls/c-alice", json={"state": "completed"})
        assert r.status_code == 200
    t.join(20)
    stop.set()
    assert not t.is_alive(), got
    assert ("call", {"device": "dev-1", "call": "c-alice", "state": "Released"}) in [
        (n, d) for _, n, d in got
    ]
    line = got[-1][2]
    assert line["device"] == "dev-1" and line["link"] == "up" and line["hook"] == "on-hook"
    _, r = page(srv, A, APW)
    assert '<td class="hook" data-field="hook">on-hook</td>' in r.text
