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
