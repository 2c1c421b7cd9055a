"""The switchboard's events, to each dashboard page as server-sent events (no polling).

`Broker` listens to the switchboard (api.switchboard listeners, on the event loop) and
fans each event out to the subscribed pages of the user it belongs to (a line's or call's
owner): nobody sees another user's lines or calls. A page's queue is bounded; a page that
falls that far behind is dropped (its EventSource reconnects and the page reloads).

Events (``event:`` name, ``data:`` JSON):
* ``digit``: {device, call, rid, text, index, key, state: started|finished, total}
* ``sequence``: {device, call, rid, played, total, outcome: null or the failure message}
* ``recorded``: {device, call, number, href}: a sequence's recording was written
* ``line``: {device, link, fault, hook, hwid, port}
* ``call``: {device, call, state}
"""

from __future__ import annotations

import asyncio
import json

QUEUE_MAX = 512
HEARTBEAT_S = 15.0


class Broker:
    def __init__(self, board):
        self.board = board
        self.subscribers: dict[asyncio.Queue, str] = {}
        self.closed = False
        board.listeners.append(self.on_event)

    def subscribe(self, user: str) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(QUEUE_MAX)
        self.subscribers[q] = user
        return q

    def unsubscribe(self, q) -> None:
        self.subscribers.pop(q, None)

    def close(self) -> None:
        self.closed = True
        for q in list(self.subscribers):
            self._put(q, None)

    def _put(self, q, item) -> None:
        try:
            q.put_nowait(item)
        except asyncio.QueueFull:
            self.subscribers.pop(q, None)
            try:
                q.get_nowait()
                q.put_nowait(None)  # ends that page's stream
            except (asyncio.QueueEmpty, asyncio.QueueFull):
                pass

    def publish(self, owner: str, name: str, data: dict) -> None:
        for q, user in list(self.subscribers.items()):
            if user == owner:
                self._put(q, (name, data))

    def on_event(self, kind, call, info):
        """Switchboard listener (event loop)."""
        line = info.get("line") or (call.line if call is not None else None)
        if line is None:
            return
        owner = call.owner if call is not None else line.owner
        base = {"device": line.device_id, "call": call.id if call is not None else None}
        if kind == "digit":
            ev = info["event"]
            self.publish(
                owner,
                "digit",
                {
                    **base,
                    "rid": info["rid"],
                    "text": info.get("text", ""),
                    "index": int(ev.get("index", 0)),
                    "key": str(ev.get("key", "")),
                    "state": ev.get("event"),
                    "total": ev.get("digits"),
                },
            )
        elif kind == "sequence_ended":
            outcome = info.get("outcome")
            self.publish(
                owner,
                "sequence",
                {
                    **base,
                    "rid": info["rid"],
                    "played": info["played"],
                    "total": info["total"],
                    "outcome": None if outcome is None else outcome.message,
                },
            )
        elif kind == "recorded":
            number = info["number"]
            self.publish(
                owner,
                "recorded",
                {**base, "number": number, "href": f"/ui/calls/{base['call']}#seq-{number}"},
            )
        elif kind in ("line", "hook"):  # the link/board changed, or the bridge set the hook
            self.publish(owner, "line", line_state(line))
        elif kind == "state" and call is not None:
            self.publish(owner, "call", {**base, "state": call.state})


def line_state(line) -> dict:
    return {
        "device": line.device_id,
        "link": "up" if line.link_up else "down",
        "fault": line.fault,
        "hook": "off-hook" if line.off_hook else "on-hook",
        "hwid": line.hwid,
        "port": line.path,
    }


def sse(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def stream(broker: Broker, q: asyncio.Queue, request):
    """The bytes of one page's event stream, until the page goes or serve stops."""
    try:
        yield b"retry: 2000\n\n"
        while not broker.closed:
            try:
                item = await asyncio.wait_for(q.get(), HEARTBEAT_S)
            except TimeoutError:
                if await request.is_disconnected():
                    break
                yield b": keep-alive\n\n"
                continue
            if item is None:
                break
            yield sse(*item)
    finally:
        broker.unsubscribe(q)
