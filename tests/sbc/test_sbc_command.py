"""`tonebridge sbc`: the SBC board behind a pty (fake RPi.GPIO injected in-process)."""

import os
import threading
import time

import pytest
from tonebridge.analysis import decode_multimon
from tonebridge.cli import build_parser, main
from tonebridge.commands.sbc import url_for
from tonebridge.link import BoardClient


def test_sbc_command_serves_the_board_on_a_pty(rrig, tmp_path, capsys):
    link = str(tmp_path / "tonebridge-sbc")
    rc = []
    t = threading.Thread(
        target=lambda: rc.append(main(["sbc", "--link", link, "--duration", "1.5"])), daemon=True
    )
    t.start()
    deadline = time.monotonic() + 5
    while not os.path.exists(link) and time.monotonic() < deadline:
        time.sleep(0.02)
    with BoardClient(link, timeout=2.0) as c:
        assert c.hello().get("board") == "rpi-mt8880"
        c.send("9", tone_ms=50, gap_ms=50)
    t.join(timeout=10)
    assert rc == [0]
    assert capsys.readouterr().out.strip() == link
    assert not os.path.exists(link)
    assert decode_multimon(rrig.samples(48000), 48000) == "9"


def test_sbc_command_reports_a_bad_board(rrig, capsys):
    assert main(["sbc", "--board", "pi9", "--duration", "0"]) == 2
    assert "unknown board 'pi9'" in capsys.readouterr().err
    assert main(["sbc", "--set", "nonsense", "--duration", "0"]) == 2


def test_settings_become_url_query():
    assert url_for("rpi-mt8880", []) == "sbc://rpi-mt8880"
    assert (
        url_for("rpi-mt8880", ["mt8880_mode=burst", "d_pins=5,6,13,19"])
        == "sbc://rpi-mt8880?mt8880_mode=burst&d_pins=5,6,13,19"
    )
    args = build_parser().parse_args(["sbc", "--set", "cs_pin=8"])
    assert args.board == "rpi-mt8880" and args.set == ["cs_pin=8"]


@pytest.mark.slow
def test_every_cli_command_knows_sbc_urls(tmp_path):
    # a fresh process: the CLI registers sbc:// (commands/sbc.py imports tonebridge.sbc), so
    # `send --port sbc://...` reaches the SBC board code, which here (no RPi.GPIO) says so
    import importlib.util
    import subprocess
    import sys

    import pytest

    if importlib.util.find_spec("RPi") is not None:
        pytest.skip("RPi.GPIO is installed here: sbc:// would open the real GPIO")
    r = subprocess.run(
        [sys.executable, "-m", "tonebridge.cli", "send", "--port", "sbc://rpi-mt8880", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # unregistered, pyserial would say "invalid URL, protocol 'sbc' not known"
    assert r.returncode != 0 and "RPi.GPIO is not importable" in r.stderr, r.stderr
