"""The host's link to tonebridge boards: BoardClient over pyserial, sim:// URLs, discovery."""

from tonebridge.link.client import (
    BoardClient,
    BoardError,
    DialStringError,
    LinkError,
    SendError,
    SendResult,
    Ticket,
    WrongBoardError,
)
from tonebridge.link.sim_url import register as _register_sim_url
from tonebridge.sbc import register as _register_sbc_url

_register_sim_url()
_register_sbc_url()  # sbc://: a Raspberry Pi's own MT8880 (docs/sbc.md)

__all__ = [
    "BoardClient",
    "BoardError",
    "DialStringError",
    "LinkError",
    "SendError",
    "SendResult",
    "Ticket",
    "WrongBoardError",
]
