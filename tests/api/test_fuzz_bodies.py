"""No input gives a 5xx: hypothesis fuzzes request bodies and headers of every POST route,
in process (the real ASGI app called directly, no sockets), 1,700 cases per test, 10,200 in
all.

Bodies: JSON of any shape and depth (numbers too long to convert, NaN, lone surrogates,
nesting far past any parser's comfort), the expected fields with values of any type, raw
bytes that are no UTF-8 at all; any content type; random idempotency keys, credentials,
cookies and CSRF tokens. Every answer must be below 500, JSON in the route's own dialect,
and nothing may be logged with a traceback.

The lines point at serial ports that do not exist and their calls are hung up first, so a
well-formed send is refused (call state, 4xx) instead of waiting for a board.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tonebridge.api import build_config, create_app
from tonebridge.link.client import BoardClient

pytestmark = pytest.mark.slow

USER, PW = "fuzz", "fuzz-pw"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PW}".encode()).decode()
CASES = 1700  # x 6 tests = 10,200 cases
SETTINGS = settings(
    max_examples=CASES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.tracebacks = []

    def emit(self, record):
        if record.exc_info or record.levelno >= logging.CRITICAL:
            self.tracebacks.append(self.format(record))


class Rig:
    def __init__(self, tmp):
        cfg = build_config(
            ports=[str(tmp / "absent-1"), str(tmp / "absent-2")],
            auth=[f"{USER}:{PW}"],
            listen="127.0.0.1:8080",
            state=str(tmp / "state.db"),
        )
        cfg.lines[0].call_id, cfg.lines[1].call_id = "c-1", "c-2"
        cfg.lines[0].device_id, cfg.lines[1].device_id = "dev-1", "dev-2"
        cfg.rate, cfg.burst = 1e9, 10**9

        def factory(url, on_event, **kw):
            return BoardClient(
                url, on_event=on_event, open_timeout=0.05, reconnect_timeout=0.05, **kw
            )

        self.app = create_app(cfg, factory)
        self.bridge = self.app.state.bridge
        self.loop = asyncio.new_event_loop()
        self.bridge.board.start(self.loop)
        for call in list(self.bridge.board.calls.values()):
            self.bridge.board.hangup(call)
        self.log = Captured()
        logging.getLogger().addHandler(self.log)
        self.count = 0

    def request(self, method, path, content, headers):
        self.count += 1
        r = self.loop.run_until_complete(asgi_request(self.app, method, path, content, headers))
        assert r.status_code < 500, (method, path, content[:200], headers, r.status_code, r.text)
        if r.status_code >= 400:
            body = r.json()
            if path.startswith("/v1/"):
                assert {"category", "code", "message", "details"} <= set(body), body
            elif path.startswith("/api/v2/notifications") and r.status_code < 413:
                raise AssertionError(f"Bayeux answers 200: {r.status_code} {body}")
            else:
                assert set(body) == {"statusCode", "statusMessage"}, body
        elif path.startswith("/api/v2/notifications"):
            assert isinstance(r.json(), list) and r.json()
        assert not self.log.tracebacks, self.log.tracebacks[0]
        return r

    def close(self):
        logging.getLogger().removeHandler(self.log)
        self.bridge.board.stop()
        self.loop.close()
        self.bridge.store.close()


async def asgi_request(app, method, path, body: bytes, headers: dict) -> httpx.Response:
    """One HTTP request straight into the ASGI app (what uvicorn would hand it)."""
    raw = [(k.encode() if isinstance(k, str) else k, v) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    raw.append((b"host", b"bridge.test"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    sent = False
    out = {"status": None, "headers": [], "body": b""}

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # a disconnect never comes

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = message.get("headers", [])
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return httpx.Response(out["status"], headers=out["headers"], content=out["body"])


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    r = Rig(tmp_path_factory.mktemp("fuzz"))
    yield r
    r.close()
    print(f"fuzz: {r.count} requests, 0 answers >= 500, no traceback logged")


# ------------------------------------------------------------------ strategies
ANY_CHAR = st.characters(codec=None, exclude_categories=())  # lone surrogates included
TEXT = st.text(ANY_CHAR, max_size=40)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | st.sampled_from(["1", "1WWW,59#", "123A", "5", "+15001", "", " ", "\x00", "\ud800"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def encode(value, how):
    if how == "ascii":
        return json.dumps(value, ensure_ascii=True).encode()
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def bodies(draw, shapes):
    kind = draw(st.sampled_from(["shaped", "any", "deep", "bigint", "bytes", "text"]))
    if kind == "shaped":
        shape = draw(shapes)
        value = {k: (draw(JSON) if v is None else v) for k, v in shape.items()}
        return encode(value, draw(st.sampled_from(["ascii", "raw"])))
    if kind == "any":
        return encode(draw(JSON), draw(st.sampled_from(["ascii", "raw"])))
    if kind == "deep":
        n = draw(st.integers(1, 3000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"dtmfOut":[', "]}")]))
        inner = draw(st.sampled_from(["", "1", '"x"', "null"]))
        return (opener * n + inner + closer * draw(st.integers(0, n))).encode()
    if kind == "bigint":
        return ('{"dtmfOut": ' + "9" * draw(st.integers(1, 6000)) + "}").encode()
    if kind == "text":
        return draw(st.text(ANY_CHAR, max_size=200)).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=400))


HEADER_BYTES = st.binary(max_size=60).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c <= 126 or c >= 128)
)
CONTENT_TYPES = (
    st.sampled_from(
        [
            b"application/json",
            b"application/json; charset=utf-8",
            b"application/json; charset=utf-16",
            b"APPLICATION/JSON",
            b"application/vnd.tonebridge+json",
            b"application/json;;;charset",
            b"text/plain",
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b"",
        ]
    )
    | HEADER_BYTES
)


@st.composite
def headers(draw):
    h = {"content-type": draw(CONTENT_TYPES)}
    h["authorization"] = BASIC.encode() if draw(st.integers(0, 9)) else draw(HEADER_BYTES)
    for name in ("idempotency-key", "x-request-id", "cookie", "x-csrf-token", "accept"):
        if draw(st.booleans()):
            h[name] = draw(HEADER_BYTES)
    return h


OPS = st.sampled_from(["SendDtmf", "Hangup", "Answer", "Hold", "Retrieve", "Dial"]) | TEXT
CATAPULT_DTMF = st.just({"dtmfOut": None}) | st.just({"dtmfOut": None, "extra": None})
CATAPULT_UPDATE = st.just({"state": None}) | st.just({"state": "completed"})
CATAPULT_CREATE = st.just({"from": None, "to": None}) | st.just({"from": "+15000", "to": None})
GWS_OP = st.builds(lambda op: {"operationName": op, "digits": None}, OPS)
GWS_DIAL = st.builds(lambda op: {"operationName": op, "destination": None}, st.just("Dial") | OPS)
BAYEUX = st.builds(
    lambda ch: {"channel": ch, "id": None, "clientId": None, "subscription": None, "advice": None},
    st.sampled_from(
        ["/meta/handshake", "/meta/connect", "/meta/subscribe", "/meta/disconnect", "/v2/me/calls"]
    )
    | TEXT,
)


def run(rig, path, shapes, data, method="POST"):
    body = data.draw(bodies(shapes))
    h = data.draw(headers())
    if path.startswith("/api/v2/notifications") and data.draw(st.booleans()):
        body = b"[" + body + b"]"
    rig.request(method, path, body, h)


@SETTINGS
@given(data=st.data())
def test_fuzz_catapult_dtmf(rig, data):
    run(rig, f"/v1/users/{USER}/calls/c-1/dtmf", CATAPULT_DTMF, data)


@SETTINGS
@given(data=st.data())
def test_fuzz_catapult_update_and_create(rig, data):
    path = data.draw(st.sampled_from([f"/v1/users/{USER}/calls/c-2", f"/v1/users/{USER}/calls"]))
    run(rig, path, CATAPULT_UPDATE if path.endswith("c-2") else CATAPULT_CREATE, data)


@SETTINGS
@given(data=st.data())
def test_fuzz_gws_call_operation(rig, data):
    run(rig, "/api/v2/me/calls/c-1", GWS_OP, data)


@SETTINGS
@given(data=st.data())
def test_fuzz_gws_dial(rig, data):
    device = data.draw(st.sampled_from(["dev-1", "dev-2", "nope"]))
    run(rig, f"/api/v2/me/devices/{device}/calls", GWS_DIAL, data)


@SETTINGS
@given(data=st.data())
def test_fuzz_cometd(rig, data):
    path = data.draw(st.sampled_from(["", "/handshake", "/connect", "/x/y"]))
    run(rig, "/api/v2/notifications" + path, BAYEUX, data)


@SETTINGS
@given(data=st.data())
def test_fuzz_any_route_and_method(rig, data):
    path = data.draw(
        st.sampled_from(
            [
                f"/v1/users/{USER}/calls/c-1/dtmf",
                f"/v1/users/{USER}/calls",
                "/api/v2/me/calls/c-2",
                "/api/v2/me",
                "/api/v2/nothing",
                "/v1/users/someone-else/calls",
            ]
        )
    )
    method = data.draw(st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH"]))
    run(rig, path, CATAPULT_DTMF, data, method=method)


# inputs that gave 500 (and a traceback in the log) before; each must be a 4xx now
KNOWN_BAD = [
    (f"/v1/users/{USER}/calls/c-1/dtmf", b'{"dtmfOut": "\\ud800"}'),  # echoed lone surrogate
    (f"/v1/users/{USER}/calls/c-1/dtmf", b"[" * 5000 + b"]" * 5000),  # RecursionError
    (f"/v1/users/{USER}/calls/c-1/dtmf", b'{"dtmfOut": ' + b"9" * 5000 + b"}"),  # int limit
    ("/api/v2/me/calls/c-1", b'{"operationName": "SendDtmf", "digits": "1\\udfff"}'),
    ("/api/v2/notifications", b'[{"channel": "/meta/handshake", "id": NaN}]'),
    (
        "/api/v2/notifications",
        b'[{"channel": "/meta/subscribe", "subscription": ' + b"[" * 900 + b"]" * 900 + b"}]",
    ),
    ("/api/v2/notifications", b'[{"channel": "/\\ud800", "id": "\\udc00"}]'),
]


@pytest.mark.parametrize("path, body", KNOWN_BAD)
def test_known_bad_bodies(rig, path, body):
    h = {"content-type": b"application/json", "authorization": BASIC.encode()}
    r = rig.request("POST", path, body, h)
    assert r.status_code in (200, 400) and r.content.isascii()
