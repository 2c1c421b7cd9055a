"""`sim://BOARD` URLs for pyserial: an in-process simulated board running in real time.

    serial.serial_for_url("sim://pico")                      # also pico2, pico-mt8880, esp32-i2s, ...
    serial.serial_for_url("sim://pico?record=/tmp/line.wav")  # line signal written on close()
    serial.serial_for_url("sim://pico?max_offhook_s=5&watchdog_ms=2000")  # profile overrides
    serial.serial_for_url("sim://pico?hwid=e6614103e73f4a2b")  # machine.unique_id() (hex)
    serial.serial_for_url("sim://pico-mt8880?mt8880_mode=burst")  # chip-timed bursts
    serial.serial_for_url("sim://esp32-i2s?rx_i2s=null")     # built without its receive path

The board is a `tonebridge.sim.SimBoard` running the firmware files unmodified (its own
`main.py` -> `tonebridge_fw.app.App`), on a virtual clock that its firmware thread keeps at
the wall clock (paced: it blocks until the host writes or its next deadline is due, see
`tonebridge.sim.runtime`): to the host it is a board on a serial port that answers in real
time, while inside the simulation time stays exact, so the recorded audio does not depend on
the host's load.  `.board` is the SimBoard; `.lock` is held while its firmware runs (hold it
to read the board's state, e.g. render its line recording, consistently from another thread);
`wall_of(t_us)` is the monotonic time at which the board's clock reads `t_us`.

Registration: pyserial looks up `protocol_<scheme>` modules in the packages listed in
`serial.protocol_handler_packages`; `register()` adds `tonebridge.link` (whose
`protocol_sim` module re-exports `SimSerial` as `Serial`).  Importing `tonebridge.link` does it.
"""

from __future__ import annotations

import urllib.parse

import serial
from serial.serialutil import SerialException

from tonebridge.link.inprocess import InProcessSerial

PACKAGE = "tonebridge.link"


def register() -> None:
    if PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(PACKAGE)


def parse_url(url: str) -> tuple[str, dict]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "sim":
        raise SerialException(f"expected a sim:// URL, not {url!r}")
    board = (parts.netloc or parts.path.lstrip("/")).strip("/") or "pico"
    opts = {}
    for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        opts[k] = v
    return board, opts


def _overrides(name: str, opts: dict) -> dict:
    """Profile overrides from the URL query: any key of the board's profile, watchdog_ms, or
    (as sbc:// takes it) an MT8880 board's mt8880_mode."""
    from tonebridge_fw import boards

    known = set(boards.PROFILES[name]) | {"watchdog_ms"}
    prof = boards.PROFILES[name]
    if prof.get("rx_adc") is not None or prof.get("rx_i2s") is not None:
        known.add("country")  # call progress on the line sense (docs/callprogress.md)
    if boards.PROFILES[name].get("backend") == "mt8880":
        known.add("mt8880_mode")
    out = {}
    for k, v in opts.items():
        if k in ("record", "rate", "hwid"):
            continue
        if k not in known:
            raise SerialException(
                f"unknown sim:// option {k!r} (known: record, rate, hwid, watchdog_ms, "
                f"or a profile key: {', '.join(sorted(boards.PROFILES[name]))})"
            )
        if v == "null":  # as null in tonebridge.json: a part the board is built without
            out[k] = None
            continue
        try:
            out[k] = int(v)
        except ValueError:
            out[k] = v
    return out


class SimSerial(InProcessSerial):
    """pyserial port backed by a simulated board (see module docstring)."""

    def open(self):
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        if self.is_open:
            raise SerialException("port already open")
        from tonebridge_fw import boards

        from tonebridge.sim import SimBoard, VirtualClock

        name, opts = parse_url(self.portstr)
        if name not in boards.PROFILES:
            raise SerialException(
                f"unknown simulated board {name!r} (known: {', '.join(sorted(boards.PROFILES))})"
            )
        self._record = opts.get("record")
        self._rate = int(opts.get("rate", 22050))
        try:
            self.board = SimBoard(
                name,
                VirtualClock(),
                config=_overrides(name, opts) or None,
                hwid=opts.get("hwid") or None,
                paced=True,
            )
        except ValueError as e:  # boards.ConfigError, a bad hwid
            raise SerialException(f"sim://{name}: {e}") from e
        self.lock = self.board.runtime.lock
        self.is_open = True

    def wall_of(self, t_us) -> float:
        """time.monotonic() at which the board's clock reads ``t_us``."""
        return self.board.runtime.pacer.wall_of(t_us)

    def close(self):
        if not self.is_open:
            return
        self.is_open = False
        try:
            if self._record:
                with self.lock:
                    self.board.line.write_wav(self._record, self._rate)
        finally:
            self.board.close()

    def _write_bytes(self, data):
        return self.board.write(data)
