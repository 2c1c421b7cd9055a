"""`tonebridge sbc --board rpi-mt8880`: this Raspberry Pi's MT8880 behind a pseudo-terminal.

The firmware's own main loop runs in this process on the Pi's GPIO (tonebridge.sbc, docs/sbc.md);
the command prints the terminal's path, so any serial tool (tonebridge send --port /dev/pts/N,
picocom, pyserial) talks to it. `tonebridge serve/send --port sbc://rpi-mt8880` need no pty.
"""

from __future__ import annotations

import sys

import tonebridge.sbc  # noqa: F401  (registers sbc:// for every command)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sbc",
        help="drive an MT8880 from this Raspberry Pi's GPIO, behind a pseudo-terminal",
        description=(
            "Run the tonebridge firmware on this single-board computer (Raspberry Pi + MT8880 "
            "on its GPIO, RPi.GPIO) behind a pseudo-terminal, print the terminal's path and "
            "serve until interrupted. In-process alternative: --port sbc://BOARD."
        ),
    )
    p.add_argument("--board", default="rpi-mt8880", help="board profile (default rpi-mt8880)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="profile override, e.g. --set mt8880_mode=burst --set cs_pin=8 (repeatable)",
    )
    p.add_argument("--link", metavar="PATH", help="also make a symlink to the terminal here")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.set_defaults(func=run)


def url_for(board: str, settings: list[str]) -> str:
    from urllib.parse import urlencode

    pairs = []
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set wants KEY=VALUE, not {item!r}")
        pairs.append((key, value))
    return f"sbc://{board}" + ("?" + urlencode(pairs, safe=",") if pairs else "")


def run(args) -> int:
    from serial import SerialException

    from tonebridge.link.pty import PtyBridge, serve_until_stopped

    try:
        url = url_for(args.board, args.set)
    except ValueError as e:
        print(f"tonebridge sbc: {e}", file=sys.stderr)
        return 2
    bridge = PtyBridge(url, link_path=args.link)
    try:
        path = bridge.start()
    except SerialException as e:
        print(f"tonebridge sbc: {e}", file=sys.stderr)
        return 2
    print(path, flush=True)
    print(f"{args.board} on {path} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    return serve_until_stopped(bridge, args.duration, None)
