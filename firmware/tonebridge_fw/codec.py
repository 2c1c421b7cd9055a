# tonebridge serial protocol codec (sans-I/O), shared by the firmware and the host.
#
# A frame is one line of printable ASCII (0x20-0x7E):
#
#     <mark><id> <body> *<crc>\n
#
#   mark  '>' request (host -> board), '<' reply, '!' event (board -> host)
#   id    1-40 characters of [0-9A-Za-z_.:-]; "-" on events that belong to no request
#   body  printable ASCII that never contains a mark character ('>', '<', '!'); a dial
#         string's '!' (the tonebridge dialect's hook flash) is written FLASH_WIRE '^' there
#         (dial_to_wire / dial_from_wire; '^' is no dial-string character in any dialect)
#   crc   CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) as 4 uppercase hex digits, over
#         every byte from the mark up to and including the space before '*'
#
# '\r' before '\n' is ignored.  A line with any other byte outside 0x20-0x7E, a line
# longer than MAX_FRAME, or a line whose CRC does not match is dropped as a whole.
# Text before the last mark on a line is ignored (stray output, REPL prompts), so a
# frame always starts at the last mark of its line.  See docs/protocol.md.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


PROTOCOL_VERSION = const(1)
MAX_FRAME = const(256)  # bytes from the mark to the last CRC digit, newline excluded
MAX_ID = const(40)
NO_ID = "-"

REQUEST = ">"
REPLY = "<"
EVENT = "!"
MARKS = "><!"

_NONE = ()
_NL = const(10)
_CR = const(13)
_STAR = const(42)
_SP = const(32)

_ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_.:-"
_HEX = "0123456789ABCDEF"


FLASH_WIRE = "^"


def dial_to_wire(text):
    """A dial string (or a key) as a frame body carries it: '!' -> FLASH_WIRE."""
    return text.replace("!", FLASH_WIRE)


def dial_from_wire(text):
    """The dial string (or key) a frame body carries: FLASH_WIRE -> '!'."""
    return text.replace(FLASH_WIRE, "!")


class FrameError(ValueError):
    """Our own misuse: a frame we were asked to encode is not encodable."""


def _make_table():
    t = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            if c & 0x8000:
                c = ((c << 1) ^ 0x1021) & 0xFFFF
            else:
                c = (c << 1) & 0xFFFF
        t.append(c)
    return tuple(t)


_TABLE = _make_table()


