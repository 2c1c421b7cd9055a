"""Row 6: many simulated lines sending at once through the API, at the fastest legal rate.

``tonebridge serve`` (the real app, in-process on uvicorn, loopback only) gets N ``sim://``
boards, each line configured for 40 ms tones / 40 ms gaps. One closed-loop Catapult client
per line (asyncio + httpx, in this process's main thread) posts 4-digit sequences back to
back: the next request goes out as soon as the previous one is answered (200 = the board
accepted it), so every board always has its next sequence queued, for ``duration`` seconds.
Then everything drains, and:

- digits requested (in accepted requests) vs digits played: the host's count (the board's
  own "digit finished" reports, Catapult ``dtmfDigitsSent``) and an independent one: each
  line's recorded signal decoded by multimon-ng must equal the concatenation of that
  line's accepted sequences, in order (nothing lost, nothing duplicated);
- CPU: per thread from /proc (utime+stime), split into the simulated boards (firmware and
  sim drivers), the bridge (HTTP server, line workers, board links) and the load
  generator; "host CPU per request" is the bridge's share only;
- requests per second answered, and how far the simulated boards fell behind the wall
  clock (on a machine too slow to simulate N boards in real time, the boards run slow; the
  digits must still all be right).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from tonebridge.analysis import decode_multimon

from .server import SECRET, USER, BenchServer
from .signal import decode_share

SEQUENCES = ("1234", "5678", "90*#", "ABCD", "4862", "#*07", "DCBA", "3915")
DECODE_RATE = 22050


def _thread_cpu() -> dict:
    """{thread name: cpu seconds} for this process's live threads (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for t in threading.enumerate():
        tid = t.native_id
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, TypeError):
            continue
        out[f"{t.name}#{tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _category(name: str) -> str:
    if name.startswith(("sim://", "sim-")):
        return "sim"
    if name.startswith("MainThread"):
        return "loadgen"
    return "bridge"


def _cpu_by_category(before: dict, after: dict) -> dict:
    cats = {"sim": 0.0, "bridge": 0.0, "loadgen": 0.0}
    for name, v in after.items():
        cats[_category(name)] += v - before.get(name, 0.0)
    return cats


async def _line_client(client, srv, i, t_end, sent, fails, latencies):
    path = srv.dtmf_path(i)
    seqs = itertools.cycle(SEQUENCES[i % len(SEQUENCES) :] + SEQUENCES[: i % len(SEQUENCES)])
    while time.monotonic() < t_end:
        text = next(seqs)
        t0 = time.monotonic()
        try:
            r = await client.post(path, json={"dtmfOut": text})
        except httpx.HTTPError as exc:
            fails.append(f"line {i}: {exc!r}")
            await asyncio.sleep(0.05)
            continue
        if r.status_code == 200:
            sent[i].append(text)
            latencies.append(time.monotonic() - t0)
        else:
            fails.append(f"line {i}: HTTP {r.status_code} {r.text[:120]}")
            await asyncio.sleep(0.05)


async def _drive(srv, n, duration):
    sent = [[] for _ in range(n)]
    fails, latencies = [], []
    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=n + 8)
    async with httpx.AsyncClient(
        base_url=srv.base, auth=(USER, SECRET), timeout=60, limits=limits
    ) as client:
        # all lines ready (call active) before the clock starts
        t = time.monotonic()
        for i in range(n):
            while True:
                r = await client.get(srv.call_path(i))
                if r.status_code == 200 and r.json().get("state") == "active":
                    break
                if time.monotonic() - t > 60:
                    raise RuntimeError(f"line {i} never became active")
                await asyncio.sleep(0.05)
        cpu0 = _thread_cpu()
        w0 = time.monotonic()
        p0 = time.process_time()
        t_end = w0 + duration
        await asyncio.gather(
            *(_line_client(client, srv, i, t_end, sent, fails, latencies) for i in range(n))
        )
        w_sent = time.monotonic() - w0
        # drain: wait until every line reports all its digits played (or give up)
        want = [sum(map(len, s)) for s in sent]
        played = [0] * n
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for i in range(n):
                if played[i] < want[i]:
                    r = await client.get(srv.call_path(i))
                    played[i] = int(r.json().get("dtmfDigitsSent", 0))
            if played == want:
                break
            await asyncio.sleep(0.1)
        wall = time.monotonic() - w0
        cpu1 = _thread_cpu()
        proc_cpu = time.process_time() - p0
    return (
        sent,
        fails,
        latencies,
        want,
        played,
        w_sent,
        wall,
        _cpu_by_category(cpu0, cpu1),
        proc_cpu,
    )


