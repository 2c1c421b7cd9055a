"""`tonebridge deploy` stages exactly the firmware a board needs (checked without a board)."""

import json
from pathlib import Path

from tonebridge import deploy
from tonebridge.cli import main

FW = Path(deploy.FIRMWARE_DIR) / "tonebridge_fw"


def test_stage_compiles_every_firmware_file_and_writes_the_config(tmp_path):
    staged = deploy.stage("pico", {"watchdog_ms": 5000}, tmp_path, mpy=True)
    expected = {p.relative_to(FW).with_suffix(".mpy") for p in FW.rglob("*.py")}
    got = {p.relative_to(staged / "lib" / "tonebridge_fw") for p in staged.rglob("*.mpy")}
    assert got == expected
    for mpy in staged.rglob("*.mpy"):
        assert mpy.read_bytes()[:1] == b"M"  # mpy file magic
    assert json.loads((staged / "tonebridge.json").read_text()) == {
        "board": "pico",
        "watchdog_ms": 5000,
    }
    assert (staged / "main.py").read_text() == (FW.parent / "main.py").read_text()


def test_unknown_board_is_a_clear_error(capsys):
    assert main(["deploy", "--port", "/dev/null", "--board", "pico3", "--dry-run"]) == 2
    assert "unknown board 'pico3'" in capsys.readouterr().out


def test_dry_run_shows_the_mpremote_command(capsys):
    assert main(["deploy", "--port", "/dev/ttyACM0", "--board", "esp32-i2s", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lib/tonebridge_fw/synth.mpy" in out
    assert "mpremote connect /dev/ttyACM0" in out and "reset" in out
