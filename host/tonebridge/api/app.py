"""ASGI application factory: GWS v2 + CometD + Catapult v1 in front of the board lines."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .auth import Authenticator, RateLimiter
from .cometd import Bayeux
from .config import ServeConfig
from .errors import ApiError
from .lines import Switchboard

log = logging.getLogger("tonebridge.api")

IDEMPOTENCY_HEADERS = ("idempotency-key", "x-request-id")
IDEMPOTENCY_MAX = 4096


@dataclass
class _Stored:
    fingerprint: str
    future: asyncio.Future


class Idempotency:
    """Remembers responses by (user, method, path, key) so a retried request never
    plays twice: a retry waits for and replays the first answer. 5xx and 429 answers
    are forgotten (nothing was accepted), so a retry runs again, with the same board
    request id, which the board's exactly-once window also recognises."""

    def __init__(self, limit=IDEMPOTENCY_MAX):
        self.limit = limit
        self._store: OrderedDict[tuple, _Stored] = OrderedDict()

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
        digest = hashlib.sha256(f"{user}\0{path}\0{key}".encode()).hexdigest()
        return digest[:16]

    async def run(self, request: Request, user: str, body: bytes, handler) -> Response:
        """`handler(request_id_or_None)` -> Response; raises ApiError."""
        path = request.url.path
        key = self.key_of(request)
        if key is None:
            return await _as_response(path, handler(None))
        slot = (user, request.method, path, key)
        fingerprint = hashlib.sha256(body).hexdigest()
        stored = self._store.get(slot)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise ApiError(
                    "conflict", "this idempotency key was already used for a different request"
                )
            status, content, headers = await asyncio.shield(stored.future)
            headers = dict(headers)
            headers["Idempotent-Replayed"] = "true"
            return Response(content, status_code=status, headers=headers)
        loop = asyncio.get_running_loop()
        stored = _Stored(fingerprint, loop.create_future())
        self._store[slot] = stored
        while len(self._store) > self.limit:
            self._store.popitem(last=False)
        # Run in its own task: a client that disconnects must not cancel a send half-way.
        task = asyncio.ensure_future(
            _as_response(path, handler(self.board_request_id(user, path, key)))
        )

        def finished(t: asyncio.Task):
            if t.cancelled() or t.exception() is not None:
                self._store.pop(slot, None)
                if not stored.future.done():
                    stored.future.cancel()
                return
            resp = t.result()
            if resp.status_code >= 500 or resp.status_code == 429:
                self._store.pop(slot, None)
            headers = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() not in ("content-length", "set-cookie")
            }
            stored.future.set_result((resp.status_code, resp.body, headers))

        task.add_done_callback(finished)
        return await asyncio.shield(task)


async def _as_response(path, coro) -> Response:
    try:
        return await coro
    except ApiError as exc:
        return exc.response_for(path)


async def read_json(request: Request, limit: int, *, require_type=True):
    """The request body as parsed JSON, enforcing the size limit and content type."""
    body = await read_body(request, limit)
    ctype = request.headers.get("content-type", "")
    mime = ctype.split(";", 1)[0].strip().lower()
    if require_type and mime != "application/json" and not mime.endswith("+json"):
        raise ApiError(
            "media_type",
            f"Content-Type must be application/json, got {mime or 'none'}",
        )
    if not body.strip():
        raise ApiError("malformed", "request body is empty; a JSON object is required")
    try:
        return json.loads(body), body
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError("malformed", f"malformed JSON: {exc}") from None


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise ApiError("too_large", f"request body larger than {limit} bytes")
        except ValueError:
            raise ApiError("malformed", "bad Content-Length") from None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("too_large", f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Bridge:
    """Everything the route handlers share (app.state.bridge)."""

    def __init__(self, cfg: ServeConfig, client_factory=None):
        self.cfg = cfg
        self.auth = Authenticator(cfg.users)
        self.limiter = RateLimiter(cfg.rate, cfg.burst)
        self.board = Switchboard(cfg.lines, client_factory, cfg.record_dir)
        self.bayeux = Bayeux(cfg.connect_timeout_ms)
        self.idempotency = Idempotency()


def create_app(cfg: ServeConfig, client_factory=None) -> FastAPI:
    """Build the ASGI app. `client_factory(url)` makes a BoardClient (default: the real one)."""
    bridge = Bridge(cfg, client_factory)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        bridge.board.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            bridge.bayeux.close()
            await asyncio.to_thread(bridge.board.stop)

    app = FastAPI(
        title="tonebridge API bridge",
        version="0.1.0",
        description=(
            "Genesys GWS v2 (voice calls, SendDtmf, CometD notifications) and Bandwidth "
            "Catapult v1 (calls, dtmf) compatible APIs in front of tonebridge DTMF boards. "
            "Every request needs HTTP Basic credentials."
        ),
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.bridge = bridge

    def openapi():
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            doc.setdefault("components", {})["securitySchemes"] = {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "GWS user:password, or Catapult apiToken:apiSecret",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": "JSESSIONID"},
            }
            doc["security"] = [{"basic": []}, {"session": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return exc.response_for(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        kind = {404: "no_route", 405: "validation", 413: "too_large"}.get(
            exc.status_code, "validation"
        )
        message = {404: "no such resource", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        err = ApiError(kind, message).response_for(request.url.path)
        if exc.status_code == 405:
            err.status_code = 405
        return err

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return ApiError("validation", "invalid request").response_for(request.url.path)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s", request.url.path)
        return ApiError("internal", "internal error").response_for(request.url.path)

    from . import catapult, gws

    gws.install_listener(bridge)
    app.include_router(gws.router)
    app.include_router(catapult.router)
    return app
