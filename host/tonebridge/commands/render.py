"""`tonebridge render ... --out FILE.wav STRING`: synthesise a dial string to a WAV file.

The audio comes from the firmware's own renderer (tonebridge_fw.synth), the same code
that fills the boards' DMA/I2S buffers. With --board it is instead recorded from a
simulated board running the unmodified firmware (tonebridge.sim.play.render_on_board).
"""

from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np
from tonebridge_fw import dialstring
from tonebridge_fw.synth import Renderer

from tonebridge.commands.plan import add_timing_args, report_error


def parse_rate(text: str):
    """'48000' -> 48000; '15258.789' -> 15258.789; '125000000/8192' -> (125000000, 8192)."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            r = (int(num), int(den))
            if r[0] <= 0 or r[1] <= 0:
                raise ValueError
            return r
        if "." in text or "e" in text.lower():
            f = Fraction(text)
            if f <= 0:
                raise ValueError
            return (f.numerator, f.denominator)
        v = int(text)
        if v <= 0:
            raise ValueError
        return v
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"bad sample rate {text!r}: use Hz (48000, 15258.789) or a ratio (125000000/8192)"
        ) from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "render",
        help="synthesise a dial string to a 16-bit mono WAV file",
        description=(
            "Render STRING with the firmware's DDS renderer (or, with --board, on a simulated "
            "board) and write a 16-bit mono WAV. WAV headers hold whole hertz, so a rate like "
            "125000000/8192 is written as 15259 Hz."
        ),
    )
    p.add_argument("string", metavar="STRING", help="dial string, e.g. '1WWW,59#'")
    p.add_argument(
        "--dialect",
        default=dialstring.DEFAULT_DIALECT,
        help=f"catapult, gws or tonebridge (default {dialstring.DEFAULT_DIALECT})",
    )
    add_timing_args(p)
    p.add_argument(
        "--rate",
        default="48000",
        metavar="R",
        help="sample rate: Hz or a ratio like 125000000/8192 (default 48000)",
    )
    p.add_argument(
        "--bits",
        type=int,
        default=16,
        metavar="B",
        help="renderer resolution, 8-16 (default 16); below 16 the samples are the board's "
        "PWM/DAC codes scaled up, so the WAV carries that quantisation",
    )
    p.add_argument(
        "--twist-db", type=float, default=2.0, metavar="DB", help="high group louder, 0-4 dB"
    )
    p.add_argument(
        "--board",
        default=None,
        help="render on a simulated board (e.g. pico, pico-mt8880, esp32-i2s) instead",
    )
    p.add_argument("--out", required=True, metavar="FILE.wav", help="output WAV file")
    p.add_argument(
        "--png",
        metavar="FILE.png",
        help="also draw its spectrogram with the plan's digits and pauses marked, and print "
        "where each mark is",
    )
    p.set_defaults(func=run)


def render_samples(plan, rate, bits=16, twist_db=2.0) -> tuple[np.ndarray, Renderer]:
    """int16 samples of `plan` from the firmware renderer, and the renderer used."""
    signed = bits == 16
    r = Renderer(rate, bits=bits, signed=signed, twist_db=twist_db)
    x = np.asarray(r.render(plan), dtype=np.int32)
    if not signed:
        x = (x - r.mid) << (16 - bits)
    return x.astype(np.int16), r


def run(args) -> int:
    try:
        plan = dialstring.compile_plan(
            args.string, args.dialect, args.tone_ms, args.gap_ms, args.pause_ms
        )
    except dialstring.DialStringError as e:
        report_error(args.string, e)
        return 2
    if args.board:
        try:
            from tonebridge.sim.play import render_on_board
        except ImportError:
            print("board simulation not available yet", file=sys.stderr)
            return 2
        render_on_board(
            args.board,
            args.string,
            dialect=args.dialect,
            tone_ms=args.tone_ms,
            gap_ms=args.gap_ms,
            pause_ms=args.pause_ms,
            out=args.out,
        )
        print(f"wrote {args.out} (recorded on simulated board {args.board})")
        if not args.png:
            return 0
        return picture(args, plan, *_read(args.out), on_board=True)
    try:
        rate = parse_rate(args.rate)
        samples, r = render_samples(plan, rate, args.bits, args.twist_db)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from tonebridge.analysis import write_wav

    try:
        write_wav(args.out, samples, r.sample_rate)
    except OSError as e:
        print(f"error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(
        f"wrote {args.out}: {dialstring.digits_in(plan)} digits, "
        f"{len(samples) / r.sample_rate:.3f} s at {r.sample_rate:g} Hz, {len(samples)} samples"
    )
    # the renderer starts with a lead-in of half a ramp before the plan's time 0
    return picture(args, plan, samples / 32768.0, r.sample_rate, offset=r.lead_in / r.sample_rate)


def _read(path):
    from tonebridge.analysis import read_wav

    return read_wav(path)


def picture(args, plan, samples, rate, on_board=False, offset=0.0) -> int:
    """--png: the spectrogram with the plan's marks; prints each mark's place in the file
    (the plan's time 0 is `offset` s into it: the renderer's lead-in). A recording from a
    simulated board starts before its first tone: the plan is placed at the first tone
    measured in it. The offset is printed."""
    if not args.png:
        return 0
    from tonebridge.analysis.envelope import segments
    from tonebridge.analysis.picture import spectrogram_png
    from tonebridge.analysis.report import plan_marks

    marks = plan_marks(plan, args.gap_ms)
    if on_board:
        found = segments(samples, rate)
        offset = found[0][0] if found else 0.0
    for m in marks:
        m["start_s"] += offset
        m["end_s"] += offset
    try:
        spectrogram_png(samples, rate, marks, args.png, title=f"{args.string} (plan marked)")
    except OSError as e:
        print(f"error: cannot write {args.png}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"wrote {args.png}: spectrogram, {len(marks)} marks, plan offset {offset:.4f} s")
    for m in marks:
        print(f"  mark {m['kind']} {m['label']}: {m['start_s']:.4f}-{m['end_s']:.4f} s")
    return 0
