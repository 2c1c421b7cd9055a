"""Row 5: API request received -> first tone sample on the line.

A simulated pico runs in real time behind a pseudo-terminal (``PtyBridge``: the host reaches
it through pyserial's own serial-port code, as it would a USB-CDC board); ``tonebridge serve``
(the real app, in-process on uvicorn) has it as its one line. Each Catapult ``POST .../dtmf``
``{"dtmfOut": "5"}`` is timed in two parts that add up to request -> first tone sample:

- host part, wall clock (``time.monotonic()``): from the request reaching the app (uvicorn
  has parsed it) to the SEND frame's bytes arriving at the board's serial link (through the
  line worker, BoardClient, pyserial, the pty and its pump);
- board part, board time: from the firmware's first read of those bytes to the first tone
  sample on the recorded line (first sample above 10 % of the tone's peak).

The board part is taken in board time because the ``sim://`` board keeps its clock at the
wall clock only while its firmware thread gets the CPU (it falls behind under load; that lag
is sampled and reported): mapping board time to wall time directly would carry that error.
The board part still includes the firmware's main-loop poll wait: the firmware sleeps in
``poll()`` until the bytes appear.

With ``--port`` a real board is measured the same way, except that a real board has no
recorder: its figure is request -> the board's "digit started" report arriving at the host
(which includes the report's trip back over the link), also given for the simulated board.
"""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np

from .server import SECRET, USER, BenchServer

RATE = 48_000


def _pcts(values):
    if not values:
        return None
    a = np.asarray(values) * 1000.0
    return {
        "n": len(a),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "min_ms": float(a.min()),
    }


def _wait_ready(client, srv, i=0, timeout=20.0):
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        r = client.get(srv.call_path(i))
        if r.status_code == 200 and r.json().get("state") == "active":
            return
        time.sleep(0.05)
    raise RuntimeError("the bench line never became active")


def _requests(client, srv, n, gap_s, log):
    fails = 0
    path = srv.dtmf_path(0)
    for _ in range(n):
        r = client.post(path, json={"dtmfOut": "5"})
        if r.status_code != 200:
            fails += 1
            log(f"    request failed: {r.status_code} {r.text[:200]}")
        time.sleep(gap_s)
    return fails


def _first_after(seq, t):
    for v in seq:
        if v[0] >= t:
            return v
    return None


def measure_sim(n: int, board: str = "pico", log=print) -> dict:
    from tonebridge.link.pty import PtyBridge

    bridge = PtyBridge(f"sim://{board}")
    path = bridge.start()
    port = bridge.port
    link = port.board.link
    lag, host_writes, board_reads = [], [], []
    stop = threading.Event()

    wall_of = port.wall_of

    def sample_lag():
        while not stop.is_set():
            lag.append(time.monotonic() - wall_of(port.board.now_us()))
            stop.wait(0.001)

    # measuring taps on the simulated serial link (they change nothing it does)
    link.board_listeners.append(lambda: host_writes.append((time.monotonic(),)))
    raw_read = link.board_read

    def board_read(n=-1):
        data = raw_read(n)
        if data:
            board_reads.append((time.monotonic(), port.board.now_us()))
        return data

    link.board_read = board_read
    sampler = threading.Thread(target=sample_lag, daemon=True)
    try:
        with BenchServer([path]) as srv:
            with httpx.Client(base_url=srv.base, auth=(USER, SECRET), timeout=30) as client:
                _wait_ready(client, srv)
                # warm-up request (first use of every code path), not counted
                client.post(srv.dtmf_path(0), json={"dtmfOut": "5"})
                time.sleep(0.3)
                sampler.start()
                arrivals_before = len(srv.arrivals[srv.dtmf_path(0)])
                started_before = len(srv.started[path])
                fails = _requests(client, srv, n, 0.2, log)
                time.sleep(0.3)
                stop.set()
                sampler.join()
            arrivals = srv.arrivals[srv.dtmf_path(0)][arrivals_before:]
            started = srv.started[path][started_before:]
        host_part, board_part, total = [], [], []
        with port.lock:
            rec = port.board.recorder
            for a in arrivals:
                w = _first_after(host_writes, a)
                r = _first_after(board_reads, w[0]) if w else None
                if r is None:
                    continue
                t_us = r[1]
                x = rec.samples(RATE, start_us=t_us, end_us=t_us + 250_000)
                if not len(x):
                    continue
                x = np.abs(x - x[0])
                peak = float(x.max())
                if peak <= 0:
                    continue
                k = int(np.argmax(x > 0.1 * peak))
                host_part.append(w[0] - a)
                board_part.append(k / RATE)
                total.append(w[0] - a + k / RATE)
    finally:
        stop.set()
        link.board_read = raw_read
        bridge.stop()
    to_started = [s - a for a, s in zip(arrivals, started, strict=False)]
    return {
        "requests": n,
        "failed": fails,
        "measured": len(total),
        "api_to_tone": _pcts(total),
        "host_part": _pcts(host_part),
        "board_part": _pcts(board_part),
        "api_to_started_report": _pcts(to_started),
        "sim_lag": _pcts([max(0.0, v) for v in lag]),
        "link": "pty",
    }


def measure_port(port: str, n: int, log=print) -> dict:
    with BenchServer([port]) as srv:
        with httpx.Client(base_url=srv.base, auth=(USER, SECRET), timeout=30) as client:
            _wait_ready(client, srv)
            client.post(srv.dtmf_path(0), json={"dtmfOut": "5"})
            time.sleep(0.3)
            a0 = len(srv.arrivals[srv.dtmf_path(0)])
            s0 = len(srv.started[port])
            fails = _requests(client, srv, n, 0.2, log)
            time.sleep(0.3)
        arrivals = srv.arrivals[srv.dtmf_path(0)][a0:]
        started = srv.started[port][s0:]
    return {
        "requests": n,
        "failed": fails,
        "api_to_started_report": _pcts([s - a for a, s in zip(arrivals, started, strict=False)]),
        "link": port,
    }


def run(quick: bool, port: str | None = None, log=print) -> dict:
    n = 10 if quick else 80
    log(f"  latency: {n} requests to a simulated pico over a pty ...")
    out = {"sim": measure_sim(n, log=log)}
    if port:
        log(f"  latency: {n} requests to the board on {port} ...")
        out["port"] = measure_port(port, n, log=log)
    return out
