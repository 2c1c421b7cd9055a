"""A simulated board behind a pseudo-terminal, so real serial tools and pyserial's own
serial-port code path talk to it: `tonebridge sim --board pico` prints the /dev/pts path.

    bridge = PtyBridge("sim://pico?record=line.wav")
    path = bridge.start()      # e.g. /dev/pts/7; open it with pyserial, picocom, mpremote ...
    ...
    bridge.unplug()            # the terminal goes away (reads fail, EIO); the board runs on
    bridge.replug(link_path)   # a new terminal for the same board (a USB re-enumeration)
    bridge.stop()              # writes the recording (if any)
"""

from __future__ import annotations

import os
import select
import threading
import tty

import serial

import tonebridge.link  # noqa: F401  (registers sim://)


class _Unplugged(Exception):
    """The terminal the pump was using is gone (its fd may belong to another file now)."""


class PtyBridge:
    def __init__(self, url: str = "sim://pico", link_path: str | None = None):
        self.url = url
        self.link_path = link_path
        self.path: str | None = None
        self.port = None
        self._master = self._slave = None
        self._fds = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.to_board = 0
        self.to_host = 0

    @property
    def board(self):
        return getattr(self.port, "board", None)

    def start(self) -> str:
        self.port = serial.serial_for_url(self.url, timeout=0)
        path = self._open_pty()
        self._thread = threading.Thread(target=self._pump, name=f"pty {self.url}", daemon=True)
        self._thread.start()
        return path

    def _open_pty(self) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF mangling: bytes pass as they are
        self.path = os.ttyname(slave)
        if self.link_path:
            try:
                os.unlink(self.link_path)
            except FileNotFoundError:
                pass
            os.symlink(self.path, self.link_path)
        with self._fds:
            self._master, self._slave = master, slave  # keep the slave open: no EIO when idle
        return self.link_path or self.path

    def _close_pty(self) -> None:
        with self._fds:
            fds = (self._master, self._slave)
            self._master = self._slave = None
        for fd in fds:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.link_path:
            try:
                if os.path.islink(self.link_path):
                    os.unlink(self.link_path)
            except OSError:
                pass

    def unplug(self) -> None:
        """The terminal disappears (a host reading it gets EIO); the board keeps running,
        and what it writes meanwhile is lost, as on a UART whose USB adapter was pulled."""
        self._close_pty()

    def replug(self, link_path: str | None = None) -> str:
        """A new terminal for the same board (optionally under another link path)."""
        if link_path is not None:
            self.link_path = link_path
        return self._open_pty()

    def _on_master(self, m: int, op):
        """Run op() on the terminal's fd `m` while it is still this bridge's open terminal.

        An unplug closes the fd from another thread, and the kernel hands its number to the
        next open() in the process: a pump still holding the bare number would then read (or
        write!) some unrelated file (seen: it swallowed hw/filter.json as another simulated
        board was being built). The fd lock makes "still ours" and the I/O one step."""
        with self._fds:
            if self._master != m:
                raise _Unplugged
            return op()

    def _pump(self) -> None:
        port = self.port
        while not self._stop.is_set():
            m = self._master
            if m is None:
                self._stop.wait(0.005)
                n = port.in_waiting
                if n:
                    port.read(n)  # nobody is listening: the bytes are lost
                continue
            try:
                self._pump_once(port, m)
            except _Unplugged:
                continue

    def _pump_once(self, port, m: int) -> None:
        try:
            r, _, _ = self._on_master(m, lambda: select.select([m], [], [], 0.005))
        except (OSError, ValueError):
            return  # unplugged meanwhile
        if r:
            try:
                data = self._on_master(m, lambda: os.read(m, 4096))
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
                    k = self._on_master(m, lambda v=view: os.write(m, v))
                except BlockingIOError:
                    self._stop.wait(0.001)
                    continue
                except OSError:
                    break
                view = view[k:]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.port is not None:
            self.port.close()
        self._close_pty()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
