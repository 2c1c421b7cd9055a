"""Per-board stdio: the serial link between the host and a simulated board, and the ``sys`` and
``select`` modules the firmware imports, so ``transport.py`` is the same code on board and in sim.

``SerialLink`` is the USB-CDC (or UART) cable: the host writes with ``host_write`` and reads with
``host_read``; the firmware reads ``sys.stdin.buffer`` and writes ``sys.stdout.buffer``. A Ctrl-C
(0x03) from the host raises ``KeyboardInterrupt`` in the firmware, as on a real board, unless the
firmware turned that off with ``micropython.kbd_intr(-1)``.
"""

from __future__ import annotations

import threading
import types

POLLIN, POLLOUT, POLLERR, POLLHUP = 1, 4, 8, 16


class SerialLink:
    def __init__(self):
        self._to_board = bytearray()
        self._to_host = bytearray()
        self.cond = threading.Condition()
        self.kbd_intr_char = 3
        self.interrupt_pending = False
        self.host_listeners: list = []  # fn() when the board wrote something
        self.board_listeners: list = []  # fn() when the host wrote something
        self.transcript_to_host = bytearray()
        self.keep_transcript = True

    # ---- host side ------------------------------------------------------------------
    def host_write(self, data: bytes) -> int:
        data = bytes(data)
        with self.cond:
            for b in data:
                if self.kbd_intr_char >= 0 and b == self.kbd_intr_char:
                    self.interrupt_pending = True
                    self._to_board.clear()
                else:
                    self._to_board.append(b)
            self.cond.notify_all()
        for fn in self.board_listeners:
            fn()
        return len(data)

    def host_read(self, n: int = -1) -> bytes:
        with self.cond:
            if n is None or n < 0:
                n = len(self._to_host)
            out = bytes(self._to_host[:n])
            del self._to_host[:n]
            return out

    def host_in_waiting(self) -> int:
        with self.cond:
            return len(self._to_host)

    def wait_host_data(self, timeout_s: float | None) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self._to_host) > 0, timeout_s)

    # ---- board side -------------------------------------------------------------------
    def board_available(self) -> int:
        return len(self._to_board)  # one atomic read (the firmware polls this every pass)

    def board_read(self, n: int = -1) -> bytes:
        with self.cond:
            if n is None or n < 0:
                n = len(self._to_board)
            out = bytes(self._to_board[:n])
            del self._to_board[:n]
            return out

    def board_write(self, data) -> int:
        data = bytes(data)
        with self.cond:
            self._to_host += data
            if self.keep_transcript:
                self.transcript_to_host += data
            self.cond.notify_all()
        for fn in self.host_listeners:
            fn()
        return len(data)

    def take_interrupt(self) -> bool:
        with self.cond:
            if self.interrupt_pending:
                self.interrupt_pending = False
                return True
            return False


class _BoardBinaryIn:
    def __init__(self, board):
        self._b = board

    def read(self, n=-1):
        """Blocking read of ``n`` bytes (as on a board); n < 0: what is there, at least 1."""
        link = self._b.link
        if n is None or n < 0:
            self._b.runtime.wait_until(lambda: link.board_available() > 0, None)
            return link.board_read(-1)
        out = bytearray()
        while len(out) < n:
            self._b.runtime.wait_until(lambda: link.board_available() > 0, None)
            out += link.board_read(n - len(out))
        return bytes(out)

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else n
        data = self.read(n)
        buf[: len(data)] = data
        return len(data)

    def readline(self):
        link = self._b.link
        out = bytearray()
        while not out.endswith(b"\n"):
            out += self.read(1)
            if not link.board_available() and out.endswith(b"\n"):
                break
        return bytes(out)


class _BoardTextIn:
    def __init__(self, board):
        self.buffer = _BoardBinaryIn(board)

    def read(self, n=-1):
        return self.buffer.read(n).decode("utf-8", "replace")

    def readline(self):
        return self.buffer.readline().decode("utf-8", "replace")


class _BoardBinaryOut:
    def __init__(self, board):
        self._b = board

    def write(self, data):
        return self._b.link.board_write(data)

    def flush(self):
        pass


class _BoardTextOut:
    def __init__(self, board):
        self.buffer = _BoardBinaryOut(board)

    def write(self, s):
        if isinstance(s, (bytes, bytearray, memoryview)):
            return self.buffer.write(bytes(s))
        return self.buffer.write(str(s).replace("\n", "\r\n").encode())

    def flush(self):
        pass


def make_sys_module(board, mp_version=(1, 24, 1)) -> types.ModuleType:
    mod = types.ModuleType("sys")
    mod.stdin = _BoardTextIn(board)
    mod.stdout = _BoardTextOut(board)
    mod.stderr = mod.stdout
    mod.platform = "rp2" if board.profile.get("mcu", "").startswith("rp2") else "esp32"
    mod.implementation = types.SimpleNamespace(
        name="micropython", version=mp_version, _machine=board.machine_name, _mpy=6
    )
    mod.version = "3.4.0; MicroPython v" + ".".join(str(x) for x in mp_version)
    mod.version_info = (3, 4, 0)
    mod.byteorder = "little"
    mod.maxsize = (1 << 31) - 1
    mod.argv = []
    mod.path = ["", ".frozen", "/lib"]
    mod.modules = board.loader.modules

    def exit(code=0):
        raise SystemExit(code)

    def print_exception(exc, file=None):
        import traceback

        out = file or mod.stdout
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        out.write(text)

    mod.exit = exit
    mod.print_exception = print_exception
    return mod


def make_select_module(board) -> types.ModuleType:
    mod = types.ModuleType("select")
    mod.POLLIN, mod.POLLOUT, mod.POLLERR, mod.POLLHUP = POLLIN, POLLOUT, POLLERR, POLLHUP

    class Poll:
        def __init__(self):
            self._objs = {}

        def register(self, obj, eventmask=POLLIN | POLLOUT):
            self._objs[id(obj)] = [obj, eventmask]

        def unregister(self, obj):
            self._objs.pop(id(obj), None)

        def modify(self, obj, eventmask):
            if id(obj) not in self._objs:
                raise OSError(2, "ENOENT")
            self._objs[id(obj)][1] = eventmask

        def _scan(self):
            res = []
            for obj, mask in self._objs.values():
                ev = mask & POLLOUT
                if mask & POLLIN and board.readable(obj):
                    ev |= POLLIN
                if ev:
                    res.append((obj, ev))
            return res

        def poll(self, timeout=-1):
            res = self._scan()
            if res or timeout == 0:
                return res
            rt = board.runtime
            end = 1 << 62 if timeout < 0 else rt.clock.now_us() + int(timeout) * 1000
            if rt.advance_to(end, lambda: bool(self._scan())):
                return self._scan()
            return []

        def ipoll(self, timeout=-1, flags=0):
            return iter(self.poll(timeout))

    def poll():
        return Poll()

    def select(rlist, wlist, xlist, timeout=None):
        p = Poll()
        for o in rlist:
            p.register(o, POLLIN)
        res = p.poll(-1 if timeout is None else int(timeout * 1000))
        return [o for o, _ in res], list(wlist), []

    mod.poll = poll
    mod.select = select
    return mod
