"""Protocol codec tests; run under CPython and under real MicroPython."""

from fwtest import raises
from tonebridge_fw import codec

FRAMES = [
    (">", "7", "SEND catapult 100 100 1WWW,59#"),
    ("<", "7", "OK state=playing played=0 digits=4 ms=3900"),
    ("!", "7", "START 0 1"),
    ("!", "7", "END 3 #"),
    ("!", "-", "HOOK off"),
    (">", "h3f2a9c01.12", "SEND boot=3fa2c1d0 dialect=catapult tone=100 gap=100 *0#ABCD"),
]


class Lcg:
    def __init__(self, seed):
        self.x = seed

    def next(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


def stream():
    return b"".join(codec.encode(m, i, b) for (m, i, b) in FRAMES)


def test_crc_check_value():
    assert codec.crc16(b"123456789") == 0x29B1
    assert codec.crc16(b"") == 0xFFFF


def test_encode_format():
    f = codec.encode(">", "7", "PING")
    assert f.startswith(b">7 PING *")
    assert f.endswith(b"\n")
    assert len(f) == len(">7 PING *") + 5
    crc = codec.crc16(b">7 PING ")
    assert f[-5:-1] == ("%04X" % crc).encode()


def test_encode_rejects_unframeable():
    raises(codec.FrameError, codec.encode, ">", "7", "A>B")
    raises(codec.FrameError, codec.encode, ">", "7", "A\x03B")
    raises(codec.FrameError, codec.encode, ">", "7", "")
    raises(codec.FrameError, codec.encode, ">", "", "PING")
    raises(codec.FrameError, codec.encode, ">", "a b", "PING")
    raises(codec.FrameError, codec.encode, ">", "x" * 41, "PING")
    raises(codec.FrameError, codec.encode, "?", "7", "PING")
    raises(codec.FrameError, codec.encode, ">", "7", "X" * 300)


def test_clean():
    assert codec.clean("a<b>c!d\x03e\u00e9") == "a?b?c?d?e?"


def test_roundtrip_all_at_once():
    d = codec.Decoder()
    assert d.feed(stream()) == FRAMES
    assert d.pending() == 0
    assert d.dropped == 0


def test_roundtrip_byte_at_a_time():
    d = codec.Decoder()
    got = []
    data = stream()
    for i in range(len(data)):
        got.extend(d.feed(data[i : i + 1]))
    assert got == FRAMES


def test_roundtrip_random_chunks():
    data = stream() * 3
    for seed in range(1, 20):
        rnd = Lcg(seed)
        d = codec.Decoder()
        got = []
        i = 0
        while i < len(data):
            n = 1 + rnd.next(40)
            got.extend(d.feed(data[i : i + n]))
            i += n
        assert got == FRAMES * 3


def test_trailing_partial_is_kept():
    d = codec.Decoder()
    f = codec.encode("<", "9", "OK pong up=5")
    assert d.feed(f + f[:10]) == [("<", "9", "OK pong up=5")]
    assert d.pending() == 10
    assert d.feed(f[10:]) == [("<", "9", "OK pong up=5")]


def test_crlf_accepted():
    f = codec.encode("<", "9", "OK")
    assert codec.Decoder().feed(f[:-1] + b"\r\n") == [("<", "9", "OK")]


def test_lowercase_crc_rejected():
    f = codec.encode("<", "9", "OK")
    lower = f[:-5] + f[-5:].lower()
    if lower != f:
        assert codec.Decoder().feed(lower) == ()


def test_accept_filter():
    d = codec.Decoder(accept=">")
    assert d.feed(codec.encode("<", "1", "OK") + codec.encode(">", "2", "PING")) == [
        (">", "2", "PING")
    ]
    assert d.dropped == 1


def test_every_single_bit_flip_is_rejected():
    f = codec.encode(">", "12", "SEND catapult 100 100 1234")
    for i in range(len(f) - 1):
        for bit in range(8):
            bad = bytearray(f)
            bad[i] ^= 1 << bit
            if bad[i] == 10:
                continue  # became a newline: splits the line; checked below
            got = codec.Decoder().feed(bytes(bad))
            assert got == (), (i, bit, bytes(bad))


def test_flip_to_newline_rejected():
    f = codec.encode(">", "12", "SEND catapult 100 100 1234")
    for i in range(len(f) - 1):
        bad = bytearray(f)
        bad[i] = 10
        assert codec.Decoder().feed(bytes(bad)) == ()


def test_every_truncation_and_deletion_rejected():
    f = codec.encode(">", "12", "SEND catapult 100 100 1234")
    for i in range(len(f) - 1):
        assert codec.Decoder().feed(f[:i] + f[i + 1 :]) == ()
        assert codec.Decoder().feed(f[:i] + b"\n") == ()


def test_micropython_banner_and_traceback_never_parse():
    noise = (
        b"MPY: soft reboot\r\n"
        b"MicroPython v1.24.1 on 2024-11-29; Raspberry Pi Pico with RP2040\r\n"
        b'Type "help()" for more information.\r\n'
        b">>> \r\n>>> import main\r\n"
        b"Traceback (most recent call last):\r\n"
        b'  File "main.py", line 12, in <module>\r\n'
        b'  File "tonebridge_fw/app.py", line 80, in run\r\n'
        b"KeyboardInterrupt: \r\n"
        b">>> \x1b[0m\x04\x03\x03raw REPL; CTRL-B to exit\r\n>OK\x04\x04>"
        b"!7 DONE 4 *----\r\n<7 OK *12\r\n> *0000\n"
    )
    frame = codec.encode("!", "7", "DONE 4")
    for chunk in (1, 3, 64, len(noise)):
        d = codec.Decoder()
        got = []
        data = noise + frame + noise + b">>> " + frame
        i = 0
        while i < len(data):
            got.extend(d.feed(data[i : i + chunk]))
            i += chunk
        assert got == [("!", "7", "DONE 4"), ("!", "7", "DONE 4")], got


def test_frame_after_noise_on_same_line():
    f = codec.encode("<", "3", "OK")
    assert codec.Decoder().feed(b">>> garbage \x1b[1m" + f) == [("<", "3", "OK")]


def test_merged_lines_keep_only_last_frame():
    a = codec.encode("<", "1", "OK")
    b = codec.encode("<", "2", "OK")
    assert codec.Decoder().feed(a[:-1] + b) == [("<", "2", "OK")]


def test_overlong_line_bounded_and_resyncs():
    d = codec.Decoder()
    junk = b"x" * 5000
    assert d.feed(junk) == ()
    assert d.pending() <= d.max_line
    f = codec.encode("<", "4", "OK")
    assert d.feed(b"\n" + f) == [("<", "4", "OK")]
    # junk without newline, then a frame: the frame still decodes
    d2 = codec.Decoder()
    got = d2.feed(junk + f)
    assert got == [("<", "4", "OK")]
    assert d2.pending() == 0


def test_overlong_marked_junk_is_dropped():
    d = codec.Decoder()
    assert d.feed(b">" + b"y" * 2000 + b"\n") == ()
    assert d.pending() == 0
    assert d.feed(codec.encode(">", "5", "PING")) == [(">", "5", "PING")]


def test_max_frame_size():
    body = "B" * (codec.MAX_FRAME - len(">1  *HHHH"))
    f = codec.encode(">", "1", body)
    assert len(f) == codec.MAX_FRAME + 1
    assert codec.Decoder().feed(f) == [(">", "1", body)]
    raises(codec.FrameError, codec.encode, ">", "1", body + "B")


def test_split_and_kv():
    verb, args = codec.split_body("SEND  boot=ab dialect=gws  12#")
    assert verb == "SEND"
    kv, rest = codec.parse_kv(args)
    assert kv == {"boot": "ab", "dialect": "gws"}
    assert rest == ["12#"]
    assert codec.format_kv([("a", 1), ("b", "x")]) == "a=1 b=x"
