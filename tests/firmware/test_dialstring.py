"""Dial-string dialects -> plans; run under CPython and under real MicroPython."""

from fwtest import raises
from tonebridge_fw import dialstring
from tonebridge_fw.dialstring import (
    DialStringError,
    check_timing,
    compile_plan,
    digits_in,
    plan_ms,
    plan_text,
)

ALL_KEYS = "123A456B789C*0#D"


def test_catapult_seed_examples():
    assert compile_plan("1WWW,59#") == [
        ("1", 100),
        (None, 3500),
        ("5", 100),
        (None, 100),
        ("9", 100),
        (None, 100),
        ("#", 100),
    ]
    p = compile_plan("1Ww2Ww1Ww#", "catapult")
    assert p == [
        ("1", 100),
        (None, 1500),
        ("2", 100),
        (None, 1500),
        ("1", 100),
        (None, 1500),
        ("#", 100),
    ]
    p = compile_plan("9193334444")
    assert plan_text(p) == "9193334444"
    assert digits_in(p) == 10
    assert plan_ms(p) == 10 * 100 + 9 * 100


def test_default_dialect_is_catapult():
    assert dialstring.DEFAULT_DIALECT == "catapult"
    assert compile_plan("1,2") == compile_plan("1,2", "catapult")


def test_catapult_pause_characters():
    assert compile_plan("1,2") == [("1", 100), (None, 500), ("2", 100)]
    assert compile_plan("1w2") == [("1", 100), (None, 500), ("2", 100)]
    assert compile_plan("1W2") == [("1", 100), (None, 1000), ("2", 100)]
    # leading and trailing pauses are silences; no trailing gap after the last tone
    assert compile_plan("W1") == [(None, 1000), ("1", 100)]
    assert compile_plan("1w") == [("1", 100), (None, 500)]
    assert compile_plan(",") == [(None, 500)]
    assert compile_plan("WW,w") == [(None, 3000)]
    assert compile_plan("1") == [("1", 100)]


def test_every_key_in_both_dialects():
    for dialect in ("catapult", "gws"):
        p = compile_plan(ALL_KEYS, dialect)
        assert plan_text(p) == ALL_KEYS
        assert len(p) == 31
        for k in range(len(p)):
            if k % 2:
                assert p[k] == (None, 100)
            else:
                assert p[k] == (ALL_KEYS[k // 2], 100)


def test_gws_has_no_pauses():
    assert compile_plan("5", "gws") == [("5", 100)]
    for c in ",wW":
        e = raises(DialStringError, compile_plan, "12" + c + "3", "gws")
        assert e.position == 2 and e.char == c
        assert str(e) == "invalid character %s at position 2" % repr(c)


def test_lower_case_letters_are_rejected_in_both_dialects():
    for dialect in ("catapult", "gws"):
        for c in "abcd":
            e = raises(DialStringError, compile_plan, "1" + c, dialect)
            assert (e.position, e.char) == (1, c)


def test_invalid_characters_name_character_and_position():
    e = raises(DialStringError, compile_plan, "1234x6")
    assert str(e) == "invalid character 'x' at position 4"
    assert e.position == 4 and e.char == "x"
    assert isinstance(e, ValueError)
    for bad in ("E", "e", " ", "+", "-", "p", "P", "!", ".", ";", "\n", "\x00", "\u00e9", "W\t"):
        text = "12" + bad
        e = raises(DialStringError, compile_plan, text)
        first = 2
        while text[first] in ",wW":
            first += 1
        assert e.position == first, (bad, e.position)
        assert e.char == text[first]
    # the message never carries a raw control character (it goes into protocol frames)
    e = raises(DialStringError, compile_plan, "1\r\n")
    assert "\r" not in str(e) and "\n" not in str(e)
    assert str(e) == "invalid character '\\r' at position 1"


def test_first_bad_character_is_reported():
    e = raises(DialStringError, compile_plan, "1x2y")
    assert e.position == 1 and e.char == "x"


def test_empty_and_non_text():
    e = raises(DialStringError, compile_plan, "")
    assert str(e) == "empty dial string"
    e = raises(DialStringError, compile_plan, "", "gws")
    assert str(e) == "empty dial string"
    raises(DialStringError, compile_plan, None)
    raises(DialStringError, compile_plan, b"123")
    raises(DialStringError, compile_plan, 123)


def test_length_limit_92_in_both_dialects():
    assert dialstring.MAX_LENGTH == 92
    for dialect in ("catapult", "gws"):
        ok = ("0123456789" * 10)[:92]
        assert digits_in(compile_plan(ok, dialect)) == 92
        e = raises(DialStringError, compile_plan, ok + "1", dialect)
        assert str(e) == "dial string too long: 93 characters, at most 92"
        assert e.position == 92
    # pauses count towards the limit in catapult
    assert len(compile_plan("1" + "W" * 90 + "2")) == 3
    raises(DialStringError, compile_plan, "1" + "W" * 91 + "2")


def test_unknown_dialect():
    e = raises(DialStringError, compile_plan, "1", "asterisk")
    assert "unknown dialect 'asterisk'" in str(e)
    assert "catapult" in str(e) and "gws" in str(e)


def test_timing_overrides():
    assert compile_plan("12", tone_ms=40, gap_ms=5000) == [("1", 40), (None, 5000), ("2", 40)]
    assert compile_plan("1,2", tone_ms=5000, gap_ms=40) == [("1", 5000), (None, 500), ("2", 5000)]
    check_timing(40, 40)
    check_timing(5000, 5000)
    e = raises(DialStringError, compile_plan, "12", "catapult", 39, 100)
    assert str(e) == "tone_ms 39 is outside 40-5000 ms"
    e = raises(DialStringError, compile_plan, "12", "catapult", 100, 5001)
    assert str(e) == "gap_ms 5001 is outside 40-5000 ms"
    e = raises(DialStringError, check_timing, 0, 100)
    assert "tone_ms 0" in str(e)
    e = raises(DialStringError, check_timing, 100, -5)
    assert "gap_ms -5" in str(e)
    for bad in (100.0, "100", None, True):
        e = raises(DialStringError, check_timing, bad, 100)
        assert "tone_ms must be a whole number" in str(e)
    assert dialstring.TIMING_MIN_MS == 40 and dialstring.TIMING_MAX_MS == 5000


def test_invalid_string_is_refused_as_a_whole():
    # nothing partial: the error comes before any plan exists
    e = raises(DialStringError, compile_plan, "1" * 50 + "x")
    assert e.position == 50
    # bad timing is refused even for a good string
    raises(DialStringError, compile_plan, "123", "catapult", 10, 100)


def test_plan_helpers():
    p = compile_plan("1WWW,59#")
    assert plan_ms(p) == 100 + 3500 + 100 + 100 + 100 + 100 + 100
    assert digits_in(p) == 4
    assert plan_text(p) == "159#"
    assert plan_ms([]) == 0 and digits_in([]) == 0


def test_non_text_is_refused_with_its_type():
    e = raises(dialstring.DialStringError, dialstring.compile_plan, 123)
    assert str(e) == "dial string must be text, got int"
