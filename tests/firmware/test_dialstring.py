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
    assert str(e) == "unknown dialect 'asterisk' (use catapult, gws or tonebridge)"


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


# ---- the tonebridge dialect: held keys and the configurable pause (issue 15) ---------------


def test_tonebridge_plays_what_catapult_plays():
    for text in ("1WWW,59#", "1Ww2Ww1Ww#", "9193334444", ALL_KEYS, "W1", "1w", ",", "WW,w"):
        assert compile_plan(text, "tonebridge") == compile_plan(text, "catapult"), text
    assert compile_plan("12", "tonebridge", 40, 5000) == [("1", 40), (None, 5000), ("2", 40)]


def test_held_key_is_one_longer_tone_step():
    assert compile_plan("5(2000)", "tonebridge") == [("5", 2000)]
    assert compile_plan("15(2000)#", "tonebridge", 80, 60) == [
        ("1", 80), (None, 60), ("5", 2000), (None, 60), ("#", 80)
    ]  # fmt: skip
    assert compile_plan("W*(40)w#(10000)", "tonebridge") == [
        (None, 1000), ("*", 40), (None, 500), ("#", 10000)
    ]  # fmt: skip
    assert digits_in(compile_plan("5(2000)5(2000)", "tonebridge")) == 2
    assert plan_ms(compile_plan("5(2000)5(2000)", "tonebridge")) == 4100
    assert dialstring.HOLD_MAX_MS == 10000
    for k in ALL_KEYS:
        assert compile_plan(k + "(123)", "tonebridge") == [(k, 123)]


def test_configurable_pause_is_tonebridge_comma_only():
    assert compile_plan("1,2", "tonebridge", pause_ms=2000) == [
        ("1", 100),
        (None, 2000),
        ("2", 100),
    ]
    assert compile_plan("1,,w2", "tonebridge", pause_ms=40) == [("1", 100), (None, 580), ("2", 100)]
    # w and W keep their fixed lengths; catapult's ',' is its document's 500 ms
    assert compile_plan("1wW2", "tonebridge", pause_ms=2000)[1] == (None, 1500)
    assert compile_plan("1,2", "catapult", pause_ms=2000)[1] == (None, 500)
    assert compile_plan("12", "gws", pause_ms=2000)[1] == (None, 100)
    for bad in (39, 5001, 100.0, "500", None, True):
        e = raises(DialStringError, compile_plan, "1,2", "tonebridge", 100, 100, bad)
        assert str(e).startswith("pause_ms "), str(e)
    check_timing(40, 40, 5000)


def test_held_keys_exist_only_in_tonebridge():
    for dialect in ("catapult", "gws"):
        e = raises(DialStringError, compile_plan, "5(2000)", dialect)
        assert str(e) == "invalid character '(' at position 1"
        assert (e.position, e.char) == (1, "(")


def test_held_key_errors_name_the_position():
    cases = (
        ("5(", "held key at position 0 is not closed: ')' expected at position 2", 2, None),
        ("15(200", "held key at position 1 is not closed: ')' expected at position 6", 6, None),
        ("5()", "held key at position 0 has no length, e.g. 5(2000)", 2, ")"),
        ("5(2x)", "invalid character 'x' at position 3 (a held key's length is whole "
         "milliseconds, e.g. 5(2000))", 3, "x"),
        ("5(2.5)", "invalid character '.' at position 3 (a held key's length is whole "
         "milliseconds, e.g. 5(2000))", 3, "."),
        ("5((1))", "invalid character '(' at position 2 (a held key's length is whole "
         "milliseconds, e.g. 5(2000))", 2, "("),
        ("5(10001)", "held key at position 0: 10001 ms is outside 40-10000 ms", 2, "1"),
        ("12#(39)", "held key at position 2: 39 ms is outside 40-10000 ms", 4, "3"),
        ("5(0)", "held key at position 0: 0 ms is outside 40-10000 ms", 2, "0"),
        # one digit past the limit is still read (not stopped at 10000 and let through)
        ("5(100000)", "held key at position 0: 100000 ms is outside 40-10000 ms", 2, "1"),
        # a length within the int range is reported as its number, leading zeros dropped
        ("5(007)", "held key at position 0: 7 ms is outside 40-10000 ms", 2, "0"),
        ("5(99999999999999999999)", "held key at position 0: 99999999999999999999 ms is "
         "outside 40-10000 ms", 2, "9"),
        ("(5)", "'(' at position 0 does not follow a key", 0, "("),
        ("1,(5)", "'(' at position 2 does not follow a key", 2, "("),
        ("5(100)(2)", "'(' at position 6 does not follow a key", 6, "("),
        ("5)", "invalid character ')' at position 1", 1, ")"),
        ("5 (100)", "invalid character ' ' at position 1", 1, " "),
        ("5(-100)", "invalid character '-' at position 2 (a held key's length is whole "
         "milliseconds, e.g. 5(2000))", 2, "-"),
    )  # fmt: skip
    for text, message, pos, char in cases:
        e = raises(DialStringError, compile_plan, text, "tonebridge")
        assert str(e) == message, (text, str(e))
        assert (e.position, e.char) == (pos, char), (text, e.position, e.char)
    # the first problem in the string is the one reported
    e = raises(DialStringError, compile_plan, "1x5(20000)", "tonebridge")
    assert e.position == 1


def test_tonebridge_length_limit_counts_every_character():
    ok = "5(10000)" * 11 + "1234"
    assert len(ok) == 92
    assert plan_ms(compile_plan(ok, "tonebridge")) == 11 * 10000 + 4 * 100 + 14 * 100
    e = raises(DialStringError, compile_plan, ok + "1", "tonebridge")
    assert str(e) == "dial string too long: 93 characters, at most 92"


def test_a_board_that_cannot_hold_refuses_held_keys():
    e = raises(DialStringError, compile_plan, "15(2000)", "tonebridge", hold_max_ms=0)
    assert str(e) == (
        "held key at position 1: this board cannot hold keys (its tones have a fixed length)"
    )
    assert (e.position, e.char) == (2, "(")
    assert compile_plan("15", "tonebridge", hold_max_ms=0) == compile_plan("15", "tonebridge")
    # a smaller limit is reported as the limit
    e = raises(DialStringError, compile_plan, "5(3000)", "tonebridge", hold_max_ms=2000)
    assert str(e) == "held key at position 0: 3000 ms is outside 40-2000 ms"
    e = raises(DialStringError, compile_plan, "5(010000)", "tonebridge", hold_max_ms=5000)
    assert str(e) == "held key at position 0: 10000 ms is outside 40-5000 ms"
    # a board that holds keys only as long as the shortest tone still holds them that long
    assert compile_plan("5(40)", "tonebridge", hold_max_ms=40) == [("5", 40)]
