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
import signal
import sys
import threading
import time
import tty

import serial

import tonebridge.link  # noqa: F401  (registers sim://)


class PtyBridge:
    # without record= in the URL nobody reads the past line: the board keeps KEEP_S of it
    # (a line held off-hook would grow by ~2 MB a second), trimmed as the host writes
    KEEP_S = 60.0
    TRIM_EVERY_S = 5.0

    def __init__(self, url: str = "sim://pico", link_path: str | None = None):
        self.url = url
        self.link_path = link_path
        self.path: str | None = None
        self.port = None
        self._master = self._slave = None
        self._fds = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = None
        self.to_board = 0
        self.to_host = 0
        self._keeps_all = "record=" in url
        self._last_trim = time.monotonic()

    @property
    def board(self):
        return getattr(self.port, "board", None)

    def start(self) -> str:
        self.port = serial.serial_for_url(self.url, timeout=0)
        self._wake_r, self._wake_w = os.pipe()
        path = self._open_pty()
        for fn, way in ((self._pump_in, "in"), (self._pump_out, "out")):
            t = threading.Thread(target=fn, name=f"pty-{way} {self.url}", daemon=True)
            self._threads.append(t)
            t.start()
        self._thread = self._threads[0]  # the one that selects on the terminal
        return path

    def _open_pty(self) -> str:
        master, slave = os.openpty()
        os.set_blocking(master, False)
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
        self._wake()  # the host -> board pump selects on the new terminal
        return self.link_path or self.path

    def _close_pty(self) -> None:
        with self._fds:
            fds = (self._master, self._slave)
            self._master = self._slave = None
        self._wake()  # the host -> board pump stops selecting on the old terminal
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

    # Two pump threads, each blocked until it has something to do (no polling): the host ->
    # board one in select() on the terminal and a wake-up pipe, the board -> host one on the
    # board link's condition (notified when the board writes).
    #
    # An unplug closes the terminal's fd from another thread, and the kernel hands its number
    # to the next open() in the process: a pump still holding the bare number would then read
    # (or write!) some unrelated file (seen once: it swallowed hw/filter.json as another
    # simulated board was being built). So every read and write of the terminal happens under
    # the fd lock, after checking the fd is still this bridge's terminal; a select() that
    # returns for a file that took the number meanwhile is only a spurious wake-up.
    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (OSError, TypeError):
            pass

    def _on_master(self, m: int, op):
        """op() while ``m`` is still this bridge's open terminal, else None."""
        with self._fds:
            if self._master != m:
                return None
            return op()

    def _pump_in(self) -> None:
        port = self.port
        while not self._stop.is_set():
            m = self._master
            fds = [self._wake_r] if m is None else [m, self._wake_r]
            try:
                r, _, _ = select.select(fds, [], [])
            except (OSError, ValueError):
                continue  # unplugged meanwhile
            if self._wake_r in r:
                os.read(self._wake_r, 4096)
            if m is None or m not in r:
                continue
            try:
                data = self._on_master(m, lambda m=m: os.read(m, 4096))
            except OSError:  # BlockingIOError, or EIO while unplugging
                data = None
            if data:
                self.to_board += len(data)
                port.write(data)
                self._trim()

    def _trim(self) -> None:
        now = time.monotonic()
        if self._keeps_all or now - self._last_trim < self.TRIM_EVERY_S:
            return
        self._last_trim = now
        board, lock = self.board, getattr(self.port, "lock", None)
        discard = getattr(getattr(board, "line", None), "discard_before", None)
        if discard is None or lock is None:
            return  # (not a simulated board with a line recorder)
        with lock:
            discard(board.now_us() - self.KEEP_S * 1e6)

    def _pump_out(self) -> None:
        link = self.port.board.link
        cond = link.cond

        def ready():
            return self._stop.is_set() or link.host_in_waiting() > 0

        while True:
            with cond:
                cond.wait_for(ready)
            if self._stop.is_set():
                return
            data = link.host_read(-1)
            m = self._master
            if m is None:
                continue  # nobody is listening: the bytes are lost
            self.to_host += len(data)
            view = memoryview(data)
            while view and not self._stop.is_set():
                try:
                    k = self._on_master(m, lambda m=m, v=view: os.write(m, v))
                except BlockingIOError:  # the terminal's buffer is full: the host is not reading
                    try:
                        select.select([], [m], [], 0.05)
                    except (OSError, ValueError):
                        pass
                    continue
                except OSError:
                    break
                if k is None:
                    break  # unplugged: the rest is lost
                view = view[k:]

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self.port is not None and self._threads:
            cond = self.port.board.link.cond
            with cond:
                cond.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        if self.port is not None:
            self.port.close()
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        self._wake_r = self._wake_w = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def serve_until_stopped(bridge: PtyBridge, duration: float | None, record: str | None) -> int:
    """Serve a started bridge in the foreground (`tonebridge sim`, `emu`, `sbc`) until Ctrl-C,
    SIGTERM (when called on the main thread) or `duration` seconds; then stop it and say where
    the line recording went, if one was asked for. Returns the command's exit status (0)."""
    done = threading.Event()
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, lambda *_: done.set()) if main else None
    try:
        done.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, old)
        bridge.stop()
        if record:
            print(f"line signal written to {record}", file=sys.stderr)
    return 0
