"""Simulated boards behind pseudo-terminals, in a process of their own (for row 6).

    python -m tonebridge.bench.boards --board pico --count 16 --record-dir DIR --first 0

prints one /dev/pts path per line, then ``READY``; runs until its stdin closes, then prints
``LAG <s>`` per board (the most its simulated clock fell behind the wall clock while
running) and stops the boards, writing each one's line signal to DIR/line-<i>.wav (22050 Hz).
Several such processes spread the simulated boards over the cores, so the boards and the
bridge do not share one interpreter lock.
"""

from __future__ import annotations

import argparse
import sys
import threading


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--board", default="pico")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--record-dir", required=True)
    p.add_argument("--rate", type=int, default=22050)
    args = p.parse_args(argv)
    sys.setswitchinterval(0.001)
    from urllib.parse import quote

    from tonebridge.link.pty import PtyBridge

    bridges = []
    try:
        for i in range(args.first, args.first + args.count):
            wav = quote(f"{args.record_dir}/line-{i}.wav")
            b = PtyBridge(f"sim://{args.board}?record={wav}&rate={args.rate}")
            print(b.start(), flush=True)
            bridges.append(b)
        print("READY", flush=True)
        # how far each simulated board's clock falls behind the wall clock, sampled
        stop = threading.Event()
        worst = [0.0] * len(bridges)

        def sample():
            while not stop.wait(0.05):
                for i, b in enumerate(bridges):
                    worst[i] = max(worst[i], b.board.behind_s())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        sys.stdin.read()  # until the parent closes our stdin
        stop.set()
        sampler.join()
        for w in worst:
            print(f"LAG {w:.4f}", flush=True)
    finally:
        for b in bridges:
            b.stop()
        print("STOPPED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
