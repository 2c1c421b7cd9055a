"""The ``time`` module a simulated board's firmware imports (MicroPython semantics).

``ticks_ms/us/cpu`` wrap like MicroPython's (period 2**30, small-int safe), ``ticks_diff`` is the
signed modular difference, ``sleep*`` advance virtual time (through the board, so a firmware thread
hands control back to the test harness at its time target) or sleep for real on a RealClock.
"""

from __future__ import annotations

import time as _host_time
import types

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
TICKS_HALF = TICKS_PERIOD // 2
EPOCH_OFFSET_S = 1_767_225_600  # board RTC starts at 2026-01-01 00:00:00 UTC


def ticks_diff(a, b):
    return ((int(a) - int(b) + TICKS_HALF) & TICKS_MAX) - TICKS_HALF


def ticks_add(t, delta):
    if not -TICKS_HALF <= delta < TICKS_HALF:
        raise OverflowError("ticks interval overflow")
    return (int(t) + int(delta)) & TICKS_MAX


def make_time_module(board) -> types.ModuleType:
    """``board`` provides ``clock``, ``runtime`` (``advance_us``, ``touch``) and ``ticks_offset_us``."""
    mod = types.ModuleType("time")
    clock = board.clock

    def _now():
        board.runtime.touch()
        return clock.now_us() + board.ticks_offset_us

    def ticks_us():
        return _now() & TICKS_MAX

    def ticks_ms():
        return (_now() // 1000) & TICKS_MAX

    def ticks_cpu():
        return ticks_us()

    def sleep_us(us):
        board.runtime.advance_us(max(0, int(us)))

    def sleep_ms(ms):
        board.runtime.advance_us(max(0, int(ms)) * 1000)

    def sleep(s):
        board.runtime.advance_us(max(0, int(round(float(s) * 1_000_000))))

    def time_ns():
        return (EPOCH_OFFSET_S * 1_000_000 + _now()) * 1000

    def time_():
        return EPOCH_OFFSET_S + _now() // 1_000_000

    def gmtime(secs=None):
        if secs is None:
            secs = time_()
        t = _host_time.gmtime(secs)
        return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_wday, t.tm_yday)

    def mktime(tup):
        import calendar

        return calendar.timegm(tuple(tup[:6]) + (0, 0, 0))

    mod.ticks_us = ticks_us
    mod.ticks_ms = ticks_ms
    mod.ticks_cpu = ticks_cpu
    mod.ticks_diff = ticks_diff
    mod.ticks_add = ticks_add
    mod.sleep_us = sleep_us
    mod.sleep_ms = sleep_ms
    mod.sleep = sleep
    mod.time_ns = time_ns
    mod.time = time_
    mod.gmtime = gmtime
    mod.localtime = gmtime
    mod.mktime = mktime
    return mod
