"""Fuzzing the codec and the engine with hypothesis (>= 10,000 examples in all).

Properties: no crash; bounded buffering; a corrupted frame is never decoded into something
that was not sent; no digit is played from a corrupted frame; the engine answers any
well-framed request body without crashing and within bounded state.
"""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tonebridge_fw import codec, dialstring, engine

FAST = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

VALID = [
    (">", "1", "SEND dialect=catapult tone=100 gap=100 1WWW,59#"),
    (">", "ab.2", "SEND 0123456789*#ABCD"),
    (">", "x-3", "SEND boot=00000001 dialect=gws 555"),
    (">", "4", "HOOK off"),
    (">", "5", "CANCEL"),
    (">", "6", "CONFIG tone=60 gap=60"),
]
VALID_BYTES = [codec.encode(*f) for f in VALID]


def feed_chunks(dec, data, cuts):
    out = []
    i = 0
    for c in cuts:
        out += dec.feed(data[i : i + c])
        i += c
        assert dec.pending() <= dec.max_line
    out += dec.feed(data[i:])
    assert dec.pending() <= dec.max_line
    return out


@settings(FAST, max_examples=3000)
@given(st.binary(max_size=600), st.lists(st.integers(1, 64), max_size=20))
@pytest.mark.slow
def test_random_bytes_never_crash_or_grow(data, cuts):
    dec = codec.Decoder()
    for f in feed_chunks(dec, data, cuts):
        # anything decoded from noise must be a well-formed frame that re-encodes to itself
        assert codec.encode(*f).rstrip(b"\n") in data


@st.composite
def mutated(draw):
    """A stream of valid frames with random byte-level damage applied."""
    idx = draw(st.lists(st.integers(0, len(VALID) - 1), min_size=1, max_size=4))
    data = bytearray(b"".join(VALID_BYTES[i] for i in idx))
    n_mut = draw(st.integers(1, 6))
    for _ in range(n_mut):
        kind = draw(st.sampled_from(["flip", "drop", "insert", "dup", "swap", "nl"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "drop":
            del data[pos]
        elif kind == "insert":
            data.insert(pos, draw(st.integers(0, 255)))
        elif kind == "dup":
            ln = draw(st.integers(1, 8))
            data[pos:pos] = data[pos : pos + ln]
        elif kind == "swap" and pos + 1 < len(data):
            data[pos], data[pos + 1] = data[pos + 1], data[pos]
        elif kind == "nl":
            data.insert(pos, 10)
    return bytes(data)


@settings(FAST, max_examples=4000)
@given(mutated(), st.lists(st.integers(1, 40), max_size=10))
@pytest.mark.slow
def test_mutated_frames_decode_to_sent_frames_or_nothing(data, cuts):
    dec = codec.Decoder(accept=">")
    for f in feed_chunks(dec, data, cuts):
        assert f in VALID, f


class _Player:
    def __init__(self):
        self.plans = []

    def take(self, eng):
        for act in eng.actions():
            if act[0] == "play":
                self.plans.append((act[1], act[2]))


@settings(FAST, max_examples=1500)
@given(mutated())
@pytest.mark.slow
def test_no_digit_played_from_corrupted_frame(data):
    t = [0]
    eng = engine.Engine(lambda: t[0], "00000001")
    p = _Player()
    eng.receive(data)
    p.take(eng)
    sent = {(rid, body) for _m, rid, body in VALID}

    for rid, plan in p.plans:
        # the played plan must be exactly the plan of a SEND that was sent intact
        bodies = [b for r, b in sent if r == rid and b.startswith("SEND")]
        assert bodies, rid
        words = bodies[0].split(" ")
        kv, rest = codec.parse_kv(words[1:])
        # defaults are the board's: 100/100, or 60/60 once the intact CONFIG frame ran
        wants = [
            dialstring.compile_plan(
                " ".join(rest),
                kv.get("dialect", "catapult"),
                int(kv.get("tone", d)),
                int(kv.get("gap", d)),
            )
            for d in (100, 60)
        ]
        assert plan in wants
    assert len(eng.output()) < 64 * 1024


WORDS = [
    "SEND", "HELLO", "PING", "STATUS", "RESULT", "CANCEL", "HOOK", "CONFIG", "on", "off",
    "boot=00000001", "boot=ffff", "dialect=gws", "dialect=catapult", "dialect=", "tone=40",
    "tone=5001", "gap=-1", "gap=1e9", "twist=2.5", "level=-8", "level=nan", "twist=inf",
    "1", "123", "1WWW,59#", "*#", "ABCD", "x", "=", "==", "1" * 95, "9" * 92, "tone=", "?",
]  # fmt: skip


@st.composite
def bodies(draw):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
    if draw(st.booleans()):
        words.append(
            draw(
                st.text(
                    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                    min_size=1,
                    max_size=30,
                )
            )
        )
    body = " ".join(words)
    return "".join(ch if ch not in codec.MARKS else "?" for ch in body).strip() or "PING"


@pytest.mark.slow
@settings(FAST, max_examples=1500)
@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3", "a.b", "x" * 40]), bodies()),
                min_size=1, max_size=12))  # fmt: skip
def test_engine_answers_any_framed_request(reqs):
    t = [0]
    eng = engine.Engine(lambda: t[0], "00000001")
    dec = codec.Decoder(accept="<!")
    dec.feed(eng.output())
    rnd = random.Random(len(reqs))
    playing = []
    for rid, body in reqs:
        try:
            frame = codec.encode(">", rid, body)
        except codec.FrameError:
            continue
        eng.receive(frame)
        for act in eng.actions():
            if act[0] == "play":
                playing.append(act[1])
        if playing and rnd.random() < 0.5:
            r = playing.pop(0)
            eng.player_event(("done", r, 0))
        t[0] += rnd.randint(0, 5000)
        eng.tick()
        replies = [f for f in dec.feed(eng.output()) if f[0] == "<"]
        assert [f[1] for f in replies] == [rid], (body, replies)
        assert replies[0][2].startswith(("OK", "ERR"))
    assert len(eng.recent.records) <= engine.WINDOW
    assert len(eng.queue) <= engine.QUEUE_DEPTH
