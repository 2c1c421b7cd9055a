"""`tonebridge send --port PORT STRING`: play a dial string on a board, digit by digit."""

from __future__ import annotations

import sys

from tonebridge_fw import dialstring


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "send",
        help="send a dial string to a board and show each digit as it is played",
        description=(
            "Send STRING to the board on PORT (a serial device such as /dev/ttyACM0, or any "
            "pyserial URL: sim://pico, socket://host:port) and wait until it is played. "
            "Exits 0 only when the board reports every digit played (and, on a board that hears "
            "the line, heard on it: a mark per digit, sent and heard); otherwise prints how "
            "many digits went out and exits 1 (2: invalid string, nothing sent; 3: no board)."
        ),
    )
    p.add_argument("--port", required=True, help="serial port or pyserial URL (e.g. sim://pico)")
    p.add_argument(
        "--dialect",
        default=dialstring.DEFAULT_DIALECT,
        choices=sorted(dialstring.DIALECTS),
        help="dial-string dialect (default %(default)s)",
    )
    p.add_argument("--tone-ms", type=int, default=None, metavar="N", help="tone duration (ms)")
    p.add_argument("--gap-ms", type=int, default=None, metavar="N", help="gap between digits (ms)")
    p.add_argument(
        "--pause-ms",
        type=int,
        default=None,
        metavar="N",
        help="length of the tonebridge dialect's ',' and 'p' pause (ms)",
    )
    p.add_argument(
        "--flash-ms",
        type=int,
        default=None,
        metavar="N",
        help="length of the tonebridge dialect's '!' hook flash (ms, 50-1500; default: the "
        "board's)",
    )
    p.add_argument("--timeout", type=float, default=1.0, help="reply timeout in s (default 1)")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-digit progress")
    p.add_argument("string", metavar="STRING", help="dial string, e.g. '1WWW,59#'")
    p.set_defaults(func=run)


def describe_heard(ev: dict) -> str:
    """What the board's receiver measured, in words: '98 ms, -11.0/-9.0 dBm, twist +2.0 dB,
    697.2/1209.4 Hz'."""
    parts = []
    if "ms" in ev:
        parts.append(f"{ev['ms']} ms")
    lvl = ev.get("level_dbm")
    if isinstance(lvl, list) and len(lvl) == 2:
        parts.append(f"{lvl[0]:.1f}/{lvl[1]:.1f} dBm")
    if "twist_db" in ev:
        parts.append(f"twist {ev['twist_db']:+.1f} dB")
    hz = ev.get("freq_hz")
    if isinstance(hz, list) and len(hz) == 2:
        parts.append(f"{hz[0]:.1f}/{hz[1]:.1f} Hz")
    return ", ".join(parts)


def _show_dial_error(text: str, e) -> None:
    print(f"tonebridge send: invalid dial string: {e}", file=sys.stderr)
    pos = getattr(e, "position", None)
    if pos is not None and 0 <= pos <= len(text):
        print(f"  {text}", file=sys.stderr)
        print("  " + " " * pos + "^", file=sys.stderr)


def run(args) -> int:
    from tonebridge.link import BoardClient, DialStringError, LinkError, SendError

    text = args.string
    # validate on the host first: an immediate, clear error, and nothing is sent
    try:
        plan = dialstring.compile_plan(
            text,
            args.dialect,
            dialstring.DEFAULT_TONE_MS if args.tone_ms is None else args.tone_ms,
            dialstring.DEFAULT_GAP_MS if args.gap_ms is None else args.gap_ms,
            dialstring.DEFAULT_PAUSE_MS if args.pause_ms is None else args.pause_ms,
            flash_ms=dialstring.DEFAULT_FLASH_MS if args.flash_ms is None else args.flash_ms,
        )
    except DialStringError as e:
        _show_dial_error(text, e)
        return 2
    total = dialstring.digits_in(plan)
    out = sys.stdout

    def progress(ev):
        if args.quiet:
            return
        head = f"{ev['index'] + 1}/{ev['digits']} '{ev['key']}'"
        if ev["event"] == "finished":
            out.write(f"{head} sent\n")
        elif ev["event"] == "heard":
            out.write(f"{head} heard: {describe_heard(ev)}\n")
        out.flush()

    try:
        client = BoardClient(args.port, timeout=args.timeout)
        client.open()
    except (LinkError, OSError) as e:
        print(f"tonebridge send: cannot talk to a board on {args.port}: {e}", file=sys.stderr)
        return 3
    try:
        try:
            r = client.send(
                text,
                dialect=args.dialect,
                tone_ms=args.tone_ms,
                gap_ms=args.gap_ms,
                pause_ms=args.pause_ms,
                flash_ms=args.flash_ms,
                on_progress=progress,
            )
        except DialStringError as e:
            _show_dial_error(text, e)
            return 2
        except KeyboardInterrupt:
            # stop the board too: a sequence must not go on playing behind the user's back
            try:
                client.cancel()
                note = "cancelled on the board"
            except Exception as e:  # the link may be what hung
                note = f"could not cancel on the board: {e}"
            print(f"\ntonebridge send: interrupted; {note}", file=sys.stderr)
            return 130
        except SendError as e:
            print(f"tonebridge send: {e.message}", file=sys.stderr)
            if e.uncertain:
                print(
                    f"tonebridge send: {e.played} of {e.total} digits certainly played, "
                    f"at most {e.at_most}; not resent",
                    file=sys.stderr,
                )
            else:
                heard = "" if e.verified is None else f", {e.verified} heard on the line"
                print(
                    f"tonebridge send: {e.played} of {e.total} digits played{heard}",
                    file=sys.stderr,
                )
            return 1
        heard = "" if r.verified is None else f", {r.verified} heard on the line"
        print(f"sent: {r.played}/{total} digits played{heard}")
        return 0
    finally:
        client.close()
