"""Timing under the caller's control (issue 15), through both APIs to the recorded line:
per-request toneDuration/toneInterval, timing profiles per line, the tonebridge dialect's
held keys and pause; bad values refused in each API's dialect with nothing played.

Each line is a simulated board running the real firmware behind a real BoardClient (sim://);
durations are measured on the line signal the board put out (tonebridge.analysis.segments,
50 % amplitude points) and decoded by multimon-ng."""

from __future__ import annotations

import numpy as np
import pytest
from apihelpers import wait_for_file
from tonebridge.analysis import decode_multimon, read_wav, segments

USER, SECRET, CALL = "u-timing", "s3cret", "c-timing"
TOL_MS = 0.1  # the renderer puts every edge on its sample: the line holds the plan to the sample


def _fixed_call(cfg):
    cfg.lines[0].call_id = CALL
    cfg.rate, cfg.burst = 1000.0, 1000  # many refused requests in a row


def measure(wav):
    """(decoded digits, tone lengths ms, gap lengths ms) of a recording."""
    x, rate = read_wav(wav)
    segs = segments(x, rate)
    tones = [(e - s) * 1000 for s, e in segs]
    gaps = [(b[0] - a[1]) * 1000 for a, b in zip(segs, segs[1:], strict=False)]
    return decode_multimon(x, rate), tones, gaps


def assert_lengths(got, want, what):
    print(what, "measured", [round(float(g), 3) for g in got], "ms, planned", want)
    assert len(got) == len(want), (what, got, want)
    for g, w in zip(got, want, strict=True):
        assert abs(g - w) <= TOL_MS, (what, got, want)


def silent(samples) -> bool:
    return not segments(samples, 22050) and float(np.max(np.abs(samples))) < 1e-3


@pytest.fixture
def server(start_server, tmp_path):
    def start(sims=("pico",), tweak=None, **kw):
        def both(cfg):
            _fixed_call(cfg)
            if tweak is not None:
                tweak(cfg)

        srv = start_server(sims=list(sims), auth=[f"{USER}:{SECRET}"], tweak=both, **kw)
        srv.wait_boards()
        srv.rec = tmp_path / "rec"
        srv.http = srv.client(USER, SECRET)
        return srv

    return start


