"""``machine.WDT`` on a simulated board: a clock event that resets the board unless the
firmware feeds it in time (board time, so it holds in virtual and real time alike)."""

from __future__ import annotations

from . import machine as sim_machine


class Watchdog:
    """``machine.WDT``: resets the board unless fed within ``timeout_us`` (board time)."""

    def __init__(self, board, timeout_us):
        self.board = board
        self.timeout_us = max(1000, int(timeout_us))
        self._h = None
        self.feeds = 0
        self.feed()

    def feed(self):
        clock = self.board.clock
        clock.cancel(self._h)
        self.feeds += 1
        self.deadline_us = clock.now_us() + self.timeout_us
        self._h = clock.call_at(self.deadline_us, self._expire)

    def _expire(self):
        self._h = None
        self.board.request_reset("watchdog", sim_machine.WDT_RESET)

    def stop(self):
        self.board.clock.cancel(self._h)
        self._h = None
