"""Row 11: what the fleet adds per request (docs/fleet.md).

The same Catapult `POST .../dtmf {"dtmfOut": "5"}` (40/40 ms, one at a time, 150 ms apart),
timed at the client from request to answer (the board accepted the sequence):

- single-process: `tonebridge serve --sim pico`;
- fleet: `tonebridge serve --broker` -> Mosquitto -> `tonebridge agent --sim pico`.

Added latency is the difference of the medians (and p99s). CPU per request is the user +
system time (from /proc) the front end and the broker spent over the requests, divided by
their number (the agent does what single-process serve does, plus its MQTT side: its CPU per
request is given too, next to single-process serve's own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from tonebridge.fleet.broker import Mosquitto, free_port

USER, PW = "bench", "bench-pw"
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _start(args, log: Path, wait_for: str, timeout=90.0) -> subprocess.Popen:
    fh = open(log, "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([sys.executable, "-m", "tonebridge.cli", *args], stdout=fh,
                            stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + timeout
    while wait_for not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{args[0]} did not start: {log.read_text()[-1000:]}")
        time.sleep(0.1)
    return proc


def _stop(*procs):
    for p in procs:
        if p is not None and p.poll() is None:
            p.terminate()
    for p in procs:
        if p is not None:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def _requests(base, call, n, pids):
    url = f"{base}/v1/users/{USER}/calls/{call}"
    times = []
    with httpx.Client(auth=(USER, PW), timeout=30) as h:
        deadline = time.monotonic() + 60
        while not h.get(url).json().get("lineHardwareId"):  # the board is up
            if time.monotonic() > deadline:
                raise RuntimeError("the bench line never came up")
            time.sleep(0.1)
        for _ in range(3):  # warm up
            h.post(url + "/dtmf", json={"dtmfOut": "5"})
            time.sleep(0.15)
        cpu0 = [_cpu_s(p) for p in pids]
        for _ in range(n):
            t = time.perf_counter()
            r = h.post(url + "/dtmf", json={"dtmfOut": "5"})
            times.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise RuntimeError(f"bench request failed: {r.status_code} {r.text}")
            time.sleep(0.15)
        cpu = [(_cpu_s(p) - c) / n for p, c in zip(pids, cpu0, strict=True)]
    a = np.asarray(times) * 1000.0
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "n": n}, cpu  # fmt: skip


def run(quick: bool, log=print) -> dict:
    n = 15 if quick else 60
    conf_line = "[profiles.b]\ntone_ms = 40\ngap_ms = 40\n"
    with tempfile.TemporaryDirectory(prefix="tb-bench-fleet-") as tmp:
        tmp = Path(tmp)
        (tmp / "p.toml").write_text(conf_line)
        common = ["--config", str(tmp / "p.toml"), "--profile", "b"]
        port = free_port()
        log(f"  fleet: single-process serve, {n} requests ...")
        single = _start(["serve", "--sim", "pico", "--auth", f"{USER}:{PW}", "--listen",
                         f"127.0.0.1:{port}", "--state", str(tmp / "s.db"), *common],
                        tmp / "serve.log", "Application startup complete")  # fmt: skip
        try:
            call = _call_id(tmp / "serve.log")
            s_lat, (s_cpu,) = _requests(f"http://127.0.0.1:{port}", call, n, [single.pid])
        finally:
            _stop(single)
        log(f"  fleet: front end + Mosquitto + agent, {n} requests ...")
        broker = Mosquitto(tmp / "broker").start()
        agent = fe = None
        try:
            agent = _start(["agent", "--broker", broker.url, "--name", "bench", "--sim", "pico",
                            "--owner", USER, "--state", str(tmp / "a.db"), *common],
                           tmp / "agent.log", "serving")  # fmt: skip
            port = free_port()
            fe = _start(["serve", "--broker", broker.url, "--name", "fe", "--auth",
                         f"{USER}:{PW}", "--listen", f"127.0.0.1:{port}"],
                        tmp / "fe.log", "Application startup complete")  # fmt: skip
            f_lat, (fe_cpu, br_cpu, ag_cpu) = _requests(
                f"http://127.0.0.1:{port}", "c-bench-1", n, [fe.pid, broker.proc.pid, agent.pid]
            )
        finally:
            _stop(fe, agent)
            broker.stop()
    return {
        "single": {**s_lat, "cpu_ms": s_cpu * 1000},
        "fleet": {
            **f_lat,
            "frontend_cpu_ms": fe_cpu * 1000,
            "broker_cpu_ms": br_cpu * 1000,
            "agent_cpu_ms": ag_cpu * 1000,
        },  # fmt: skip
        "added_p50_ms": f_lat["p50_ms"] - s_lat["p50_ms"],
        "added_p99_ms": f_lat["p99_ms"] - s_lat["p99_ms"],
    }


def _call_id(log: Path) -> str:
    for line in log.read_text().splitlines():
        if "call id " in line:
            return line.split("call id ", 1)[1].split(",", 1)[0]
    raise RuntimeError("serve printed no call id")


def rows(res: dict) -> list[dict]:
    """Row 11 of the table (report.format_table's second table)."""
    from .report import row

    g, s, f = "11 fleet", res["single"], res["fleet"]
    return [
        row(g, "request -> answer, single-process p50", "ms", None, "{:.1f}", {"sim": s["p50_ms"]}),
        row(g, "request -> answer, fleet p50", "ms", None, "{:.1f}", {"sim": f["p50_ms"]}),
        row(g, "  added by front end + broker, p50", "ms", None, "{:.1f}",
            {"sim": res["added_p50_ms"]}),
        row(g, "  added by front end + broker, p99", "ms", None, "{:.1f}",
            {"sim": res["added_p99_ms"]}),
        row(g, "front end CPU per request", "ms", None, "{:.2f}", {"sim": f["frontend_cpu_ms"]}),
        row(g, "broker CPU per request", "ms", None, "{:.3f}", {"sim": f["broker_cpu_ms"]}),
        row(g, "agent CPU per request (board sim included)", "ms", None, "{:.1f}",
            {"sim": f["agent_cpu_ms"]}),
        row(g, "single-process serve CPU per request (board sim included)", "ms", None,
            "{:.1f}", {"sim": s["cpu_ms"]}),
    ]  # fmt: skip
