"""ASGI application factory: GWS v2 + CometD + Catapult v1 in front of the board lines.

Module map of the api package (no module imports one that imports it back):
config, errors, auth -> calls -> line, reconcile -> switchboard; body, idempotency,
common (shared by the two APIs), cometd; gws, catapult (routers); metrics (/metrics and
the request counters); httpserver (uvicorn settings); app (this: wires them together, with
the dashboard, tonebridge.web, which imports api modules but none of them imports it).
Durable state: tonebridge.store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from tonebridge.api import catapult, gws
from tonebridge.api.auth import Authenticator, RateLimiter
from tonebridge.api.cometd import Bayeux
from tonebridge.api.config import ServeConfig
from tonebridge.api.errors import ApiError
from tonebridge.api.httpserver import BodyTimeout
from tonebridge.api.idempotency import Idempotency
from tonebridge.api.metrics import Metrics, MetricsMiddleware
from tonebridge.api.switchboard import Switchboard
from tonebridge.store import Store
from tonebridge.web import events as web_events
from tonebridge.web import views as web_views

log = logging.getLogger("tonebridge.api")


class Bridge:
    """Everything the route handlers share (app.state.bridge)."""

    def __init__(self, cfg: ServeConfig, client_factory=None, store=None):
        self.cfg = cfg
        self.store = store if store is not None else Store(cfg.state_file)
        self.auth = Authenticator(cfg.users)
        self.limiter = RateLimiter(cfg.rate, cfg.burst)
        if cfg.broker is not None:  # a fleet front end (docs/fleet.md): no lines of its own
            from tonebridge.fleet.remote import RemoteSwitchboard

            self.board = RemoteSwitchboard(
                cfg.broker, cfg.frontend_name, accept_timeout=cfg.accept_timeout_ms / 1000.0
            )
        else:
            self.board = Switchboard(
                cfg.lines,
                client_factory,
                cfg.record_dir,
                store=self.store,
                accept_timeout=cfg.accept_timeout_ms / 1000.0,
            )
        self.bayeux = Bayeux(cfg.connect_timeout_ms)
        self.idempotency = Idempotency(self.store, cfg.idempotency_ttl_s)
        self.board.settled.append(self.idempotency.settle)

    @property
    def accept_timeout(self) -> float:
        return self.board.accept_timeout


def create_app(cfg: ServeConfig, client_factory=None, store=None) -> FastAPI:
    """Build the ASGI app. `client_factory(url, on_event, **link_kw)` makes a BoardClient
    (default: the real one); `store` defaults to a Store on `cfg.state_file`."""
    bridge = Bridge(cfg, client_factory, store)
    metrics = Metrics(bridge.board)
    broker = web_events.Broker(bridge.board)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        bridge.board.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            broker.close()
            bridge.bayeux.close()
            await asyncio.to_thread(bridge.board.stop)
            if store is None:
                bridge.store.close()

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
    app.state.metrics = metrics
    app.state.events = broker
    app.add_middleware(BodyTimeout, timeout_s=cfg.body_timeout_s)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

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
        # a bug: no input may get here (tests/api/test_fuzz_bodies.py holds the line)
        log.exception("internal error on %s", request.url.path)
        return ApiError("internal", "internal error").response_for(request.url.path)

    gws.install_listener(bridge)
    app.include_router(gws.router)
    app.include_router(catapult.router)
    app.include_router(web_views.router)
    app.mount("/static", StaticFiles(directory=str(web_views.STATIC_DIR)), name="static")
    return app
