"""The simulated Wi-Fi board's network stack (tonebridge.sim.netstack): what the firmware's
`network` and `socket` modules do before and after joining, and that nothing but loopback is
reachable from a simulated board."""

import socket as host_socket
import threading
import time

import pytest
from tonebridge.sim import SimBoard, VirtualClock


@pytest.fixture
def picow():
    b = SimBoard("picow", VirtualClock(), run_main=False, access_points={"lab": "pw"})
    yield b
    b.close()


def join(board, key="pw"):
    net = board.modules["network"]
    wlan = net.WLAN(net.STA_IF)
    wlan.active(True)
    wlan.connect("lab", key)
    board.run_for(400)  # the join takes 300 ms of board time
    return wlan


def test_only_wifi_boards_have_a_network():
    b = SimBoard("pico", VirtualClock(), run_main=False)
    try:
        assert "network" not in b.modules and "socket" not in b.modules
    finally:
        b.close()


def test_join_reports_status_like_micropython(picow):
    net = picow.modules["network"]
    wlan = net.WLAN(net.STA_IF)
    wlan.active(True)
    wlan.connect("lab", "pw")
    assert not wlan.isconnected() and wlan.status() == net.STAT_CONNECTING
    picow.run_for(400)
    assert wlan.isconnected() and wlan.ifconfig()[0] == "192.168.4.23"
    assert wlan.config("ssid") == "lab"
    wlan.connect("lab", "nope")
    assert wlan.status() == net.STAT_WRONG_PASSWORD and not wlan.isconnected()
    wlan.connect("elsewhere", "pw")
    assert wlan.status() == net.STAT_NO_AP_FOUND


def test_no_socket_reaches_anything_before_the_join_or_off_loopback(picow):
    sock = picow.modules["socket"]
    s = sock.socket()
    with pytest.raises(OSError) as e:
        s.connect(("127.0.0.1", 1))
    assert e.value.errno == 113  # EHOSTUNREACH: no Wi-Fi yet
    join(picow)
    with pytest.raises(OSError) as e:
        s.connect(("10.0.0.1", 1883))
    assert e.value.errno == 113
    with pytest.raises(OSError):
        sock.getaddrinfo("broker.example", 1883)
    assert sock.getaddrinfo("localhost", 1883)[0][-1] == ("127.0.0.1", 1883)


def test_a_socket_streams_to_a_loopback_server(picow):
    srv = host_socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def echo():
        conn, _ = srv.accept()
        with conn:
            data = conn.recv(100)
            conn.sendall(data.upper())

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    join(picow)
    sock = picow.modules["socket"]
    s = sock.socket()
    s.connect(sock.getaddrinfo("127.0.0.1", port)[0][-1])
    s.setblocking(False)
    assert s.read(5) is None  # nothing yet: MicroPython's non-blocking read gives None
    assert s.write("hello", 5) == 5  # a str is written as its bytes, as MicroPython's streams do
    t.join(5)
    sel = picow.modules["select"]
    p = sel.poll()
    p.register(s, sel.POLLIN)
    deadline = time.monotonic() + 5  # (the harness is no firmware thread: poll without waiting)
    while not p.poll(0):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    s.setblocking(True)
    assert s.read(5) == b"HELLO"
    s.close()
    srv.close()
