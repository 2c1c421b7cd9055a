"""The real mpremote tool talks to a simulated board through a pseudo-terminal, as it would to
a Pico on /dev/ttyACM0: Ctrl-C stops main.py, raw REPL, soft reset, exec, filesystem."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MPREMOTE = shutil.which("mpremote") or str(Path(sys.executable).with_name("mpremote"))
pytestmark = pytest.mark.skipif(
    not os.path.exists(MPREMOTE) and os.environ.get("CI") != "true", reason="mpremote not installed"
)


@pytest.fixture
def pty_board():
    from tonebridge.link.pty import PtyBridge

    b = PtyBridge("sim://pico")
    path = b.start()
    yield path, b
    b.stop()


def _mpremote(path, *args):
    r = subprocess.run(
        [MPREMOTE, "connect", path, *args], capture_output=True, timeout=60, check=False
    )
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def test_mpremote_exec_and_fs(pty_board):
    path, bridge = pty_board
    rc, out, err = _mpremote(
        path, "exec", "import sys, machine; print(sys.platform, machine.freq())"
    )
    assert rc == 0, err
    assert out.strip() == "rp2 125000000"
    rc, out, err = _mpremote(path, "ls")
    assert rc == 0, err
    assert "tonebridge.json" in out
    rc, out, err = _mpremote(path, "cat", "tonebridge.json")
    assert rc == 0 and '"board": "pico"' in out
