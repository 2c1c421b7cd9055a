"""`sbc://BOARD` URLs for pyserial: the board runs in this process on the SBC's GPIO.

    serial.serial_for_url("sbc://rpi-mt8880")
    serial.serial_for_url("sbc://rpi-mt8880?mt8880_mode=burst&max_offhook_s=60&cs_pin=8")

Opening the port builds ``SbcBoard`` (the firmware's App on RPi.GPIO, or the module given to
``tonebridge.sbc.set_gpio_module``), which powers up the MT8880 (100 ms), and starts the
firmware's main loop in a thread; closing stops it (silence, on-hook) and releases the GPIO.
Query keys: any key of the board's profile (ints where they look like ints), ``watchdog_ms``.
Only one port may hold a board's pins at a time: a second open of the same board fails.
"""

from __future__ import annotations

import threading
import urllib.parse

from serial.serialutil import SerialException

from tonebridge.link.inprocess import InProcessSerial

_open_boards: set = set()
_open_lock = threading.Lock()


def parse_url(url: str) -> tuple[str, dict]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "sbc":
        raise SerialException(f"expected an sbc:// URL, not {url!r}")
    board = (parts.netloc or parts.path.lstrip("/")).strip("/") or "rpi-mt8880"
    from tonebridge_fw import boards

    if board not in boards.PROFILES:
        raise SerialException(
            f"unknown board {board!r} (known: {', '.join(sorted(boards.PROFILES))})"
        )
    known = set(boards.PROFILES[board]) | {"watchdog_ms", "relay_settle_ms", "mt8880_mode", "hwid"}
    opts = {}
    for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if k not in known:
            raise SerialException(
                f"unknown sbc:// option {k!r} (known: {', '.join(sorted(known))})"
            )
        if k == "d_pins":
            try:
                opts[k] = [int(x) for x in v.split(",")]
            except ValueError:
                raise SerialException("d_pins must be 4 comma-separated GPIO numbers") from None
            continue
        if k == "hwid":
            opts[k] = v
            continue
        if v == "null":  # as in tonebridge.json: a board built without that part
            opts[k] = None
            continue
        try:
            opts[k] = int(v)
        except ValueError:
            opts[k] = v
    return board, opts


class SbcSerial(InProcessSerial):
    """pyserial port backed by an in-process SBC board (see module docstring)."""

    def open(self):
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        if self.is_open:
            raise SerialException("port already open")
        from .board import SbcBoard

        name, opts = parse_url(self.portstr)
        with _open_lock:
            if name in _open_boards:
                raise SerialException(f"sbc://{name} is already open in this process")
            _open_boards.add(name)
        self._name = name
        try:
            self.board = SbcBoard(name, config=opts or None)
        except (ValueError, RuntimeError, OSError) as e:
            with _open_lock:
                _open_boards.discard(name)
            raise SerialException(f"sbc://{name}: {e}") from e
        except BaseException:
            with _open_lock:
                _open_boards.discard(name)
            raise
        self.board.start()
        self.is_open = True

    def close(self):
        if not self.is_open:
            return
        self.is_open = False
        try:
            self.board.close()
        finally:
            with _open_lock:
                _open_boards.discard(self._name)

    def _write_bytes(self, data):
        if not self.board.alive():
            raise SerialException(
                f"sbc://{self._name}: the firmware loop stopped: {self.board.crash}"
            )
        return self.board.link.host_write(data)
