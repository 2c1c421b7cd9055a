"""Unit tests of the bridge's sans-I/O pieces: credentials, rate limit, Bayeux server."""

import asyncio
import base64

import pytest
from tonebridge.api.auth import Authenticator, RateLimiter
from tonebridge.api.cometd import Bayeux, channel_matches
from tonebridge.api.errors import ApiError


def basic(user, secret):
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def test_basic_credentials():
    auth = Authenticator({"alice": "pw", "bob": "pw2"})
    assert auth.check_basic(basic("alice", "pw")) == "alice"
    assert auth.check_basic(basic("alice", "pw2")) is None
    assert auth.check_basic(basic("carol", "pw")) is None
    assert auth.check_basic(basic("alice", "")) is None
    for bad in (
        None,
        "",
        "Basic",
        "Basic !!!",
        "Bearer abc",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ):
        assert auth.check_basic(bad) is None


def test_sessions_and_csrf():
    auth = Authenticator({"alice": "pw"})
    s = auth.new_session("alice")
    assert auth.session(s.sid) is s
    assert auth.session("forged") is None
    assert auth.csrf_ok(s, s.csrf)
    assert not auth.csrf_ok(s, None)
    assert not auth.csrf_ok(s, s.csrf + "x")


def test_rate_limit_token_bucket():
    now = [0.0]
    rl = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    for _ in range(3):
        rl.take("alice")
    with pytest.raises(ApiError) as info:
        rl.take("alice")
    assert info.value.kind == "rate_limited"
    assert int(info.value.headers["X-RateLimit-Reset"]) > 0
    rl.take("bob")  # per user
    now[0] += 0.5  # one token back at 2/s
    rl.take("alice")
    with pytest.raises(ApiError):
        rl.take("alice")


@pytest.mark.parametrize(
    "pattern, channel, expected",
    [
        ("/v2/me/calls", "/v2/me/calls", True),
        ("/v2/me/*", "/v2/me/calls", True),
        ("/v2/me/*", "/v2/me/calls/x", False),
        ("/v2/**", "/v2/me/calls", True),
        ("/v2/**", "/v2", False),
        ("/v2/me/devices", "/v2/me/calls", False),
    ],
)
def test_channel_wildcards(pattern, channel, expected):
    assert channel_matches(pattern, channel) is expected


def run(coro):
    return asyncio.run(coro)


def test_bayeux_flow_and_isolation():
    async def scenario():
        bx = Bayeux(connect_timeout_ms=200)
        (hs,) = await bx.handle(
            [
                {
                    "channel": "/meta/handshake",
                    "id": "1",
                    "version": "1.0",
                    "supportedConnectionTypes": ["long-polling"],
                }
            ],
            "alice",
        )
        assert hs["successful"] and hs["id"] == "1" and hs["channel"] == "/meta/handshake"
        assert hs["advice"] == {"reconnect": "retry", "interval": 0, "timeout": 200}
        assert len(hs["clientId"]) >= 32  # >= 128 bits
        cid = hs["clientId"]
        (bob_hs,) = await bx.handle([{"channel": "/meta/handshake", "id": "1"}], "bob")
        bob = bob_hs["clientId"]
        for c, u in ((cid, "alice"), (bob, "bob")):
            (sub,) = await bx.handle(
                [
                    {
                        "channel": "/meta/subscribe",
                        "clientId": c,
                        "id": "2",
                        "subscription": ["/v2/me/*"],
                    }
                ],
                u,
            )
            assert sub["successful"] and sub["subscription"] == ["/v2/me/*"]
        # first connect answers at once
        (conn,) = await bx.handle(
            [
                {
                    "channel": "/meta/connect",
                    "clientId": cid,
                    "id": "3",
                    "connectionType": "long-polling",
                }
            ],
            "alice",
        )
        assert conn["successful"]
        # a held connect is released by an event for alice only
        held = asyncio.create_task(
            bx.handle(
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": cid,
                        "id": "4",
                        "connectionType": "long-polling",
                    }
                ],
                "alice",
            )
        )
        await asyncio.sleep(0.05)
        assert not held.done()
        assert bx.publish("alice", "/v2/me/calls", {"x": 1}) == 1
        reply = await asyncio.wait_for(held, 1)
        assert reply[0]["channel"] == "/v2/me/calls" and reply[0]["data"] == {"x": 1}
        assert reply[-1]["channel"] == "/meta/connect" and reply[-1]["successful"]
        # bob got nothing; his held connect times out empty
        await bx.handle([{"channel": "/meta/connect", "clientId": bob, "id": "3"}], "bob")
        bob_reply = await bx.handle(
            [{"channel": "/meta/connect", "clientId": bob, "id": "4"}], "bob"
        )
        assert [m["channel"] for m in bob_reply] == ["/meta/connect"]
        # another user cannot use alice's clientId
        (stolen,) = await bx.handle(
            [{"channel": "/meta/connect", "clientId": cid, "id": "9"}], "bob"
        )
        assert stolen["error"].startswith("402") and stolen["advice"]["reconnect"] == "handshake"
        # unknown client -> re-handshake advice
        (unk,) = await bx.handle(
            [{"channel": "/meta/connect", "clientId": "nope", "id": "5"}], "alice"
        )
        assert unk["successful"] is False and unk["advice"]["reconnect"] == "handshake"
        # publishing from a client is refused; meta subscriptions too
        (pub,) = await bx.handle(
            [{"channel": "/v2/me/calls", "clientId": cid, "data": {}, "id": "6"}], "alice"
        )
        assert pub["successful"] is False
        (bad,) = await bx.handle(
            [
                {
                    "channel": "/meta/subscribe",
                    "clientId": cid,
                    "id": "7",
                    "subscription": "/meta/connect",
                }
            ],
            "alice",
        )
        assert bad["successful"] is False
        # disconnect releases a held connect
        held = asyncio.create_task(
            bx.handle([{"channel": "/meta/connect", "clientId": cid, "id": "8"}], "alice")
        )
        await asyncio.sleep(0.05)
        (disc,) = await bx.handle(
            [{"channel": "/meta/disconnect", "clientId": cid, "id": "9"}], "alice"
        )
        assert disc["successful"]
        released = await asyncio.wait_for(held, 1)
        assert released[-1]["successful"] is False
        # unauthenticated handshake is refused without retry
        (anon,) = await bx.handle([{"channel": "/meta/handshake", "id": "1"}], None)
        assert anon["successful"] is False and anon["advice"]["reconnect"] == "none"
        # garbage never yields an empty reply
        assert await bx.handle(None, "alice")
        assert await bx.handle([42], "alice")

    run(scenario())
