"""GWS CometD through the fleet: a client subscribed on one front end receives `DtmfSent`
for a SendDtmf that went through another front end, when the agent's board reports the
digits played (the agent's dtmf_sent event), with a real CometD client (aiocometd-noloop)."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest
from aiocometd_noloop import Client, ConnectionType, Extension
from fleethelpers import PW, USER, wait_line_ready


class GwsHeaders(Extension):
    def __init__(self, headers):
        self.headers = headers

    async def outgoing(self, payload, headers):
        headers.update(self.headers)

    async def incoming(self, payload, headers=None):
        pass


def session(base):
    basic = "Basic " + base64.b64encode(f"{USER}:{PW}".encode()).decode()
    me = httpx.get(base + "/api/v2/me", headers={"Authorization": basic})
    token, cookie = me.headers["X-CSRF-TOKEN"], "JSESSIONID=" + me.cookies["JSESSIONID"]
    return {"Authorization": basic, "X-CSRF-TOKEN": token, "Cookie": cookie}


@pytest.mark.slow
def test_dtmf_sent_reaches_a_cometd_client_on_another_front_end(fleet):
    fleet.agent("a1")
    _, f1 = fleet.frontend("f1")
    _, f2 = fleet.frontend("f2")
    wait_line_ready(f1, "c-a1-1")
    listen, send = session(f2), session(f1)

    async def scenario():
        async with Client(f2 + "/api/v2/notifications", extensions=[GwsHeaders(listen)],
                          connection_types=ConnectionType.LONG_POLLING) as client:  # fmt: skip
            await client.subscribe("/v2/me/calls")

            def send_dtmf():
                return httpx.post(f1 + "/api/v2/me/calls/c-a1-1", headers=send,
                                  json={"operationName": "SendDtmf", "digits": "42"})  # fmt: skip

            r = await asyncio.to_thread(send_dtmf)
            assert r.json() == {"statusCode": 0}, r.text
            while True:
                message = await asyncio.wait_for(client.receive(), 20)
                if message["data"].get("notificationType") == "DtmfSent":
                    return message

    message = asyncio.run(scenario())
    assert message["channel"] == "/v2/me/calls"
    call = message["data"]["call"]
    assert call["id"] == "c-a1-1" and call["dtmfDigitsSent"] == 2, message
