"""An agent's commands (docs/fleet.md, "Commands and replies"): sends and hang-ups on its
lines, each keyed command's answer recorded in the agent's own store, so a retry (through
any front end, after any restart) gets the recorded answer and never plays twice."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

from tonebridge.api.calls import CallReleased, EarlierFailure, SendFailed
from tonebridge.fleet import topics
from tonebridge.fleet.linestate import failure_json

log = logging.getLogger("tonebridge.fleet")

USER = "fleet"  # the idempotency table's user column for the fleet's records


def _unknown(message):
    return {"ok": False, "error": "send_failed", "message": message, "played": 0, "total": 0,
            "at_most": 0, "sent": True, "refused": False}  # fmt: skip


class Commands:
    def __init__(self, agent):
        self.agent = agent
        self.store = agent.store
        self._live: dict[tuple, tuple[str, asyncio.Future]] = {}
        self._jobs: dict[str, object] = {}  # rid -> the Job of a send not yet ended

    def handle(self, line, msg: dict):
        """A command for `line` (event loop)."""
        reply_to, corr = msg.get("reply"), msg.get("id")
        p = topics.parts(reply_to) if isinstance(reply_to, str) else []
        if len(p) != 3 or p[0] != "frontend" or p[2] != "reply" or not topics.safe_name(p[1]):
            log.warning("line %s: dropped a command with no valid reply topic", line.device_id)
            return
        asyncio.ensure_future(self._answer(line, msg, reply_to, corr))

    async def _answer(self, line, msg, reply_to, corr):
        try:
            result = await self._run(line, msg)
        except Exception as exc:  # never leave a front end without an answer
            log.exception("line %s: command failed", line.device_id)
            result = _unknown(f"internal error in agent {self.agent.name}: {exc}")
        self.agent.reply(reply_to, corr, result)

    async def _run(self, line, msg):
        op = msg.get("op")
        if op == "send":
            rid = msg.get("rid")
            if not isinstance(rid, str) or not 0 < len(rid) <= 64:
                return {"ok": False, "error": "bad_command", "message": "send needs a rid"}
            slot = (USER, "send", line.device_id, rid)
            return await self._keyed(slot, str(msg.get("fingerprint") or ""), self._send(line, msg))
        if op == "cancel":
            return self._cancel(line, msg.get("rid"))
        if op == "hangup":
            call = line.call
            if call is None or call.id != msg.get("call") or not call.live:
                return {"ok": False, "error": "released", "message": "the call is not live"}
            self.agent.board.hangup(call)
            return {"ok": True}
        return {"ok": False, "error": "bad_command", "message": f"unknown op {op!r}"}

    async def _keyed(self, slot, fingerprint, work):
        live = self._live.get(slot)
        if live is not None:
            work.close()
            if live[0] != fingerprint:
                return {"ok": False, "error": "conflict"}
            return {**(await asyncio.shield(live[1])), "replayed": True}
        row = self.store.idem_get(slot)
        if row is not None:
            work.close()
            if row["fingerprint"] != fingerprint:
                return {"ok": False, "error": "conflict"}
            if row["status"] is None:
                return _unknown(
                    "the first command with this key was under way when the agent stopped, and "
                    "its board has not said since what became of it; nothing is sent again"
                )
            return {**json.loads(row["body"]), "replayed": True}
        self.store.idem_begin(slot, fingerprint, slot[3])
        fut = asyncio.get_running_loop().create_future()
        self._live[slot] = (fingerprint, fut)
        try:
            result = await work
        except BaseException:
            self.store.idem_forget(slot)
            fut.cancel()
            raise
        finally:
            self._live.pop(slot, None)
        if result.get("ok") or result.get("sent", True):
            self.store.idem_finish(slot, 200, json.dumps(result).encode(), {})
        else:  # nothing was sent: a retry runs again
            self.store.idem_forget(slot)
        fut.set_result(result)
        return result

    async def _send(self, line, msg):
        from tonebridge_fw.dialstring import compile_plan, digits_in

        call = line.call
        if call is None or call.id != msg.get("call") or not call.live:
            return {"ok": False, "error": "released", "message": "the call is not live"}
        text, dialect = msg.get("text"), msg.get("dialect", "catapult")
        try:
            total = digits_in(compile_plan(text, dialect))
        except Exception as exc:
            return {"ok": False, "error": "bad_command", "message": f"bad dial string: {exc}"}
        timeout = min(float(msg.get("timeout_ms", 2500)), 30000.0) / 1000.0
        expires = msg.get("expires")
        if isinstance(expires, int | float) and time.time() > expires:
            return {"ok": False, "error": "send_failed", "sent": False, "played": 0,
                    "total": total, "at_most": 0, "refused": False,
                    "message": "the command reached the agent after its answer was due; "
                               "nothing was sent"}  # fmt: skip
        job = self.agent.board.send(
            call, text, dialect, msg["rid"], msg.get("tone_ms"), msg.get("gap_ms"),
            report_failures=bool(msg.get("report_failures")),
        )  # fmt: skip
        job.deadline = time.monotonic() + max(0.0, timeout - 0.1)
        rid = msg["rid"]
        self._jobs[rid] = job
        job.done.add_done_callback(lambda f: self._jobs.pop(rid, None))
        try:
            await asyncio.wait_for(asyncio.shield(job.accepted), timeout)
        except EarlierFailure as exc:
            return {"ok": False, "error": "failure", "remaining": exc.remaining,
                    "failure": failure_json(exc.failure)}  # fmt: skip
        except CallReleased:
            return {"ok": False, "error": "released", "message": "the call was released first"}
        except SendFailed as exc:
            return {"ok": False, "error": "send_failed", "message": exc.message,
                    "played": exc.played, "total": exc.total, "at_most": exc.at_most,
                    "sent": exc.sent, "refused": exc.refused}  # fmt: skip
        except TimeoutError:
            was = job.expire()
            if was != "accepted":
                why = f"the board did not accept the sequence within {timeout:g} s"
                if line.fault:
                    why += f" ({line.fault})"
                return {"ok": False, "error": "send_failed", "message": why, "played": 0,
                        "total": total, "at_most": 0, "sent": was != "queued",
                        "refused": False}  # fmt: skip
        return {"ok": True, "total": total}

    def _cancel(self, line, rid):
        """The front end answered a send 503 (its own bound ran out) while it may have reached
        us: never start it, or cancel it on the board; the outcome lands in the line's
        failures with what played, and a retry with the same key gets that 503."""
        job = self._jobs.get(rid) if isinstance(rid, str) else None
        if job is None:
            seq = self.store.seq_get(rid) if isinstance(rid, str) else None
            if seq is not None and seq["state"] == "done" and seq["played"]:
                # it had played already: the front end's 503 said otherwise, so the call
                # reports it (as a restart's reconciliation reports such a sequence)
                self.agent.board.played_after_failure(seq)
            return {"ok": True, "cancelled": False}
        was = job.expire()
        if was == "accepted" and line.client is not None:
            threading.Thread(target=self._cancel_on_board, args=(line, rid), daemon=True).start()
        slot = (USER, "send", line.device_id, rid)
        result = _unknown(
            "its answer timed out at the front end; it was cancelled on the board, and what "
            "played is reported on the call"
        )
        if self.store.idem_get(slot) is not None:
            self.store.idem_finish(slot, 200, json.dumps(result).encode(), {})
        return {"ok": True, "cancelled": True}

    @staticmethod
    def _cancel_on_board(line, rid):
        try:
            line.client.cancel(rid)
        except Exception as exc:
            log.warning("line %s: cancel %s failed: %s", line.device_id, rid, exc)

    def settle(self, rid, outcome, exc):
        """A keyed send under way when the agent stopped got its outcome (reconcile)."""
        for row in self.store.idem_pending_for(rid):
            if row["user"] != USER:
                continue
            slot = (row["user"], row["method"], row["path"], row["key"])
            if slot in self._live:
                continue
            if outcome == "not_sent":
                self.store.idem_forget(slot)
                continue
            if outcome == "accepted":
                result = {"ok": True}
            else:
                message = getattr(exc, "message", None) or str(exc or "outcome unknown")
                result = _unknown(message)
            self.store.idem_finish(slot, 200, json.dumps(result).encode(), {})
