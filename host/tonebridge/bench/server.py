"""An in-process `tonebridge serve` for the benchmarks: the real app (create_app) on uvicorn
in its own thread, loopback only, with two measuring wrappers that change nothing:

- an ASGI wrapper that notes ``time.monotonic()`` when each request reaches the app
  (uvicorn has parsed the request line and headers), per path;
- a ``BoardClient`` subclass that notes when the board reports the first digit started
  (its ``submit``, which the line worker uses).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict

from tonebridge.api.app import create_app
from tonebridge.api.config import LineConfig, ServeConfig
from tonebridge.api.httpserver import uvicorn_config
from tonebridge.link.client import BoardClient

USER = "bench"
SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TimedClient(BoardClient):
    """BoardClient noting, per send, monotonic time of the first 'started' progress event."""

    started: list

    def submit(self, text, *args, **kw):
        orig = kw.get("on_progress")
        seen = [False]
        log = self.started

        def on_progress(event):
            if not seen[0]:
                kind = event[0] if isinstance(event, tuple | list) and event else None
                if isinstance(event, dict):
                    kind = event.get("event") or event.get("type") or event.get("kind")
                if kind == "started":
                    seen[0] = True
                    log.append(time.monotonic())
            if orig is not None:
                orig(event)

        kw["on_progress"] = on_progress
        return super().submit(text, *args, **kw)


class BenchServer:
    def __init__(self, urls, *, tone_ms=None, gap_ms=None, accept_timeout_ms=3000):
        import uvicorn

        self.port = free_port()
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.started: dict[str, list[float]] = defaultdict(list)
        self.clients: dict[str, TimedClient] = {}
        lines = [
            LineConfig(
                url=u,
                call_id=f"c-bench-{i}",
                device_id=f"dev-{i}",
                owner=USER,
                tone_ms=tone_ms,
                gap_ms=gap_ms,
            )
            for i, u in enumerate(urls)
        ]
        cfg = ServeConfig(
            listen_host="127.0.0.1",
            listen_port=self.port,
            lines=lines,
            users={USER: SECRET},
            rate=1e9,  # the benchmark measures the bridge, not its rate limiter
            burst=10**9,
            accept_timeout_ms=accept_timeout_ms,
        )

        def factory(url, on_event, **link_kw):
            c = TimedClient(url, on_event=on_event, **link_kw)
            c.started = self.started[url]
            self.clients[url] = c
            return c

        self.app = create_app(cfg, factory)
        self.bridge = self.app.state.bridge
        arrivals = self.arrivals
        inner = self.app

        async def timed(scope, receive, send):
            if scope["type"] == "http":
                arrivals[scope["path"]].append(time.monotonic())
            await inner(scope, receive, send)

        self.server = uvicorn.Server(
            uvicorn_config(
                timed, cfg, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
            )
        )
        self.thread = threading.Thread(target=self._run, name="bench-api", daemon=True)

    def _run(self):
        asyncio.run(self.server.serve())

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def dtmf_path(self, i: int) -> str:
        return f"/v1/users/{USER}/calls/c-bench-{i}/dtmf"

    def call_path(self, i: int) -> str:
        return f"/v1/users/{USER}/calls/c-bench-{i}"

    def start(self, timeout=30.0):
        self.thread.start()
        t = time.monotonic()
        while not self.server.started:
            if time.monotonic() - t > timeout or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
