"""A second real CometD client, the Python one (aiocometd-noloop), on the GWS channel."""

from __future__ import annotations

import asyncio
import base64

import httpx
from aiocometd_noloop import Client, ConnectionType, Extension
from apihelpers import SpyFactory

USER, PW = "agent", "agent-pw"


class GwsHeaders(Extension):
    """Adds the GWS session, CSRF token and Basic credentials to every Bayeux POST."""

    def __init__(self, headers):
        self.headers = headers

    async def outgoing(self, payload, headers):
        headers.update(self.headers)

    async def incoming(self, payload, headers=None):
        pass


def test_aiocometd_receives_status_change(start_server, tmp_path):
    srv = start_server(
        ports=[str(tmp_path / "absent")],
        auth=[f"{USER}:{PW}"],
        tweak=lambda cfg: setattr(cfg.lines[0], "call_id", "c-py"),
        factory=SpyFactory(reconnect_timeout=0.1, open_timeout=0.1),
    )
    basic = "Basic " + base64.b64encode(f"{USER}:{PW}".encode()).decode()
    me = httpx.get(srv.base + "/api/v2/me", headers={"Authorization": basic})
    token = me.headers["X-CSRF-TOKEN"]
    cookie = "JSESSIONID=" + me.cookies["JSESSIONID"]
    ext = GwsHeaders({"Authorization": basic, "X-CSRF-TOKEN": token, "Cookie": cookie})

    async def scenario():
        async with Client(
            srv.base + "/api/v2/notifications",
            connection_types=ConnectionType.LONG_POLLING,
            extensions=[ext],
        ) as client:
            await client.subscribe("/v2/me/calls")

            def hangup():
                return httpx.post(
                    srv.base + "/api/v2/me/calls/c-py",
                    json={"operationName": "Hangup"},
                    headers={"X-CSRF-TOKEN": token, "Cookie": cookie},
                )

            r = await asyncio.to_thread(hangup)
            assert r.json() == {"statusCode": 0}
            return await asyncio.wait_for(client.receive(), 20)

    message = asyncio.run(scenario())
    assert message["channel"] == "/v2/me/calls"
    assert message["data"]["notificationType"] == "StatusChange"
    assert message["data"]["call"]["id"] == "c-py"
    assert message["data"]["call"]["state"] == "Released"
