"""Row 8: the bridge itself. `tonebridge serve` runs as its own process (the real command,
loopback only), so what is measured is what a user runs, and the load generator does not
share its interpreter.

- Request latency: `GET /v1/users/{u}/calls/{id}` (a Catapult call, no board involved) on
  a fresh connection per request, on one kept-alive connection (Python's http.client), and
  on a raw kept-alive socket (one `sendall` per request: the client cannot be the one
  splitting writes). p50/p99 of the whole request, wall clock.
- Idle lines: serve with N lines whose simulated boards are connected and idle (the boards
  run in this process behind ptys, so their CPU is not counted); CPU seconds of the serve
  process (utime + stime from /proc) over a quiet interval. This is the link reader
  sleeping in select() and a keep-alive PING every 0.5 s per line.
"""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

USER, SECRET = "bench", "bench-secret"
AUTH = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()


def _pcts(seconds):
    a = np.asarray(seconds) * 1000.0
    return {
        "n": int(a.size),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


class Serve:
    """`python -m tonebridge.cli serve` with the given line URLs (call ids c-b-0, c-b-1, ...)."""

    def __init__(self, urls):
        self.dir = tempfile.TemporaryDirectory(prefix="tonebridge-bench-")
        d = Path(self.dir.name)
        conf = d / "serve.toml"
        lines = "".join(
            f'[[lines]]\nurl = "{u}"\ncall_id = "c-b-{i}"\n' for i, u in enumerate(urls)
        )
        conf.write_text(
            f'listen = "127.0.0.1:0"\nauth = ["{USER}:{SECRET}"]\n'
            f"[limits]\nrate = 1000000.0\nburst = 1000000\n{lines}"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tonebridge.cli", "serve", "--config", str(conf),
             "--state", str(d / "state.db")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        self.base = None
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            if "listening on " in line:
                self.base = line.split("listening on ", 1)[1].strip()
                break
            if time.monotonic() > deadline:
                break
        # keep reading its output (uvicorn's access log): a full pipe would stop serve
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        if self.base is None:
            self.stop()
            raise RuntimeError("tonebridge serve did not start")
        host, port = self.base.split("//", 1)[1].rsplit(":", 1)
        self.host, self.port = host, int(port)

    def path(self, i=0):
        return f"/v1/users/{USER}/calls/c-b-{i}"

    def get(self, path):
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            c.request("GET", path, headers={"Authorization": AUTH})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.dir.cleanup()


def _raw_get(sock, request: bytes) -> None:
    sock.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(body) < n:
        body += sock.recv(65536)


def request_latency(n: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        srv = Serve([os.path.join(d, "no-board")])  # a call's GET needs no board
        try:
            path = srv.path()
            for _ in range(20):  # warm-up: first use of every code path
                assert srv.get(path)[0] == 200
            fresh = []
            for _ in range(n):
                t = time.perf_counter()
                status, _ = srv.get(path)
                fresh.append(time.perf_counter() - t)
                assert status == 200
            kept = []
            c = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
            for _ in range(n):
                t = time.perf_counter()
                c.request("GET", path, headers={"Authorization": AUTH})
                r = c.getresponse()
                r.read()
                kept.append(time.perf_counter() - t)
                assert r.status == 200
            c.close()
            raw = []
            s = socket.create_connection((srv.host, srv.port))
            req = f"GET {path} HTTP/1.1\r\nHost: b\r\nAuthorization: {AUTH}\r\n\r\n".encode()
            for _ in range(n):
                t = time.perf_counter()
                _raw_get(s, req)
                raw.append(time.perf_counter() - t)
            s.close()
        finally:
            srv.stop()
    return {"fresh": _pcts(fresh), "keepalive": _pcts(kept), "keepalive_raw": _pcts(raw)}


def idle_cpu(lines: int, seconds: float, log=print) -> dict:
    from tonebridge.link.pty import PtyBridge

    boards = [PtyBridge("sim://pico") for _ in range(lines)]
    paths = [b.start() for b in boards]
    srv = None
    try:
        srv = Serve(paths)
        deadline = time.monotonic() + 60
        while True:  # every line open, its board answering
            status, body = srv.get("/api/v2/me/devices")
            if status == 200 and body.count(b'"deviceState":"Active"') == lines:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"lines did not come up: {body[:300]!r}")
            time.sleep(0.2)
        time.sleep(2.0)
        c0, t0 = srv.cpu_s(), time.monotonic()
        time.sleep(seconds)
        c1, t1 = srv.cpu_s(), time.monotonic()
    finally:
        if srv is not None:
            srv.stop()
        for b in boards:
            b.stop()
    cpu = c1 - c0
    return {"lines": lines, "seconds": t1 - t0, "cpu_s": cpu, "cores": cpu / (t1 - t0)}


def run(quick: bool, log=print) -> dict:
    n = 60 if quick else 400
    log(f"  bridge: {n} GETs each fresh, kept-alive (http.client) and raw kept-alive ...")
    out = {"latency": request_latency(n)}
    lines, secs = (4, 3.0) if quick else (8, 10.0)
    log(f"  bridge: serve CPU with {lines} idle lines over {secs:g} s ...")
    out["idle"] = idle_cpu(lines, secs, log=log)
    return out
