"""Fleet pieces without a broker: broker URLs, topic names, payloads, command-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tonebridge.fleet import topics


def test_broker_urls():
    b = topics.parse_broker("mqtt://hub")
    assert (b.host, b.port, b.tls, b.user) == ("hub", 1883, False, None)
    b = topics.parse_broker("mqtts://rack-a:pw%40x@hub.example:9883", ca="/ca.pem")
    assert (b.host, b.port, b.tls, b.user, b.password, b.ca) == (
        "hub.example",
        9883,
        True,
        "rack-a",
        "pw@x",
        "/ca.pem",
    )
    assert str(b) == "mqtts://rack-a@hub.example:9883"  # never the password
    assert topics.parse_broker("hub:1884").port == 1884
    for bad in ("http://hub", "mqtt://", "mqtt://hub:port"):
        with pytest.raises(topics.BrokerUrlError):
            topics.parse_broker(bad)


def test_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("TONEBRIDGE_BROKER_PASSWORD", "s3cret")
    assert topics.parse_broker("mqtt://hub", user="rack-a").password == "s3cret"
    assert topics.parse_broker("mqtt://hub").password is None  # no user, no password


def test_topics_and_payloads():
    assert topics.line_cmd("rack-a-1") == "tonebridge/v1/line/rack-a-1/cmd"
    assert topics.parts("tonebridge/v1/line/rack-a-1/state") == ["line", "rack-a-1", "state"]
    assert topics.parts("tonebridge/v2/line/x/state") == []
    assert topics.decode(topics.encode({"a": 1})) == {"v": 1, "a": 1}
    assert topics.decode(b'{"v": 2, "a": 1}') is None  # another version
    assert topics.decode(b"[1]") is None and topics.decode(b"\xff") is None
    assert topics.safe_name("rack-a_1.x") and not topics.safe_name("a/b")
    assert not topics.safe_name("+") and not topics.safe_name("#") and not topics.safe_name("")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "tonebridge.cli", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.slow
def test_cli_errors_are_clear():
    r = run_cli("agent", "--sim", "pico")
    assert r.returncode == 2 and "--broker mqtt://HOST[:PORT] is required" in r.stderr
    r = run_cli("agent", "--broker", "http://x", "--sim", "pico")
    assert r.returncode == 2 and "mqtt://" in r.stderr
    r = run_cli("agent", "--broker", "mqtt://x", "--name", "a/b", "--sim", "pico")
    assert r.returncode == 2 and "--name" in r.stderr
    r = run_cli("serve", "--broker", "mqtt://x", "--auth", "u:p", "--sim", "pico")
    assert r.returncode == 2 and "no lines of its own" in r.stderr
