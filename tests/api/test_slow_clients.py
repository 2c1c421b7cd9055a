"""Hostile and slow clients against real uvicorn on loopback: 50 clients trickling headers
or bodies do not stop a normal client from being served within 100 ms, and are cut off
(408) when their time is up; idle kept-alive connections are closed; beyond the connection
cap new requests get 503 at once; every connection has TCP_NODELAY, so a kept-alive request
is as fast as a fresh one (no 40 ms Nagle / delayed-ACK stall)."""

from __future__ import annotations

import base64
import socket
import statistics
import threading
import time

import pytest

USER, PW = "slow", "slow-pw"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PW}".encode()).decode()


def serve(start_server, tmp_path, **limits):
    def tweak(cfg):
        cfg.lines[0].call_id = "c-s"
        cfg.rate, cfg.burst = 1e6, 10**6
        for k, v in limits.items():
            setattr(cfg, k, v)

    return start_server(ports=[str(tmp_path / "absent")], auth=[f"{USER}:{PW}"], tweak=tweak)


def connect(srv):
    s = socket.create_connection((srv.cfg.listen_host, srv.cfg.listen_port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def request(sock, path="/v1/users/slow/calls"):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {AUTH}\r\n\r\n".encode())
    return read_response(sock)


def read_response(sock) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def read_until_closed(sock, timeout) -> bytes:
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk
    except TimeoutError:
        return out + b"<still open>"
    except OSError:
        return out


@pytest.mark.slow
def test_fifty_slow_clients_do_not_hold_up_a_normal_one(start_server, tmp_path):
    srv = serve(start_server, tmp_path, header_timeout_s=2.0, body_timeout_s=2.0)
    trickle_head = [connect(srv) for _ in range(25)]
    trickle_body = [connect(srv) for _ in range(25)]
    for s in trickle_head:
        s.sendall(b"GET /api/v2/me HTTP/1.1\r\nHost: t\r\n")
    for s in trickle_body:
        s.sendall(
            f"POST /v1/users/{USER}/calls HTTP/1.1\r\nHost: t\r\nAuthorization: {AUTH}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
        )
    stop = threading.Event()

    def trickle():  # one byte per connection every 0.2 s, forever
        while not stop.wait(0.2):
            for s in trickle_head:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
            for s in trickle_body:
                try:
                    s.sendall(b" ")
                except OSError:
                    pass

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    t0 = time.monotonic()
    try:
        times = []
        for _ in range(7):
            s = connect(srv)
            start = time.monotonic()
            reply = request(s)
            times.append(time.monotonic() - start)
            s.close()
            assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
            time.sleep(0.05)
        assert statistics.median(times) < 0.100, times
        # when their time is up (2 s) the slow ones are answered 408 and closed
        for s in trickle_head:
            got = read_until_closed(s, 2.0 + 3.0 - (time.monotonic() - t0))
            assert got.startswith(b"HTTP/1.1 408"), got[:120]
        for s in trickle_body:
            got = read_until_closed(s, max(0.5, 2.0 + 3.0 - (time.monotonic() - t0)))
            assert got.startswith(b"HTTP/1.1 408"), got[:120]
            assert b'"code":"request-timeout"' in got
    finally:
        stop.set()
        t.join(2)
        for s in trickle_head + trickle_body:
            s.close()


@pytest.mark.slow
def test_idle_keepalive_closed_and_connection_cap(start_server, tmp_path):
    srv = serve(start_server, tmp_path, keepalive_s=0.5, max_connections=8)
    s = connect(srv)
    assert request(s).startswith(b"HTTP/1.1 200")
    assert read_until_closed(s, 5.0) == b""  # closed by the server after 0.5 s idle
    s.close()
    held = [connect(srv) for _ in range(8)]
    for h in held:
        h.sendall(b"GET /v1/users/slow/calls HTTP/1.1\r\nHost: t\r\n")  # headers never end
    try:
        time.sleep(0.2)
        extra = connect(srv)
        start = time.monotonic()
        reply = request(extra)
        assert reply.startswith(b"HTTP/1.1 503") and time.monotonic() - start < 1.0
        extra.close()
    finally:
        for h in held:
            h.close()


def test_nodelay_on_every_connection_and_fast_keepalive(start_server, tmp_path):
    srv = serve(start_server, tmp_path)
    s = connect(srv)
    assert request(s).startswith(b"HTTP/1.1 200")
    conns = list(srv.server.server_state.connections)
    assert conns
    for proto in conns:
        sock = proto.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    times = []
    for _ in range(20):  # kept alive: Nagle + delayed ACK would make each ~40 ms
        start = time.monotonic()
        assert request(s).startswith(b"HTTP/1.1 200")
        times.append(time.monotonic() - start)
    s.close()
    assert statistics.median(times) < 0.020, times
