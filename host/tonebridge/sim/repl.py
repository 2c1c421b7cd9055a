"""The REPL a simulated board runs when its main.py ends (Ctrl-C, crash, return), answering as
MicroPython's does: friendly mode (``>>> ``, evaluates in the board's namespace), raw mode
(Ctrl-A ... Ctrl-D, what mpremote uses; raw-paste is answered "unsupported"), Ctrl-B back to
friendly, Ctrl-D soft reboot (from the raw REPL main.py is then skipped, as MicroPython does).
"""

from __future__ import annotations

import errno

from .runtime import BoardReset

BANNER = (
    'MicroPython v1.24.1 (tonebridge sim); {machine}\r\nType "help()" for more information.\r\n>>> '
)


def mp_exception_line(e: BaseException) -> str:
    """The last traceback line as MicroPython prints it. MicroPython has no OSError
    subclasses and names the errno (`OSError: [Errno 2] ENOENT`); tools such as mpremote
    parse exactly that, so the simulated REPL must not print CPython's
    `FileNotFoundError: [Errno 2] No such file or directory`."""
    if isinstance(e, OSError) and e.errno is not None:
        return f"OSError: [Errno {e.errno}] {errno.errorcode.get(e.errno, e.errno)}"
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class Repl:
    """``board`` gives ``link`` (the serial link), ``runtime.wait_until``, ``machine_name`` and
    ``soft_reboot(raw)``; ``ns`` is the namespace code runs in."""

    def __init__(self, board, ns: dict):
        self.board = board
        self.ns = ns
        self.out = board.link.board_write

    def banner(self) -> None:
        self.out(BANNER.format(machine=self.board.machine_name).encode())

    def run(self, raw: bool = False) -> None:
        link = self.board.link
        out = self.out
        line = bytearray()
        paste_req = 0
        if raw:
            out(b"raw REPL; CTRL-B to exit\r\n>")
        while True:
            try:
                self.board.runtime.wait_until(lambda: link.board_available() > 0, None)
                data = link.board_read(-1)
            except KeyboardInterrupt:
                line.clear()
                if not raw:
                    out(b"\r\n>>> ")
                continue
            for b in data:
                if raw:
                    if paste_req:  # Ctrl-E 'A' Ctrl-A: raw-paste query; answer "unsupported"
                        paste_req = paste_req + 1 if (paste_req, b) in ((1, 0x41),) else 0
                        if paste_req == 2:
                            continue
                        if b == 0x01 and paste_req == 0:
                            out(b"R\x00")
                            continue
                    if b == 0x05 and not line:
                        paste_req = 1
                    elif b == 0x04:
                        if not line:
                            out(b"OK\r\n")
                            self.board.soft_reboot(raw=True)
                        out(b"OK")
                        err = self.exec_code(bytes(line).decode("utf-8", "replace"), "exec")
                        out(b"\x04" + err.encode() + b"\x04>")
                        line.clear()
                    elif b == 0x02:
                        raw = False
                        line.clear()
                        out(b"\r\n")
                        self.banner()
                    elif b == 0x01:
                        line.clear()
                        out(b"raw REPL; CTRL-B to exit\r\n>")
                    else:
                        line.append(b)
                    continue
                if b == 0x01:
                    raw = True
                    line.clear()
                    out(b"\r\nraw REPL; CTRL-B to exit\r\n>")
                elif b == 0x04:
                    if not line:
                        self.board.soft_reboot()
                elif b in (0x0D, 0x0A):
                    out(b"\r\n")
                    src = bytes(line).decode("utf-8", "replace")
                    line.clear()
                    if src.strip():
                        err = self.exec_code(src, "single")
                        if err:
                            out(err.replace("\n", "\r\n").encode())
                    out(b">>> ")
                elif b in (0x08, 0x7F):
                    if line:
                        line.pop()
                        out(b"\x08 \x08")
                elif b == 0x02:
                    out(b"\r\n")
                    self.banner()
                elif b >= 0x20:
                    line.append(b)
                    out(bytes([b]))

    def exec_code(self, src: str, mode: str) -> str:
        """Run REPL input in the board's namespace; returns the error text ('' if none)."""
        ns = self.ns
        try:
            if mode == "single":
                try:
                    code = compile(src, "<stdin>", "eval")
                except SyntaxError:
                    code = None
                if code is not None:
                    val = eval(code, ns)
                    if val is not None:
                        self.out((repr(val) + "\r\n").encode())
                    return ""
            exec(compile(src, "<stdin>", "exec"), ns)
            return ""
        except BoardReset:
            raise
        except BaseException as e:
            if isinstance(e, SystemExit):
                return ""
            return (
                'Traceback (most recent call last):\n  File "<stdin>", line 1, in <module>\n'
                f"{mp_exception_line(e)}\n"
            )
