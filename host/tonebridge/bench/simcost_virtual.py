"""Row 10 in virtual time: what one simulated board's passes cost with no wall clock in the
way, and what sleeping between them costs on this machine.

A ``SimBoard`` in lockstep (``VirtualClock``) gets two 90-digit 40/40 ms SENDs and then runs
``BOARD_S`` of board time in one ``run_for``: the firmware makes its own main-loop passes (the
same ~85 a second a paced ``sim://`` board makes while playing) with no turns of the harness
in between. CPU per board-second (process time), with the renderer's (``Renderer.fill``) and
the receiver's (``Receiver.feed``) own time measured in place (``thread_time`` around them);
"rest" is the simulator's models and clock plus the firmware's main loop around them.

With ``sleep_s`` every firmware wait first sleeps that long for real, as a paced board does
between its passes; the work is the same, so the difference is what waking up costs here
(with other jobs on the cores, a thread that slept resumes with cold caches). cProfile's split
in ``simcost.board_costs`` books that cost mostly to the simulator: the models' catch-up on
the clock's move is the first code a paced board runs after waking.

Run by path (``PYTHONPATH=OTHER/host:OTHER/firmware python .../simcost_virtual.py``) it
measures another checkout the same way.
"""

from __future__ import annotations

import sys

if sys.path and sys.path[0].rstrip("/").endswith("bench"):
    del sys.path[0]  # run by path: this directory's signal.py must not shadow the stdlib's

import time  # noqa: E402

PLAY_TEXT = ("1234567890*#ABCD" * 6)[:90]
BOARD_S = 14.0  # two sequences of 90 digits at 40/40 ms take 14.4 s


def _timed(cls, name: str, acc: dict) -> None:
    f = getattr(cls, name)

    def w(*a, **k):
        t = time.thread_time()
        try:
            return f(*a, **k)
        finally:
            acc[name] = acc.get(name, 0.0) + time.thread_time() - t

    setattr(cls, name, w)


def _slept(cls, sleep_s: float) -> None:
    wait = cls.wait

    def w(self, ms):
        time.sleep(sleep_s)
        return wait(self, ms)

    cls.wait = w


def virtual_cost(board: str = "pico", sleep_s: float = 0.0, board_s: float = BOARD_S) -> dict:
    """One run: cores per board-second, split as the module docstring says."""
    from tonebridge.sim import SimBoard, VirtualClock

    sb = SimBoard(board, VirtualClock())
    try:
        acc: dict = {}
        _timed(sb.load("tonebridge_fw.synth").Renderer, "fill", acc)
        _timed(sb.load("tonebridge_fw.dtmf_rx").Receiver, "feed", acc)
        if sleep_s:
            _slept(sb.load("tonebridge_fw.transport").StdioLink, sleep_s)
        codec = sb.load("tonebridge_fw.codec")
        sb.run_for(500)
        for rid in ("1", "2"):
            body = f"SEND dialect=catapult tone=40 gap=40 {codec.dial_to_wire(PLAY_TEXT)}"
            sb.write(codec.encode(codec.REQUEST, rid, body))
        sb.run_for(5)
        acc.clear()
        c0, v0, p0 = time.process_time(), sb.now_us(), sb.app.passes
        sb.run_for(board_s * 1000)
        c1, v1, p1 = time.process_time(), sb.now_us(), sb.app.passes
    finally:
        sb.close()
    s = (v1 - v0) / 1e6
    total, rend, rx = (c1 - c0) / s, acc.get("fill", 0.0) / s, acc.get("feed", 0.0) / s
    return {"cores": total, "renderer": rend, "receiver": rx, "rest": total - rend - rx,
            "passes_per_s": (p1 - p0) / s, "sleep_s": sleep_s}  # fmt: skip


def virtual_costs(board: str = "pico", runs: int = 3, sleep_s: float = 0.002, log=print) -> dict:
    """The least of ``runs`` runs without sleeping and with ``sleep_s`` before each pass."""
    out = {}
    for key, sl in (("virtual", 0.0), ("virtual_slept", sleep_s)):
        best = min((virtual_cost(board, sl) for _ in range(runs)), key=lambda r: r["cores"])
        log(f"simcost {board} {key}: {best['cores']:.4f} cores per board-second "
            f"(renderer {best['renderer']:.4f}, receiver {best['receiver']:.4f}, "
            f"rest {best['rest']:.4f}; {best['passes_per_s']:.0f} passes/s)")  # fmt: skip
        out[key] = best
    return out


if __name__ == "__main__":
    virtual_costs()
