"""The simulated machine.I2S in RX mode (sim/i2s_rx.py) and the firmware's ESP32 receive path on
it (firmware/tonebridge_fw/backends/adc_i2s.py): frames clocked from init, DMA buffers handed
over as they complete, a full queue dropping the oldest; the ear's ring, its 12-bit codes, and
the samples it counts lost when the main loop does not poll."""

from array import array

import numpy as np
from tonebridge.sim.clock import VirtualClock
from tonebridge.sim.i2s import make_i2s_class
from tonebridge.sim.line_recorder import LineRecorder
from tonebridge.sim.pinbus import PinBus
from tonebridge_fw.backends import adc_i2s

FS_PEAK = 2.1 * np.sqrt(2)  # PCM1860 full scale
RATE = 8000


def ramp(t_us):
    """A source whose value tells the instant it was sampled at: 0.1 mV a sample period."""
    return np.asarray(t_us) / 125.0 * 1e-4


def make(source=ramp):
    clock = VirtualClock()
    bus = PinBus(clock)
    I2S = make_i2s_class(clock, LineRecorder(), {"mcu": "esp32"}, bus=bus, rx_source=source)
    return clock, I2S


def rx(I2S, **kw):
    args = dict(sck=18, ws=19, sd=35, mode=I2S.RX, bits=16, format=I2S.MONO, rate=RATE)
    args.update(kw)
    return I2S(1, ibuf=8192, **args) if "ibuf" not in kw else I2S(1, **args)


def expect16(k):
    """The 16-bit sample the ADC model gives for frame k of the ramp."""
    v = np.asarray(k) * 1e-4
    return (np.round(v / FS_PEAK * (1 << 23)).astype(np.int64) << 8) >> 16


def test_blocking_reads_wait_for_the_dma_and_get_every_frame_in_order():
    clock, I2S = make()
    i2s = rx(I2S)
    buf = array("h", bytes(2 * 600))
    assert i2s.readinto(buf) == 1200
    # 600 frames need three 256-frame DMA buffers: the read returns when the third completes
    assert clock.now_us() == 3 * 256 * 125
    assert list(buf) == list(expect16(np.arange(600)))
    buf2 = array("h", bytes(2 * 100))
    i2s.readinto(buf2)  # the rest of the third buffer: no wait
    assert clock.now_us() == 3 * 256 * 125
    assert list(buf2) == list(expect16(np.arange(600, 700)))


def test_a_full_queue_drops_the_oldest_buffer():
    clock, I2S = make()
    i2s = rx(I2S, ibuf=4096)  # 2 DMA buffers
    clock.advance_us(5 * 256 * 125 + 10)  # 5 completed, nobody read
    assert i2s._rx.dropped_frames == 3 * 256
    buf = array("h", bytes(2 * 10))
    i2s.readinto(buf)
    assert list(buf) == list(expect16(np.arange(768, 778)))


def test_nonblocking_reads_call_the_handler_once_filled():
    clock, I2S = make()
    i2s = rx(I2S)
    done = []
    bufs = [array("h", bytes(2 * 128)) for _ in range(4)]

    def handler(port):
        done.append(clock.now_us())
        if len(done) < 4:
            port.readinto(bufs[len(done)])

    i2s.irq(handler)
    assert i2s.readinto(bufs[0]) == 256  # at once
    assert done == []
    clock.advance_us(2 * 256 * 125 + 10)
    # the first DMA buffer fills two chunks, the second two more
    assert done == [256 * 125, 256 * 125, 512 * 125, 512 * 125]
    got = np.concatenate([np.array(b) for b in bufs])
    assert list(got) == list(expect16(np.arange(512)))


def test_the_ear_hands_out_12_bit_codes_in_order_and_counts_what_it_lost():
    clock, I2S = make()

    class Pin:
        def __init__(self, n):
            self.n = n

        def id(self):
            return self.n

    prof = {"rx_i2s": 1, "rx_sck_pin": 18, "rx_ws_pin": 19, "rx_sd_pin": 35}
    ear = adc_i2s.I2sEar(prof, i2s_class=I2S, pin_class=Pin)
    got = []

    def take(buf, start, count):
        got.extend(buf[start : start + count])

    ear.start()
    clock.advance_us(100_000)  # 3 DMA buffers: 768 frames, 6 chunks
    assert ear.poll(take, 160) == 160 and ear.backlog == 768 - 160
    while ear.backlog:
        ear.poll(take, 160)
    want = ((expect16(np.arange(768)) & 0xFFFF) ^ 0x8000) >> 4
    assert got == list(want) and ear.lost == 0 and ear.samples == 768
    # a main loop that does not poll for 300 ms: the ring (128 ms) loses the oldest
    clock.advance_us(300_000)
    got.clear()
    n = ear.poll(take)
    assert ear.lost > 0 and n == adc_i2s.RING_SAMPLES - adc_i2s.CHUNK
    first = 768 + ear.lost
    want = ((expect16(np.arange(first, first + n)) & 0xFFFF) ^ 0x8000) >> 4
    assert got == list(want)  # what is left is contiguous and the newest
    ear.stop()
    clock.advance_us(50_000)
    assert ear.poll(take) == 0
    k0 = clock.now_us() / 125
    ear.start()  # again: the same I2S object, re-initialised; frames from the new t0
    clock.advance_us(40_000)
    got.clear()
    assert ear.poll(take) == 256 and ear.lost == 0
    assert got == list(((expect16(k0 + np.arange(256)) & 0xFFFF) ^ 0x8000) >> 4)


def test_a_board_whose_adc_runs_at_16_khz_still_verifies_its_digits():
    from tonebridge.sim import SimBoard, VirtualClock, play_on_board

    with SimBoard("esp32-i2s", VirtualClock(), config={"rx_rate": 16000}) as sb:
        res = play_on_board(sb, "5#9", "catapult", 40, 40, lead_ms=30)
        ev = [f[3] for f in res["frames"] if f[1] == "!"]
        assert [e.split()[2] for e in ev if e.startswith("HEARD")] == ["5", "#", "9"]
        assert ev[-1] == "DONE 3 verified=3"
        (rx,) = [i for i in sb.modules["machine"].I2S.instances if i.mode == i.RX]
        assert rx.rate == 16000
