"""The front end's switchboard (`tonebridge serve --broker`): the lines of the whole fleet
as their agents announce them (retained state), commands sent to the agent that owns a
line. It has the interface the API handlers use of tonebridge.api.switchboard.Switchboard
and keeps no line state of its own: everything it knows is the agents' retained state, so
any number of front ends can answer any request (docs/fleet.md)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from tonebridge.api.calls import (
    Call,
    CallReleased,
    EarlierFailure,
    Job,
    SendFailed,
    fail,
    resolve,
)
from tonebridge.api.errors import ApiError
from tonebridge.api.idempotency import FINGERPRINT
from tonebridge.fleet import topics
from tonebridge.fleet.linestate import failure_from, update_call
from tonebridge.fleet.mqtt import Connection

log = logging.getLogger("tonebridge.fleet")

REPLY_GRACE_S = 1.5  # how much longer than the agent's own bound a front end waits for it


@dataclass(eq=False)
class RemoteJob(Job):
    """A send published to an agent. Its answer timing out here (await_accepted calls
    expire()) while it may have reached the agent cancels it there: on the board if the board
    accepted it after all, and what played is reported, as in the single-process mode."""

    on_expire: Callable[[], None] | None = None
    replayed: bool = False  # the agent answered from its idempotency record

    def expire(self) -> str:
        was = super().expire()
        if was == "submitting" and self.on_expire is not None:
            self.on_expire()
        return was


class RemoteLine:
    """A line of some agent, as its retained state says."""

    def __init__(self, device: str):
        self.device_id = device
        self.agent = ""
        self.owner = ""
        self.number = ""
        self.hwid = None
        self.port = ""
        self.fault_text = None
        self.announced = False  # the line's own state says online
        self.agent_online = False  # its agent's status (with the last will) says online
        self.call: Call | None = None
        self.why_offline: str | None = None
        self.state: dict = {}  # the agent's last retained state of the line
        self.cfg = SimpleNamespace(tone_ms=None, gap_ms=None)

    # what the dashboard and /metrics show, as the agent last said
    @property
    def link_up(self) -> bool:
        return self.online and bool(self.state.get("link_up"))

    @property
    def off_hook(self) -> bool:
        return bool(self.state.get("off_hook"))

    @property
    def board_info(self) -> dict:
        info = self.state.get("board_info")
        return dict(info) if isinstance(info, dict) else {}

    @property
    def queue_depth(self) -> int:
        return int(self.state.get("queue_depth") or 0)

    @property
    def reconnects(self) -> int:
        return int(self.state.get("reconnects") or 0)

    @property
    def url(self) -> str:
        return self.port

    path = url

    @property
    def online(self) -> bool:
        return self.announced and self.agent_online

    @property
    def fault(self) -> str | None:
        if not self.agent_online:
            return self.why_offline or f"the line's agent {self.agent} is offline"
        if not self.announced:
            return f"agent {self.agent} has taken the line offline"
        return self.fault_text

    def state_json(self) -> dict:
        return {"hardwareId": self.hwid, "port": self.path, "fault": self.fault}


class RemoteSwitchboard:
    def __init__(self, broker, name: str, accept_timeout: float = 3.0, keepalive: int = 5):
        if not topics.safe_name(name):
            raise ValueError(f"front-end name {name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
        self.name = name
        # The agent gets the configured bound (less a margin for the trip back) and its answer
        # is the one that counts; the front end waits REPLY_GRACE_S longer for it before it
        # answers 503 on its own (and cancels the send at the agent).
        self.agent_timeout = max(0.1, float(accept_timeout) - 0.4)
        self.accept_timeout = float(accept_timeout) + REPLY_GRACE_S
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lines: dict[str, RemoteLine] = {}
        self.calls: dict[str, Call] = {}
        self.agents: dict[str, bool] = {}
        self.listeners = []  # fn(kind, call, info), as Switchboard's
        self.settled = []  # (the agents settle their own records)
        self._pending: dict[str, Job] = {}
        self.record_dir = None  # recordings stay with the agents
        self.reply_topic = topics.frontend_reply(name)
        self.conn = Connection(
            broker,
            f"tonebridge-fe-{name}",
            on_message=self._from_broker,
            on_connect=self._connected,
            on_disconnect=self._disconnected,
            keepalive=keepalive,
            clean_session=True,  # a new front end wants nothing old
        )

    # ------------------------------------------------------------ life
    def start(self, loop):
        self.loop = loop
        self.conn.start()

    def stop(self):
        self.conn.stop()

    def _connected(self):
        self.conn.subscribe(
            topics.ALL_STATUS, topics.ALL_STATE, topics.ALL_EVENTS, self.reply_topic
        )

    def _disconnected(self):  # paho's thread: no agent can be reached until it is back
        if self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._broker_lost)
            except RuntimeError:
                pass

    def _broker_lost(self):
        for agent in list(self.agents):
            self._agent_status(agent, False, why="the broker is unreachable")

    def _from_broker(self, topic, payload):  # paho's thread
        msg = topics.decode(payload) if payload else None
        if msg is not None and self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._message, topics.parts(topic), msg)
            except RuntimeError:
                pass  # the loop closed: shutting down

    def _message(self, p, msg):
        if len(p) != 3 or not topics.safe_name(p[1]):
            return
        if p[0] == "agent" and p[2] == "status":
            self._agent_status(p[1], bool(msg.get("online")))
        elif p[0] == "line" and p[2] == "state":
            self._line_state(p[1], msg)
        elif p[0] == "line" and p[2] == "event":
            self._event(p[1], msg)
        elif p[0] == "frontend" and p[2] == "reply" and p[1] == self.name:
            self._reply(msg)

    # ------------------------------------------------------------ state from the agents
    def _agent_status(self, agent: str, online: bool, why: str | None = None):
        self.agents[agent] = online
        for line in self._lines.values():
            if line.agent == agent and line.agent_online != online:
                line.agent_online, line.why_offline = online, why
                self._emit("line", None, line=line)
        if not online:
            for corr, job in list(self._pending.items()):
                if job.call.line.agent == agent:
                    self._pending.pop(corr, None)
                    fail(
                        job.accepted,
                        SendFailed(
                            f"{why or f'the line agent {agent} went offline'} while the send "
                            "was under way; if it reached the board, what played is reported "
                            "when the line is back",
                            0,
                            job.total,
                        ),
                    )

    def _line_state(self, device: str, msg: dict):
        line = self._lines.get(device)
        if line is None:
            line = self._lines[device] = RemoteLine(device)
        line.agent = str(msg.get("agent", ""))
        line.agent_online = self.agents.get(line.agent, False)
        line.announced = bool(msg.get("online"))
        line.owner = str(msg.get("owner", ""))
        line.number = str(msg.get("number", ""))
        line.hwid = msg.get("hwid")
        line.port = str(msg.get("port", ""))
        line.fault_text = msg.get("fault")
        line.state = msg
        line.cfg = SimpleNamespace(tone_ms=msg.get("tone_ms"), gap_ms=msg.get("gap_ms"))
        data = msg.get("call")
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            call = self.calls.get(data["id"])
            if call is None or call.line is not line:
                call = Call(
                    id=data["id"], line=line, owner="", direction="out", local="", remote=""
                )
                self.calls[call.id] = call
            update_call(call, data)
            line.call = call
        else:
            line.call = None
        self._emit("line", None, line=line)

    def _event(self, device: str, msg: dict):
        line = self._lines.get(device)
        call = self.calls.get(msg.get("call")) if isinstance(msg.get("call"), str) else None
        if line is None or call is None:
            return
        kind = msg.get("kind")
        if kind == "progress":
            event = {"event": msg.get("state"), "index": msg.get("index"), "key": msg.get("key")}
            self._emit("digit", call, line=line, rid=msg.get("rid"), text=msg.get("text", ""),
                       event=event)  # fmt: skip
        elif kind == "dtmf_sent":
            self._emit("dtmf_sent", call, digits=msg.get("digits"), played=msg.get("played"))
        elif kind == "state" and isinstance(msg.get("state"), str):
            call.state = msg["state"]
            self._emit("state", call)
        elif kind == "send_failed":
            exc = SendFailed(
                str(msg.get("message", "")), int(msg.get("played", 0)), int(msg.get("total", 0)),
                bool(msg.get("accepted")),
            )  # fmt: skip
            self._emit("send_failed", call, failure=exc)

    def _reply(self, msg: dict):
        job = self._pending.pop(msg.get("id"), None)
        if job is None:
            return
        if msg.get("ok"):
            job.state, job.replayed = "accepted", bool(msg.get("replayed"))
            resolve(job.accepted, None)
            return
        error = msg.get("error")
        if error == "failure":
            failure = failure_from(msg.get("failure") or {})
            fail(job.accepted, EarlierFailure(failure, int(msg.get("remaining", 0))))
        elif error == "released":
            fail(job.accepted, CallReleased())
        elif error == "conflict":
            fail(job.accepted, ApiError(
                "conflict", "this idempotency key was already used for a different request"
            ))  # fmt: skip
        else:
            fail(
                job.accepted,
                SendFailed(
                    str(msg.get("message") or error), int(msg.get("played", 0)),
                    int(msg.get("total", job.total)), at_most=msg.get("at_most"),
                    sent=bool(msg.get("sent", True)), refused=bool(msg.get("refused")),
                ),
            )  # fmt: skip

    def _emit(self, kind, call, **info):
        for fn in list(self.listeners):
            try:
                fn(kind, call, info)
            except Exception:
                log.exception("listener failed")

    # ------------------------------------------------------------ what handlers ask
    @property
    def lines(self) -> list[RemoteLine]:
        return sorted(self._lines.values(), key=lambda line: line.device_id)

    def calls_of(self, user: str):
        return [c for c in self.calls.values() if c.owner == user and c.line.call is c]

    def lines_of(self, user: str) -> list[RemoteLine]:
        return [line for line in self.lines if line.owner == user]

    def call_of(self, user: str, call_id: str) -> Call | None:
        call = self.calls.get(call_id)
        if call is None or call.owner != user or call.line.call is not call:
            return None
        return call

    def line_by_device(self, user: str, device_id: str):
        line = self._lines.get(device_id)
        return line if line is not None and line.owner == user else None

    def free_line(self, user: str):
        for line in self.lines:
            if line.owner == user and line.online and (line.call is None or not line.call.live):
                return line
        return None

    def take_failure(self, call):
        return None, 0  # the agent reports them (send(report_failures=True))

    def send(
        self, call, text, dialect, request_id=None, tone_ms=None, gap_ms=None,
        report_failures=False,
    ) -> Job:  # fmt: skip
        from tonebridge_fw.dialstring import compile_plan, digits_in

        total = digits_in(compile_plan(text, dialect))
        job = RemoteJob(
            kind="send", call=call, text=text, dialect=dialect, total=total,
            request_id=request_id or secrets.token_hex(8), tone_ms=tone_ms, gap_ms=gap_ms,
            accepted=self.loop.create_future(), done=self.loop.create_future(),
        )  # fmt: skip
        job.state = "submitting"  # it may reach the board from the moment it is published
        job.done.cancel()
        line = call.line
        if not line.online:
            fail(job.accepted, SendFailed(f"{line.fault}; nothing was sent", 0, total, sent=False))
            return job
        corr = secrets.token_hex(8)
        timeout_ms = int(self.agent_timeout * 1000)
        command = {
            "op": "send", "id": corr, "reply": self.reply_topic, "call": call.id, "text": text,
            "dialect": dialect, "tone_ms": tone_ms, "gap_ms": gap_ms, "rid": job.request_id,
            "fingerprint": FINGERPRINT.get(), "report_failures": report_failures,
            "timeout_ms": timeout_ms, "expires": time.time() + timeout_ms / 1000.0,
        }  # fmt: skip
        self._pending[corr] = job
        job.accepted.add_done_callback(lambda f: self._pending.pop(corr, None))
        cancel = {"op": "cancel", "id": secrets.token_hex(8), "reply": self.reply_topic,
                  "call": call.id, "rid": job.request_id}  # fmt: skip
        job.on_expire = lambda: self.conn.publish(
            topics.line_cmd(line.device_id), topics.encode(cancel)
        )
        self.conn.publish(topics.line_cmd(line.device_id), topics.encode(command))
        return job

    def hangup(self, call):
        line = call.line
        command = {"op": "hangup", "id": secrets.token_hex(8), "reply": self.reply_topic,
                   "call": call.id}  # fmt: skip
        self.conn.publish(topics.line_cmd(line.device_id), topics.encode(command))
        call.state, call.end_time = "Released", time.time()  # until the agent's state says so
        self._emit("state", call)

    def dial(self, line, owner, destination, dialect):
        raise ApiError(
            "send_failed",
            "placing calls is not carried over the fleet's broker yet (docs/fleet.md); "
            "dial on the agent's host, or send DTMF on the line's established call",
        )
