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


def test_encode_checks_every_byte_of_the_body_to_its_ends():
    # every byte a body may not hold, first, inside, last and alone, after ids of two lengths
    # (the check runs over the frame's bytes between "<mark><id> " and the final space)
    for rid in ("k", "abc", "h3f2a9c01.12"):
        for bad in ("\x00", "\x1f", "\x7f", "\u00e9", ">", "<", "!"):
            for body in (bad + "AB", "A" + bad + "B", "AB" + bad, bad):
                raises(codec.FrameError, codec.encode, "!", rid, body)
        for ok in ("~", "A", '"', "=", "0"):
            f = codec.encode("!", rid, ok + "B " + ok)
            assert f.startswith(("!" + rid + " " + ok + "B " + ok + " *").encode())
    assert codec.first_bad(b"A>B", 0, 3) == 1
    assert codec.first_bad(b"A>B", 2, 3) == -1
    assert codec.first_bad(b"\x7f", 0, 1) == 0
    assert codec.first_bad(b"", 0, 0) == -1


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


# ---- exact edges (each pins a branch a mutation run found unchecked) ------------------------


def raw(head):
    """A line with a correct CRC over `head`, whatever `head` holds (bypasses encode)."""
    c = codec.crc16(head)
    return head + b"*" + ("%04X" % c).encode()


def test_raw_helper_matches_encode():
    assert raw(b">1 PING ") + b"\n" == codec.encode(">", "1", "PING")


def test_printable_edges_in_encode_and_clean():
    assert codec.encode(">", "1", "A~B").startswith(b">1 A~B ")  # 0x7E is printable
    assert codec.encode(">", "1", " x").startswith(b">1  x ")  # 0x20 too
    for bad in ("\x1f", "\x7f", "\x00"):
        raises(codec.FrameError, codec.encode, ">", "1", "A" + bad)
    assert codec.clean("~ a") == "~ a"
    assert codec.clean("\x1f\x7f>") == "???"


def test_encode_rejects_empty_and_multi_char_marks():
    raises(codec.FrameError, codec.encode, "", "1", "PING")  # "" is "in" any string
    raises(codec.FrameError, codec.encode, "><", "1", "PING")


def test_id_length_edges():
    assert codec.valid_id("x" * codec.MAX_ID) and codec.MAX_ID == 40
    assert not codec.valid_id("x" * (codec.MAX_ID + 1))
    assert not codec.valid_id("")


def test_frame_length_edges():
    assert codec.MAX_FRAME == 256
    body = "B" * (codec.MAX_FRAME - len(">1  *HHHH"))
    line = codec.encode(">", "1", body)[:-1]
    assert len(line) == codec.MAX_FRAME
    assert codec.parse_line(line) == (">", "1", body)
    long = raw(b">1 " + b"B" * (len(body) + 1) + b" ")
    assert len(long) == codec.MAX_FRAME + 1
    assert codec.parse_line(long) is None  # one byte too long, though its CRC is right
    # noise in front does not count against the frame's length
    assert codec.parse_line(b"n" * 60 + line) == (">", "1", body)


def test_parse_line_rejects_crafted_lines_with_good_crcs():
    assert codec.parse_line(raw(b">1 PING ")) == (">", "1", "PING")
    for head in (
        b"X1 PING ",  # no mark at all
        b">1 PI\x01NG ",  # a control character
        b">1 PI\x1fNG ",
        b">1 PI\x7fNG ",
        b">1 PINGX",  # no space before '*'
        b">1  ",  # empty body
        b">1   X ",  # body starts with a space
        b">a#b PING ",  # an id character outside [0-9A-Za-z_.:-]
        b"> PING ",  # no id
        b">\xff1 PING ",  # not ASCII, right after the mark (and not UTF-8: must not raise)
        b">\xc3\xa91 PING ",  # UTF-8 right after the mark
        b">1 PING \xff ",  # not ASCII at the end of the body
    ):
        assert codec.parse_line(raw(head)) is None, head
    assert codec.parse_line(raw(b">1 A~B ")) == (">", "1", "A~B")
    assert codec.parse_line(raw(b">1 A B ")) == (">", "1", "A B")
    assert codec.parse_line(raw(b">1 AB  ")) == (">", "1", "AB ")  # as encode("AB ") frames it


