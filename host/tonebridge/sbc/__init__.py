"""tonebridge on a Raspberry Pi (Linux, CPython): the firmware's own App and MT8880 driver
driving an MT8880/CM8880 from the Pi's GPIO through RPi.GPIO (docs/sbc.md).

    tonebridge serve --port sbc://rpi-mt8880 ...     # in-process board, no extra process
    tonebridge send --port sbc://rpi-mt8880 123
    tonebridge sbc --board rpi-mt8880                 # behind a pty, for any serial tool

The GPIO module is ``RPi.GPIO`` (imported on first use; on a Pi 5 the ``rpi-lgpio`` package
provides it). ``set_gpio_module(mod)`` injects another object with the RPi.GPIO API (tests use
one on top of the simulator's pin bus and MT8880 chip model). Importing this package registers
the ``sbc://`` pyserial URL scheme and nothing else (no GPIO access).
"""

from __future__ import annotations

import serial

PACKAGE = "tonebridge.sbc"
_gpio = None


def set_gpio_module(mod) -> None:
    """Use ``mod`` (RPi.GPIO API) for every SBC board opened from now on; None: RPi.GPIO."""
    global _gpio
    _gpio = mod


def gpio_module():
    """The injected GPIO module, else ``RPi.GPIO`` (a clear error where it is missing)."""
    if _gpio is not None:
        return _gpio
    try:
        import RPi.GPIO as gpio  # noqa: N814
    except ImportError as e:
        raise RuntimeError(
            "RPi.GPIO is not importable: run this on a Raspberry Pi with "
            "`pip install 'tonebridge[sbc]'` (Pi 5: `pip install 'tonebridge[sbc-pi5]'`)"
        ) from e
    except RuntimeError as e:  # RPi.GPIO raises this off a Pi / without /dev/gpiomem access
        raise RuntimeError(f"RPi.GPIO cannot run here: {e}") from e
    return gpio


def register() -> None:
    if PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(PACKAGE)


register()

__all__ = ["gpio_module", "register", "set_gpio_module"]
