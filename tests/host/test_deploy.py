"""`tonebridge deploy` stages exactly the firmware a board needs (checked without a board)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
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


@pytest.mark.slow
def test_a_wifi_profile_also_gets_umqtt_simple_with_mip(capsys):
    wifi = ["--set", 'wifi={"ssid": "door-lan", "password": "pw"}',
            "--set", 'mqtt={"host": "192.0.2.10"}']  # fmt: skip
    assert main(["deploy", "--port", "/dev/ttyACM0", "--board", "picow", *wifi, "--dry-run"]) == 0
    assert "mip install umqtt.simple + reset" in capsys.readouterr().out
    assert main(["deploy", "--port", "/dev/ttyACM0", "--board", "picow", "--dry-run"]) == 0
    assert "mip" not in capsys.readouterr().out  # a USB board needs no MQTT client
    bad = ["--set", 'mqtt={"port": 1883}']
    assert main(["deploy", "--port", "/dev/ttyACM0", "--board", "picow", *bad, "--dry-run"]) == 2
    assert "mqtt.host must be a non-empty string" in capsys.readouterr().out


@pytest.mark.slow
def test_deploy_with_real_mpremote_onto_a_simulated_board(capsys):
    """The whole path a user runs: mpremote over a serial port (a pty to a simulated Pico
    whose REPL behaves as MicroPython's), onto a board that has no /lib/tonebridge_fw yet."""
    from tonebridge.link.pty import PtyBridge

    bridge = PtyBridge("sim://pico")
    port = bridge.start()
    try:
        assert main(["deploy", "--port", port, "--board", "pico", "--set", "watchdog_ms=5000"]) == 0
        capsys.readouterr()
        proc = subprocess.run(
            [sys.executable, "-m", "mpremote", "connect", port,
             "ls", ":/lib/tonebridge_fw", "+", "cat", ":/tonebridge.json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        for name in ("synth.mpy", "engine.mpy", "codec.mpy", "backends/"):
            assert name in proc.stdout, proc.stdout
        assert '{"board": "pico", "watchdog_ms": 5000}' in proc.stdout
        # deploying again over an existing install replaces it
        assert main(["deploy", "--port", port, "--board", "pico", "--source"]) == 0
        proc = subprocess.run(
            [sys.executable, "-m", "mpremote", "connect", port, "ls", ":/lib/tonebridge_fw"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "synth.py" in proc.stdout and "synth.mpy" not in proc.stdout, proc.stdout
    finally:
        bridge.stop()


def test_a_linux_profile_is_not_deployed_with_mpremote(capsys):
    assert main(["deploy", "--port", "/dev/null", "--board", "rpi-mt8880", "--dry-run"]) == 2
    assert "not a MicroPython board" in capsys.readouterr().out