def test_crc_digits_only_0_9_and_upper_A_F():
    # a frame whose CRC has a given digit, written with the neighbouring non-hex character
    def frame_with(digit):
        for i in range(2000):
            line = codec.encode(">", "1", "P" + str(i))[:-1]
            if digit in line[-4:].decode():
                return line
        raise AssertionError("no CRC with " + digit)

    for digit, wrong in (("A", ":"), ("9", "@"), ("0", "/")):
        line = frame_with(digit)
        k = line[-4:].decode().index(digit)
        bad = line[: len(line) - 4 + k] + wrong.encode() + line[len(line) - 3 + k :]
        assert codec.parse_line(line) is not None
        assert codec.parse_line(bad) is None, bad
    # 'G' is not F+1: a last digit 'G' must not read as a carry into the digit before it
    for i in range(5000):
        line = codec.encode(">", "1", "Q" + str(i))[:-1]
        crc = line[-4:].decode()
        if crc[3] == "0" and crc[2] not in "0A":
            prev = "0123456789ABCDEF"["0123456789ABCDEF".index(crc[2]) - 1]
            bad = line[:-2] + (prev + "G").encode()
            assert codec.parse_line(bad) is None, bad
            break
    else:
        raise AssertionError("no CRC ending in 0")


def test_control_byte_is_not_a_newline():
    a = codec.encode(">", "1", "A")[:-1]
    b = codec.encode(">", "2", "B")
    # one line: only its last frame counts (a NUL does not end a line)
    assert codec.Decoder().feed(a + b"\x00" + b) == [(">", "2", "B")]
    assert codec.Decoder().feed(a + b"\r\x00\n") == ()


def test_decoder_counters_exactly():
    d = codec.Decoder()
    assert d.pending() == 0 and d.frames == 0 and d.dropped == 0 and d.overflows == 0
    assert d.feed(b"\n\n\r\n") == ()
    assert d.dropped == 1  # the lone CR is a (bad) line; empty lines are nothing
    assert d.feed(b"noise\n") == () and d.dropped == 2
    assert d.feed(codec.encode(">", "1", "A")) == [(">", "1", "A")]
    assert d.frames == 1 and d.dropped == 2
    assert d.feed(codec.encode("<", "1", "A")) == [("<", "1", "A")] and d.frames == 2
    d2 = codec.Decoder(accept=">")
    d2.feed(codec.encode("<", "1", "A"))
    assert d2.frames == 0 and d2.dropped == 1


def test_reset_clears_a_partial_line():
    d = codec.Decoder()
    d.feed(b"junk without end")
    d.reset()
    assert d.pending() == 0
    assert d.feed(b"noise\n") == () and d.dropped == 1
    assert d.feed(codec.encode(">", "9", "X")) == [(">", "9", "X")]


def test_overflow_keeps_the_frame_after_the_last_mark():
    for mark in "><!":
        for junk in (400, 700, 1000):
            d = codec.Decoder()
            f = codec.encode(mark, "4", "OK")
            assert d.feed(b"x" * junk + f) == [(mark, "4", "OK")], (mark, junk)
            assert d.overflows >= 1 and d.pending() == 0
    # the buffer holds MAX_FRAME + 64 bytes: a line that just fits never overflows
    d = codec.Decoder()
    f = codec.encode(">", "5", "OK")
    fill = codec.MAX_FRAME + 64 - (len(f) - 1)
    assert d.feed(b"y" * fill + f) == [(">", "5", "OK")] and d.overflows == 0
    d = codec.Decoder()
    assert d.feed(b"y" * (fill + 1) + f) == [(">", "5", "OK")] and d.overflows == 1


def test_overflow_without_a_mark_drops_the_line_quietly():
    d = codec.Decoder()
    junk = bytes(b for b in range(0x20, 0x7F) if b not in (0x3C, 0x3E, 0x21)) * 5
    assert d.feed(junk) == ()
    assert d.pending() == 0 and d.overflows == 1
    assert d.feed(b"\n") == ()
    assert d.dropped == 0  # skipped, not parsed
    assert d.feed(codec.encode("!", "-", "X")) == [("!", "-", "X")]


