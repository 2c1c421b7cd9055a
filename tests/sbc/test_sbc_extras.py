"""`pip install tonebridge[sbc]` (Pi 1-4, Zero: RPi.GPIO) and `tonebridge[sbc-pi5]` (Pi 5:
rpi-lgpio) are declared optional dependencies whose environment markers keep them off
anything but ARM Linux, so they never install on an x86 development machine by accident."""

from __future__ import annotations

import platform
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def extra(name) -> list[Requirement]:
    data = tomllib.loads(PYPROJECT.read_text())
    return [Requirement(r) for r in data["project"]["optional-dependencies"][name]]


def env(system, machine):
    return {"platform_system": system, "platform_machine": machine, "sys_platform": "linux"}


@pytest.mark.parametrize("name, package", [("sbc", "rpi-gpio"), ("sbc-pi5", "rpi-lgpio")])
def test_the_gpio_library_is_declared_for_arm_linux_only(name, package):
    (req,) = extra(name)
    assert req.name.lower().replace(".", "-") == package
    for machine in ("aarch64", "armv7l", "armv6l"):  # Raspberry Pi OS 64/32-bit, Pi Zero/1
        assert req.marker.evaluate(env("Linux", machine)), machine
    for system, machine in (
        ("Linux", "x86_64"), ("Linux", "i686"), ("Darwin", "arm64"), ("Windows", "AMD64"),
        ("Linux", "riscv64"), ("Darwin", "x86_64"),
    ):  # fmt: skip
        assert not req.marker.evaluate(env(system, machine)), (system, machine)


def test_the_docs_and_the_error_name_the_extras():
    sbc_md = (PYPROJECT.parent / "docs" / "sbc.md").read_text()
    assert "pip install 'tonebridge[sbc]'" in sbc_md
    assert "pip install 'tonebridge[sbc-pi5]'" in sbc_md
    import tonebridge.sbc as sbc

    saved = sbc._gpio
    sbc._gpio = None
    try:
        if platform.machine() in ("aarch64", "armv7l", "armv6l"):
            pytest.skip("on ARM Linux RPi.GPIO may really be importable")
        with pytest.raises(RuntimeError, match=r"pip install 'tonebridge\[sbc\]'"):
            sbc.gpio_module()
    finally:
        sbc._gpio = saved


@pytest.mark.slow
def test_real_pip_skips_them_on_this_machine():
    """pip itself (not our reading of the marker) decides: on a non-ARM machine it ignores
    the requirement instead of fetching it (no index is consulted)."""
    if platform.system() == "Linux" and platform.machine() in ("aarch64", "armv7l", "armv6l"):
        pytest.skip("this machine is ARM Linux: pip would install them here")
    for name in ("sbc", "sbc-pi5"):
        (req,) = extra(name)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", str(req)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Ignoring" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
