"""Ctrl-C from the real mpremote reaches MicroPython's REPL on the emulated Pico while the tonebridge
app runs (MicroPython's USB-CDC driver turns 0x03 into KeyboardInterrupt), and the app comes
back after a soft reset (Ctrl-D at the REPL runs main.py again), as on a Pico."""

from __future__ import annotations

import subprocess
import sys

import pytest
import serial
from emuhelpers import wait_for
from tonebridge.link import BoardClient

pytestmark = pytest.mark.emu
HWID = "e6616408437a5b2c"


def test_ctrl_c_from_mpremote_reaches_the_repl_and_the_app_returns(emu_cli, provisioned):
    cli = emu_cli("--flash", str(provisioned()), "--hwid", HWID)
    with BoardClient(cli.path, timeout=10.0) as c:
        boot = c.hello()["boot"]
    # mpremote interrupts main.py with Ctrl-C, enters the raw REPL and runs code
    r = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", cli.path, "exec",
         "import sys, machine; print(sys.implementation._machine); "
         "print(machine.unique_id().hex())"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-2] == "Raspberry Pi Pico with RP2040" and lines[-1] == HWID, r.stdout
    with serial.Serial(cli.path, timeout=0.1) as port:
        # the app is stopped: the board is at the friendly REPL, and answers it
        port.write(b"\r\nprint(6 * 7)\r\n")
        wait_for(port.read_all, rb"\r\n42\r\n>>> ", 10)
        # soft reset: main.py runs again, a new boot of the app announces itself
        port.write(b"\x04")
        m = wait_for(port.read_all, rb"BOOT boot=([0-9a-f]{8})", 20)
        assert m.group(1).decode() != boot
    with BoardClient(cli.path, timeout=10.0) as c:
        info = c.hello()
        assert info["boot"] == m.group(1).decode()
        assert c.send("2", tone_ms=40, gap_ms=40).played == 1
