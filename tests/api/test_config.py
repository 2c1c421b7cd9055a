"""serve configuration: TOML + command line, with clear errors."""

import pytest
from tonebridge.api.config import ConfigError, build_config


def test_cli_lines_users_and_defaults():
    cfg = build_config(
        sims=["pico", "sim://esp32-i2s"], ports=["/dev/ttyACM0"], auth=["a:x", "b:y"]
    )
    assert [line.url for line in cfg.lines] == ["/dev/ttyACM0", "sim://pico", "sim://esp32-i2s"]
    assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", 8080)  # loopback by default
    assert all(line.owner == "a" for line in cfg.lines)
    assert len({line.call_id for line in cfg.lines}) == 3
    assert cfg.users == {"a": "x", "b": "y"}


def test_toml_file(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text(
        """
listen = "127.0.0.1:9999"
record = "out"
auth = ["agent:pw", "other:pw2"]
[limits]
rate = 2.5
burst = 4
[[lines]]
url = "sim://pico"
call_id = "c-fixed-1"
device_id = "desk-1"
owner = "other"
number = "15000"
tone_ms = 80
"""
    )
    cfg = build_config(config_file=str(path), listen="127.0.0.1:7000")
    assert cfg.listen_port == 7000  # command line wins
    assert cfg.record_dir == "out"
    assert cfg.rate == 2.5 and cfg.burst == 4
    (line,) = cfg.lines
    assert (line.call_id, line.device_id, line.owner, line.tone_ms) == (
        "c-fixed-1",
        "desk-1",
        "other",
        80,
    )


def test_demo_defaults():
    cfg = build_config(demo=True)
    assert cfg.users and cfg.lines[0].url == "sim://pico"
    assert cfg.record_dir == "recordings"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sims=["pico"]), "no credentials"),
        (dict(auth=["a:x"]), "no lines"),
        (dict(auth=["a"], sims=["pico"]), "USER:SECRET"),
        (dict(auth=["a:"], sims=["pico"]), "USER:SECRET"),
        (dict(auth=["a:x"], sims=["pico"], listen="nope"), "HOST:PORT"),
        (dict(auth=["a:x"], sims=["pico"], listen="127.0.0.1:99999"), "out of range"),
    ],
)
def test_bad_cli(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_config(**kwargs)


@pytest.mark.parametrize(
    "text, message",
    [
        ('bogus = 1\nauth=["a:x"]', "unknown config key"),
        ('auth=["a:x"]\n[[lines]]\nurl="sim://pico"\ntone_ms = 10', "tone_ms"),
        ('auth=["a:x"]\n[[lines]]\nurl="sim://pico"\nowner = "zed"', "no credentials"),
        ('auth=["a:x"]\n[[lines]]\nurl="sim://pico"\ncall_id = "../x"', "call_id"),
        (
            'auth=["a:x"]\n[[lines]]\nurl="sim://pico"\ncall_id="c"\n[[lines]]\nurl="sim://pico"\ncall_id="c"',
            "used twice",
        ),
        ('auth=["a:x"]\n[[lines]]\nurl="sim://pico"\ncolour = 1', "unknown line setting"),
        ("listen = ", "config"),
    ],
)
def test_bad_toml(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        build_config(config_file=str(path))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        build_config(config_file=str(tmp_path / "absent.toml"))


def test_line_hardware_id_search_state_and_limits(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text(
        """
auth = ["a:x"]
state = "/tmp/tb.db"
[limits]
csrf = true
accept_timeout_ms = 1500
header_timeout_s = 2.5
[[lines]]
url = "/dev/ttyACM0"
hwid = "E6:61:41:03:E7:3F:4A:2B"
search = ["/dev/serial/by-id/*"]
"""
    )
    cfg = build_config(config_file=str(path))
    (line,) = cfg.lines
    assert line.hwid == "e6614103e73f4a2b" and line.search == ["/dev/serial/by-id/*"]
    assert cfg.state_file == "/tmp/tb.db" and cfg.csrf is True
    assert cfg.accept_timeout_ms == 1500 and cfg.header_timeout_s == 2.5
    assert build_config(config_file=str(path), state="/x.db").state_file == "/x.db"
    # defaults: CSRF off (as in GWS), a state file under $XDG_STATE_HOME
    cfg = build_config(sims=["pico"], auth=["a:x"])
    assert cfg.csrf is False and cfg.accept_timeout_ms == 3000
    assert cfg.state_file.endswith("tonebridge/state.db")


@pytest.mark.parametrize(
    "text, message",
    [
        ('[[lines]]\nurl="/dev/x"\nhwid = "not hex!"', "hwid"),
        ('[[lines]]\nurl="/dev/x"\nsearch = "/dev/*"', "search"),
        ("[limits]\naccept_timeout_ms = 5", "accept_timeout_ms"),
        ('[limits]\ncsrf = "yes"', "csrf"),
        ("[limits]\nmax_connections = 0", "max_connections"),
        ("[limits]\ncolour = 1", "unknown"),
    ],
)
def test_bad_identity_and_limits(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(
        'auth=["a:x"]\n' + ('[[lines]]\nurl="sim://pico"\n' if "lines" not in text else "") + text
    )
    with pytest.raises(ConfigError, match=message):
        build_config(config_file=str(path))


def test_timing_profiles_built_in_custom_and_precedence(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text(
        """
auth = ["a:x"]
[profiles.intercom]
tone_ms = 300
pause_ms = 2000
[[lines]]
url = "sim://pico"
profile = "slow-ivr"
[[lines]]
url = "sim://pico2"
profile = "intercom"
gap_ms = 120
[[lines]]
url = "sim://esp32-i2s"
profile = "minimum"
[[lines]]
url = "sim://pico-mt8880"
"""
    )
    cfg = build_config(config_file=str(path))
    timing = [(ln.tone_ms, ln.gap_ms, ln.pause_ms) for ln in cfg.lines]
    assert timing == [
        (250, 250, 500),  # slow-ivr
        (300, 120, 2000),  # intercom: its own tone and pause, the line's gap, nothing else
        (40, 40, 500),  # minimum
        (None, None, None),  # no profile: the board's own (CONFIG, 100/100 ms)
    ]
    assert set(cfg.profiles) == {"default", "minimum", "slow-ivr", "intercom"}
    # --profile: every line that names none (command-line lines too)
    cfg = build_config(config_file=str(path), sims=["pico"], profile="default")
    assert [(ln.tone_ms, ln.gap_ms) for ln in cfg.lines] == [
        (250, 250), (300, 120), (40, 40), (100, 100), (100, 100)
    ]  # fmt: skip
    # serve's banner says each line's timing
    from tonebridge.commands.serve import banner

    lines = [ln for ln in banner(cfg).splitlines() if ln.startswith("  line ")]
    assert [ln.split(", timing", 1)[1] for ln in lines] == [
        " slow-ivr 250/250 ms, pause 500 ms",
        " intercom 300/120 ms, pause 2000 ms",
        " minimum 40/40 ms, pause 500 ms",
        " default 100/100 ms, pause 500 ms",
        " default 100/100 ms, pause 500 ms",
    ]
    cfg = build_config(sims=["pico"], auth=["a:x"])
    (line,) = [ln for ln in banner(cfg).splitlines() if ln.startswith("  line ")]
    assert line.endswith(", timing: the board's own"), line
    with pytest.raises(ConfigError, match="unknown timing profile 'nope'.*slow-ivr"):
        build_config(sims=["pico"], auth=["a:x"], profile="nope")


@pytest.mark.parametrize(
    "text, message",
    [
        ("[profiles.default]\ntone_ms = 50", "'default' is built in"),
        ("[profiles.x]\ntone_ms = 39", r"profiles.x.tone_ms must be an integer from 40 to 5000"),
        ("[profiles.x]\npause_ms = 5001", "pause_ms"),
        ('[profiles.x]\ngap_ms = "100"', "gap_ms"),
        ("[profiles.x]\ntwist = 2", "unknown key"),
        ("profiles = 3", r"\[profiles\] must hold tables"),
        ("[profiles]\nx = 3", r"\[profiles.x\] must be a table"),
        ('[[lines]]\nurl="sim://pico"\nprofile = "fast"', "unknown timing profile 'fast'"),
        ('[[lines]]\nurl="sim://pico"\nprofile = 3', "profile must be the name"),
        ('[[lines]]\nurl="sim://pico"\npause_ms = 10', "pause_ms"),
    ],
)
def test_bad_timing_profiles(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(
        'auth=["a:x"]\n' + text + ('\n[[lines]]\nurl="sim://p"' if "lines" not in text else "")
    )
    with pytest.raises(ConfigError, match=message):
        build_config(config_file=str(path))
