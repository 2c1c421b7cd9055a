"""The emulated Pico as a user meets a Pico: `tonebridge emu` prints a pseudo-terminal, `tonebridge
deploy` installs the firmware on it with the real mpremote, the board resets into the protocol,
its filesystem and identity persist in the --flash file, and the hardware-in-the-loop suite
passes against it through --port, as it would against a board on /dev/ttyACM0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tonebridge.emu.board import default_hwid
from tonebridge.emu.fsimage import read_image
from tonebridge.link import BoardClient
from tonebridge_fw.engine import FW_VERSION

pytestmark = pytest.mark.emu
REPO = Path(__file__).resolve().parents[2]


def tonebridge(*args, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "tonebridge.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_deploy_onto_a_fresh_board_with_mpremote_then_handshake(emu_cli, tmp_path):
    flash = tmp_path / "fresh.lfs"
    cli = emu_cli("--flash", str(flash))
    assert cli.path.startswith("/dev/pts/")
    # a fresh board: MicroPython formats its filesystem at first boot, no firmware on it
    r = tonebridge("deploy", "--port", cli.path, "--board", "pico")
    assert r.returncode == 0, r.stdout + r.stderr
    # every firmware module (as .mpy), main.py and the board's tonebridge.json
    pkg = REPO / "firmware" / "tonebridge_fw"
    want = [
        f"lib/tonebridge_fw/{m.relative_to(pkg).with_suffix('.mpy')}" for m in pkg.rglob("*.py")
    ]
    assert f"copied {len(want) + 2} files for board pico" in r.stdout, r.stdout
    for f in [*want, "main.py", "tonebridge.json"]:
        assert f"  {f}\n" in r.stdout, (f, r.stdout)
    # mpremote's final `reset` is machine.reset(): the chip restarts into main.py
    with BoardClient(cli.path, timeout=10.0) as c:
        info = c.hello()
        assert info["fw"] == FW_VERSION and info["board"] == "pico", info
        assert c.send("1", tone_ms=40, gap_ms=40).played == 1
    assert cli.stop() == 0
    # what mpremote wrote went through the emulated QSPI flash into the --flash file
    files = read_image(flash)
    assert "lib/tonebridge_fw/app.mpy" in files and "main.py" in files
    assert files["tonebridge.json"].strip() == b'{"board": "pico"}'
    # the next run boots from that filesystem straight into tonebridge, same board id
    again = emu_cli("--flash", str(flash))
    with BoardClient(again.path, timeout=10.0) as c:
        assert c.hello()["fw"] == FW_VERSION
    r = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", again.path, "exec",
         "import machine; print(machine.unique_id().hex())"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.stdout.strip().splitlines()[-1] == default_hwid(flash), r.stdout + r.stderr


def test_hil_suite_passes_against_the_emulated_board(emu_cli, provisioned):
    cli = emu_cli("--flash", str(provisioned()))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(REPO / "tests" / "hil"),
            str(REPO / "tests" / "protocol" / "test_hil.py"),
            "--port",
            cli.path,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]
