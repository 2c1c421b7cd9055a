"""Disassemble a raw piece of machine code (a native function cut out of an .mpy) with a
binutils objdump: [(address, instruction text)]. Used by the static cycle estimates of the
viper loops (bench/rxcost.py for xtensawin, tests/core/viper_cycles.py for armv6m)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path


def disassemble(code: bytes, argv: list[str], line_re: str) -> list[tuple[int, str]]:
    """``argv``: the objdump command and its machine options (``-D -b binary`` are added);
    ``line_re``: a regex whose groups 1 and 2 are a line's address (hex) and instruction."""
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "fn.bin"
        f.write_bytes(code)
        text = subprocess.run(
            [argv[0], "-D", "-b", "binary", *argv[1:], str(f)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    ins = []
    for line in text.splitlines():
        m = re.match(line_re, line)
        if m:
            ins.append((int(m.group(1), 16), m.group(2).strip()))
    return ins
