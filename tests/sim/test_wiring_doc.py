"""hw/wiring.md documents the same pins as firmware/tonebridge_fw/boards.py; hw/filter.json
is what the simulator's analog chain uses and puts the corner near the voice band edge."""

from pathlib import Path

import numpy as np
from tonebridge.sim.analog import load_filter_spec, response_db
from tonebridge_fw import boards

HW = Path(__file__).resolve().parents[2] / "hw"


def _table():
    lines = [ln for ln in (HW / "wiring.md").read_text().splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows[cells[0]] = dict(zip(head, cells, strict=True))
    return head, rows


def test_wiring_md_matches_boards_py():
    head, rows = _table()
    assert sorted(rows) == sorted(boards.PROFILES)
    for name, prof in boards.PROFILES.items():
        row = rows[name]
        for key in head[1:]:
            doc = row[key]
            val = prof.get(key)
            if val is None:
                assert doc == "-", (name, key, doc)
            elif isinstance(val, list):
                assert doc == ",".join(str(v) for v in val), (name, key)
            else:
                assert doc == str(val), (name, key, doc, val)
    # every pin key in a profile is documented
    for prof in boards.PROFILES.values():
        for key in prof:
            if key.endswith("_pin") or key == "d_pins":
                assert key in head, key


def test_filter_passes_the_dtmf_band_and_rejects_the_pwm_carrier():
    spec = load_filter_spec()
    c = spec["components"]
    db = response_db(spec, [697, 1633, 61035])
    # passband: the level stage's gain into the 600 ohm build-out / line divider
    gain = (1 + c["R8"] / c["R9"]) * c["RLINE"] / (c["R10"] + c["T1_RP"] + c["T1_RS"] + c["RLINE"])
    gain_db = 20 * np.log10(gain)
    assert abs(db[0] - gain_db) < 0.5
    assert abs(db[1] - gain_db) < 0.5
    assert db[2] - gain_db < -60
