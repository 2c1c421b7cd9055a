"""Where the MicroPython RPI_PICO image and the RP2040 boot ROM are.

``TONEBRIDGE_RP2_UF2`` names the UF2 (default: ``../shared/rp2-emulator/RPI_PICO-v1.28.0.uf2``
relative to the repository); the boot ROM (``bootrom-rp2040-B1.bin``) is looked for beside it,
or named by ``TONEBRIDGE_RP2_BOOTROM``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
NODE_MODULES = REPO / "node_modules"
DEFAULT_DIR = REPO.parent / "shared" / "rp2-emulator"
UF2_NAME = "RPI_PICO-v1.28.0.uf2"
BOOTROM_NAME = "bootrom-rp2040-B1.bin"
WHERE = (
    "the official MicroPython RPI_PICO v1.28.0 UF2 from https://micropython.org/download/RPI_PICO/ "
    f"(set TONEBRIDGE_RP2_UF2=/path/to/{UF2_NAME}) and the RP2040 B1 boot ROM "
    f"({BOOTROM_NAME}, built from raspberrypi/pico-bootrom) beside it"
)


@dataclass(frozen=True)
class FirmwareImage:
    uf2: Path
    bootrom: Path


class ImageMissing(FileNotFoundError):
    pass


def find_image() -> FirmwareImage:
    """The image and boot ROM, or ImageMissing saying where to get them."""
    uf2 = Path(os.environ.get("TONEBRIDGE_RP2_UF2") or DEFAULT_DIR / UF2_NAME)
    bootrom = Path(os.environ.get("TONEBRIDGE_RP2_BOOTROM") or uf2.with_name(BOOTROM_NAME))
    missing = [str(p) for p in (uf2, bootrom) if not p.is_file()]
    if missing:
        raise ImageMissing(f"no {' or '.join(missing)}: get {WHERE}")
    return FirmwareImage(uf2, bootrom)
