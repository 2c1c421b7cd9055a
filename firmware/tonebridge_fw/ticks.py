# Wrap-safe tick arithmetic, one copy for the whole firmware.
#
# On a board (and in the simulator, whose per-board `time` module has them) these are
# MicroPython's own time.ticks_diff / time.ticks_add. In plain CPython (host tests that drive
# the firmware with an integer clock) the same arithmetic on MicroPython's 2**30 tick period.

try:
    from time import ticks_add, ticks_diff
except ImportError:
    _PERIOD = 1 << 30
    _HALF = 1 << 29

    def ticks_diff(a, b):
        """a - b on a counter that wraps every 2**30 ticks (as time.ticks_diff)."""
        return ((a - b + _HALF) % _PERIOD) - _HALF

    def ticks_add(a, b):
        return (a + b) % _PERIOD
