"""A Bayeux 1.0 (CometD) long-polling server, enough for GWS notification clients.

Transport: HTTP POST of a JSON array of messages to `/api/v2/notifications` or any
sub-path (`/handshake`, `/connect`, ... as the JavaScript client sends); the reply is
HTTP 200 with a JSON array. Only long-polling is offered (as GWS 8.5).

Each client belongs to the user who authenticated the handshake; `publish(user, ...)`
reaches only that user's clients, and only on channels they subscribed to. A request the
server refuses (no credentials, a missing CSRF token where CSRF protection is on) is
answered like any other: HTTP 200, every message `successful:false` with a readable
`error` ("403::csrf token missing") and `advice.reconnect: "none"`. Nothing from a request
is echoed back unless it has the type Bayeux gives it (an `id` string, a subscription).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

MAX_QUEUE = 1000  # events kept per client while it is not connected
MAX_CLIENTS_PER_USER = 64
MAX_INTERVAL_MS = 60000  # a client that does not connect for this long (plus timeout) expires


@dataclass
class BayeuxClient:
    client_id: str
    user: str
    subscriptions: set = field(default_factory=set)
    queue: deque = field(default_factory=lambda: deque(maxlen=MAX_QUEUE))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_seen: float = field(default_factory=time.monotonic)
    connected: bool = False
    holding: int = 0
    gone: bool = False


def channel_matches(pattern: str, channel: str) -> bool:
    """Bayeux wildcards: `/a/*` one segment, `/a/**` any depth (at least one)."""
    if pattern == channel:
        return True
    p = pattern.split("/")
    c = channel.split("/")
    if p[-1] == "**":
        return len(c) > len(p) - 1 and c[: len(p) - 1] == p[:-1]
    if p[-1] == "*":
        return len(c) == len(p) and c[:-1] == p[:-1]
    return False


def _valid_subscription(channel) -> bool:
    if not isinstance(channel, str) or not channel.startswith("/") or len(channel) > 256:
        return False
    if channel.startswith("/meta/") or channel == "/meta":
        return False
    parts = channel.split("/")[1:]
    if any(not p for p in parts):
        return False
    if any(p in ("*", "**") for p in parts[:-1]):
        return False
    return True


class Bayeux:
    def __init__(self, connect_timeout_ms: int = 30000):
        self.timeout_ms = int(connect_timeout_ms)
        self.clients: dict[str, BayeuxClient] = {}
        self._closing = False

    # ---------------------------------------------------------------- publishing
    def publish(self, user: str, channel: str, data: dict) -> int:
        """Queue an event for every client of `user` subscribed to `channel`."""
        count = 0
        for client in list(self.clients.values()):
            if client.user != user or client.gone:
                continue
            if any(channel_matches(s, channel) for s in client.subscriptions):
                client.queue.append({"channel": channel, "data": data, "id": _next_id()})
                client.wake.set()
                count += 1
        return count

    def close(self):
        self._closing = True
        for client in self.clients.values():
            client.gone = True
            client.wake.set()

    # ---------------------------------------------------------------- handling
    def _expire(self):
        now = time.monotonic()
        limit = (self.timeout_ms + MAX_INTERVAL_MS) / 1000.0
        for cid, client in list(self.clients.items()):
            if client.holding == 0 and now - client.last_seen > limit:
                client.gone = True
                del self.clients[cid]

    async def handle(self, messages, user: str | None, refusal: str | None = None) -> list:
        """Process one POSTed batch; returns the reply array (never empty). `refusal`: the
        request was refused (e.g. "403::csrf token missing"): every message fails so."""
        self._expire()
        if isinstance(messages, dict):
            messages = [messages]
        if not isinstance(messages, list) or not messages:
            return [_fail({}, "400::Bad message", advice={"reconnect": "handshake", "interval": 0})]
        if refusal is not None:
            return [
                _fail(m if isinstance(m, dict) else {}, refusal, advice={"reconnect": "none"})
                for m in messages[:MAX_QUEUE]
            ]
        replies = []
        connect = None
        for msg in messages:
            if not isinstance(msg, dict) or not isinstance(msg.get("channel"), str):
                replies.append(_fail(msg if isinstance(msg, dict) else {}, "400::Bad message"))
                continue
            channel = msg["channel"]
            if channel == "/meta/handshake":
                replies.append(self._handshake(msg, user))
            elif channel == "/meta/connect":
                connect = msg  # answered last, after events
            elif channel == "/meta/subscribe":
                replies.append(self._subscribe(msg, user, True))
            elif channel == "/meta/unsubscribe":
                replies.append(self._subscribe(msg, user, False))
            elif channel == "/meta/disconnect":
                replies.append(self._disconnect(msg, user))
            elif channel.startswith("/meta/"):
                replies.append(_fail(msg, f"400:{channel[:256]}:Unknown meta channel"))
            else:
                reply = _fail(msg, f"403:{channel[:256]}:Publish denied")
                if self._client(msg, user) is None:
                    reply = self._unknown(msg)
                replies.append(reply)
        if connect is not None:
            batched = len(messages) > 1
            events, reply = await self._connect(connect, user, batched)
            return events + replies + [reply]
        return replies

    def _client(self, msg, user):
        cid = msg.get("clientId")
        client = self.clients.get(cid) if isinstance(cid, str) else None
        if client is None or client.gone or client.user != user:
            return None
        client.last_seen = time.monotonic()
        return client

    def _unknown(self, msg):
        return _fail(msg, "402::Unknown client", advice={"reconnect": "handshake", "interval": 0})

    def _handshake(self, msg, user):
        if user is None:
            return _fail(msg, "403::Authentication failed", advice={"reconnect": "none"})
        types = msg.get("supportedConnectionTypes") or ["long-polling"]
        if not isinstance(types, list) or "long-polling" not in types:
            reply = _fail(msg, "406::Unsupported connection type", advice={"reconnect": "none"})
            reply["supportedConnectionTypes"] = ["long-polling"]
            return reply
        mine = [c for c in self.clients.values() if c.user == user]
        if len(mine) >= MAX_CLIENTS_PER_USER:
            oldest = min(mine, key=lambda c: c.last_seen)
            oldest.gone = True
            oldest.wake.set()
            self.clients.pop(oldest.client_id, None)
        client = BayeuxClient(client_id=secrets.token_hex(20), user=user)
        self.clients[client.client_id] = client
        reply = _ok(msg)
        reply.update(
            version="1.0",
            minimumVersion="1.0",
            clientId=client.client_id,
            supportedConnectionTypes=["long-polling"],
            advice={"reconnect": "retry", "interval": 0, "timeout": self.timeout_ms},
        )
        return reply

    def _subscribe(self, msg, user, add):
        client = self._client(msg, user)
        if client is None:
            return self._unknown(msg)
        subs = msg.get("subscription")
        items = subs if isinstance(subs, list) else [subs]
        if not items or not all(_valid_subscription(s) for s in items):
            shown = subs if _valid_subscription(subs) or isinstance(subs, str) else "?"
            reply = _fail(msg, f"403:{str(shown)[:256]}:Invalid subscription")
            if isinstance(subs, str):
                reply["subscription"] = subs[:256]
            return reply
        for s in items:
            if add:
                client.subscriptions.add(s)
            else:
                client.subscriptions.discard(s)
        reply = _ok(msg)
        reply["subscription"] = subs
        return reply

    def _disconnect(self, msg, user):
        client = self._client(msg, user)
        if client is None:
            return self._unknown(msg)
        client.gone = True
        client.wake.set()
        self.clients.pop(client.client_id, None)
        return _ok(msg)

    async def _connect(self, msg, user, batched):
        client = self._client(msg, user)
        if client is None:
            return [], self._unknown(msg)
        advice = msg.get("advice") if isinstance(msg.get("advice"), dict) else {}
        timeout = advice.get("timeout")
        immediate = (
            batched or not client.connected or timeout == 0 or bool(client.queue) or self._closing
        )
        client.connected = True
        if not immediate:
            # One held connect per client: a newer one releases the older.
            client.wake.set()
            await asyncio.sleep(0)
            client.wake.clear()
            client.holding += 1
            try:
                await asyncio.wait_for(client.wake.wait(), self.timeout_ms / 1000.0)
            except TimeoutError:
                pass
            finally:
                client.holding -= 1
                client.last_seen = time.monotonic()
        client.wake.clear()
        events = list(client.queue)
        client.queue.clear()
        if client.gone:
            reply = _fail(
                msg, "402::Unknown client", advice={"reconnect": "handshake", "interval": 0}
            )
            return events, reply
        reply = _ok(msg)
        reply["advice"] = {"reconnect": "retry", "interval": 0, "timeout": self.timeout_ms}
        return events, reply


_counter = 0


def _next_id() -> str:
    global _counter
    _counter += 1
    return f"s{_counter}"


def _base(msg):
    channel = msg.get("channel")
    reply = {"channel": channel[:256] if isinstance(channel, str) else "/meta/unknown"}
    mid = msg.get("id")
    if isinstance(mid, str):
        reply["id"] = mid[:256]
    elif isinstance(mid, int) and not isinstance(mid, bool) and abs(mid) < 2**53:
        reply["id"] = mid
    cid = msg.get("clientId")
    if isinstance(cid, str):
        reply["clientId"] = cid[:256]
    return reply


def _ok(msg):
    reply = _base(msg)
    reply["successful"] = True
    return reply


def _fail(msg, error, advice=None):
    reply = _base(msg)
    reply["successful"] = False
    reply["error"] = error
    if advice:
        reply["advice"] = advice
    return reply
