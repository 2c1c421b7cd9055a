"""Hardware in the loop: a real board on --port (skipped without one).

make hil PORT=/dev/ttyACM0 BOARD=pico
"""

import pytest
from tonebridge.link import BoardClient, DialStringError, SendResult

pytestmark = pytest.mark.hil


@pytest.fixture
def client(request):
    with BoardClient(request.config.getoption("--port"), timeout=1.0) as c:
        yield c


def test_hil_hello(client):
    h = client.hello()
    assert h["proto"] == 1 and len(h["boot"]) == 8
    assert h["keys"] == "123A456B789C*0#D"


def test_hil_send_and_exactly_once(client):
    rid = client.new_id()
    assert client.send("123", tone_ms=60, gap_ms=60, request_id=rid) == SendResult(3, 3)
    before = client.status()["dups"]
    assert client.send("123", tone_ms=60, gap_ms=60, request_id=rid) == SendResult(3, 3)
    assert client.status()["dups"] == before + 1


def test_hil_invalid_string(client):
    before = client.status()["frames"]  # frames the board has received
    with pytest.raises(DialStringError):
        client.send("12x")
    assert client.status()["frames"] == before + 1  # only this STATUS reached the board
