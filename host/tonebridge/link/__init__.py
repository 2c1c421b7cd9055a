"""The host's link to tonebridge boards: BoardClient over pyserial, sim:// and emu:// URLs,
discovery."""

from tonebridge.emu.url import register as _register_emu_url
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
_register_emu_url()  # emu://: the MicroPython image on an emulated RP2040 (docs/emulator.md)

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
