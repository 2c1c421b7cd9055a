"""How serve runs on uvicorn: timeouts and limits that hold off slow or hostile clients,
and the socket options that keep kept-alive requests fast.

* Header timeout (`header_timeout_s`, 10 s): a request line and headers must be complete
  within this time of the connection opening, or of the previous response on a kept-alive
  connection; else 408 and the connection is closed. (uvicorn's h11 protocol has no such
  timer: a client trickling one header byte at a time would hold a connection forever.)
* Body timeout (`body_timeout_s`, 10 s): the body must be complete within this time of the
  headers (`BodyTimeout`, an ASGI middleware); else 408 in the API's dialect.
* Keep-alive: an idle kept-alive connection is closed after `keepalive_s` (uvicorn's
  `timeout_keep_alive`); a connection is closed after `keepalive_requests` requests.
* Connection cap: `max_connections` (uvicorn's `limit_concurrency`); beyond it uvicorn
  answers 503 at once: load, not input.
* Incomplete request lines/headers are capped at 16 KiB (h11); bodies at `body_bytes`.
* TCP_NODELAY on every connection: uvicorn writes a response's headers and body in
  separate writes; with Nagle's algorithm on, the body waited for the client's delayed ACK
  of the headers (40 ms on Linux) on every kept-alive request after the first. asyncio only
  sets TCP_NODELAY on sockets whose protocol number is IPPROTO_TCP, and a listening socket
  made with `socket.socket(AF_INET, SOCK_STREAM)` (protocol 0), as serve passed to uvicorn,
  gives accepted sockets protocol 0 too: so it is set here explicitly, and `listen_socket`
  makes the socket with IPPROTO_TCP.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from tonebridge.api.errors import ApiError

MAX_HEADER_BYTES = 16 * 1024
_TIMEOUT_BODY = b"request line and headers not complete in time"
_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


def listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    return sock


def set_nodelay(transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout, a request cap per connection and
    TCP_NODELAY (module docstring). Configured by subclassing (`protocol_for`)."""

    header_timeout_s = 10.0
    max_requests = 1000

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        set_nodelay(transport)
        self._requests = 0
        self._header_timer = None
        self._arm_header_timer()

    def _arm_header_timer(self):
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _disarm_header_timer(self):
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self):
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_408)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._arm_header_timer()  # bytes of a new request: its headers are on the clock
        super().data_received(data)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before and self.cycle is not None:
            self._disarm_header_timer()  # the request line and headers are complete
            self._requests += 1
            if self._requests >= self.max_requests:
                self.cycle.keep_alive = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)


def protocol_for(cfg) -> type:
    return type(
        "ServeH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": float(cfg.header_timeout_s),
            "max_requests": int(cfg.keepalive_requests),
        },
    )


class BodyTimeout:
    """ASGI middleware: the request body must be complete within `timeout_s` of the
    headers; a receive() that would wait longer raises ApiError("timeout") (408)."""

    def __init__(self, app, timeout_s: float = 10.0):
        self.app = app
        self.timeout_s = float(timeout_s)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        body_done = False

        async def timed_receive():
            nonlocal body_done
            if body_done:
                return await receive()  # e.g. waiting for a disconnect: no limit
            left = deadline - loop.time()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, left))
            except TimeoutError:
                raise ApiError(
                    "timeout",
                    f"the request body did not arrive within {self.timeout_s:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message.get("type") != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return await self.app(scope, timed_receive, send)


def uvicorn_config(app, cfg, **kw) -> uvicorn.Config:
    """uvicorn settings for serve (module docstring); `kw` adds/overrides (log_level, ...)."""
    settings = {
        "http": protocol_for(cfg),
        "timeout_keep_alive": float(cfg.keepalive_s),
        "limit_concurrency": int(cfg.max_connections),
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_graceful_shutdown": 2,
        "lifespan": "on",
    }
    settings.update(kw)
    return uvicorn.Config(app, **settings)
