"""A simulated board behind a pseudo-terminal, so real serial tools and pyserial's own
serial-port code path talk to it: `tonebridge sim --board pico` prints the /dev/pts path.

    bridge = PtyBridge("sim://pico?record=line.wav")
    path = bridge.start()      # e.g. /dev/pts/7; open it with pyserial, picocom, mpremote ...
    ...
    bridge.stop()              # writes the recording (if any)
"""

from __future__ import annotations

import os
import select
import threading
import tty

import serial

import tonebridge.link  # noqa: F401  (registers sim://)


class PtyBridge:
    def __init__(self, url: str = "sim://pico", link_path: str | None = None):
        self.url = url
        self.link_path = link_path
        self.path: str | None = None
        self.port = None
        self._master = self._slave = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.to_board = 0
        self.to_host = 0

    @property
    def board(self):
        return getattr(self.port, "board", None)

    def start(self) -> str:
        self.port = serial.serial_for_url(self.url, timeout=0)
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF mangling: bytes pass as they are
        self._master, self._slave = master, slave  # keep the slave open: no EIO when idle
        self.path = os.ttyname(slave)
        if self.link_path:
            try:
                os.unlink(self.link_path)
            except FileNotFoundError:
                pass
            os.symlink(self.path, self.link_path)
        self._thread = threading.Thread(target=self._pump, name=f"pty {self.url}", daemon=True)
        self._thread.start()
        return self.link_path or self.path

    def _pump(self) -> None:
        m = self._master
        port = self.port
        while not self._stop.is_set():
            r, _, _ = select.select([m], [], [], 0.005)
            if r:
                try:
                    data = os.read(m, 4096)
                except OSError:
                    data = b""
                if data:
                    self.to_board += len(data)
                    port.write(data)
            n = port.in_waiting
            if n:
                data = port.read(n)
                self.to_host += len(data)
                view = memoryview(data)
                while view:
                    try:
                        k = os.write(m, view)
                    except BlockingIOError:
                        self._stop.wait(0.001)
                        continue
                    view = view[k:]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.port is not None:
            self.port.close()
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        if self.link_path:
            try:
                os.unlink(self.link_path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
