"""Row 10: what a simulated board costs, and how many run in real time on this machine.

1. One ``sim://`` board behind a pseudo-terminal in a process of its own
   (simcost_child.py): its CPU (utime+stime from /proc) while idle (nothing attached) and
   while playing (a BoardClient on the terminal keeps 90-digit 40/40 ms sequences queued
   back to back), as cores busy. A second run under cProfile (per thread, on CPU time)
   splits that time into the firmware's own code, its renderer (synth.py) and the rest:
   the simulator's own share (models, clock, pty pump, threading), which is the figure
   issue 16 set out to cut. The unprofiled cores times each profiled share gives the
   estimate in cores (profiling inflates function-call-heavy code; the split is a guide).
2. Lines in real time: row 6 (``scale.measure``: the real bridge, N ``sim://pico`` boards
   at 40/40 ms, closed-loop Catapult clients, every line's recording decoded by multimon-ng)
   for growing N; a size passes when every line decodes exactly (0 digits lost or
   duplicated), no request failed, the lines played at least ``RATE_OK`` of N times the
   pace one line keeps alone, measured first in the same run (closed loop, each request's
   round trip and the board's start of a sequence make that less than the ideal 12.5
   digits/s; the boards kept pace with the wall clock: a board that falls behind plays
   fewer digits, its closed-loop client waits), and no board was ever more than
   ``LAG_OK_S`` behind the wall clock (short excursions are the OS scheduler on a shared
   machine; the load average is recorded). The figure is the largest N that passes
   (doubling, then bisecting).

``PYTHONPATH=OTHER/host:OTHER/firmware`` in ``env`` measures another checkout the same way
(docs/benchmarks.md has the figures before and after).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from .scale import measure as scale_measure

CHILD = Path(__file__).with_name("simcost_child.py")
LAG_OK_S = 1.0  # a board this far behind the wall clock is not running in real time
RATE_OK = 0.95  # share of the ideal digits/s (12.5 per line at 40/40 ms) the lines must play
PLAY_TEXT = ("1234567890*#ABCD" * 6)[:90]  # at most 92 characters per SEND


def _proc_cpu(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


class _Child:
    def __init__(self, board: str, profile: bool, env=None):
        args = [sys.executable, str(CHILD), f"sim://{board}"] + (["--profile"] if profile else [])
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.path = self.proc.stdout.readline().strip()
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError(f"simcost: the board process did not start ({self.path!r})")

    def mark(self) -> float:
        self.proc.stdin.write("MARK\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "MARK":
            raise RuntimeError("simcost: the board process stopped answering")
        return _proc_cpu(self.proc.pid)

    def finish(self) -> list[dict]:
        self.proc.stdin.close()
        out = self.proc.stdout.read()
        self.proc.wait(timeout=60)
        return [json.loads(x[7:]) for x in out.splitlines() if x.startswith("WINDOW ")]


def _player(path: str, stop: threading.Event, counts: dict) -> None:
    """Keep the board playing: a second sequence always queued behind the one playing."""
    from tonebridge.link.client import BoardClient

    c = BoardClient(path, timeout=2.0)
    try:
        c.open()
        pending = []
        while not stop.is_set():
            pending.append(c.submit(PLAY_TEXT, tone_ms=40, gap_ms=40))
            if len(pending) >= 2:
                counts["digits"] += pending.pop(0).wait().played
    finally:
        c.close()


def board_cost(board="pico", idle_s=10.0, play_s=10.0, profile=False, env=None, log=print):
    """CPU of one board process idle and playing; with ``profile`` the split by code."""
    ch = _Child(board, profile, env)
    res = {"board": board, "profiled": profile}
    try:
        time.sleep(1.0)  # boot
        c0, w0 = ch.mark(), time.monotonic()
        time.sleep(idle_s)
        c1, w1 = ch.mark(), time.monotonic()
        res["idle_cores"] = (c1 - c0) / (w1 - w0)
        stop = threading.Event()
        counts = {"digits": 0}
        th = threading.Thread(target=_player, args=(ch.path, stop, counts), daemon=True)
        th.start()
        time.sleep(2.0)  # hello, first sequence under way
        c2, w2 = ch.mark(), time.monotonic()
        time.sleep(play_s)
        c3, w3 = ch.mark(), time.monotonic()
        stop.set()
        th.join(timeout=30)
        res["play_cores"] = (c3 - c2) / (w3 - w2)
    finally:
        windows = ch.finish()
    if profile and len(windows) >= 3:
        for name, w, secs in (("idle", windows[0], w1 - w0), ("play", windows[2], w3 - w2)):
            tot = w["firmware_s"] + w["sim_s"]
            res[name] = {
                "firmware_share": w["firmware_s"] / tot if tot else None,
                "renderer_share": w["renderer_s"] / tot if tot else None,
                "sim_share": w["sim_s"] / tot if tot else None,
                "profiled_cores": tot / secs,
                "top_sim": {k: round(v / secs, 5) for k, v in list(w["top_sim"].items())[:8]},
            }
    log(
        f"  simcost: {board}{' (profiled)' if profile else ''}: idle {res['idle_cores']:.3f} "
        f"cores, playing {res['play_cores']:.3f} cores"
    )
    return res


def board_costs(board="pico", idle_s=10.0, play_s=10.0, env=None, log=print) -> dict:
    """Unprofiled CPU, profiled split, and the estimates in cores."""
    plain = board_cost(board, idle_s, play_s, False, env, log)
    prof = board_cost(board, idle_s, play_s, True, env, log)
    out = {"board": board, "idle_cores": plain["idle_cores"], "play_cores": plain["play_cores"]}
    for name in ("idle", "play"):
        split = prof.get(name)
        if not split or split["sim_share"] is None:
            continue
        cores = plain[f"{name}_cores"]
        out[name] = dict(split)
        out[name]["sim_cores"] = cores * split["sim_share"]
        out[name]["firmware_cores"] = cores * split["firmware_share"]
        out[name]["renderer_cores"] = cores * split["renderer_share"]
    return out


def _passes(r: dict, line_rate: float | None = None) -> bool:
    """``line_rate``: what one line plays alone (digits/s), the pace N lines must keep each
    (default: the ideal 12.5 digits/s of 40/40 ms)."""
    lag = r.get("board_lag_s_max")
    want = r.get("ideal_digits_per_s", 0.0) if line_rate is None else line_rate * r["lines"]
    return (
        r["lines_decoded_exactly"] == r["lines"]
        and r["decoded_lost"] == 0
        and r["decoded_extra"] == 0
        and r["failed_requests"] == 0
        and r["digits_requested"] > 0
        and lag is not None
        and lag <= LAG_OK_S
        and r.get("digits_per_s", 0.0) >= RATE_OK * want
    )


def lines_in_real_time(start=4, limit=256, duration=10.0, log=print) -> dict:
    """The largest number of sim://pico lines that pass (see module docstring)."""
    cores = os.cpu_count() or 1
    tried: dict[int, dict] = {}
    ref: dict = {}

    def trial(n):
        per_proc = max(1, min(16, math.ceil(n / cores)))
        log(f"  simcost: {n} lines at 40/40 ms for {duration:g} s ({per_proc} per process) ...")
        r = scale_measure(n, duration, per_proc=per_proc, log=log)
        ok = _passes(r, ref.get("line_rate"))
        tried[n] = {
            "pass": ok,
            "load_average": os.getloadavg()[0],
            "lag_s_max": r["board_lag_s_max"],
            "lines_decoded_exactly": r["lines_decoded_exactly"],
            "decoded_lost": r["decoded_lost"],
            "decoded_extra": r["decoded_extra"],
            "failed_requests": r["failed_requests"],
            "digits_per_s": r["digits_per_s"],
            "ideal_digits_per_s": r["ideal_digits_per_s"],
            "sim_cpu_cores": r["sim_cpu_cores"],
            "bridge_cpu_cores": r["bridge_cpu_cores"],
        }
        log(
            f"    {'pass' if ok else 'FAIL'}: lag {r['board_lag_s_max']:.3f} s, "
            f"{r['lines_decoded_exactly']}/{n} exact, lost {r['decoded_lost']}, "
            f"extra {r['decoded_extra']}, failed {r['failed_requests']}, "
            f"{r['digits_per_s']:.0f} digits/s (ideal {r['ideal_digits_per_s']:.0f}, "
            f"{n} x one line: {n * ref.get('line_rate', 0.0):.0f})"
        )
        return ok

    # the pace one line keeps alone, closed loop (each request's round trip and the board's
    # start-up per sequence make it less than the ideal 12.5 digits/s)
    log(f"  simcost: 1 line at 40/40 ms for {duration:g} s (the reference pace) ...")
    r1 = scale_measure(1, duration, per_proc=1, log=log)
    if _passes(r1, r1["digits_per_s"]):
        ref["line_rate"] = r1["digits_per_s"]
    log(
        f"    one line alone: {r1['digits_per_s']:.2f} digits/s (lag {r1['board_lag_s_max']:.3f} s)"
    )
    good, bad, n = 0, None, start
    while n <= limit:
        if trial(n):
            good, n = n, n * 2
        else:
            bad = n
            break
    while bad is not None and bad - good > max(1, good // 8):
        mid = (good + bad) // 2
        if trial(mid):
            good = mid
        else:
            bad = mid
    return {
        "lines": good,
        "first_failing": bad,
        "duration_s": duration,
        "one_line_digits_per_s": ref.get("line_rate"),
        "trials": tried,
    }


def run(quick: bool, log=print) -> dict:
    idle_s, play_s = (3.0, 3.0) if quick else (10.0, 10.0)
    res = {"pico": board_costs("pico", idle_s, play_s, log=log)}
    from .simcost_virtual import virtual_costs

    res["pico"].update(virtual_costs("pico", runs=1 if quick else 3, log=log))
    if not quick:
        for board in ("pico2", "esp32-i2s", "pico-mt8880"):
            res[board] = board_costs(board, idle_s / 2, play_s / 2, log=log)
    res["load_average_before"] = os.getloadavg()[0]
    res["realtime"] = lines_in_real_time(
        start=2 if quick else 8, limit=4 if quick else 256, duration=3.0 if quick else 10.0, log=log
    )
    return res


def rows(res: dict) -> list[dict]:
    """Row 10 of the table (one value per row, as report.format_table's second table)."""
    from .report import row

    g = "10 sim cost"
    out = []
    for board, d in res.items():
        if not isinstance(d, dict) or board == "realtime":
            continue
        out.append(row(g, f"{board}: one board process idle", "cores", None, "{:.3f}",
                       {board: d["idle_cores"]}))  # fmt: skip
        out.append(row(g, f"{board}: playing 40/40 ms", "cores", None, "{:.3f}",
                       {board: d["play_cores"]}))  # fmt: skip
        for name, label in (("idle", "idle"), ("play", "playing")):
            sp = d.get(name)
            if not sp:
                continue
            out.append(row(g, f"  simulator's own share, {label}", "cores", None, "{:.4f}",
                           {board: sp["sim_cores"]}))  # fmt: skip
            out.append(row(g, f"  firmware's own code, {label}", "cores", None, "{:.4f}",
                           {board: sp["firmware_cores"]}))  # fmt: skip
        if d.get("play"):
            out.append(row(g, "  of which its renderer (synth.py), playing", "cores", None,
                           "{:.4f}", {board: d["play"]["renderer_cores"]}))  # fmt: skip
        for key, label in (
            ("virtual", "in virtual time, no waits"),
            ("virtual_slept", "in virtual time, a real sleep before each pass"),
        ):
            v = d.get(key)
            if v:
                out.append(row(g, f"{board}: playing {label}", "cores", None, "{:.4f}",
                               {board: v["cores"]},
                               note=f"(renderer {v['renderer']:.4f}, receiver "
                                    f"{v['receiver']:.4f}, rest {v['rest']:.4f})"))  # fmt: skip
    rt = res.get("realtime")
    if rt:
        out.append(row(g, "sim://pico lines in real time at 40/40 ms, 0 lost/dup", "lines",
                       None, "{:.0f}", {"pico": rt["lines"]},
                       note=f"(first failing: {rt['first_failing']}; one line alone: "
                            f"{rt.get('one_line_digits_per_s') or 0:.1f} digits/s)"))  # fmt: skip
    return out
