"""Sessions, CSRF, user isolation (REST and CometD) and rate limits over real HTTP.

These need no board: the lines point at a serial port that does not exist, so any
attempt to reach a board would fail loudly (and the spy would see it)."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from apihelpers import HERE, SpyFactory, env_with_node_path, need_node_modules, need_tools

A, APW, B, BPW = "alice", "a-pw", "bob", "b-pw"


def two_users(start_server, tmp_path, csrf=False):
    def tweak(cfg):
        cfg.lines[0].call_id = "c-a"
        cfg.lines[1].call_id = "c-b"
        cfg.lines[1].owner = B
        cfg.connect_timeout_ms = 2000
        cfg.csrf = csrf

    return start_server(
        ports=[str(tmp_path / "absent0"), str(tmp_path / "absent1")],
        auth=[f"{A}:{APW}", f"{B}:{BPW}"],
        tweak=tweak,
        factory=SpyFactory(reconnect_timeout=0.1, open_timeout=0.1),
    )


@pytest.fixture
def srv(start_server, tmp_path):
    return two_users(start_server, tmp_path)


@pytest.fixture
def csrf_srv(start_server, tmp_path):
    """CSRF protection on ([limits] csrf = true), as a GWS deployment may configure it."""
    return two_users(start_server, tmp_path, csrf=True)


def bayeux(http, path, messages, token):
    r = http.post(f"/api/v2/notifications{path}", json=messages, headers={"X-CSRF-TOKEN": token})
    assert r.status_code == 200, r.text
    return r.json()


def test_csrf_is_off_by_default_as_in_gws(srv):
    with httpx.Client(base_url=srv.base) as http:
        r = http.get("/api/v2/me", auth=(A, APW))
        assert "X-CSRF-TOKEN" in r.headers  # offered anyway, so clients that send it work
        r = http.post("/api/v2/me/calls/c-a", json={"operationName": "Hangup"})
        assert r.json() == {"statusCode": 0}


def test_session_cookie_and_csrf(csrf_srv):
    srv = csrf_srv
    with httpx.Client(base_url=srv.base) as http:
        r = http.get("/api/v2/me", auth=(A, APW))
        assert r.status_code == 200 and r.json()["user"]["userName"] == A
        assert "JSESSIONID" in http.cookies
        token = r.headers["X-CSRF-TOKEN"]
        # the session cookie alone authenticates; the token is required on POST
        r = http.get("/api/v2/me/calls")
        assert [c["id"] for c in r.json()["calls"]] == ["c-a"]
        r = http.post("/api/v2/me/calls/c-a", json={"operationName": "Hangup"})
        assert r.status_code == 403
        r = http.post(
            "/api/v2/me/calls/c-a",
            json={"operationName": "Hangup"},
            headers={"X-CSRF-TOKEN": token + "x"},
        )
        assert r.status_code == 403
        r = http.post(
            "/api/v2/me/calls/c-a",
            json={"operationName": "Hangup"},
            headers={"X-CSRF-TOKEN": token},
        )
        assert r.json() == {"statusCode": 0}
        # a forged cookie is no session
        http.cookies.set("JSESSIONID", "forged")
        r = http.get("/api/v2/me/calls")
        assert r.status_code == 401 and r.json() == {
            "statusCode": 20,
            "statusMessage": "Access denied",
        }
        assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_users_see_only_their_own_calls(srv):
    with httpx.Client(base_url=srv.base, auth=(B, BPW)) as http:
        assert [c["id"] for c in http.get("/api/v2/me/calls").json()["calls"]] == ["c-b"]
        assert http.get("/api/v2/me/calls/c-a").status_code == 404
        assert [c["id"] for c in http.get(f"/v1/users/{B}/calls").json()] == ["c-b"]
        assert http.get(f"/v1/users/{B}/calls/c-a").status_code == 404
        assert http.get(f"/v1/users/{A}/calls").status_code == 403
        r = http.post(f"/v1/users/{B}/calls/c-a", json={"state": "completed"})
        assert r.status_code == 404
    with httpx.Client(base_url=srv.base, auth=(A, APW)) as http:
        assert http.get("/v1/users/alice/calls/c-a").json()["state"] == "active"  # untouched


def test_cometd_events_reach_only_the_owner(srv):
    clients = {}
    for user, pw in ((A, APW), (B, BPW)):
        http = httpx.Client(base_url=srv.base, auth=(user, pw), timeout=10)
        token = http.get("/api/v2/me").headers["X-CSRF-TOKEN"]
        (hs,) = bayeux(
            http,
            "/handshake",
            [
                {
                    "channel": "/meta/handshake",
                    "version": "1.0",
                    "id": "1",
                    "supportedConnectionTypes": ["long-polling"],
                }
            ],
            token,
        )
        cid = hs["clientId"]
        bayeux(
            http,
            "",
            [
                {
                    "channel": "/meta/subscribe",
                    "clientId": cid,
                    "id": "2",
                    "subscription": "/v2/me/*",
                }
            ],
            token,
        )
        bayeux(
            http,
            "/connect",
            [
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "id": "3",
                    "connectionType": "long-polling",
                }
            ],
            token,
        )
        clients[user] = (http, token, cid)
    http, token, _ = clients[A]
    r = http.post(
        "/api/v2/me/calls/c-a", json={"operationName": "Hangup"}, headers={"X-CSRF-TOKEN": token}
    )
    assert r.json() == {"statusCode": 0}
    http, token, cid = clients[A]
    got = bayeux(
        http,
        "/connect",
        [
            {
                "channel": "/meta/connect",
                "clientId": cid,
                "id": "4",
                "connectionType": "long-polling",
            }
        ],
        token,
    )
    events = [m for m in got if m["channel"] == "/v2/me/calls"]
    assert len(events) == 1
    data = events[0]["data"]
    assert data["notificationType"] == "StatusChange" and data["call"]["state"] == "Released"
    assert data["call"]["capabilities"] == []
    http, token, cid = clients[B]
    got = bayeux(
        http,
        "/connect",
        [
            {
                "channel": "/meta/connect",
                "clientId": cid,
                "id": "4",
                "connectionType": "long-polling",
            }
        ],
        token,
    )
    # held 2 s: no call event for bob (his own device's state may be there)
    assert [m["channel"] for m in got if m["channel"] != "/v2/me/devices"] == ["/meta/connect"]
    # bob cannot use alice's client id
    (stolen,) = bayeux(
        http,
        "/connect",
        [{"channel": "/meta/connect", "clientId": clients[A][2], "id": "5"}],
        token,
    )
    assert stolen["successful"] is False and stolen["error"].startswith("402")
    for http, _, _ in clients.values():
        http.close()


def test_rate_limit_both_apis(start_server, tmp_path):
    def tweak(cfg):
        cfg.rate, cfg.burst = 0.2, 3
        cfg.lines[0].call_id = "c-r"

    srv = start_server(
        ports=[str(tmp_path / "absent")],
        auth=[f"{A}:{APW}"],
        tweak=tweak,
        factory=SpyFactory(reconnect_timeout=0.1, open_timeout=0.1),
    )
    with httpx.Client(base_url=srv.base, auth=(A, APW)) as http:
        codes = [http.get(f"/v1/users/{A}/calls").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = http.get(f"/v1/users/{A}/calls/c-r")
        assert r.status_code == 429 and r.json()["code"] == "too-many-requests"
        assert int(r.headers["X-RateLimit-Reset"]) > 0
        r = http.get("/api/v2/me/calls")
        assert r.status_code == 429 and r.json()["statusCode"] == 4 and "Retry-After" in r.headers
    # node-bandwidth turns it into its RateLimitError with the reset time
    need_tools("node")
    need_node_modules("node-bandwidth")
    proc = subprocess.run(
        ["node", str(HERE / "js" / "bandwidth_send.js"), srv.base, A, A, APW, "c-r", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_with_node_path(),
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["name"] == "RateLimitError" and out["statusCode"] == 429
    assert int(out["limitReset"]) > 0
    assert srv.factory.sends == []


def test_body_limit_everywhere(srv):
    big = "x" * 20000
    with httpx.Client(base_url=srv.base, auth=(A, APW)) as http:
        token = http.get("/api/v2/me").headers["X-CSRF-TOKEN"]
        r = http.post(
            "/api/v2/notifications",
            content=big,
            headers={"X-CSRF-TOKEN": token, "Content-Type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["statusCode"] == 10
        r = http.post(
            f"/v1/users/{A}/calls", content=big, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413 and r.json()["code"] == "request-too-large"


def test_cometd_js_client_rehandshakes_after_unknown_client(srv):
    """The server forgets the client (as after an expiry or restart): the real CometD
    client gets 402::Unknown client, handshakes again, resubscribes and still gets events."""
    need_tools("node")
    need_node_modules("cometd", "cometd-nodejs-client")
    proc = subprocess.Popen(
        ["node", str(HERE / "js" / "cometd_listen.mjs"), srv.base, A, APW, "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_with_node_path(),
    )
    try:
        assert proc.stdout.readline().strip() == "READY"
        bx = srv.bridge.bayeux
        first = set(bx.clients)
        assert len(first) == 1

        def forget():
            for client in bx.clients.values():
                client.gone = True
                client.wake.set()
            bx.clients.clear()

        srv.bridge.board.loop.call_soon_threadsafe(forget)
        assert proc.stdout.readline().strip() == "READY"  # subscribed again
        (again,) = bx.clients.values()
        assert again.client_id not in first and again.subscriptions == {"/v2/me/calls"}
        with httpx.Client(base_url=srv.base, auth=(A, APW)) as http:
            token = http.get("/api/v2/me").headers["X-CSRF-TOKEN"]
            r = http.post(
                "/api/v2/me/calls/c-a",
                json={"operationName": "Hangup"},
                headers={"X-CSRF-TOKEN": token},
            )
            assert r.json() == {"statusCode": 0}
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    message = json.loads(out.strip().splitlines()[-1])
    assert message["data"]["notificationType"] == "StatusChange"
    assert message["data"]["call"]["id"] == "c-a"
