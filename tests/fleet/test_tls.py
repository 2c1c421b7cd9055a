"""TLS (mqtts://): Mosquitto with a certificate from a CA made here (openssl); an agent and a
front end given that CA (--broker-ca) serve a send end to end; an agent without it (the
system's CAs) is refused with a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fleethelpers import (
    Fleet,
    cat_url,
    http,
    need_mosquitto,
    need_tools,
    wait_digits_sent,
    wait_line_ready,
)
from tonebridge.fleet.broker import Mosquitto


def make_certs(d):
    d.mkdir()

    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tonebridge test CA",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
        "-out", "server.csr")  # fmt: skip
    (d / "san.ext").write_text("subjectAltName = IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    return d / "ca.crt", d / "server.crt", d / "server.key"


@pytest.fixture
def tls_fleet(tmp_path):
    need_mosquitto()
    need_tools("openssl")
    certs = make_certs(tmp_path / "certs")
    fleet = Fleet(tmp_path, Mosquitto(tmp_path / "broker", tls=certs).start())
    fleet.ca = certs[0]
    yield fleet
    fleet.close()


@pytest.mark.slow
def test_a_send_over_tls(tls_fleet):
    fleet = tls_fleet
    assert fleet.broker.url.startswith("mqtts://")
    ca = ["--broker-ca", str(fleet.ca)]
    fleet.agent("a1", extra=ca)
    _, fe = fleet.frontend("fe", extra=ca)
    wait_line_ready(fe, "c-a1-1")
    with http() as h:
        assert h.post(cat_url(fe, "c-a1-1") + "/dtmf", json={"dtmfOut": "12"}).status_code == 200
    assert wait_digits_sent(fe, "c-a1-1", 2)["dtmfDigitsSent"] == 2


@pytest.mark.slow
def test_an_untrusted_broker_certificate_is_refused(tls_fleet):
    proc = subprocess.run(
        [sys.executable, "-m", "tonebridge.cli", "agent", "--broker", tls_fleet.broker.url,
         "--name", "a1", "--sim", "pico", "--state", str(tls_fleet.tmp / "x.db")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cannot connect to the broker mqtts://127.0.0.1" in proc.stderr, proc.stderr[-1500:]
    assert "CERTIFICATE_VERIFY_FAILED" in proc.stderr, proc.stderr[-1500:]