def test_a_frame_read_after_overlong_junk_on_its_line_is_decoded():
    # noise longer than the buffer with no mark (a board's boot chatter), then, in a later
    # read and still on the same line, a frame: the frame starts at its mark and is decoded
    for mark in "><!":
        d = codec.Decoder()
        assert d.feed(b"z" * 400) == () and d.overflows == 1
        f = codec.encode(mark, "8", "OK")
        assert d.feed(b"zz" + f) == [(mark, "8", "OK")], mark
        assert d.pending() == 0 and d.dropped == 0


def test_the_decoders_buffer_stays_bounded_over_many_frames():
    # buffering is bounded: a decoder that has read 300 frames (~30 kB, in pieces) holds no
    # more than one that has read one (on a board, growth ends in a MemoryError), nor less (a
    # shrunk buffer fails the first line that must be stored byte by byte). Measured with
    # CPython's tracemalloc; the WebAssembly port's gc.collect() frees nothing mid-script, so
    # there only the frames are checked.
    try:
        import tracemalloc
    except ImportError:
        tracemalloc = None
    if tracemalloc is not None:
        tracemalloc.start()
    try:
        d = codec.Decoder(accept=">")
        f = codec.encode(">", "r1", "SEND tone=60 gap=60 " + "1" * 60)
        assert d.feed(f) == [(">", "r1", "SEND tone=60 gap=60 " + "1" * 60)]
        before = tracemalloc.get_traced_memory()[0] if tracemalloc is not None else 0
        for _ in range(300):
            got = d.feed(f[:40])
            got = d.feed(f[40:])
        del got
        grew = tracemalloc.get_traced_memory()[0] - before if tracemalloc is not None else 0
    finally:
        if tracemalloc is not None:
            tracemalloc.stop()
    assert d.frames == 301 and d.dropped == 0
    assert grew < 4000, grew
    # and it still holds a whole buffer: an overlong line keeps the frame after its last mark
    want = [(">", "r1", "SEND tone=60 gap=60 " + "1" * 60)]
    assert d.feed(b"x" * 400 + f) == want and d.overflows == 1


def test_overflow_with_a_mark_at_the_very_start_is_dropped():
    d = codec.Decoder()
    assert d.feed(b">" + b"z" * 400) == ()
    assert d.pending() == 0 and d.overflows == 1


def test_overflow_keeps_exactly_the_tail_from_the_last_mark():
    d = codec.Decoder()
    d.feed(b"q" * 315 + b"<7 partial")  # overflows while the partial frame is in the buffer
    assert d.pending() == len(b"<7 partial")
    assert d.feed(b" more *0000\n") == ()  # (wrong CRC)
    assert d.dropped == 1


def test_parse_kv_edges():
    assert codec.parse_kv(["a=1", "b=", "x"]) == ({"a": "1", "b": ""}, ["x"])
    assert codec.parse_kv(["=x", "a=1"]) == ({}, ["=x", "a=1"])  # no key: not an option
    assert codec.parse_kv([]) == ({}, [])


def test_a_trailing_control_byte_is_not_a_carriage_return():
    a = codec.encode(">", "1", "A")[:-1]
    assert codec.Decoder().feed(a + b"\x00\n") == ()
    assert codec.Decoder().feed(a + b"\r\n") == [(">", "1", "A")]


def test_a_line_without_a_mark_is_never_a_frame():
    head = b"Q1 PING "  # what follows a non-mark first byte looks like a frame to a sloppy parser
    line = b"?" + head + b"*" + ("%04X" % codec.crc16(head)).encode()
    assert codec.parse_line(line) is None


def test_overflow_when_the_last_byte_in_the_buffer_is_the_mark():
    cap = codec.MAX_FRAME + 64
    f = codec.encode(">", "3", "OK")
    d = codec.Decoder()
    assert d.feed(b"j" * (cap - 1) + f) == [(">", "3", "OK")]
    assert d.overflows == 1


def test_overflow_keeps_a_mark_near_the_start():
    cap = codec.MAX_FRAME + 64
    d = codec.Decoder()
    d.feed(b"x>" + b"y" * (cap - 2) + b"z")  # the only mark at index 1 when it overflows
    assert d.overflows == 1 and d.pending() == cap  # kept from the mark: cap - 1, plus 'z'
    d = codec.Decoder()
    d.feed(b"x" * 10 + b"<7 " + b"y" * (cap - 13) + b"z")  # a mark in the first half
    assert d.overflows == 1 and d.pending() == cap - 10 + 1