def catapult(srv, body, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return srv.http.post(f"/v1/users/{USER}/calls/{CALL}/dtmf", json=body, headers=headers)


def gws(srv, body):
    return srv.http.post(f"/api/v2/me/calls/{CALL}", json={"operationName": "SendDtmf", **body})


@pytest.mark.slow
def test_catapult_with_and_without_the_timing_fields(server):
    srv = server()
    r = catapult(srv, {"dtmfOut": "1234#", "toneDuration": 250, "toneInterval": 400})
    assert r.status_code == 200 and r.content == b"", r.text
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-1.wav"))
    assert digits == "1234#"
    assert_lengths(tones, [250] * 5, "tones")
    assert_lengths(gaps, [400] * 4, "gaps")
    # without the fields: Catapult's request as its document has it, 100/100 ms
    assert catapult(srv, {"dtmfOut": "1W2"}).status_code == 200
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-2.wav"))
    assert digits == "12"
    assert_lengths(tones, [100, 100], "tones")
    assert_lengths(gaps, [1000], "W keeps its 1 s")
    # one field alone; a pause still replaces the interval
    assert catapult(srv, {"dtmfOut": "12w3", "toneInterval": 60}).status_code == 200
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-3.wav"))
    assert digits == "123"
    assert_lengths(tones, [100] * 3, "tones")
    assert_lengths(gaps, [60, 500], "gaps")
    # the SENDs carried them: what the store recorded for each sequence
    store = srv.bridge.store
    rows = store.db.execute("SELECT text, tone_ms, gap_ms FROM sequences ORDER BY created")
    assert [tuple(r) for r in rows] == [
        ("1234#", 250, 400), ("1W2", None, None), ("12w3", None, 60)
    ]  # fmt: skip
    call = srv.http.get(f"/v1/users/{USER}/calls/{CALL}").json()
    assert call["dtmfDigitsSent"] == 5 + 2 + 3


@pytest.mark.slow
def test_gws_with_and_without_the_timing_fields(server):
    srv = server()
    r = gws(srv, {"digits": "1234", "toneDuration": 250, "toneInterval": 400})
    assert r.status_code == 200 and r.json() == {"statusCode": 0}, r.text
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-1.wav"))
    assert digits == "1234"
    assert_lengths(tones, [250] * 4, "tones")
    assert_lengths(gaps, [400] * 3, "gaps")
    assert gws(srv, {"digits": "55"}).json() == {"statusCode": 0}
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-2.wav"))
    assert digits == "55"
    assert_lengths(tones, [100, 100], "tones")
    assert_lengths(gaps, [100], "gaps")


BAD_VALUES = [39, 5001, 0, -100, 250.5, "250", True, None, [250], {"ms": 250}, 1e308, 10**400]


def test_bad_values_are_refused_in_each_dialect_and_nothing_plays(server):
    srv = server()
    for field in ("toneDuration", "toneInterval"):
        for value in BAD_VALUES:
            if value is None:
                continue  # null is "not given" (checked below: it plays)
            r = catapult(srv, {"dtmfOut": "5", field: value})
            assert r.status_code == 400, (field, value, r.text)
            body = r.json()
            assert body["category"] == "bad-request" and body["code"] == "validation-error"
            assert body["message"].startswith(field) and len(body["message"]) < 120, body
            assert body["details"][0]["name"] == field
            r = gws(srv, {"digits": "5", field: value})
            assert r.status_code == 400, (field, value, r.text)
            body = r.json()
            assert set(body) == {"statusCode", "statusMessage"} and body["statusCode"] == 10
            assert body["statusMessage"].startswith(field), body
    assert catapult(srv, {"dtmfOut": "5", "toneDuration": 30}).json()["message"] == (
        "toneDuration 30 is outside 40-5000 ms"
    )
    assert gws(srv, {"digits": "5", "toneInterval": "x"}).json()["statusMessage"] == (
        'toneInterval must be a whole number of milliseconds from 40 to 5000, got "x"'
    )
    # a bad dialect, and a good field next to a bad digit string: each names its own field
    r = catapult(srv, {"dtmfOut": "5", "dialect": "asterisk"})
    assert r.status_code == 400 and r.json()["message"].startswith("dialect must be")
    r = gws(srv, {"digits": "5", "dialect": "catapult"})
    assert r.json()["statusMessage"] == 'dialect must be "gws" or "tonebridge", got "catapult"'
    r = catapult(srv, {"dtmfOut": "5x", "toneDuration": 250})
    assert r.json()["message"] == "dtmfOut: invalid character 'x' at position 1"
    # nothing was handed to the board and the line stayed silent
    assert srv.factory.sends == []
    assert silent(srv.line_samples())
    # the boundaries are allowed, and null means "not given"
    ok = {"dtmfOut": "5", "toneDuration": 40, "toneInterval": 5000}
    assert catapult(srv, ok).status_code == 200
    assert gws(srv, {"digits": "5", "toneDuration": None, "toneInterval": 40.0}).json() == {
        "statusCode": 0
    }
    assert [t for _, t in srv.factory.sends] == ["5", "5"]


def test_a_request_longer_than_the_line_may_stay_off_hook_is_refused(server):
    """92 digits at 5000/5000 ms last 915 s; the line hangs up after 600 s (max_offhook_s),
    so the board refuses the sequence whole: 400 naming the field, in each API's dialect,
    nothing played, and the next request plays (no failure left behind)."""
    srv = server()
    body = {"dtmfOut": "1" * 92, "toneDuration": 5000, "toneInterval": 5000}
    r = catapult(srv, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "validation-error"
    assert r.json()["message"] == (
        "dtmfOut: board refused the sequence: sequence lasts 915000 ms, longer than the line "
        "may stay off-hook (600000 ms)"
    )
    r = gws(srv, {"digits": "5" * 61, "toneDuration": 5000, "toneInterval": 5000})  # 605 s
    assert r.status_code == 400 and r.json()["statusCode"] == 10, r.text
    assert r.json()["statusMessage"].startswith("digits: board refused the sequence: sequence")
    assert silent(srv.line_samples())
    assert catapult(srv, {"dtmfOut": "12"}).status_code == 200
    digits, _, _ = measure(wait_for_file(srv.rec / f"{CALL}-3.wav"))
    assert digits == "12"


def test_idempotency_fingerprint_covers_the_timing_fields(server):
    srv = server()
    first = catapult(srv, {"dtmfOut": "5", "toneDuration": 250}, key="k-1")
    assert first.status_code == 200
    # the same key with other timing is another request: refused, nothing sent
    other = catapult(srv, {"dtmfOut": "5", "toneDuration": 300}, key="k-1")
    assert other.status_code == 409 and other.json()["code"] == "call-update-conflict"
    other = catapult(srv, {"dtmfOut": "5", "toneDuration": 250, "toneInterval": 100}, key="k-1")
    assert other.status_code == 409
    # the same body again is the first request's answer, not a second send
    again = catapult(srv, {"dtmfOut": "5", "toneDuration": 250}, key="k-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert [t for _, t in srv.factory.sends] == ["5"]


@pytest.mark.slow
def test_the_line_profile_and_the_request_each_win_where_they_should(server):
    srv = server(profile="slow-ivr")
    assert catapult(srv, {"dtmfOut": "12"}).status_code == 200
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-1.wav"))
    assert digits == "12"
    assert_lengths(tones, [250, 250], "profile tones")
    assert_lengths(gaps, [250], "profile gap")
    assert catapult(srv, {"dtmfOut": "12", "toneInterval": 60}).status_code == 200
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-2.wav"))
    assert_lengths(tones, [250, 250], "profile tones")
    assert_lengths(gaps, [60], "the request's gap")
    assert gws(srv, {"digits": "3", "toneDuration": 45}).json() == {"statusCode": 0}
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-3.wav"))
    assert digits == "3"
    assert_lengths(tones, [45], "the request's tone")


def test_the_minimum_profile_is_heard_by_a_receiver(server):
    """profile "minimum", 40/40 ms (what receivers must detect): every key of the pad, sent
    through the API, measured 40/40 ms on the line and decoded by multimon-ng."""
    srv = server(profile="minimum")
    keys = "0123456789*#ABCD"
    assert catapult(srv, {"dtmfOut": keys}).status_code == 200
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-1.wav"))
    assert digits == keys
    assert_lengths(tones, [40] * 16, "minimum tones")
    assert_lengths(gaps, [40] * 15, "minimum gaps")


@pytest.mark.slow
def test_tonebridge_dialect_held_key_and_the_lines_pause(server):
    srv = server(tweak=lambda cfg: setattr(cfg.lines[0], "pause_ms", 800))
    body = {"dtmfOut": "15(2000),2", "dialect": "tonebridge"}
    assert catapult(srv, body).status_code == 200
    digits, tones, gaps = measure(wait_for_file(srv.rec / f"{CALL}-1.wav"))
    assert digits == "152"
    assert_lengths(tones, [100, 2000, 100], "a held key")
    assert_lengths(gaps, [100, 800], "the line's pause")
    # Catapult's own ',' stays its document's 500 ms on the same line
    assert catapult(srv, {"dtmfOut": "1,2"}).status_code == 200
    _, _, gaps = measure(wait_for_file(srv.rec / f"{CALL}-2.wav"))
    assert_lengths(gaps, [500], "catapult ','")
    r = gws(srv, {"digits": "#(1500)", "dialect": "tonebridge", "toneDuration": 40})
    assert r.json() == {"statusCode": 0}
    digits, tones, _ = measure(wait_for_file(srv.rec / f"{CALL}-3.wav"))
    assert digits == "#"
    assert_lengths(tones, [1500], "a held key wins over toneDuration")
    # held keys are refused where the dialect has none, and bad ones name the position
    r = catapult(srv, {"dtmfOut": "5(2000)"})
    assert r.json()["message"] == "dtmfOut: invalid character '(' at position 1"
    r = gws(srv, {"digits": "5(2000)"})
    assert r.json()["statusMessage"] == "digits: invalid character '(' at position 1"
    r = catapult(srv, {"dtmfOut": "15(20000)", "dialect": "tonebridge"})
    assert r.status_code == 400
    assert r.json()["message"] == "dtmfOut: held key at position 1: 20000 ms is outside 40-10000 ms"
    assert len(srv.factory.sends) == 3


def test_a_board_that_cannot_hold_keys_refuses_them_with_a_400(server):
    """An MT8880 in burst mode plays chip-timed 51 ms tones: its HELLO says hold_max=0, so a
    held key is refused as bad input (400, naming the field) and nothing plays."""
    srv = server(sims=["sim://pico-mt8880?mt8880_mode=burst"])
    r = catapult(srv, {"dtmfOut": "15(2000)", "dialect": "tonebridge"})
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith(
        "dtmfOut: the board cannot play it: held key at position 1: this board cannot hold keys"
    )
    r = gws(srv, {"digits": "5(300)", "dialect": "tonebridge"})
    assert r.status_code == 400 and r.json()["statusCode"] == 10
    assert silent(srv.line_samples())
    # the failure was not sent (and not counted); an ordinary send still plays
    assert catapult(srv, {"dtmfOut": "15", "dialect": "tonebridge"}).status_code == 200
    digits, _, _ = measure(wait_for_file(srv.rec / f"{CALL}-3.wav"))
    assert digits == "15"
