"""Idempotent retries: `Idempotency-Key` (or `X-Request-Id`) on any POST.

The answer to a keyed request is remembered per (user, method, path, key) in the durable
store, so a retry, even after a restart or crash of serve, gets the recorded answer
(`Idempotent-Replayed: true`) and never plays twice; the same key with another body is
409. A retry while the first request is still running waits for its answer. Records
expire by age (`idempotency_ttl_s`, 24 h by default), each user's by its own age: one
user's traffic never pushes out another's keys.

Answers that mean "nothing was sent" (429, and 5xx raised with `forget=True`) are not
kept, so a retry runs again, with the same board request id (derived from the key), which
the board's exactly-once window also recognises. A 503 whose sequence may have reached the
board is kept: the retry gets that answer, never a second SEND. A request that was under
way when serve stopped is settled when its line reconciles with the board
(`settle`): accepted (its answer is the API's success), never sent (forgotten), or unknown
(a 503 saying so).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from tonebridge.api.errors import ApiError

# the fingerprint of the keyed request being handled (read by a fleet front end)
FINGERPRINT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tonebridge_fingerprint", default=None
)

log = logging.getLogger("tonebridge.api")

IDEMPOTENCY_HEADERS = ("idempotency-key", "x-request-id")
PRUNE_EVERY_S = 60.0


@dataclass
class _Live:
    fingerprint: str
    future: asyncio.Future


class Idempotency:
    def __init__(self, store, ttl_s: float = 86400.0):
        self.store = store
        self.ttl_s = float(ttl_s)
        self._live: dict[tuple, _Live] = {}  # keyed requests running in this process
        self._last_prune = 0.0

    @staticmethod
    def key_of(request: Request) -> str | None:
        for name in IDEMPOTENCY_HEADERS:
            value = request.headers.get(name)
            if value is not None:
                if not 0 < len(value) <= 128 or not value.isascii() or not value.isprintable():
                    raise ApiError("validation", f"{name} must be 1-128 printable ASCII characters")
                return value
        return None

    @staticmethod
    def board_request_id(user: str, path: str, key: str) -> str:
        digest = hashlib.sha256(
            f"{user}\0{path}\0{key}".encode("utf-8", "surrogatepass")
        ).hexdigest()
        return digest[:16]

    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self.store.prune(self.ttl_s)

    async def run(self, request: Request, user: str, body: bytes, handler) -> Response:
        """`handler(request_id_or_None)` -> Response; raises ApiError."""
        path = request.url.path
        key = self.key_of(request)
        if key is None:
            return await _as_response(path, handler(None))
        self._prune()
        slot = (user, request.method, path, key)
        fingerprint = hashlib.sha256(body).hexdigest()
        live = self._live.get(slot)
        if live is not None:
            self._same_body(live.fingerprint, fingerprint)
            status, content, headers = await asyncio.shield(live.future)
            return _replay(status, content, headers)
        row = self.store.idem_get(slot)
        if row is not None and row["created"] < time.time() - self.ttl_s:
            self.store.idem_forget(slot)
            row = None
        if row is not None:
            self._same_body(row["fingerprint"], fingerprint)
            if row["status"] is None:
                raise ApiError(
                    "send_failed",
                    "the first request with this idempotency key was under way when the bridge "
                    "stopped, and its board has not been reachable since to say what became of "
                    "it; nothing is sent again. Retry later.",
                    forget=False,
                )
            return _replay(row["status"], row["body"], json.loads(row["headers"] or "{}"))
        rid = self.board_request_id(user, path, key)
        FINGERPRINT.set(fingerprint)  # travels with a fleet command (tonebridge.fleet.remote)
        self.store.idem_begin(slot, fingerprint, rid)
        loop = asyncio.get_running_loop()
        live = _Live(fingerprint, loop.create_future())
        self._live[slot] = live
        # Run in its own task: a client that disconnects must not cancel a send half-way.
        task = asyncio.ensure_future(_as_response(path, handler(rid)))

        def finished(t: asyncio.Task):
            self._live.pop(slot, None)
            if t.cancelled() or t.exception() is not None:
                self.store.idem_forget(slot)
                if not live.future.done():
                    live.future.cancel()
                return
            resp = t.result()
            headers = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() not in ("content-length", "set-cookie", "x-csrf-token")
            }
            forget = resp.status_code == 429 or (
                resp.status_code >= 500 and getattr(resp, "forget", True)
            )
            if forget:
                self.store.idem_forget(slot)
            else:
                self.store.idem_finish(slot, resp.status_code, resp.body, headers)
            live.future.set_result((resp.status_code, resp.body, headers))

        task.add_done_callback(finished)
        return await asyncio.shield(task)

    @staticmethod
    def _same_body(stored: str, fingerprint: str) -> None:
        if stored != fingerprint:
            raise ApiError(
                "conflict", "this idempotency key was already used for a different request"
            )

    def settle(self, rid: str, outcome: str, exc) -> None:
        """A request under way when serve stopped got its answer from the reconciliation:
        "accepted" (the board took it), "not_sent" (a retry may send it), else a failure."""
        for row in self.store.idem_pending_for(rid):
            slot = (row["user"], row["method"], row["path"], row["key"])
            if slot in self._live:
                continue  # running in this process: it answers itself
            if outcome == "not_sent":
                self.store.idem_forget(slot)
                continue
            path = row["path"]
            if outcome == "accepted":
                if path.startswith("/v1/"):
                    status, body, headers = 200, b"", {}
                else:
                    status, body = 200, b'{"statusCode":0}'
                    headers = {"content-type": "application/json"}
            else:
                message = getattr(exc, "message", None) or str(exc or "outcome unknown")
                resp = ApiError("send_failed", message).response_for(path)
                status, body, headers = (
                    resp.status_code,
                    resp.body,
                    {"content-type": "application/json"},
                )
            self.store.idem_finish(slot, status, body, headers)
            log.info(
                "idempotency key %r of %s settled after a restart: %s",
                row["key"],
                row["user"],
                outcome,
            )


def _replay(status, content, headers) -> Response:
    headers = dict(headers)
    headers["Idempotent-Replayed"] = "true"
    return Response(content, status_code=status, headers=headers)


async def _as_response(path, coro) -> Response:
    try:
        return await coro
    except ApiError as exc:
        return exc.response_for(path)
