"""Fixtures for the emulated-board tests: the MicroPython RPI_PICO image on rp2040js.

Without the image (TONEBRIDGE_RP2_UF2, default ../shared/rp2-emulator/) these tests skip with
one line saying where to get it; under CI (CI=true) a missing image fails them instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def emu_image():
    from tonebridge.emu.image import ImageMissing, find_image

    try:
        return find_image()
    except ImageMissing as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"emulated-board tests need the image under CI: {e}")
        pytest.skip(f"emulated board: {e}")


@pytest.fixture
def provisioned(tmp_path, emu_image):
    """provisioned(mpy=True, replace=None, overrides=None) -> path of a littlefs image holding
    the firmware as `tonebridge deploy` would install it."""
    from tonebridge.emu.fsimage import provision

    def make(name="pico.lfs", **kw):
        path = tmp_path / name
        provision(path, "pico", **kw)
        return path

    return make


@pytest.fixture
def emu_board(emu_image):
    """emu_board(**EmuBoard kwargs) -> a started EmuBoard, closed after the test."""
    from tonebridge.emu.board import EmuBoard

    boards = []

    def start(**kw):
        b = EmuBoard("pico", image=emu_image, **kw)
        boards.append(b)
        return b.start()

    yield start
    for b in boards:
        b.close()


class EmuCli:
    """`tonebridge emu` running in a subprocess; `.path` is the pty it printed."""

    def __init__(self, args, cwd):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tonebridge.cli", "emu", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.path = self.proc.stdout.readline().strip()
        if not re.match(r"^/dev/pts/\d+$|^/", self.path):
            self.stop()
            raise RuntimeError(f"tonebridge emu printed {self.path!r}: {self.stderr}")
        self.stderr = ""

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stderr = self.proc.stderr.read() if self.proc.stderr else ""
        return self.proc.returncode


@pytest.fixture
def emu_cli(emu_image, tmp_path):
    """emu_cli(*args) -> EmuCli: `tonebridge emu --board pico ARGS` behind a pty."""
    clis = []

    def start(*args):
        cli = EmuCli(["--board", "pico", *args], cwd=REPO)
        clis.append(cli)
        return cli

    yield start
    for c in clis:
        c.stop()
