"""`emu://BOARD` URLs for pyserial: the real MicroPython image on an emulated RP2040.

    serial.serial_for_url("emu://pico")                                  # a fresh board
    serial.serial_for_url("emu://pico?flash=pico.lfs&record=line.wav")   # persistent filesystem,
                                                                         # line written on close()
    serial.serial_for_url("emu://pico?hwid=e6614103e7123456")            # its flash unique id
    serial.serial_for_url("emu://pico?without=usb-cdc-hold")             # stock rp2040js behaviour
                                                                         # (tests of the fixes)

The port boots the chip when opened (a few seconds) and stops it when closed. `.board` is the
`tonebridge.emu.EmuBoard`. `register()` adds `tonebridge.emu` to pyserial's protocol handler
packages (importing `tonebridge.link` does it); pyserial then finds `protocol_emu` here.
"""

from __future__ import annotations

import urllib.parse

import serial

PACKAGE = "tonebridge.emu"
OPTIONS = ("flash", "record", "rate", "hwid", "without")


def register() -> None:
    if PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(PACKAGE)


def parse_url(url: str) -> tuple[str, dict]:
    from serial.serialutil import SerialException

    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "emu":
        raise SerialException(f"expected an emu:// URL, not {url!r}")
    board = (parts.netloc or parts.path.lstrip("/")).strip("/") or "pico"
    opts = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(opts) - set(OPTIONS)
    if unknown:
        raise SerialException(
            f"unknown emu:// option {sorted(unknown)[0]!r} (known: {', '.join(OPTIONS)})"
        )
    return board, opts