def crc16_portable(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of bytes-like `data` (check value of b"123456789" is 0x29B1)."""
    t = _TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ t[((crc >> 8) ^ b) & 0xFF]
    return crc


def first_bad_portable(data, p, q):
    """Index of the first byte in data[p:q] that may not stand in a frame body (a control
    character, non-ASCII, or a mark), or -1."""
    for i in range(p, q):
        o = data[i]
        if o < 0x20 or o > 0x7E or o == 62 or o == 60 or o == 33:  # '>' '<' '!'
            return i
    return -1


def last_mark_portable(data, p, q):
    """Index of the last mark ('>' '<' '!') in data[p:q], or -1."""
    i = q - 1
    while i >= p:
        b = data[i]
        if b == 62 or b == 60 or b == 33:
            return i
        i -= 1
    return -1


def find_byte_portable(data, p, q, c):
    """Index of the first byte c in data[p:q], or -1."""
    for i in range(p, q):
        if data[i] == c:
            return i
    return -1


def _kernels():
    """frame_viper's kernels where the port compiles viper and they give the portable loops'
    results, else the portable loops (CPython: the host and the simulator; WebAssembly)."""
    try:
        from tonebridge_fw import frame_viper

        frame_viper.init(_TABLE)
        if frame_viper.selftest(
            crc16_portable, first_bad_portable, last_mark_portable, find_byte_portable
        ):
            return (
                frame_viper.crc16,
                frame_viper.first_bad,
                frame_viper.last_mark,
                frame_viper.find_byte,
            )
    except Exception:
        pass
    return crc16_portable, first_bad_portable, last_mark_portable, find_byte_portable


crc16, first_bad, last_mark, find_byte = _kernels()


def _hex4(n):
    return _HEX[(n >> 12) & 15] + _HEX[(n >> 8) & 15] + _HEX[(n >> 4) & 15] + _HEX[n & 15]


def valid_id(rid):
    if not isinstance(rid, str) or not 1 <= len(rid) <= MAX_ID:
        return False
    for ch in rid:
        if ch not in _ID_CHARS:
            return False
    return True


def clean(text):
    """Make arbitrary text safe for a frame body: marks and non-printables become '?'."""
    out = []
    for ch in str(text):
        o = ord(ch)
        if o < 0x20 or o > 0x7E or ch in MARKS:
            out.append("?")
        else:
            out.append(ch)
    return "".join(out)


def encode(mark, rid, body):
    """Return the frame bytes (newline included) for `mark` ('>', '<' or '!'), `rid`, `body`.

    Raises FrameError if the id or body cannot be framed; use clean() on free text first.
    """
    if mark not in MARKS or len(mark) != 1:
        raise FrameError("bad mark")
    if not valid_id(rid):
        raise FrameError("bad id")
    if not body:
        raise FrameError("empty body")
    raw = (mark + rid + " " + body + " ").encode()
    n = len(raw)
    # the body's bytes (after "<mark><id> ", before the final space) are checked, not its
    # characters: a loop over the str makes a 1-character string per character (on an RP2040
    # ~4 ms and garbage for the collector per event frame). A character outside ASCII encodes
    # to bytes >= 0x80, refused all the same.
    if first_bad(raw, len(rid) + 2, n - 1) >= 0:
        raise FrameError("body has a mark or control character")
    if n + 5 > MAX_FRAME:
        raise FrameError("frame too long")
    return raw + b"*" + _hex4(crc16(raw)).encode() + b"\n"


def parse_line(line):
    """Parse one line (bytes, no newline) into (mark, id, body) or return None.

    The frame is taken from the last mark on the line; anything before it is noise.
    """
    n = len(line)
    if n and line[n - 1] == _CR:
        n -= 1
    if n < 9:  # shortest: ">1 X *HHHH"
        return None
    start = last_mark(line, 0, n)
    if start < 0 or n - start < 9 or n - start > MAX_FRAME:
        return None
    if line[n - 6] != _SP or line[n - 5] != _STAR:
        return None
    got = 0
    for j in range(n - 4, n):
        b = line[j]
        if 48 <= b <= 57:
            v = b - 48
        elif 65 <= b <= 70:
            v = b - 55
        else:
            return None
        got = (got << 4) | v
    # every byte from the mark to the '*' printable: the mark is, and after the last mark the
    # only bytes first_bad refuses are the non-printable ones
    if first_bad(line, start + 1, n - 4) >= 0:
        return None
    head = line[start : n - 5]
    if crc16(head) != got:
        return None
    text = bytes(head).decode()
    sp = text.find(" ")
    if sp < 2:
        return None
    rid = text[1:sp]
    body = text[sp + 1 : -1]
    if not valid_id(rid) or not body or body[0] == " ":
        return None
    return (text[0], rid, body)


class Decoder:
    """Incremental frame decoder.  feed(bytes) -> frames: a list of (mark, id, body), or an
    empty tuple when no frame completed (so the idle path allocates nothing).

    Buffering is bounded (MAX_FRAME plus room for noise in front of a frame): when a
    line outgrows the buffer, only the part from its last mark is kept, or the line is
    dropped up to its newline.  `accept` limits the marks returned (the board accepts
    only '>', the host only '<' and '!').  Counters: frames, dropped (lines that were
    not a valid frame), overflows.
    """

    def __init__(self, accept=MARKS, max_frame=MAX_FRAME):
        self.accept = accept
        self.max_line = max_frame + 64
        self._buf = bytearray(self.max_line)
        self._n = 0
        self._skip = False  # current line overflowed without a mark; drop up to newline
        self.frames = 0
        self.dropped = 0
        self.overflows = 0

    def reset(self):
        self._n = 0
        self._skip = False

    def pending(self):
        return self._n

    def _overflow(self):
        buf = self._buf
        n = self._n
        k = n - 1
        while k > 0:
            b = buf[k]
            if b == 62 or b == 60 or b == 33:
                break
            k -= 1
        self.overflows += 1
        if k <= 0:
            self._n = 0
            self._skip = True
            return
        m = n - k
        buf[0:m] = buf[k:n]
        self._n = m

    def feed(self, data):
        out = None  # allocated only when a frame arrives
        buf = self._buf
        cap = self.max_line
        n = len(data)
        i = 0
        while i < n:
            # a run of bytes up to the next newline (or the end) that fits the buffer is copied
            # whole (byte by byte on a board: ~20 us a byte); what does not fit, or a line being
            # skipped, goes through the byte loop
            k = find_byte(data, i, n, _NL)
            e = n if k < 0 else k
            m = e - i
            if m and not self._skip and self._n + m <= cap:
                buf[self._n : self._n + m] = data[i:e]
                self._n += m
                i = e
            if i < n:
                out = self._bytes(data, i, n if k < 0 else k + 1, out)
                i = n if k < 0 else k + 1
        if out is None:
            return _NONE
        return out

    def _bytes(self, data, i, j, out):
        buf = self._buf
        cap = self.max_line
        for x in range(i, j):
            b = data[x]
            if b == _NL:
                if self._n and not self._skip:
                    f = parse_line(memoryview(buf)[: self._n])
                    if f is None:
                        self.dropped += 1
                    elif f[0] in self.accept:
                        self.frames += 1
                        if out is None:
                            out = []
                        out.append(f)
                    else:
                        self.dropped += 1
                self._n = 0
                self._skip = False
                continue
            if self._skip:
                if b == 62 or b == 60 or b == 33:
                    self._skip = False
                else:
                    continue
            if self._n >= cap:
                self._overflow()
                if self._skip:
                    continue
            buf[self._n] = b
            self._n += 1
        return out


def split_body(body):
    """Split a body into (verb, args list)."""
    parts = body.split(" ")
    words = []
    for p in parts:
        if p:
            words.append(p)
    if not words:
        return "", []
    return words[0], words[1:]


def parse_kv(words):
    """Split leading key=value words from the rest: ({key: value}, rest_words)."""
    kv = {}
    i = 0
    while i < len(words):
        w = words[i]
        eq = w.find("=")
        if eq <= 0:
            break
        kv[w[:eq]] = w[eq + 1 :]
        i += 1
    return kv, words[i:]


def format_kv(pairs):
    """Format a list of (key, value) pairs as 'k=v k=v'."""
    out = []
    for k, v in pairs:
        out.append(k + "=" + str(v))
    return " ".join(out)
