# Wrap-safe tick arithmetic, one copy for the whole firmware.
#
# On a board (and in the simulator, whose per-board `time` module has them) these are
# MicroPython's own time.ticks_diff / ticks_add / ticks_ms. In plain CPython (host tests that
# drive the firmware with an integer clock) the same arithmetic on MicroPython's 2**30 tick
# period, and a ticks_ms from time.monotonic().

try:
    from time import ticks_add, ticks_diff, ticks_ms
except ImportError:
    import time as _time

    _PERIOD = 1 << 30
    _HALF = 1 << 29

    def ticks_ms():
        """ms on the same 2**30 wrap (CPython: from time.monotonic)."""
        return int(_time.monotonic() * 1000) % _PERIOD

    def ticks_diff(a, b):
        """a - b on a counter that wraps every 2**30 ticks (as time.ticks_diff)."""
        return ((a - b + _HALF) % _PERIOD) - _HALF

    def ticks_add(a, b):
        return (a + b) % _PERIOD
