"""pyserial URL handler module for `sbc://` (see tonebridge.sbc.url)."""

from tonebridge.sbc.url import SbcSerial as Serial

__all__ = ["Serial"]
