"""The DTMF keypad: 16 keys, their row/column frequencies and MT8880 4-bit codes.

Single source of truth for firmware and host (the host imports this module).

          1209 1336 1477 1633 Hz
    697    1    2    3    A
    770    4    5    6    B
    852    7    8    9    C
    941    *    0    #    D
"""

KEYS = "123A456B789C*0#D"
ROW_HZ = (697, 770, 852, 941)
COL_HZ = (1209, 1336, 1477, 1633)

# MT8880 / CM8880 transmit and receive codes (same table both ways): 1-9 -> 1-9,
# 0 -> 0xA, * -> 0xB, # -> 0xC, A -> 0xD, B -> 0xE, C -> 0xF, D -> 0x0.
MT8880_CODE = {
    "1": 0x1,
    "2": 0x2,
    "3": 0x3,
    "4": 0x4,
    "5": 0x5,
    "6": 0x6,
    "7": 0x7,
    "8": 0x8,
    "9": 0x9,
    "0": 0xA,
    "*": 0xB,
    "#": 0xC,
    "A": 0xD,
    "B": 0xE,
    "C": 0xF,
    "D": 0x0,
}

_KEY_FOR_CODE = "D1234567890*#ABC"  # index = 4-bit code


def index(key):
    """Position of `key` in KEYS (0..15); ValueError naming the key if it is not one."""
    if not isinstance(key, str) or len(key) != 1:
        raise ValueError("not a DTMF key: %s" % repr(key))
    i = KEYS.find(key)
    if i < 0:
        raise ValueError("not a DTMF key: %s" % repr(key))
    return i


def freqs(key):
    """(low_hz, high_hz) of a key, e.g. freqs("5") == (770, 1336)."""
    i = index(key)
    return ROW_HZ[i >> 2], COL_HZ[i & 3]


def key_for_code(code):
    """The key an MT8880 4-bit code stands for; ValueError outside 0..15."""
    if not isinstance(code, int) or code < 0 or code > 15:
        raise ValueError("not an MT8880 code: %s" % repr(code))
    return _KEY_FOR_CODE[code]
