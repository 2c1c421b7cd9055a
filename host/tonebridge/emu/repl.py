"""MicroPython's raw REPL on an ``EmuBoard`` (the protocol mpremote speaks), for measurements
that run code on the emulated chip.

    repl = RawRepl(board)
    repl.enter(soft_reset=True)     # Ctrl-C the app, raw REPL, fresh interpreter (no main.py)
    out = repl.exec("print(1 + 1)")  # -> "2\\r\\n"; raises ReplError with the traceback
    repl.exit()                      # back to the friendly REPL
"""

from __future__ import annotations

import time


class ReplError(RuntimeError):
    pass


class RawRepl:
    def __init__(self, board):
        self.board = board
        self._buf = bytearray()

    def _read_until(self, marker: bytes, timeout: float) -> bytes:
        """Everything up to and including the first ``marker``; the rest stays buffered."""
        deadline = time.monotonic() + timeout
        while True:
            i = self._buf.find(marker)
            if i >= 0:
                out = bytes(self._buf[: i + len(marker)])
                del self._buf[: i + len(marker)]
                return out
            if time.monotonic() > deadline:
                raise ReplError(
                    f"no {marker!r} within {timeout} s (got {bytes(self._buf[-200:])!r})"
                )
            chunk = self.board.read()
            if chunk:
                self._buf += chunk
            else:
                self.board.link.wait_host_data(0.05)

    def enter(self, soft_reset: bool = False, timeout: float = 30.0) -> None:
        b = self.board
        b.write(b"\r\x03\x03")  # stop whatever runs (the app's main loop: KeyboardInterrupt)
        time.sleep(0.2)
        b.read()
        self._buf.clear()
        b.write(b"\r\x01")
        self._read_until(b"raw REPL; CTRL-B to exit\r\n>", timeout)
        if soft_reset:
            b.write(b"\x04")
            self._read_until(b"soft reboot\r\n", timeout)
            self._read_until(b"raw REPL; CTRL-B to exit\r\n>", timeout)

    def exec(self, code: str, timeout: float = 120.0) -> str:
        self.board.write(code.encode() + b"\x04")
        head = self._read_until(b"OK", timeout)
        if head != b"OK":
            raise ReplError(f"raw REPL did not accept the code: {head!r}")
        out = self._read_until(b"\x04", timeout)[:-1]
        err = self._read_until(b"\x04", timeout)[:-1]
        self._read_until(b">", timeout)
        if err:
            raise ReplError(err.decode(errors="replace"))
        return out.decode(errors="replace")

    def exit(self) -> None:
        self.board.write(b"\x02")
