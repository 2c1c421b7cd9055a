"""python -m tonebridge.bench [--quick] [--json FILE] [--port PORT] [--only SECTIONS]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from . import report

SECTIONS = (
    "signal",
    "footprint",
    "latency",
    "scale",
    "bridge",
    "emu",
    "rxcost",
    "simcost",
    "fleet",
)
# --quick leaves out emu, simcost (each takes minutes) and fleet (processes and a broker)
QUICK_SECTIONS = ("signal", "footprint", "latency", "scale", "bridge", "rxcost")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m tonebridge.bench",
        description="Measure tonebridge (rows 1-9 of docs/benchmarks.md) and print the table.",
    )
    p.add_argument("--quick", action="store_true", help="shorter runs (smoke test, < 1 min)")
    p.add_argument(
        "--json",
        default="build/bench.json",
        metavar="FILE",
        help="write the results here (default build/bench.json)",
    )
    p.add_argument(
        "--port",
        default=os.environ.get("PORT") or None,
        help="also measure latency on a real board at this serial port (or env PORT)",
    )
    p.add_argument("--lines", type=int, default=None, help="simulated lines in row 6 (64; quick 8)")
    p.add_argument(
        "--duration", type=float, default=None, help="row 6 sending time in s (15; quick 5)"
    )
    p.add_argument(
        "--only",
        default=None,
        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)}; with "
        "--quick all but emu and simcost)",
    )
    return p.parse_args(argv)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    default = QUICK_SECTIONS if args.quick else SECTIONS
    only = [s.strip() for s in (args.only or ",".join(default)).split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        print(
            f"unknown section(s): {', '.join(bad)} (known: {', '.join(SECTIONS)})", file=sys.stderr
        )
        return 2
    results: dict = {
        "meta": {
            "quick": args.quick,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "timings_s": {},
    }
    t_all = time.perf_counter()
    for section in SECTIONS:
        if section not in only:
            continue
        t = time.perf_counter()
        log(f"[{section}]")
        if section == "signal":
            from . import signal

            res = signal.run(args.quick, log=log)
            results["signal"] = {k: {"name": d, "measures": m} for k, (d, m) in res.items()}
        elif section == "footprint":
            from . import footprint

            results["footprint"] = footprint.run(log=log)
        elif section == "latency":
            from . import latency

            results["latency"] = latency.run(args.quick, args.port, log=log)
        elif section == "scale":
            from . import scale

            duration = args.duration or (3.0 if args.quick else 15.0)
            lines = args.lines or (8 if args.quick else 64)
            log(f"  scale: {lines} simulated lines at 40/40 ms for {duration:g} s ...")
            results["scale"] = scale.measure(lines, duration, log=log)
        elif section == "bridge":
            from . import bridge

            results["bridge"] = bridge.run(args.quick, log=log)
        elif section == "emu":
            from . import emu

            results["emu"] = emu.run(args.quick, log=log)
        elif section == "rxcost":
            from . import rxcost

            results["rxcost"] = rxcost.run(log=log)
        elif section == "simcost":
            from . import simcost

            results["simcost"] = simcost.run(args.quick, log=log)
        elif section == "fleet":
            from . import fleet

            results["fleet"] = fleet.run(args.quick, log=log)
        results["timings_s"][section] = round(time.perf_counter() - t, 2)
    results["timings_s"]["total"] = round(time.perf_counter() - t_all, 2)
    rows = report.build_rows(results)
    if "rxcost" in results:
        from . import rxcost

        rows += rxcost.rows(results["rxcost"])
    if "simcost" in results:
        from . import simcost

        rows += simcost.rows(results["simcost"])
    if "fleet" in results:
        from . import fleet

        rows += fleet.rows(results["fleet"])
    results["rows"] = [{k: v for k, v in r.items() if k != "format"} for r in rows]
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=float))
    print(report.format_table(rows))
    print(f"\n(results in {out}; sections took {results['timings_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
