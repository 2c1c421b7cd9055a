"""Hook flash from the host (issue 12 item 5): BoardClient.flash / send with '!' over sim:// (a
simulated board paced to the wall clock; the break is measured on its line in board time),
`tonebridge flash`, and the serve config's flash_ms."""

import pytest
from tonebridge.api.config import ConfigError, line_from_dict
from tonebridge.cli import main as cli_main
from tonebridge.link import BoardClient, BoardError


def breaks(hook_log):
    return [
        t1 - t0
        for (t0, off0), (t1, off1) in zip(hook_log, hook_log[1:], strict=False)
        if off0 is False and off1 is True
    ]


def test_client_flash_and_a_dial_string_with_a_flash():
    with BoardClient("sim://pico?flash_ms=120") as c:
        assert c.board_config["flash"] == 120
        with pytest.raises(BoardError) as e:
            c.flash()
        assert e.value.code == "on-hook"
        c.hook(True)
        assert c.flash(90)["flash"] == 90
        marks = []
        r = c.send("1!2", dialect="tonebridge", tone_ms=50, gap_ms=50, on_progress=marks.append)
        assert (r.played, r.total, r.verified) == (3, 3, 2)  # the flash is not a tone
        assert [m["key"] for m in marks if m["event"] == "started"] == ["1", "!", "2"]
        r = c.send("!", dialect="tonebridge", flash_ms=200)
        assert (r.played, r.total, r.verified) == (1, 1, 0)
        log = c.board.line_if.hook_log
    got = breaks(log)
    assert len(got) == 3, log
    for length, want in zip(got, (90, 120, 200), strict=True):
        assert abs(length - want * 1000) <= 1000, got


@pytest.mark.slow
def test_cli_flash(capsys):
    rc = cli_main(["flash", "--port", "sim://pico"])
    err = capsys.readouterr().err
    assert rc == 1 and "line is on-hook" in err and "--hold" in err
    rc = cli_main(["flash", "--port", "sim://pico", "--hold", "--ms", "300"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "flashed the hook for 300 ms" in out.out
    rc = cli_main(["flash", "--port", "sim://pico", "--ms", "2000"])
    assert rc == 2 and "flash_ms 2000 is outside 50-1500 ms" in capsys.readouterr().err
    rc = cli_main(["flash", "--port", "/dev/does-not-exist"])
    assert rc == 3


def test_cli_send_with_a_flash_and_catapult_refusing_it(capsys):
    rc = cli_main(["send", "--port", "sim://pico", "--dialect", "tonebridge", "1!p2"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    # a flash is a step (sent), not a tone the board's receiver hears: 2 of 3 heard
    assert "2/3 '!' sent" in out.out and "2/3 '!' heard" not in out.out
    assert "sent: 3/3 digits played, 2 heard on the line" in out.out
    rc = cli_main(["send", "--port", "sim://pico", "1!2"])
    err = capsys.readouterr().err
    assert rc == 2 and "invalid character '!' at position 1" in err


def test_serve_config_flash_ms():
    assert line_from_dict({"url": "sim://pico", "flash_ms": 600}).flash_ms == 600
    assert line_from_dict({"url": "sim://pico"}).flash_ms is None
    with pytest.raises(ConfigError, match="flash_ms 20 is outside 50-1500 ms"):
        line_from_dict({"url": "sim://pico", "flash_ms": 20})
