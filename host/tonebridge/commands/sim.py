"""`tonebridge sim --board pico`: a simulated board behind a pseudo-terminal."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sim",
        help="run a simulated board behind a pseudo-terminal and print its /dev/pts path",
        description=(
            "Run the firmware on a simulated board (in real time) behind a pseudo-terminal, "
            "print the terminal's path, and serve until interrupted. Point any serial tool at "
            "it: tonebridge send --port /dev/pts/N ..., tonebridge serve, picocom, pyserial."
        ),
    )
    p.add_argument("--board", default="pico", help="board profile (default pico)")
    p.add_argument("--record", metavar="FILE.wav", help="write the line signal here on exit")
    p.add_argument("--link", metavar="PATH", help="also make a symlink to the terminal here")
    p.add_argument(
        "--hwid",
        metavar="HEX",
        help="the board's hardware id (machine.unique_id() as hex; default: random per board)",
    )
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.set_defaults(func=run)


def run(args) -> int:
    from urllib.parse import quote

    from serial import SerialException

    from tonebridge.link.pty import PtyBridge, serve_until_stopped

    query = []
    if args.record:
        query.append("record=" + quote(args.record))
    if args.hwid:
        query.append("hwid=" + quote(args.hwid))
    url = f"sim://{args.board}" + ("?" + "&".join(query) if query else "")
    bridge = PtyBridge(url, link_path=args.link)
    try:
        path = bridge.start()
    except SerialException as e:
        print(f"tonebridge sim: {e}", file=sys.stderr)
        return 2
    print(path, flush=True)
    print(
        f"simulated {args.board} board (hwid {bridge.board.hwid}) on {path} (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    return serve_until_stopped(bridge, args.duration, args.record)
