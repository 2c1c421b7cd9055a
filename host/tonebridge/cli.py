"""The `tonebridge` command line.

Each subcommand lives in its own module under `tonebridge.commands` and exposes
`register(subparsers)`, which adds its parser and sets `func` (args -> exit code).
"""

import argparse
import importlib
import pkgutil
import sys

from tonebridge import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tonebridge",
        description="Send DTMF touch-tones on a phone line from software, via a tonebridge board.",
    )
    parser.add_argument("--version", action="version", version=f"tonebridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
