"""One simulated board behind a pseudo-terminal, in a process of its own, for measuring what
the simulator costs (`tonebridge.bench.simcost`). Run it by path, not as a module, so the same
file can measure another checkout of the tree (``PYTHONPATH=OTHER/host:OTHER/firmware``):

    python host/tonebridge/bench/simcost_child.py sim://pico [--profile]

prints the terminal's path, then ``READY``. Each ``MARK`` line on stdin is answered ``MARK``
(with ``--profile``: after a snapshot of every thread's profile). When stdin closes it stops
the board and, with ``--profile``, prints ``WINDOW <json>`` per interval between marks:
CPU seconds (thread time, as cProfile measured them) split into the firmware's own code
(every function in a file under the firmware tree, with the builtins it called), its
renderer (synth.py) and the rest (the simulator: models, clock, pty pump, threading).

Uses nothing but PtyBridge and the standard library, so it runs against older trees too.
"""

from __future__ import annotations

import sys

if sys.path and sys.path[0].rstrip("/").endswith("bench"):
    del sys.path[0]  # run by path: this directory's signal.py must not shadow the stdlib's

import cProfile  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

_profilers: list = []
_plock = threading.Lock()


def _install_thread_profiling() -> None:
    """Every thread started from now on runs under its own cProfile, on CPU time."""
    orig = threading.Thread.run

    def run(self):
        pr = cProfile.Profile(time.thread_time)
        with _plock:
            _profilers.append(pr)
        pr.enable()
        try:
            orig(self)
        finally:
            pr.disable()

    threading.Thread.run = run


def _key(code):
    if isinstance(code, str):
        return code
    return (code.co_filename, code.co_firstlineno, code.co_name)


def _snapshot() -> dict:
    """{(caller key, callee key or None): inline seconds} over all profilers so far."""
    out: dict = {}
    with _plock:
        profs = list(_profilers)
    for pr in profs:
        for e in pr.getstats():
            k = _key(e.code)
            if isinstance(k, str):
                continue  # a builtin: counted below, with the function that called it
            out[(k, None)] = out.get((k, None), 0.0) + e.inlinetime
            for sub in e.calls or ():
                if isinstance(sub.code, str):
                    sk = (k, sub.code)
                    out[sk] = out.get(sk, 0.0) + sub.inlinetime
    return out


def _window(a: dict, b: dict, fw_root: str) -> dict:
    res = {"firmware_s": 0.0, "renderer_s": 0.0, "sim_s": 0.0, "top_sim": {}}
    top: dict = {}
    for key, v in b.items():
        d = v - a.get(key, 0.0)
        if d <= 0:
            continue
        fname = key[0][0]
        if fname.startswith(fw_root):
            res["firmware_s"] += d
            if fname.endswith(("synth.py", "synth_shaped.py", "synth_viper.py")):
                res["renderer_s"] += d
        else:
            res["sim_s"] += d
            name = key[1] if key[1] is not None else f"{key[0][0]}:{key[0][2]}"
            top[name] = top.get(name, 0.0) + d
    res["top_sim"] = dict(sorted(top.items(), key=lambda kv: -kv[1])[:12])
    return res


def main() -> int:
    url = sys.argv[1]
    profile = "--profile" in sys.argv[2:]
    if profile:
        _install_thread_profiling()
    from tonebridge.link.pty import PtyBridge
    from tonebridge.sim.loader import FIRMWARE_ROOT

    fw_root = str(FIRMWARE_ROOT)
    bridge = PtyBridge(url)
    print(bridge.start(), flush=True)
    print("READY", flush=True)
    snaps = []
    try:
        for line in sys.stdin:
            if line.strip() == "MARK":
                if profile:
                    snaps.append(_snapshot())
                print("MARK", flush=True)
    finally:
        bridge.stop()
    for a, b in zip(snaps, snaps[1:], strict=False):
        print("WINDOW " + json.dumps(_window(a, b, fw_root)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
