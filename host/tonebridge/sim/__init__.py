"""Simulated tonebridge boards: the firmware files run unmodified on simulated hardware.

See docs/architecture.md ("Simulated board") for the API other parts attach to.
"""

from .analog import OutputChain
from .board import SimBoard
from .clock import RealClock, VirtualClock
from .line_recorder import LineRecorder
from .line_switches import LineInterface
from .pinbus import PinBus
from .play import play_on_board, render_on_board
from .runtime import BoardReset

__all__ = [
    "BoardReset",
    "LineInterface",
    "LineRecorder",
    "OutputChain",
    "PinBus",
    "RealClock",
    "SimBoard",
    "VirtualClock",
    "play_on_board",
    "render_on_board",
]
