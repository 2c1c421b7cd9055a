"""Keypad table tests; run under CPython and under real MicroPython."""

from fwtest import raises
from tonebridge_fw import keypad

GRID = (
    ("1", 697, 1209),
    ("2", 697, 1336),
    ("3", 697, 1477),
    ("A", 697, 1633),
    ("4", 770, 1209),
    ("5", 770, 1336),
    ("6", 770, 1477),
    ("B", 770, 1633),
    ("7", 852, 1209),
    ("8", 852, 1336),
    ("9", 852, 1477),
    ("C", 852, 1633),
    ("*", 941, 1209),
    ("0", 941, 1336),
    ("#", 941, 1477),
    ("D", 941, 1633),
)

CODES = {
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 4,
    "5": 5,
    "6": 6,
    "7": 7,
    "8": 8,
    "9": 9,
    "0": 0xA,
    "*": 0xB,
    "#": 0xC,
    "A": 0xD,
    "B": 0xE,
    "C": 0xF,
    "D": 0x0,
}


def test_keys_and_groups():
    assert keypad.KEYS == "123A456B789C*0#D"
    assert keypad.ROW_HZ == (697, 770, 852, 941)
    assert keypad.COL_HZ == (1209, 1336, 1477, 1633)
    assert len(set(keypad.KEYS)) == 16


def test_every_key_frequency_pair():
    for key, lo, hi in GRID:
        assert keypad.freqs(key) == (lo, hi), key
    assert len(GRID) == 16


def test_mt8880_codes_both_ways():
    assert len(keypad.MT8880_CODE) == 16
    for key in keypad.KEYS:
        assert keypad.MT8880_CODE[key] == CODES[key], key
        assert keypad.key_for_code(CODES[key]) == key
    assert sorted(keypad.MT8880_CODE.values()) == list(range(16))


def test_bad_keys_and_codes_are_errors():
    for bad in ("a", "d", "E", "", "12", " ", "w", None, 1):
        e = raises(ValueError, keypad.freqs, bad)
        assert "not a DTMF key" in str(e)
    for bad in (-1, 16, 255, "1", None):
        e = raises(ValueError, keypad.key_for_code, bad)
        assert "not an MT8880 code" in str(e)
    assert keypad.index("D") == 15
