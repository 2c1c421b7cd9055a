"""pyserial URL handler module for `sim://` (see tonebridge.link.sim_url)."""

from tonebridge.link.sim_url import SimSerial as Serial

__all__ = ["Serial"]
