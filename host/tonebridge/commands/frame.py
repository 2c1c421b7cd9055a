"""`tonebridge frame`: compute or check protocol frames for talking to a board by hand."""

from __future__ import annotations

import sys

from tonebridge_fw import codec


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "frame",
        help="compute the CRC of a protocol frame (to type it into a serial terminal)",
        description=(
            "Print the complete frame for '<mark><id> <body>', e.g. '>1 HELLO' -> '>1 HELLO *C98D'. "
            "With --check, verify complete frames instead. See docs/protocol.md."
        ),
    )
    p.add_argument("frames", nargs="+", metavar="FRAME", help="e.g. '>1 HELLO'")
    p.add_argument("--check", action="store_true", help="check complete frames (with *CRC)")
    p.set_defaults(func=run)


def make_frame(text: str) -> str:
    text = text.strip()
    if not text or text[0] not in codec.MARKS:
        raise ValueError("a frame starts with a mark: '>' request, '<' reply, '!' event")
    rid, _, body = text[1:].partition(" ")
    return codec.encode(text[0], rid, body.strip()).decode().rstrip("\n")


def check_frame(text: str) -> str | None:
    """None if `text` is a valid frame, else why not."""
    line = text.strip().encode("ascii", "replace")
    if codec.parse_line(line) is not None:
        return None
    head, sep, _crc = text.strip().rpartition(" *")
    if not sep:
        return "no ' *CRC' at the end"
    try:
        want = make_frame(head)
    except (ValueError, codec.FrameError) as e:
        return str(e)
    return "bad CRC: expected " + want


def run(args) -> int:
    status = 0
    for text in args.frames:
        if args.check:
            why = check_frame(text)
            if why is None:
                print(f"ok: {text.strip()}")
            else:
                print(f"{text.strip()}: {why}", file=sys.stderr)
                status = 1
            continue
        try:
            print(make_frame(text))
        except (ValueError, codec.FrameError) as e:
            print(f"tonebridge frame: {text!r}: {e}", file=sys.stderr)
            status = 2
    return status
