"""The Catapult seed's curl examples, run with real curl against `tonebridge serve`'s app
in front of a simulated Pico running the real firmware; the recorded line audio is
decoded by multimon-ng and the pauses are measured on the signal."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from apihelpers import need_tools, wait_for_file
from tonebridge.analysis import decode_multimon, read_wav, segments

# Verbatim from the seed (bandwidth-catapult-senddtmf.txt), examples 1-3.
SEED_CURLS = r"""
curl -v -X POST https://api.catapult.inetwork.com/v1/users/{userId}/calls/{callId}/dtmf \
    -u {token}:{secret} \
    -H "Content-type: application/json" \
    -d '{"dtmfOut": "9193334444"}'

curl -v -X POST https://api.catapult.inetwork.com/v1/users/{userId}/calls/{callId}/dtmf \
    -u {token}:{secret} \
    -H "Content-type: application/json" \
    -d '{"dtmfOut": "1WWW,59#"}'

curl -v -X POST https://api.catapult.inetwork.com/v1/users/{userId}/calls/{callId}/dtmf \
    -u {token}:{secret} \
    -H "Content-type: application/json" \
    -d '{"dtmfOut": "1Ww2Ww1Ww#"}'
"""

USER, SECRET, CALL = "u-catapult", "s3cret-token-secret", "c-seed-1"


def seed_commands(base, user, secret, call_id):
    out = []
    for block in SEED_CURLS.strip().split("\n\n"):
        text = block.replace("\\\n", " ")
        text = text.replace("https://api.catapult.inetwork.com", base)
        text = text.replace("{userId}", user).replace("{callId}", call_id)
        text = text.replace("{token}", user).replace("{secret}", secret)
        out.append(shlex.split(text))
    return out


def gaps(segs):
    return [b[0] - a[1] for a, b in zip(segs, segs[1:], strict=False)]


@pytest.mark.slow
def test_seed_curl_examples_play_on_the_line(start_server, tmp_path):
    need_tools("curl", "multimon-ng")
    srv = start_server(sims=["pico"], auth=[f"{USER}:{SECRET}"], tweak=_fixed_call)
    srv.wait_boards()
    commands = seed_commands(srv.base, USER, SECRET, CALL)
    expected = [
        ("9193334444", [0.1] * 9),
        ("159#", [3.5, 0.1, 0.1]),
        ("121#", [1.5, 1.5, 1.5]),
    ]
    for n, (argv, (digits, want_gaps)) in enumerate(zip(commands, expected, strict=True), start=1):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "< HTTP/1.1 200" in proc.stderr, proc.stderr
        wav = wait_for_file(tmp_path / "rec" / f"{CALL}-{n}.wav")
        x, rate = read_wav(wav)
        assert decode_multimon(x, rate) == digits
        segs = segments(x, rate)
        measured = gaps(segs)
        assert len(measured) == len(want_gaps)
        for got, want in zip(measured, want_gaps, strict=True):
            assert abs(got - want) < 0.002, (digits, measured)
        # unchanged, the seed's lines play the default 100 ms tones (issue 15: per-request
        # timing is an extension they never notice)
        tones = [e - s for s, e in segs]
        assert len(tones) == len(digits)
        assert all(abs(t - 0.1) <= 0.0001 for t in tones), (digits, tones)
    # the server saw exactly these three sends, in order
    assert [t for _, t in srv.factory.sends] == ["9193334444", "1WWW,59#", "1Ww2Ww1Ww#"]


def _fixed_call(cfg):
    cfg.lines[0].call_id = CALL
