"""The link to one board: who owns the port, how frames reach whoever waits for them, how
the link notices it is gone, and how it makes sure the board at the other end is the right
one before anything is sent.

I/O model, two modes:

* ``background=True`` (real time: ``tonebridge serve``, the CLI): one reader thread owns
  reading. It sleeps in ``select`` on the port (pyserial) or on the in-process port's
  condition until bytes arrive or the next keep-alive is due, so an idle link costs a PING
  every ``keepalive`` seconds and nothing else. It dispatches replies to the requests waiting
  for them and events to their sequences and ``on_event``; after an unplug it reopens the
  port (or finds the board under another path) every ``RECONNECT_EVERY_S``.
* ``background=False`` (virtual time, tests): no thread. Whoever waits pumps the port itself
  under the I/O lock, one read at a time, and reconnects when it needs the link; a port's
  ``read`` may advance a simulated clock (``clock`` and ``sleep`` are injected).

Liveness (keep-alive PING, a silent board noticed within 1 s): link/liveness.py.
Identity (HELLO before anything else, hardware id binding, finding a moved board):
link/identity.py.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

import serial
from tonebridge_fw import codec

from tonebridge.link.dispatch import DispatchMixin
from tonebridge.link.errors import LinkError
from tonebridge.link.identity import IdentityMixin, normalize_hwid, release_path
from tonebridge.link.liveness import ReaderMixin, wait_readable

log = logging.getLogger("tonebridge.link")

__all__ = ["DEFAULT_BAUD", "KEEPALIVE_S", "LinkCore", "normalize_hwid"]

DEFAULT_BAUD = 115200
KEEPALIVE_S = 0.5
_IDLE_STEP_S = 0.005


class _Waiter:
    __slots__ = ("reply",)

    def __init__(self):
        self.reply: str | None = None


class LinkCore(ReaderMixin, IdentityMixin, DispatchMixin):
    """Port, reader, request/reply matching, liveness and identity (see module docstring)."""

    def __init__(
        self,
        url: str,
        timeout: float = 1.0,
        *,
        baudrate: int = DEFAULT_BAUD,
        retries: int = 4,
        reconnect_timeout: float = 10.0,
        open_timeout: float = 2.0,
        on_event: Callable[[dict], None] | None = None,
        port_factory: Callable[[], object] | None = None,
        opener: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        background: bool = True,
        hwid: str | None = None,
        locate: Callable[[str], Iterable[str]] | None = None,
        keepalive: float | None = KEEPALIVE_S,
    ):
        self.url = url
        self.configured_url = url
        self.timeout = timeout
        self.baudrate = baudrate
        self.retries = retries
        self.reconnect_timeout = reconnect_timeout
        self.open_timeout = open_timeout
        self.on_event = on_event
        self.keepalive = keepalive
        self._port_factory = port_factory
        self._opener = opener
        self._locate = locate
        self._clock = clock
        self._sleep = sleep
        self._background = background
        self.hwid = normalize_hwid(hwid)  # the board this link is bound to (None: not yet)
        self.fault: str | None = None  # why the link is down or refuses, for people
        self.link_up = False  # a port is open, its board passed HELLO and answers
        self.silent = False  # the port is open but the board stopped answering
        self.link_gen = 0  # counts successful (re)connections
        self.down_since: float | None = None  # clock when the link went (or started) down
        self.reconnects = 0
        self.boot_id: str | None = None
        self.info: dict = {}
        self.board_config: dict = {}
        self._port = None
        self._decoder = codec.Decoder(accept=codec.REPLY + codec.EVENT)
        self._cond = threading.Condition(threading.RLock())  # guards the tables below
        self._io = threading.RLock()  # held by the thread that reads
        self._wlock = threading.Lock()
        self._waiters: dict[str, _Waiter] = {}
        self._jobs: dict = {}
        self._pending_events: list[dict] = []
        self._session = os.urandom(3).hex()
        self._counter = 0
        self._closed = True
        self._thread: threading.Thread | None = None
        self._poke = threading.Event()
        self._last_rx = 0.0
        self._ping: list | None = None  # [rid, frame, sent_at, tries]
        self._next_try = 0.0
        self._wrong_logged: set = set()

    # ---- properties ------------------------------------------------------------------------

    @property
    def serial(self):
        """The open pyserial port (None while disconnected)."""
        return self._port

    @property
    def closed(self) -> bool:
        """Closed by its owner (not merely disconnected)."""
        return self._closed

    @property
    def background(self) -> bool:
        """Has (or will have, once open) a reader thread of its own."""
        return self._background

    @property
    def board(self):
        """The SimBoard behind a sim:// URL (None for real boards)."""
        return getattr(self._port, "board", None)

    def new_id(self) -> str:
        with self._cond:
            self._counter += 1
            return f"{self._session}.{self._counter}"

    # ---- lifecycle -------------------------------------------------------------------------

    def open(self, wait: bool = True):
        """Connect (HELLO) and start the reader (background mode). With `wait=False` (background
        mode) return at once: the reader connects when it can; `fault` says why not yet."""
        self._closed = False
        now = self._clock()
        if self.down_since is None and not self.link_up:
            self.down_since = now
        if wait:
            try:
                with self._io:
                    self._connect(now + self.open_timeout, hello_by=now + self._hello_budget())
            except BaseException:
                self.close()
                raise
        if self._background and not self._reader_alive():
            self._thread = threading.Thread(
                target=self._reader, name=f"tonebridge-link {self.url}", daemon=True
            )
            self._thread.start()
        return self

    def down_for(self) -> float | None:
        """Seconds the link has been down (None while it is up or was never tried)."""
        if self.link_up or self.down_since is None:
            return None
        return self._clock() - self.down_since

    def close(self) -> None:
        self._closed = True
        self._poke.set()
        t = self._thread
        self._thread = None
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2)
        with self._cond:
            self._drop_port()
            self.link_up = False
            self.silent = False
            self._cond.notify_all()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def _hello_budget(self) -> float:
        return self.timeout * (self.retries + 1)

    def _reader_alive(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def _i_pump(self) -> bool:
        """Does this thread read the port itself (no reader, or it is the reader)?"""
        t = self._thread
        return t is None or not t.is_alive() or t is threading.current_thread()

    def _drop_port(self) -> None:
        p = self._port
        self._port = None
        if p is None:
            return
        release_path(self)
        for name in ("cancel_read", "close"):
            fn = getattr(p, name, None)
            if fn is not None:
                try:
                    fn()
                except Exception:
                    pass

    def _link_lost(self, why: str, port=None) -> None:
        """The port failed (unplugged, closed): drop it; the link reopens (and checks) one."""
        with self._cond:
            if port is not None and port is not self._port:
                return
            was_up = self.link_up
            self._drop_port()
            self.link_up = False
            self.silent = False
            self._ping = None
            if self.down_since is None:
                self.down_since = self._clock()
            if was_up and not self.fault:
                self.fault = f"lost the link to the board on {self.url}: {why}"
            self._next_try = 0.0
            self._cond.notify_all()
        if was_up:
            log.warning("link %s lost: %s", self.url, why)
            self._emit({"event": "link", "state": "down", "path": self.url, "reason": why})

    def _link_silent(self, why: str) -> None:
        """The board stopped answering but its port is fine: the link is down (requests wait,
        sends fail, `fault` says why) and stays open; the next frame from the board brings it
        back. (Reopening would not wake a hung board, and would reset an in-process one.)"""
        with self._cond:
            if not self.link_up:
                return
            self.link_up = False
            self.silent = True
            self.fault = f"the board on {self.url} does not answer ({why})"
            if self.down_since is None:
                self.down_since = self._clock()
            self._cond.notify_all()
        log.warning("link %s: the board does not answer (%s)", self.url, why)
        self._emit({"event": "link", "state": "down", "path": self.url, "reason": why})

    def _revive(self) -> None:
        with self._cond:
            if not self.silent or self._port is None:
                return
            self.silent = False
            self.link_up = True
            self.link_gen += 1
            self.fault = None
            self.down_since = None
            self._ping = None
            self._cond.notify_all()
        log.warning("link %s: the board answers again", self.url)
        self._emit(
            {"event": "link", "state": "up", "path": self.url, "hwid": self.hwid, "moved": False}
        )

    def _ensure_link(self, deadline: float) -> None:
        """Return once the link is up (reconnecting if needed) or raise LinkError."""
        if self.link_up:
            return
        if self._closed:
            raise LinkError(f"{self.url}: the client is closed")
        if self.silent:  # the port is open: wait for the board to answer again
            self._wait(lambda: self.link_up or not self.silent or self._closed, deadline)
            if self.link_up:
                return
            if self.silent:
                raise LinkError(self.fault or f"the board on {self.url} does not answer")
        if not self._i_pump():
            self._poke.set()  # the reader reconnects; wait for it
            self._wait(lambda: self.link_up or self._closed, deadline)
            if not self.link_up:
                raise LinkError(self.fault or f"the board on {self.url} is not connected")
            return
        with self._io:
            if not self.link_up:
                self._connect(deadline)

    # ---- reading and dispatching -----------------------------------------------------------

    def _wait(self, pred: Callable[[], bool], until: float) -> bool:
        """Wait until pred() or `until` (clock time): pump the port if this thread reads,
        else sleep on the condition the reader notifies."""
        while True:
            if pred():
                return True
            now = self._clock()
            if now >= until:
                return False
            if self._i_pump():
                with self._io:
                    if pred():
                        return True
                    self._pump_once()
                self._deliver_events()
                self._liveness()
            else:
                with self._cond:
                    self._cond.wait_for(pred, timeout=max(0.0, min(until - now, 0.5)))

    def _pump_once(self, block_s: float | None = None) -> None:
        """Read what the board sent and dispatch it. `block_s`: wait for data up to that long
        first (the reader); else one read as the port does it (virtual ports advance time)."""
        port = self._port
        if port is None:
            self._sleep(_IDLE_STEP_S)
            return
        try:
            if block_s is not None:
                ready = wait_readable(port, block_s)
                n = port.in_waiting
                if not n and not ready:
                    return
                data = port.read(n or 1)  # readable without bytes: the read reports why
            else:
                data = port.read(max(1, port.in_waiting or 1))
        except (serial.SerialException, OSError, TypeError, AttributeError, ValueError) as e:
            self._link_lost(f"read failed: {e}", port)
            return
        if data:
            self._last_rx = self._clock()
            frames = self._decoder.feed(data)
            for mark, rid, body in frames:
                self._dispatch(mark, rid, body)
            if frames and self.silent and self._port is port:
                self._revive()

    def _write_frame(self, frame: bytes) -> bool:
        """Write one frame; False if it certainly did not go out (no port, or the write
        itself failed: a partial frame has no CRC line end, so a board drops it)."""
        with self._wlock:
            port = self._port
            if port is None:
                return False
            try:
                port.write(frame)
            except (serial.SerialException, OSError) as e:
                self._link_lost(f"write failed: {e}", port)
                return False
            try:
                flush = getattr(port, "flush", None)
                if flush is not None:
                    flush()
            except (serial.SerialException, OSError) as e:
                self._link_lost(f"flush failed: {e}", port)  # the frame may be out
        return True

    # ---- requests --------------------------------------------------------------------------

    def _request(
        self,
        body: str,
        rid: str | None = None,
        timeout: float | None = None,
        tries: list | None = None,
        deadline: float | None = None,
        retries: int | None = None,
        verified: bool = True,
    ) -> str:
        """Send a request frame and return the reply body, retransmitting the same frame
        (same id) on timeout, after reconnecting if the link dropped. Raises LinkError when
        the board never answers (by `deadline`, if given). `tries` gets one entry per
        transmission. `verified=False`: on the port being adopted (HELLO), no reconnects."""
        rid = rid or self.new_id()
        frame = codec.encode(codec.REQUEST, rid, body)
        timeout = self.timeout if timeout is None else timeout
        n = (self.retries if retries is None else retries) + 1
        w = _Waiter()
        port = self._port
        with self._cond:
            self._waiters[rid] = w
        try:
            for attempt in range(n):
                if deadline is not None and attempt and self._clock() >= deadline:
                    break
                if verified:
                    limit = self._clock() + self.reconnect_timeout
                    self._ensure_link(limit if deadline is None else min(limit, deadline))
                elif self._port is not port or port is None:
                    break
                if not self._write_frame(frame):
                    continue  # nothing went out: reconnect (and check the board) and try again
                if tries is not None:
                    tries.append(attempt + 1)
                until = self._clock() + timeout
                if deadline is not None:
                    until = min(until, deadline)
                if verified:
                    self._wait(lambda: w.reply is not None or not self.link_up, until)
                else:
                    self._wait(lambda: w.reply is not None or self._port is not port, until)
                if w.reply is not None:
                    return w.reply
        finally:
            with self._cond:
                self._waiters.pop(rid, None)
        raise LinkError(f"no answer from the board on {self.url} to {body.split(' ')[0]}")
