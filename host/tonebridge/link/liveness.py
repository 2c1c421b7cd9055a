"""The reader thread of a background link and the keep-alive that notices a silent board
(LinkCore's liveness part; see link/core.py).

When nothing has arrived for ``keepalive`` s the pumping thread (the reader, or in virtual
time whoever waits) sends PING, once more after ``keepalive``/4; no frame at all by another
``keepalive``/4 and the board counts as silent: the link is down (requests wait for it,
sends fail, ``fault`` says why) but the port stays open and the PING is repeated every
``keepalive``; the first frame from the board brings the link back. So a board that hangs
is noticed 1.5 x ``keepalive`` after its last frame (0.75 s by default; within 1 s), an
unplug at once (the read fails: the port is dropped and reopened, and checked by HELLO). While the link is down the reader reopens it
every ``RECONNECT_EVERY_S``.
"""

from __future__ import annotations

import logging
import select
import time

import serial
from tonebridge_fw import codec

from tonebridge.link.errors import BoardError, LinkError, WrongBoardError

log = logging.getLogger("tonebridge.link")
RECONNECT_EVERY_S = 0.5


class ReaderMixin:
    """Reader thread (background mode), reconnect pacing and keep-alive PINGs."""

    # ---- the reader (background mode) ------------------------------------------------------

    def _reader(self) -> None:
        while not self._closed:
            try:
                if self._port is None:
                    self._reconnect_step()
                else:
                    with self._io:
                        self._pump_once(block_s=self._quiet_left())
                    self._liveness()
                self._deliver_events()
            except Exception:  # the reader must never die
                log.exception("link %s: reader error", self.url)
                time.sleep(0.1)

    def _reconnect_step(self) -> None:
        now = self._clock()
        if now < self._next_try:
            self._poke.wait(self._next_try - now)
            self._poke.clear()
            return
        self._next_try = now + RECONNECT_EVERY_S
        try:
            with self._io:
                self._connect(now, hello_by=now + 2 * self.timeout)
        except (LinkError, BoardError) as e:
            if not isinstance(e, WrongBoardError) and self.fault is None:
                self.fault = str(e)

    def _quiet_left(self) -> float:
        """How long the reader may block before the next keep-alive step is due."""
        if self.keepalive is None:
            return 1.0
        now = self._clock()
        p = self._ping
        if p is None:
            due = self._last_rx + self.keepalive
        else:
            due = p[2] + (self.keepalive if self.silent else self.keepalive / 4)
        return min(1.0, max(0.01, due - now))

    def _liveness(self) -> None:
        """Keep-alive PING when the link is quiet; declares the board silent when nothing
        answers (and keeps asking, every `keepalive`, while it is)."""
        if not (self.link_up or self.silent) or self.keepalive is None:
            return
        now = self._clock()
        p = self._ping
        if p is None:
            if now - self._last_rx >= self.keepalive:
                rid = self.new_id()
                frame = codec.encode(codec.REQUEST, rid, "PING")
                self._ping = [rid, frame, now, 1]
                self._write_frame(frame)
            return
        rid, frame, sent, tries = p
        if self._last_rx >= sent:
            self._ping = None  # the board said something: alive
            return
        if self.silent:
            if now - sent >= self.keepalive:
                p[2] = now
                self._write_frame(frame)  # still asking (the same id: answered once)
            return
        if now - sent >= self.keepalive / 4:
            if tries >= 2:
                self._link_silent(f"no frame for {now - self._last_rx:.1f} s")
                return
            p[2], p[3] = now, tries + 1
            self._write_frame(frame)


def wait_readable(port, timeout: float) -> bool:
    """Block until `port` has bytes (or an error to report) or `timeout` passes; True if
    the port is readable (a read will not block)."""
    if port.in_waiting:
        return True
    own = getattr(port, "wait_data", None)  # a port that can wait itself (mqtt://)
    if callable(own):
        return bool(own(timeout))
    fileno = getattr(port, "fileno", None)
    if callable(fileno):
        try:
            fd = fileno()
        except Exception:
            fd = None
        if isinstance(fd, int) and fd >= 0:
            r, _, _ = select.select([fd], [], [], timeout)
            return bool(r)
    link = getattr(getattr(port, "board", None), "link", None)
    wait = getattr(link, "wait_host_data", None)
    if wait is not None:
        if getattr(link, "closed", False):
            raise serial.SerialException("the board's in-process link is closed")
        return bool(wait(timeout))
    time.sleep(min(timeout, 0.05))  # a port we cannot wait on: poll gently
    return False
