"""The hardware-in-the-loop tests stay runnable: run them against a simulated board URL.

With a real board they run as `pytest -m hil --port /dev/ttyACM0`; here the same file runs
with `--port sim://pico` (the real firmware on a simulated Pico, in real time), so a broken
HIL test is noticed without hardware.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_hil_tests_pass_against_a_simulated_board():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(REPO / "tests" / "hil"),
            "--port",
            "sim://pico",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]
