"""pyserial handler module for `emu://` URLs (found through `serial.protocol_handler_packages`)."""

from __future__ import annotations

from serial.serialutil import SerialException

from tonebridge.emu.url import parse_url
from tonebridge.link.inprocess import InProcessSerial


class EmuSerial(InProcessSerial):
    """pyserial port backed by an emulated board (see tonebridge.emu.url)."""

    _owns_board = True

    def open(self):
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        if self.is_open:
            raise SerialException("port already open")
        from tonebridge.emu.board import EmuBoard
        from tonebridge.emu.image import ImageMissing

        name, opts = parse_url(self.portstr)
        self._record = opts.get("record")
        self._rate = int(opts.get("rate", 22050))
        try:
            without = [w for w in opts.get("without", "").split(",") if w]
            self.board = EmuBoard(
                name, flash=opts.get("flash"), hwid=opts.get("hwid"), without=without
            )
            self.board.start()
        except (ValueError, ImageMissing, RuntimeError, TimeoutError) as e:
            if self.board is not None:
                self.board.close()
            self.board = None
            raise SerialException(f"emu://{name}: {e}") from e
        self.is_open = True

    def close(self):
        if not self.is_open:
            return
        self.is_open = False
        if not self._owns_board:
            return
        self.board.close()
        if self._record:
            with self.board.line_lock:
                self.board.line.write_wav(self._record, self._rate)

    def _write_bytes(self, data):
        return self.board.write(data)


Serial = EmuSerial


def attach(board, timeout: float | None = 0.05) -> EmuSerial:
    """A pyserial port on an already started ``EmuBoard``; closing it leaves the board running
    (e.g. ``BoardClient("emu://pico", port_factory=lambda: attach(board))``)."""
    port = EmuSerial(None, timeout=timeout)
    port._port = f"emu://{board.name}"
    port.board = board
    port._owns_board = False
    port._record = None
    port.is_open = True
    return port
