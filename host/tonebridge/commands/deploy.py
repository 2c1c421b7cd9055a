"""`tonebridge deploy`: install the firmware on a board with mpremote."""

import json

from tonebridge import deploy as deploy_mod


def register(sub):
    p = sub.add_parser(
        "deploy",
        help="install the tonebridge firmware on a board (needs MicroPython already flashed)",
        description=deploy_mod.__doc__,
    )
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyACM0")
    p.add_argument("--board", default="pico", help="board profile (default: pico)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="profile override written to tonebridge.json, e.g. --set watchdog_ms=5000 (repeatable)",
    )
    p.add_argument("--source", action="store_true", help="copy .py sources instead of .mpy")
    p.add_argument("--dry-run", action="store_true", help="show what would be copied and run")
    p.set_defaults(func=run)


def _overrides(items):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set wants KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args):
    try:
        argv, files = deploy_mod.deploy(
            args.port, args.board, _overrides(args.set), mpy=not args.source, dry_run=args.dry_run
        )
    except (ValueError, RuntimeError) as e:
        print(f"tonebridge deploy: {e}")
        return 2
    print(
        f"{'would copy' if args.dry_run else 'copied'} {len(files)} files for board {args.board}:"
    )
    for f in files:
        print(f"  {f}")
    if args.dry_run:
        print(
            "command: " + " ".join(a if " " not in a and "\n" not in a else repr(a) for a in argv)
        )
    return 0
