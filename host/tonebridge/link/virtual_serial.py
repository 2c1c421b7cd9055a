"""A pyserial port with no UART under it (an in-process board, a board over MQTT): the parts
of pyserial's SerialBase such a port answers the same way (no modem lines, nothing to flush)."""

from __future__ import annotations

from serial.serialutil import SerialBase


class VirtualSerial(SerialBase):
    def flush(self):
        pass

    def reset_output_buffer(self):
        pass

    @property
    def cts(self):
        return True

    @property
    def dsr(self):
        return True

    @property
    def ri(self):
        return False

    @property
    def cd(self):
        """Carrier detect: the board is there (override where that can change)."""
        return True

    def _update_rts_state(self):
        pass

    def _update_dtr_state(self):
        pass

    def _update_break_state(self):
        pass
