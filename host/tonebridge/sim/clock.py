"""Clocks for simulated boards.

``VirtualClock``: time only moves when someone advances it (tests, ``SimBoard.run_for``, the
firmware's own ``time.sleep_ms``); events scheduled with ``call_at`` fire, in time order, as the
clock passes them, with ``now_us()`` equal to the event's time while the callback runs.

``RealClock``: the same API on the host's monotonic clock, for ``serve``/``make run``: advancing
sleeps for real; due events fire from whichever thread advances or calls ``run_due()``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time


class VirtualClock:
    """Virtual microsecond clock with scheduled events. Starts at ``start_us``."""

    virtual = True

    def __init__(self, start_us: int = 0):
        self._now = int(start_us)
        self._events: list = []
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._listeners: list = []

    def now_us(self) -> int:
        return self._now

    def call_at(self, t_us: int, fn) -> object:
        """Run ``fn()`` when the clock reaches ``t_us`` (at once on the next advance if past).
        Returns a handle for ``cancel``."""
        entry = [int(t_us), next(self._seq), fn]
        with self._lock:
            heapq.heappush(self._events, entry)
        return entry

    def call_later(self, delay_us: int, fn) -> object:
        return self.call_at(self._now + int(delay_us), fn)

    def cancel(self, handle) -> None:
        if handle is not None:
            handle[2] = None

    def add_listener(self, fn) -> None:
        """``fn(t_us)`` is called each time the clock moves forward (after due events)."""
        self._listeners.append(fn)

    def advance_us(self, n: int) -> None:
        if n < 0:
            raise ValueError("time does not run backwards")
        self.advance_to(self._now + int(n))

    def advance_to(self, t_us: int) -> None:
        t_us = int(t_us)
        while True:
            with self._lock:
                if not self._events or self._events[0][0] > t_us:
                    break
                entry = heapq.heappop(self._events)
            if entry[2] is None:
                continue
            if entry[0] > self._now:
                self._now = entry[0]
            entry[2]()
        if t_us > self._now:
            self._now = t_us
        for fn in self._listeners:
            fn(self._now)

    def next_event_us(self):
        with self._lock:
            while self._events and self._events[0][2] is None:
                heapq.heappop(self._events)
            return self._events[0][0] if self._events else None

    def run_due(self) -> None:
        self.advance_to(self._now)

    def sleep_us(self, n: int) -> None:
        self.advance_us(max(0, int(n)))


class RealClock(VirtualClock):
    """Monotonic wall clock (microseconds since creation) with the VirtualClock API."""

    virtual = False

    def __init__(self):
        super().__init__(0)
        self._t0 = time.monotonic_ns()

    def now_us(self) -> int:
        return (time.monotonic_ns() - self._t0) // 1000

    def advance_to(self, t_us: int) -> None:
        while True:
            now = self.now_us()
            due = self.next_event_us()
            if due is not None and due <= now:
                with self._lock:
                    entry = heapq.heappop(self._events)
                if entry[2] is not None:
                    entry[2]()
                continue
            if now >= t_us:
                break
            wait = t_us - now if due is None else min(t_us, due) - now
            time.sleep(max(wait, 0) / 1e6)
        for fn in self._listeners:
            fn(self.now_us())

    def advance_us(self, n: int) -> None:
        self.advance_to(self.now_us() + max(0, int(n)))

    def run_due(self) -> None:
        self.advance_to(self.now_us())

    @property
    def _now(self):  # VirtualClock internals read self._now
        return self.now_us()

    @_now.setter
    def _now(self, value):
        pass