def _proc_cpu(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / tick


def _start_board_procs(n, board, per_proc, record_dir):
    procs, paths = [], []
    for first in range(0, n, per_proc):
        count = min(per_proc, n - first)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tonebridge.bench.boards",
                "--board",
                board,
                "--count",
                str(count),
                "--first",
                str(first),
                "--record-dir",
                str(record_dir),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
    for proc in procs:
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("a board process died while starting")
            line = line.strip()
            if line == "READY":
                break
            paths.append(line)
    return procs, paths


def _stop_board_procs(procs) -> list[float]:
    """Stop the board processes; returns each board's lag behind the wall clock (s)."""
    lags = []
    for proc in procs:
        proc.stdin.close()
    for proc in procs:
        out = proc.stdout.read()  # until the process exits (it writes its recordings first)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            continue
        for line in out.splitlines():
            if line.startswith("LAG "):
                lags.append(float(line[4:]))
    return lags


def measure(n: int, duration: float, board: str = "pico", per_proc: int = 16, log=print) -> dict:
    with tempfile.TemporaryDirectory(prefix="tonebridge-bench-") as tmp:
        procs, paths = _start_board_procs(n, board, per_proc, tmp)
        try:
            # the simulated boards of a saturated machine fall seconds behind the wall clock:
            # this row measures loss and throughput, not the answer bound (3 s by default,
            # which would answer many of these sends 503, nothing sent)
            srv = BenchServer(paths, tone_ms=40, gap_ms=40, accept_timeout_ms=60_000)
            with srv:
                c0 = sum(_proc_cpu(p.pid) for p in procs)
                sent, fails, lat, want, played, w_sent, wall, cpu, proc_cpu = asyncio.run(
                    _drive(srv, n, duration)
                )
                cpu["sim"] = sum(_proc_cpu(p.pid) for p in procs) - c0
        finally:
            lags = _stop_board_procs(procs)
        # independent count: decode every line's recording (written by the board processes)
        decoded_ok = lost = dup = 0
        for i in range(n):
            wav = Path(tmp) / f"line-{i}.wav"
            got = decode_multimon(str(wav)) if wav.exists() else ""
            expect = "".join(sent[i])
            if got == expect:
                decoded_ok += 1
            else:
                _share, miss, extra = decode_share(expect, got)
                lost += miss
                dup += extra
    requests = sum(len(s) for s in sent)
    digits = sum(want)
    return {
        "lines": n,
        "board": board,
        "board_processes": len(procs),
        "duration_s": duration,
        "sending_wall_s": w_sent,
        "total_wall_s": wall,
        "requests": requests,
        "failed_requests": len(fails),
        "failures": fails[:5],
        "digits_requested": digits,
        "digits_reported_played": sum(played),
        "lines_decoded_exactly": decoded_ok,
        "decoded_lost": lost,
        "decoded_extra": dup,
        "requests_per_s": requests / w_sent if w_sent else 0.0,
        "digits_per_s": digits / wall if wall else 0.0,
        "ideal_digits_per_s": n / 0.080,
        "accept_latency_p50_ms": float(np.percentile(lat, 50) * 1000) if lat else None,
        "accept_latency_p99_ms": float(np.percentile(lat, 99) * 1000) if lat else None,
        "cpu_s": cpu,
        "bridge_process_cpu_s": proc_cpu,
        "bridge_cpu_ms_per_request": cpu["bridge"] / requests * 1000 if requests else None,
        "sim_cpu_cores": cpu["sim"] / wall if wall else None,
        "bridge_cpu_cores": cpu["bridge"] / wall if wall else None,
        "board_lag_s_max": max(lags) if lags else None,
        "cores": os.cpu_count(),
    }


def run(quick: bool, lines: int | None = None, duration: float | None = None, log=print):
    duration = duration or (3.0 if quick else 15.0)
    lines = lines or (8 if quick else 64)
    log(f"  scale: {lines} simulated lines at 40/40 ms for {duration:g} s ...")
    return measure(lines, duration, log=log)
