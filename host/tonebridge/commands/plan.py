"""`tonebridge plan DIALECT STRING`: show what a dial string will play, step by step."""

from __future__ import annotations

import sys

from tonebridge_fw import dialstring
from tonebridge_fw.keypad import freqs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plan",
        help="show the tone/pause plan of a dial string (or why it is refused)",
        description=(
            "Compile STRING in DIALECT (catapult, gws or tonebridge; see docs/dialstrings.md) "
            "and print each step and the total duration. An invalid string prints the error "
            "and exits 2."
        ),
    )
    p.add_argument("dialect", metavar="DIALECT", help=DIALECTS_HELP)
    p.add_argument("string", metavar="STRING", help="dial string, e.g. '1WWW,59#'")
    add_timing_args(p)
    p.set_defaults(func=run)


DIALECTS_HELP = "catapult, gws or tonebridge (held keys: 5(2000))"


def add_timing_args(p) -> None:
    p.add_argument(
        "--tone-ms",
        type=int,
        default=dialstring.DEFAULT_TONE_MS,
        metavar="N",
        help=f"tone duration, {dialstring.TIMING_MIN_MS}-{dialstring.TIMING_MAX_MS} ms "
        f"(default {dialstring.DEFAULT_TONE_MS})",
    )
    p.add_argument(
        "--gap-ms",
        type=int,
        default=dialstring.DEFAULT_GAP_MS,
        metavar="N",
        help=f"gap between digits, {dialstring.TIMING_MIN_MS}-{dialstring.TIMING_MAX_MS} ms "
        f"(default {dialstring.DEFAULT_GAP_MS})",
    )
    p.add_argument(
        "--pause-ms",
        type=int,
        default=dialstring.DEFAULT_PAUSE_MS,
        metavar="N",
        help=f"length of the tonebridge dialect's ',' and 'p' pause, {dialstring.TIMING_MIN_MS}-"
        f"{dialstring.TIMING_MAX_MS} ms (default {dialstring.DEFAULT_PAUSE_MS}; catapult's "
        "pauses are fixed by its document)",
    )
    p.add_argument(
        "--flash-ms",
        type=int,
        default=dialstring.DEFAULT_FLASH_MS,
        metavar="N",
        help=f"length of the tonebridge dialect's '!' hook flash, {dialstring.FLASH_MIN_MS}-"
        f"{dialstring.FLASH_MAX_MS} ms (default {dialstring.DEFAULT_FLASH_MS})",
    )


def report_error(text: str, err: dialstring.DialStringError) -> None:
    """Print a dial-string error to stderr, pointing at the bad character when there is one."""
    print(f"error: {err}", file=sys.stderr)
    if err.position is not None and isinstance(text, str) and text.isprintable():
        print(f"  {text}", file=sys.stderr)
        print("  " + " " * err.position + "^", file=sys.stderr)


def format_plan(plan) -> list[str]:
    lines = []
    t = 0
    for k, (key, ms) in enumerate(plan):
        if key is None:
            what = "silence"
        elif key == dialstring.FLASH:
            what = "hook flash (relay open)"
        else:
            lo, hi = freqs(key)
            what = f"tone {key}  {lo:>3d} + {hi:>4d} Hz"
        lines.append(f"{k:>4d}  {t:>7d} ms  {ms:>5d} ms  {what}")
        t += ms
    return lines


def run(args) -> int:
    try:
        plan = dialstring.compile_plan(
            args.string,
            args.dialect,
            args.tone_ms,
            args.gap_ms,
            args.pause_ms,
            flash_ms=args.flash_ms,
        )
    except dialstring.DialStringError as e:
        report_error(args.string, e)
        return 2
    pauses = dialstring.DIALECTS[args.dialect][0]
    pause = f", ',' {args.pause_ms} ms" if pauses.get(",") == dialstring.PAUSE else ""
    if dialstring.DIALECTS[args.dialect][3]:
        pause += f", '!' {args.flash_ms} ms"
    print(f"dialect {args.dialect}, tone {args.tone_ms} ms, gap {args.gap_ms} ms{pause}")
    print("step    start      length  what")
    for line in format_plan(plan):
        print(line)
    total = dialstring.plan_ms(plan)
    n = dialstring.digits_in(plan)
    print(
        f"{n} digit{'s' if n != 1 else ''} ({dialstring.plan_text(plan)}), "
        f"{len(plan)} steps, total {total} ms"
    )
    return 0
