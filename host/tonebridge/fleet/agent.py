"""`tonebridge agent`: owns the lines of one host and serves them over MQTT (docs/fleet.md).

It runs the same line machinery as `tonebridge serve` (Switchboard, Line, BoardClient, the
SQLite store with its sequence records and reconciliation) with no HTTP. It announces
itself and each line retained (its last will says it is offline), executes the commands
addressed to its lines (agent_commands.py) and publishes per-digit progress and outcomes.
"""

from __future__ import annotations

import asyncio
import json
import logging

from tonebridge.api.switchboard import Switchboard
from tonebridge.fleet import topics
from tonebridge.fleet.agent_commands import Commands
from tonebridge.fleet.linestate import line_json
from tonebridge.fleet.mqtt import Connection

log = logging.getLogger("tonebridge.fleet")

REPUBLISH_S = 0.25  # a line's state is compared with what was published this often


class Agent:
    def __init__(self, name, broker, cfg, store, client_factory=None, keepalive=5):
        if not topics.safe_name(name):
            raise ValueError(f"agent name {name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
        self.name = name
        self.cfg = cfg
        self.store = store
        self.board = Switchboard(
            cfg.lines,
            client_factory,
            cfg.record_dir,
            store=store,
            accept_timeout=cfg.accept_timeout_ms / 1000.0,
        )
        self.lines = {line.device_id: line for line in self.board.lines}
        self.commands = Commands(self)
        self.board.listeners.append(self._board_event)
        self.board.settled.append(self.commands.settle)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._published: dict[str, str] = {}
        self._stop = None
        will = (topics.agent_status(name), topics.encode({"online": False, "agent": name}))
        self.conn = Connection(
            broker,
            f"tonebridge-agent-{name}",
            will=will,
            on_message=self._message,
            on_connect=self._connected,
            keepalive=keepalive,
        )

    # ------------------------------------------------------------ MQTT side (paho thread)
    def _connected(self):
        self.conn.subscribe(*(topics.line_cmd(d) for d in self.lines))
        self._published.clear()  # the broker may have lost the retained state: all again
        self.conn.publish(
            topics.agent_status(self.name),
            topics.encode({"online": True, "agent": self.name, "lines": list(self.lines)}),
            retain=True,
        )
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.publish_lines)

    def _message(self, topic, payload):
        p = topics.parts(topic)
        if len(p) != 3 or p[0] != "line" or p[2] != "cmd" or p[1] not in self.lines:
            return
        msg = topics.decode(payload)
        if msg is None:
            log.warning("dropped a command on %s that is not a v1 JSON object", topic)
            return
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.commands.handle, self.lines[p[1]], msg)

    # ------------------------------------------------------------ loop side
    def publish_lines(self, online=True, force=False, only=None):
        """Publish the retained state of every line (of `only`, a line, if given) that changed
        since it was last published (all of them with `force`)."""
        lines = self.lines.items() if only is None else [(only.device_id, only)]
        for device, line in lines:
            state = line_json(self.name, line, online)
            text = json.dumps(state, sort_keys=True)
            if force or self._published.get(device) != text:
                self._published[device] = text
                self.conn.publish(topics.line_state(device), topics.encode(state), retain=True)

    def reply(self, to: str, corr, result: dict):
        self.conn.publish(to, topics.encode({"id": corr, **result}))

    def event(self, line, kind: str, **fields):
        self.conn.publish(
            topics.line_event(line.device_id), topics.encode({"kind": kind, **fields})
        )

    def _board_event(self, kind, call, info):
        if kind == "digit":  # a digit started or finished, as the board reports it
            line, event = info["line"], info.get("event") or {}
            self.event(
                line, "progress", call=call.id if call else None, rid=info.get("rid"),
                text=info.get("text", ""), state=event.get("event"), index=event.get("index"),
                key=event.get("key"),
            )  # fmt: skip
            return
        # the state first: a front end that gets the event sees the call with its counts (the
        # line the event is about: with 16 lines an agent re-encoded all 16 for every event)
        line = info.get("line") or (call.line if call is not None else None)
        self.publish_lines(only=line if getattr(line, "device_id", None) in self.lines else None)
        if call is not None:
            line = call.line
            if kind == "dtmf_sent":
                self.event(
                    line, kind, call=call.id, digits=info.get("digits"), played=info.get("played")
                )
            elif kind == "send_failed":
                exc = info["failure"]
                self.event(
                    line, kind, call=call.id, message=exc.message, played=exc.played,
                    total=exc.total, accepted=exc.accepted,
                )  # fmt: skip
            elif kind == "state":
                self.event(line, kind, call=call.id, state=call.state)

    async def run(self, on_started=None):
        """Run until stop(); `on_started()` once connected and announced."""
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.board.start(self.loop)
        await asyncio.to_thread(self.conn.start)
        self.publish_lines(force=True)
        if on_started is not None:
            on_started()
        try:
            while not self._stop.is_set():
                try:
                    await asyncio.wait_for(self._stop.wait(), REPUBLISH_S)
                except TimeoutError:
                    self.publish_lines()
        finally:
            self.publish_lines(online=False, force=True)
            info = self.conn.publish(
                topics.agent_status(self.name),
                topics.encode({"online": False, "agent": self.name}),
                retain=True,
            )
            try:
                await asyncio.to_thread(info.wait_for_publish, 2.0)
            except (RuntimeError, ValueError):
                log.warning("the broker is away: the last will says the lines are offline")
            await asyncio.to_thread(self.board.stop)
            self.conn.stop()

    def stop(self):
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
