"""Bad input gets each API's own error, the server stays up, and nothing reaches the line."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

ALICE, ALICE_PW = "alice", "alice-pw"
BOB, BOB_PW = "bob", "bob-pw"
CALL_A, CALL_A2, CALL_B = "c-alice-1", "c-alice-2", "c-bob-1"


def _tweak(cfg):
    cfg.csrf = True  # CSRF protection on: a missing token is one of the bad inputs here
    cfg.lines[0].call_id = CALL_A
    cfg.lines[1].call_id = CALL_A2
    cfg.lines[2].call_id = CALL_B
    cfg.lines[2].owner = BOB


@pytest.fixture
def srv(start_server):
    s = start_server(
        sims=["pico", "pico", "pico"], auth=[f"{ALICE}:{ALICE_PW}", f"{BOB}:{BOB_PW}"], tweak=_tweak
    )
    s.wait_boards()
    return s


def cat(path):
    return f"/v1/users/{ALICE}/calls/{path}"


JSON = {"Content-Type": "application/json"}

# (description, path, kwargs for httpx.post, auth, expected status, expected code, message part)
CATAPULT_CASES = [
    (
        "over-length",
        cat(f"{CALL_A}/dtmf"),
        {"json": {"dtmfOut": "1" * 93}},
        "alice",
        400,
        "validation-error",
        "93 characters",
    ),
    (
        "bad character",
        cat(f"{CALL_A}/dtmf"),
        {"json": {"dtmfOut": "12a4"}},
        "alice",
        400,
        "validation-error",
        "invalid character 'a' at position 2",
    ),
    (
        "space",
        cat(f"{CALL_A}/dtmf"),
        {"json": {"dtmfOut": "1 2"}},
        "alice",
        400,
        "validation-error",
        "position 1",
    ),
    (
        "empty",
        cat(f"{CALL_A}/dtmf"),
        {"json": {"dtmfOut": ""}},
        "alice",
        400,
        "validation-error",
        "dtmfOut",
    ),
    (
        "not a string",
        cat(f"{CALL_A}/dtmf"),
        {"json": {"dtmfOut": 123}},
        "alice",
        400,
        "validation-error",
        "must be a string",
    ),
    (
        "missing dtmfOut",
        cat(f"{CALL_A}/dtmf"),
        {"json": {}},
        "alice",
        400,
        "validation-error",
        "dtmfOut is required",
    ),
    (
        "array body",
        cat(f"{CALL_A}/dtmf"),
        {"json": ["1"]},
        "alice",
        400,
        "validation-error",
        "JSON object",
    ),
    (
        "malformed JSON",
        cat(f"{CALL_A}/dtmf"),
        {"content": b'{"dtmfOut": "1"', "headers": JSON},
        "alice",
        400,
        "invalid-json",
        "malformed JSON",
    ),
    (
        "wrong content type",
        cat(f"{CALL_A}/dtmf"),
        {"content": b'{"dtmfOut": "1"}', "headers": {"Content-Type": "text/plain"}},
        "alice",
        415,
        "unsupported-media-type",
        "application/json",
    ),
    (
        "too large",
        cat(f"{CALL_A}/dtmf"),
        {"json": {"dtmfOut": "1", "pad": "x" * 20000}},
        "alice",
        413,
        "request-too-large",
        "larger than",
    ),
    (
        "unknown call",
        cat("c-unknown/dtmf"),
        {"json": {"dtmfOut": "1"}},
        "alice",
        404,
        "call-not-found",
        "c-unknown",
    ),
    (
        "someone else's call",
        cat(f"{CALL_B}/dtmf"),
        {"json": {"dtmfOut": "1"}},
        "alice",
        404,
        "call-not-found",
        CALL_B,
    ),
    (
        "someone else's user path",
        f"/v1/users/{BOB}/calls/{CALL_B}/dtmf",
        {"json": {"dtmfOut": "1"}},
        "alice",
        403,
        "user-access-denied",
        "access",
    ),
    (
        "missing auth",
        cat(f"{CALL_A}/dtmf"),
        {"json": {"dtmfOut": "1"}},
        None,
        401,
        "user-access-denied",
        "Access denied",
    ),
    (
        "wrong password",
        cat(f"{CALL_A}/dtmf"),
        {"json": {"dtmfOut": "1"}},
        "wrong",
        401,
        "user-access-denied",
        "Access denied",
    ),
    (
        "hung-up call",
        cat(f"{CALL_A2}/dtmf"),
        {"json": {"dtmfOut": "1"}},
        "alice",
        403,
        "call-invalid-state",
        "completed",
    ),
    (
        "bad state update",
        cat(CALL_A),
        {"json": {"state": "transferring"}},
        "alice",
        400,
        "validation-error",
        "state",
    ),
    (
        "bad new call",
        f"/v1/users/{ALICE}/calls",
        {"json": {"from": "1", "to": "12x"}},
        "alice",
        400,
        "validation-error",
        "invalid character 'x'",
    ),
    (
        "unknown path",
        f"/v1/users/{ALICE}/bridges",
        {"json": {}},
        "alice",
        404,
        "resource-not-found",
        "no such resource",
    ),
]


def _auth(kind):
    return {"alice": (ALICE, ALICE_PW), "wrong": (ALICE, "nope"), None: None}[kind]


def test_catapult_bad_input(srv, tmp_path):
    with httpx.Client(base_url=srv.base, timeout=30) as http:
        r = http.post(cat(CALL_A2), json={"state": "completed"}, auth=(ALICE, ALICE_PW))
        assert r.status_code == 200
        failures = []
        for desc, path, kw, auth, status, code, part in CATAPULT_CASES:
            r = http.post(path, auth=_auth(auth), **kw)
            body = r.json()
            ok = (
                r.status_code == status
                and set(body) == {"category", "code", "message", "details"}
                and body["code"] == code
                and part in body["message"]
            )
            if not ok:
                failures.append((desc, r.status_code, body))
        assert not failures
        # the server stays up and still serves good requests
        r = http.get(cat(CALL_A), auth=(ALICE, ALICE_PW))
        assert r.status_code == 200 and r.json()["state"] == "active"
        assert http.get(cat(CALL_A2), auth=(ALICE, ALICE_PW)).json()["state"] == "completed"
    _nothing_reached_the_line(srv, tmp_path)


def test_gws_bad_input(srv, tmp_path):
    with httpx.Client(base_url=srv.base, timeout=30, auth=(ALICE, ALICE_PW)) as http:
        me = http.get("/api/v2/me")
        assert me.status_code == 200
        assert me.headers["X-CSRF-HEADER"] == "X-CSRF-TOKEN"
        csrf = {"X-CSRF-TOKEN": me.headers["X-CSRF-TOKEN"]}
        url = f"/api/v2/me/calls/{CALL_A}"
        r = http.post(f"/api/v2/me/calls/{CALL_A2}", json={"operationName": "Hangup"}, headers=csrf)
        assert r.json() == {"statusCode": 0}
        cases = [
            (
                "bad digit",
                url,
                {"json": {"operationName": "SendDtmf", "digits": "12x"}},
                400,
                10,
                "invalid character 'x' at position 2",
            ),
            (
                "pause not in GWS",
                url,
                {"json": {"operationName": "SendDtmf", "digits": "1,2"}},
                400,
                10,
                "position 1",
            ),
            (
                "over-length",
                url,
                {"json": {"operationName": "SendDtmf", "digits": "1" * 93}},
                400,
                10,
                "digits",
            ),
            (
                "missing digits",
                url,
                {"json": {"operationName": "SendDtmf"}},
                400,
                1,
                "digits is required",
            ),
            ("missing operation", url, {"json": {"digits": "1"}}, 400, 1, "operationName"),
            (
                "unknown operation",
                url,
                {"json": {"operationName": "Explode"}},
                400,
                10,
                "unsupported operationName",
            ),
            (
                "unknown call",
                "/api/v2/me/calls/c-nope",
                {"json": {"operationName": "SendDtmf", "digits": "1"}},
                404,
                6,
                "not found",
            ),
            (
                "someone else's call",
                f"/api/v2/me/calls/{CALL_B}",
                {"json": {"operationName": "SendDtmf", "digits": "1"}},
                404,
                6,
                "not found",
            ),
            (
                "hung-up call",
                f"/api/v2/me/calls/{CALL_A2}",
                {"json": {"operationName": "SendDtmf", "digits": "1"}},
                400,
                2,
                "Released",
            ),
            ("malformed JSON", url, {"content": b"{nope", "headers": JSON}, 400, 10, "malformed"),
            (
                "wrong content type",
                url,
                {
                    "content": b'{"operationName":"SendDtmf","digits":"1"}',
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                },
                415,
                10,
                "application/json",
            ),
            ("hold", url, {"json": {"operationName": "Hold"}}, 400, 3, "no hold"),
            ("retrieve", url, {"json": {"operationName": "Retrieve"}}, 400, 3, "no hold"),
            ("answer", url, {"json": {"operationName": "Answer"}}, 400, 2, "no ringing call"),
            ("unknown path", "/api/v2/me/nothing", {"json": {}}, 404, 6, "no such resource"),
        ]
        failures = []
        for desc, path, kw, status, code, part in cases:
            headers = dict(kw.pop("headers", {}))
            headers.update(csrf)
            r = http.post(path, headers=headers, **kw)
            body = r.json()
            if not (
                r.status_code == status
                and set(body) == {"statusCode", "statusMessage"}
                and body["statusCode"] == code
                and part in body["statusMessage"]
            ):
                failures.append((desc, r.status_code, body))
        assert not failures
        # missing CSRF token
        r = http.post(url, json={"operationName": "SendDtmf", "digits": "1"})
        assert r.status_code == 403 and r.json()["statusMessage"] == "Missing or invalid Csrf token"
    # missing / wrong credentials
    for auth in (None, (ALICE, "nope"), ("mallory", ALICE_PW)):
        r = httpx.post(srv.base + url, json={"operationName": "SendDtmf", "digits": "1"}, auth=auth)
        assert r.status_code == 401
        assert r.json() == {"statusCode": 20, "statusMessage": "Access denied"}
        r = httpx.get(srv.base + "/api/v2/me/calls", auth=auth)
        assert r.status_code == 401 and r.json()["statusCode"] == 20
    # CometD without credentials: a Bayeux refusal, not a session
    r = httpx.post(
        srv.base + "/api/v2/notifications/handshake",
        json=[
            {
                "channel": "/meta/handshake",
                "id": "1",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
        ],
    )
    assert r.status_code == 200
    (reply,) = r.json()
    assert reply["successful"] is False and reply["advice"]["reconnect"] == "none"
    # still up
    with httpx.Client(base_url=srv.base, auth=(ALICE, ALICE_PW)) as http:
        calls = http.get("/api/v2/me/calls").json()
        assert calls["statusCode"] == 0
        assert [c["id"] for c in calls["calls"]] == [CALL_A]  # not bob's, not the released one
    _nothing_reached_the_line(srv, tmp_path)


def _nothing_reached_the_line(srv, tmp_path):
    assert srv.factory.sends == []
    rec = tmp_path / "rec"
    assert not rec.exists() or list(rec.iterdir()) == []
    for index in range(len(srv.bridge.board.lines)):
        x = srv.line_samples(index, 8000)
        assert x.size > 0 and float(np.max(np.abs(x - np.median(x)))) < 1e-3
