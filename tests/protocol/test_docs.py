"""docs/protocol.md stays true: every frame it shows has a correct CRC and parses."""

import re
from pathlib import Path

from tonebridge_fw import codec

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def doc_frames():
    out = []
    for line in DOC.read_text().splitlines():
        line = line.strip()
        if line.startswith(">> "):
            line = line[3:]
        m = re.match(r"^([<>!]\S+ .*? \*[0-9A-F]{4})(\s|$)", line)
        if m:
            out.append(m.group(1))
    return out


def test_doc_frames_are_valid():
    frames = doc_frames()
    assert len(frames) >= 15
    for f in frames:
        if f.endswith("*1234"):
            continue  # the deliberately broken example in "By hand"
        assert codec.parse_line(f.encode()) is not None, f


def test_doc_check_value():
    assert "`29B1`" in DOC.read_text()
    assert codec.crc16(b"123456789") == 0x29B1
