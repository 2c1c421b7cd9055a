"""A pyserial port whose other end is a board running in this process (sim://, sbc://).

Subclasses open and close the board and say how bytes reach it (`_write_bytes`); the board
exposes `link` with host_read(n), host_in_waiting(), wait_host_data(timeout) and, where the
link can end, `closed`. Modem lines read as a connected USB-CDC port; baud rate and the rest
mean nothing in-process.
"""

from __future__ import annotations

import time

from serial.serialutil import PortNotOpenError

from tonebridge.link.virtual_serial import VirtualSerial


class InProcessSerial(VirtualSerial):
    board = None

    def _write_bytes(self, data: bytes) -> int:
        raise NotImplementedError

    def _reconfigure_port(self):
        pass

    @property
    def in_waiting(self):
        if not self.is_open:
            raise PortNotOpenError()
        return self.board.link.host_in_waiting()

    def read(self, size=1):
        if not self.is_open:
            raise PortNotOpenError()
        link = self.board.link
        out = bytearray()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while len(out) < size:
            out += link.host_read(size - len(out))
            if len(out) >= size or getattr(link, "closed", False):
                break
            if deadline is None:
                link.wait_host_data(1.0)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            link.wait_host_data(left)  # woken by the board's next write
        return bytes(out)

    def write(self, data):
        if not self.is_open:
            raise PortNotOpenError()
        return self._write_bytes(bytes(data))

    def reset_input_buffer(self):
        if self.is_open:
            self.board.link.host_read(-1)
