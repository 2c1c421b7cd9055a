"""`tonebridge flash --port PORT [--ms N] [--hold]`: a hook flash on a board's line (a timed
on-hook break, for PBX features such as transfer and recall)."""

from __future__ import annotations

import sys

from tonebridge_fw import dialstring


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "flash",
        help="flash the hook of a board's line (a timed on-hook break)",
        description=(
            "Release the hook relay of the board on PORT for a timed break while its line is "
            "held: a hook flash (register recall), which PBXs use for transfer, hold and "
            "feature codes. The board times the break itself. Its length is --ms, else the "
            f"board's own (its profile's flash_ms, {dialstring.DEFAULT_FLASH_MS} ms unless "
            "configured). In a dial string the tonebridge dialect's '!' does the same "
            "between digits (tonebridge send --dialect tonebridge '!p123'). Exits 0 when the "
            "board flashed, 1 when it refused (the line is not held: use --hold; or a sequence "
            "is playing), 2 for a length outside the limits, 3 when there is no board."
        ),
    )
    p.add_argument("--port", required=True, help="serial port or pyserial URL (e.g. sim://pico)")
    p.add_argument(
        "--ms",
        type=int,
        default=None,
        metavar="N",
        help=f"break length in ms, {dialstring.FLASH_MIN_MS}-{dialstring.FLASH_MAX_MS} "
        "(default: the board's)",
    )
    p.add_argument(
        "--hold",
        action="store_true",
        help="take the line off-hook first if it is not held (it stays held afterwards)",
    )
    p.add_argument("--timeout", type=float, default=1.0, help="reply timeout in s (default 1)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tonebridge.link import BoardClient, BoardError, LinkError

    if args.ms is not None:
        try:
            dialstring.check_flash(args.ms)
        except dialstring.DialStringError as e:
            print(f"tonebridge flash: {e}", file=sys.stderr)
            return 2
    try:
        client = BoardClient(args.port, timeout=args.timeout)
        client.open()
    except (LinkError, OSError) as e:
        print(f"tonebridge flash: cannot talk to a board on {args.port}: {e}", file=sys.stderr)
        return 3
    try:
        try:
            if args.hold and client.status().get("hook") != "off":
                client.hook(True)
            r = client.flash(args.ms)
        except BoardError as e:
            hint = " (use --hold to take the line off-hook first)" if e.code == "on-hook" else ""
            print(f"tonebridge flash: the board refused: {e.message}{hint}", file=sys.stderr)
            return 1
        except LinkError as e:
            print(f"tonebridge flash: {e}", file=sys.stderr)
            return 3
        print(f"flashed the hook for {r.get('flash')} ms")
        return 0
    finally:
        client.close()
