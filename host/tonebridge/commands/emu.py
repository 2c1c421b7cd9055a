"""`tonebridge emu --board pico`: the real MicroPython image on an emulated RP2040, behind a
pseudo-terminal."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "emu",
        help="run the MicroPython RPI_PICO image on an emulated RP2040 behind a pseudo-terminal",
        description=(
            "Boot the MicroPython RPI_PICO image (TONEBRIDGE_RP2_UF2) on rp2040js, an RP2040 "
            "emulator, expose its USB-CDC console on a pseudo-terminal, print the terminal's path "
            "and serve until interrupted. Deploy to it and talk to it like a real Pico: "
            "tonebridge deploy --port /dev/pts/N, mpremote connect /dev/pts/N, tonebridge send, "
            "tonebridge serve --port. See docs/emulator.md."
        ),
    )
    p.add_argument("--board", default="pico", help="board profile (default pico; RP2040 only)")
    p.add_argument(
        "--flash",
        metavar="FILE",
        help="keep the board's littlefs filesystem in FILE between runs (created when absent)",
    )
    p.add_argument("--record", metavar="FILE.wav", help="write the line signal here on exit")
    p.add_argument(
        "--hwid",
        metavar="HEX",
        help="the flash's 64-bit unique id (machine.unique_id(), USB serial number); default: "
        "derived from the --flash file's path, random without one",
    )
    p.add_argument("--link", metavar="PATH", help="also make a symlink to the terminal here")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.set_defaults(func=run)


def run(args) -> int:
    from urllib.parse import urlencode

    from serial import SerialException

    from tonebridge.link.pty import PtyBridge, serve_until_stopped

    opts = {
        k: v for k, v in (("flash", args.flash), ("record", args.record), ("hwid", args.hwid)) if v
    }
    url = f"emu://{args.board}" + ("?" + urlencode(opts) if opts else "")
    bridge = PtyBridge(url, link_path=args.link)
    try:
        path = bridge.start()
    except SerialException as e:
        print(f"tonebridge emu: {e}", file=sys.stderr)
        return 2
    board = bridge.board
    print(path, flush=True)
    print(
        f"emulated {args.board} (MicroPython {board.image.uf2.name}, unique id {board.hwid}) "
        f"on {path} (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    return serve_until_stopped(bridge, args.duration, args.record)
