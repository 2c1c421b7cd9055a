"""The host's link to tonebridge boards: BoardClient over pyserial, sim:// URLs, discovery."""

from tonebridge.link.client import (
    BoardClient,
    BoardError,
    DialStringError,
    LinkError,
    SendError,
    SendResult,
)

__all__ = [
    "BoardClient",
    "BoardError",
    "DialStringError",
    "LinkError",
    "SendError",
    "SendResult",
]
