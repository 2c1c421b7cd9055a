"""Scale: many lines across 4 agents behind one front end, every line sending at 40/40 ms
at once; each line's recording decodes to exactly what was sent (0 lost, 0 duplicated).

The issue asks for 64 lines. Each simulated Pico costs about 0.07-0.12 cores while playing
(docs/benchmarks.md row 10), so 64 simulated lines cannot run in real time on this 2-core
machine: the default here is 4 lines (1 per agent); TONEBRIDGE_FLEET_LINES=64 runs the full
size where the cores exist (see docs/fleet.md for what was measured)."""

from __future__ import annotations

import os
import threading

import pytest
from fleethelpers import cat_url, decode_dir, http, need_tools, wait_digits_sent, wait_line_ready

DIGITS = "0123456789*#"
AGENTS = 4


@pytest.mark.slow
def test_lines_across_four_agents_lose_and_duplicate_nothing(fleet):
    need_tools("multimon-ng")
    lines = int(os.environ.get("TONEBRIDGE_FLEET_LINES", "4"))
    per = max(1, lines // AGENTS)
    for a in range(AGENTS):
        fleet.agent(f"s{a}", sims=per)
    _, fe = fleet.frontend("fe")
    calls = [f"c-s{a}-{i}" for a in range(AGENTS) for i in range(1, per + 1)]
    for call in calls:
        wait_line_ready(fe, call, timeout=120)
    answers = {}

    def send(call):
        with http() as h:
            answers[call] = h.post(cat_url(fe, call) + "/dtmf", json={"dtmfOut": DIGITS},
                                   headers={"Idempotency-Key": f"scale-{call}"})  # fmt: skip

    threads = [threading.Thread(target=send, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    bad = {c: (r.status_code, r.text) for c, r in answers.items() if r.status_code != 200}
    assert not bad and len(answers) == len(calls), "\n".join(
        f"{c}: {s} {t}" for c, (s, t) in bad.items()
    )
    for call in calls:
        assert wait_digits_sent(fe, call, len(DIGITS), timeout=120)["dtmfDigitsSent"] == 12
    lost = dup = 0
    wrong = {}
    for a in range(AGENTS):
        for i in range(1, per + 1):
            got = decode_dir(fleet.tmp / "rec" / f"s{a}", f"c-s{a}-{i}-")
            if got != DIGITS:
                wrong[f"c-s{a}-{i}"] = got
                lost += max(0, len(DIGITS) - len(got))
                dup += max(0, len(got) - len(DIGITS))
    assert not wrong, f"{lost} lost, {dup} duplicated: {wrong}"
