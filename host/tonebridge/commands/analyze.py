"""`tonebridge analyze FILE.wav [--png FILE]`: the digits in a recording and how good they are.

Decodes with tonebridge's own analysis (tonebridge.analysis.report: least-squares tone
fits, not Goertzel bins) and prints one line per digit: its times, frequencies and their
error, twist and level. With --png, the spectrogram with each measured digit marked.
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="decode the DTMF digits in a WAV file and measure them",
        description=(
            "Print the digits in FILE.wav and, per digit, its start and end (50 %% amplitude "
            "points), tone and gap length, both frequencies and their error from nominal, "
            "twist and level. --png draws the spectrogram with the digits marked."
        ),
    )
    p.add_argument("wav", metavar="FILE.wav", help="16-bit mono WAV")
    p.add_argument("--png", metavar="FILE.png", help="write the spectrogram here")
    p.add_argument(
        "--full-scale-v",
        type=float,
        default=None,
        metavar="V",
        help="line volts at WAV full scale: also print levels in dBm into 600 ohm "
        "(serve's recordings: 2.0)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from tonebridge.analysis import read_wav
    from tonebridge.analysis.report import analyze, decoded, format_digit, measured_marks

    try:
        samples, rate = read_wav(args.wav)
    except (OSError, ValueError, EOFError) as e:
        print(
            f"error: cannot read {args.wav}: {getattr(e, 'strerror', None) or e}", file=sys.stderr
        )
        return 2
    digits = analyze(samples, rate, full_scale_v=args.full_scale_v)
    print(f"{args.wav}: {len(samples) / rate:.3f} s at {rate:g} Hz")
    print(f"decoded: {decoded(digits) or '(no digits)'}")
    for i, d in enumerate(digits):
        print("  " + format_digit(i, d))
    if args.png:
        from tonebridge.analysis.picture import spectrogram_png

        try:
            spectrogram_png(samples, rate, measured_marks(digits), args.png, title=args.wav)
        except OSError as e:
            print(f"error: cannot write {args.png}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(f"wrote {args.png}: spectrogram, {len(digits)} digits marked")
    return 0
