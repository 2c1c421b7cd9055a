"""Scale: many lines across 4 agents behind one front end, every line sending at 40/40 ms
at once; each line's recording decodes to exactly what was sent (0 lost, 0 duplicated).

The issue asks for 64 lines. Each simulated Pico costs about 0.07-0.12 cores while playing
(docs/benchmarks.md row 10), so 64 simulated lines cannot run in real time on this 2-core
machine: the default here is 4 lines (1 per agent); TONEBRIDGE_FLEET_LINES=64 runs the full
size where the cores exist (see docs/fleet.md for what was measured)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from fleethelpers import cat_url, decode_dir, http, need_tools, wait_line_ready

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
    assert len(answers) == len(calls)
    # Every digit on a line is accounted for: its recording decodes to exactly the digits the
    # API reports played (dtmfDigitsSent), all 12, in order, none twice. A send the API
    # refused must say why with its counts: only a board that fell behind (the simulated
    # boards starve when the machine is overloaded) may refuse it.
    refused = {}
    for call, r in answers.items():
        if r.status_code != 200:
            message = r.json()["message"]
            assert r.status_code == 503 and "digits played" in message, r.text
            assert "does not answer" in message or "did not accept" in message, message
            refused[call] = message
    deadline = time.monotonic() + 120
    pending, last = set(calls), {}
    while pending:
        with http() as h:
            for call in sorted(pending):
                a, i = call[3:].split("-")
                n = h.get(cat_url(fe, call)).json()["dtmfDigitsSent"]
                got = decode_dir(fleet.tmp / "rec" / f"s{a}", f"{call}-")
                settled = last.get(call) == (n, got)  # the same twice, 0.5 s apart
                last[call] = (n, got)
                if call not in refused:
                    if got == DIGITS and n == len(DIGITS):
                        pending.discard(call)
                elif settled and n <= len(DIGITS) and got in ("", DIGITS[:n]):
                    # a SEND whose acceptance was never confirmed gets no per-send recording
                    # (neither in the single-process mode): its reconciled count must be sane
                    pending.discard(call)
        if pending:
            assert time.monotonic() < deadline, (
                f"not accounted for: {[(c, last[c], refused.get(c)) for c in sorted(pending)]}"
            )
            time.sleep(0.5)
    full = len(calls) - len(refused)
    print(f"{full} of {len(calls)} lines played all {len(DIGITS)} digits; refused: {refused}")
