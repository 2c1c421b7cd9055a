"""The firmware's serial links (transport.py) on simulated boards: the USB-CDC console and a
UART, how promptly input wakes the main loop, reads larger than one pass takes, and a UART
port whose select.poll cannot register it."""

import pytest
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge_fw import codec

UART = {"uart": {"id": 0, "tx": 0, "rx": 1, "baudrate": 115200}}


@pytest.fixture
def board():
    made = []

    def make(config=None):
        sb = SimBoard("pico", VirtualClock(), config=config)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.close()


def _replies(sb, data):
    return [f for f in codec.Decoder(accept="<!").feed(data) if f[0] == "<"]


def _latency_us(sb, rid="1"):
    """Write a PING mid-way between two idle passes; µs until its reply was written."""
    got = {}

    def heard():
        if b"<" + rid.encode() + b" OK" in sb.link.transcript_to_host:
            got.setdefault("t", sb.now_us())

    sb.link.host_listeners.append(heard)
    sb.run_for(7)  # between two 20 ms idle passes
    t0 = sb.now_us()
    sb.write(codec.encode(">", rid, "PING"))
    sb.run_for(30)
    sb.link.host_listeners.remove(heard)
    return got["t"] - t0


@pytest.mark.parametrize("config", [None, UART], ids=["usb-cdc", "uart"])
def test_input_wakes_the_loop_at_once(board, config):
    sb = board(config)
    sb.run_for(50)
    sb.read()
    assert _latency_us(sb) == 0  # select.poll wakes link.wait() as the bytes arrive


def test_uart_without_poll_falls_back_to_short_sleeps(board):
    # a port whose select.poll cannot register a UART: the link sleeps 5 ms at a time
    sb = board(UART)
    sel = sb.modules["select"]
    orig = sel.poll

    class NoUartPoll:
        def __init__(self):
            self._p = orig()

        def register(self, obj, mask=1):
            if obj is not sb.modules["sys"].stdin:
                raise TypeError("can't poll a UART")
            self._p.register(obj, mask)

        def poll(self, timeout=-1):
            return self._p.poll(timeout)

    sel.poll = NoUartPoll
    sb.run_for(50)
    sb.read()
    assert sb.app.link._poll is None
    lat = _latency_us(sb)
    assert 0 < lat <= 5_000, lat
    n = sb.app.passes
    sb.run_for(100)
    assert sb.app.passes - n == 20  # idle, a pass every 5 ms: wait() naps at most 5 ms


@pytest.mark.parametrize("config", [None, UART], ids=["usb-cdc", "uart"])
def test_a_burst_larger_than_one_read(board, config):
    # 40 requests (~1.2 kB) in one write: more than MAX_READ (512 bytes) a pass; all answered
    sb = board(config)
    sb.run_for(50)
    sb.read()
    sb.write(b"".join(codec.encode(">", f"p{i}", "PING") for i in range(40)))
    sb.run_for(100)
    got = _replies(sb, sb.read())
    assert sorted(f[1] for f in got) == sorted(f"p{i}" for i in range(40))


def test_one_pass_reads_at_most_max_read_bytes(board):
    sb = board()
    sb.run_for(50)
    sb.read()
    tr = sb.load("tonebridge_fw.transport")
    assert tr.MAX_READ == 512
    link = sb.app.link
    sizes = []
    orig = type(link).read

    def read(self):
        data = orig(self)
        sizes.append(len(data))
        return data

    type(link).read = read
    sb.write(b"x" * 1300 + b"\n")
    sb.run_for(10)
    assert [s for s in sizes if s] == [512, 512, 277]


@pytest.mark.parametrize("poll", [True, False], ids=["poll", "no-poll"])
def test_uart_board_plays_with_busy_pacing(board, poll):
    # a UART profile without an "id" (UART 0) plays a sequence, with or without select.poll
    # on the UART; while a steady tone plays the loop passes once per DMA chunk (16.8 ms) when
    # it can poll the UART, every 5 ms when it cannot (UartLink.wait: input must not wait)
    sb = board({"uart": {"tx": 0, "rx": 1}})
    if not poll:
        sel = sb.modules["select"]
        orig = sel.poll

        class NoUartPoll:
            def __init__(self):
                self._p = orig()

            def register(self, obj, mask=1):
                raise TypeError("can't poll a UART")

            def poll(self, timeout=-1):
                return self._p.poll(timeout)

        sel.poll = NoUartPoll
    sb.run_for(50)
    sb.read()
    sb.write(codec.encode(">", "1", "SEND tone=200 gap=100 1"))
    sb.run_for(60)
    n = sb.app.passes
    sb.run_for(100)
    lo, hi = (5, 8) if poll else (18, 26)
    assert lo <= sb.app.passes - n <= hi, sb.app.passes - n
    sb.run_for(300)
    assert b"!1 DONE 1" in sb.read()
