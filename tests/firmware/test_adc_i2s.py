"""The ESP32 receive path (backends/adc_i2s.py) against a machine.I2S double with the esp32
port's non-blocking RX semantics (runs under CPython and MicroPython): the I2S configuration it
asks for, the chunks it hands the port, the 12-bit codes it makes of the signed samples, the
ring's pieces and wrap, what it counts lost when not polled, stop/start, and that the handler
and poll() allocate nothing. The line itself is checked on the simulated PCM1860 in
tests/sim_i2s and tests/sim."""

from tonebridge_fw.backends import adc_i2s
from tonebridge_fw.backends.adc_i2s import CHUNK, RING_SAMPLES, I2sEar


class Pin:
    def __init__(self, pin_id):
        self.id = pin_id


class I2S:
    """machine.I2S RX, non-blocking: readinto() records the buffer and returns at once; the
    test plays the port, which fills it (with signed 16-bit samples) and runs the handler."""

    TX = 5  # values unlike MONO/STEREO, so a mixed-up constant shows
    RX = 4
    MONO = 0
    STEREO = 1
    made = []

    def __init__(self, i2s_id, **kw):
        self.id = i2s_id
        self.inits = []
        self.closed = False
        self.handler = None
        self.pending = None
        self.next = 0  # the next sample value the "ADC" gives
        I2S.made.append(self)
        self.init(**kw)

    def init(self, sck, ws, sd, mode, bits, format, rate, ibuf):
        self.inits.append((sck.id, ws.id, sd.id, mode, bits, format, rate, ibuf))
        self.closed = False
        self.handler = None  # as the port: init() leaves blocking mode

    def irq(self, handler):
        self.handler = handler

    def readinto(self, buf):
        assert not self.closed, "readinto after deinit"
        assert self.handler is not None, "a blocking read would stall the main loop"
        assert self.pending is None, "readinto while a read is in flight"
        self.pending = buf
        return 2 * len(buf)

    def deinit(self):
        self.closed = True
        self.pending = None

    def fill(self):
        """The port filled the buffer in flight (sample values counting up from self.next,
        as signed 16-bit: -2048, -2047, ...) and runs the handler."""
        buf = self.pending
        self.pending = None
        for i in range(len(buf)):
            buf[i] = (self.next - 2048) & 0xFFFF
            self.next += 1
        self.handler(self)


PROFILE = {"mcu": "esp32", "rx_i2s": 1, "rx_sck_pin": 18, "rx_ws_pin": 19, "rx_sd_pin": 35}


def make(**over):
    I2S.made = []
    prof = dict(PROFILE)
    prof.update(over)
    return I2sEar(prof, i2s_class=I2S, pin_class=Pin)


class Taker:
    def __init__(self):
        self.got = []
        self.pieces = []

    def __call__(self, buf, start, count):
        self.pieces.append((start, count))
        for i in range(start, start + count):
            self.got.append(buf[i])


def code(k):
    """The 12-bit code of sample number k of the double (signed k - 2048)."""
    return (((k - 2048) & 0xFFFF) ^ 0x8000) >> 4


def test_i2s1_opened_in_rx_as_the_profile_says_only_when_started():
    ear = make()
    assert I2S.made == [] and ear.rate == 8000
    ear.start()
    (i2s,) = I2S.made
    assert i2s.id == 1
    assert i2s.inits == [(18, 19, 35, I2S.RX, 16, I2S.MONO, 8000, adc_i2s.IBUF)]
    assert i2s.handler is not None and len(i2s.pending) == CHUNK
    ear = make(rx_i2s=0, rx_rate=16000)
    ear.start()
    assert I2S.made[-1].id == 0 and I2S.made[-1].inits[0][6] == 16000 and ear.rate == 16000


def test_codes_in_order_in_bounded_pieces_across_the_wrap():
    ear = make()
    ear.start()
    i2s = I2S.made[0]
    t = Taker()
    total = 0
    for _ in range(3 * RING_SAMPLES // CHUNK):  # three laps, polled every chunk in 2 pieces
        i2s.fill()
        while True:
            n = ear.poll(t, 100)
            total += n
            if not ear.backlog:
                break
    assert total == 3 * RING_SAMPLES and ear.samples == total and ear.lost == 0
    assert t.got == [code(k) for k in range(total)]
    assert max(c for _, c in t.pieces) <= 100
    # a poll that spans the ring's end hands two pieces: the end, then the start
    for _ in range(RING_SAMPLES // CHUNK - 1):
        i2s.fill()
        ear.poll(t)
    i2s.fill()
    i2s.fill()
    t.pieces = []
    assert ear.poll(t) == 2 * CHUNK
    assert t.pieces == [(RING_SAMPLES - CHUNK, CHUNK), (0, CHUNK)]
    assert ear.poll(t) == 0


def test_a_loop_that_does_not_poll_loses_the_oldest_and_counts_them():
    ear = make()
    ear.start()
    i2s = I2S.made[0]
    for _ in range(RING_SAMPLES // CHUNK + 3):  # 11 chunks: more than the ring holds
        i2s.fill()
    t = Taker()
    n = ear.poll(t)
    keep = RING_SAMPLES - CHUNK  # the chunk the port is filling now is not readable
    assert n == keep and ear.lost == 11 * CHUNK - keep
    assert t.got == [code(k) for k in range(11 * CHUNK - keep, 11 * CHUNK)]


def test_stop_deinits_and_start_reinits_the_same_object():
    ear = make()
    ear.start()
    i2s = I2S.made[0]
    i2s.fill()
    ear.stop()
    assert i2s.closed and ear.poll(Taker()) == 0
    ear.stop()  # twice: nothing more
    ear.start()
    assert I2S.made == [i2s] and len(i2s.inits) == 2 and not i2s.closed
    assert i2s.handler is not None and i2s.pending is not None
    i2s.fill()
    t = Taker()
    assert ear.poll(t) == CHUNK and ear.samples == CHUNK and ear.lost == 0
    assert t.got == [code(k) for k in range(CHUNK, 2 * CHUNK)]
    ear.close()
    assert i2s.closed


def test_a_late_handler_after_stop_hands_nothing_over():
    ear = make()
    ear.start()
    i2s = I2S.made[0]
    buf = i2s.pending
    ear.stop()
    i2s.pending = buf
    i2s.closed = False
    i2s.fill()  # the port ran the handler once more (scheduled before deinit)
    assert i2s.pending is None  # no new read handed over


def test_handler_and_poll_allocate_nothing():
    try:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    except (ImportError, AttributeError):
        return  # CPython: the MicroPython run of this test is the proof
    ear = make()
    ear.start()
    i2s = I2S.made[0]
    bufs = ear._chunks
    got = [0]

    def take(buf, start, count):
        got[0] += count

    i2s.fill()
    ear.poll(take)
    lock()
    try:
        for _ in range(20):
            b = i2s.pending
            i2s.pending = None
            i2s.handler(i2s)  # the port's scheduled callback (the buffer left as it was)
            ear.poll(take, 100)
            ear.poll(take, 100)
    finally:
        unlock()
    assert got[0] == 21 * CHUNK and b in bufs
