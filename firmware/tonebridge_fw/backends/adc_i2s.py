# ESP32 receive path: the line sense into an I2S ADC (PCM1860, hw/line-interface.md) on the
# ESP32's second I2S peripheral in RX mode, its samples clocked by the I2S peripheral (the
# ADC's frame clock is the ESP32's WS; the port's DMA moves them), never by a Python loop.
#
#   ear = I2sEar(profile)    # "rx_i2s": I2S id (1), "rx_sck_pin", "rx_ws_pin", "rx_sd_pin",
#                            # "rx_rate" (default 8000 Hz; the receiver takes any rate)
#   ear.start()              # the I2S RX channel and its DMA run; no CPU per sample
#   ear.poll(fn, limit)      # fn(buf, start, count) for the samples that arrived since the
#                            # last poll (one or two pieces: the ring wraps), at most `limit`
#                            # of them (0: all); returns the count; ear.backlog: those left
#   ear.stop()
#   ear.volts_per_code       # at the ADC's input, of the codes handed to fn
#
# The same interface as backends/adc_rp2.py (listen.py drives both), and the same codes:
# unsigned 12-bit, mid-scale 2048 (so dtmf_rx.Receiver and callprogress.Detector run as on
# an rp2 board, with the same floor in codes).
#
# MicroPython's machine.I2S (esp32 port, ports/esp32/machine_i2s.c): RX always runs the DMA in
# 32-bit stereo frames (256 frames a DMA buffer, ibuf // 2048 of them: IBUF 8192 = 4 buffers,
# 128 ms at 8 kHz); readinto() of a 16-bit MONO buffer gets the top 16 bits of one slot a
# frame (the sense feeds both of the ADC's inputs, so either slot is the line). Non-blocking
# mode (irq set): readinto(buf) returns at once, the port fills buf from the DMA buffers as
# they complete and then schedules the handler (micropython.schedule: a soft callback between
# bytecodes of the main loop). The ring here is NCHUNK chunks of CHUNK samples: the handler
# converts the chunk just filled to offset-binary 12-bit codes in place ((s ^ 0x8000) >> 4, a
# viper loop where the port has one: pcm_viper.py) and hands the port the next chunk. It
# allocates nothing (the chunks' memoryviews and the bound handler are made once).
# Single writers: the handler only advances `_w`, poll() only `_r` (both in samples, modulo
# 2**16), so a handler that runs in the middle of a poll() loses nothing. A main loop that does
# not poll for longer than the ring holds (RING_SAMPLES - CHUNK: 112 ms) loses the oldest
# samples; poll() counts them in `lost` (and the receiver's clock slips by as much, as on rp2).

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from array import array

RATE = const(8000)
CHUNK = const(128)  # samples a readinto: 16 ms at 8 kHz
NCHUNK = const(8)
RING_SAMPLES = const(1024)  # CHUNK * NCHUNK: 128 ms at 8 kHz
IBUF = const(8192)  # the port's DMA memory: 4 DMA buffers of 256 32-bit stereo frames
_MASK = const(0xFFFF)
# PCM1860 (hardware-controlled PCM186x): full scale 2.1 Vrms at its inputs (0 dB PGA); the
# 16-bit codes >> 4 -> 12-bit codes: 2.97 V peak / 2048 codes
FULL_SCALE_V = 2.1 * 1.4142135623730951
VOLTS_PER_CODE = FULL_SCALE_V / 2048


def to_codes(buf, start, count):
    """Signed 16-bit samples buf[start:start+count] (read as unsigned) -> unsigned 12-bit
    codes in place (portable: CPython, the simulator, ports without viper)."""
    for i in range(start, start + count):
        buf[i] = (buf[i] ^ 0x8000) >> 4


def _kernel():
    try:
        from tonebridge_fw import pcm_viper

        if pcm_viper.selftest(to_codes):
            return pcm_viper.to_codes
    except Exception:
        pass
    return to_codes


class I2sEar:
    def __init__(self, profile, rate=RATE, i2s_class=None, pin_class=None):
        if i2s_class is None or pin_class is None:
            import machine

            i2s_class = i2s_class or machine.I2S
            pin_class = pin_class or machine.Pin
        self._I2S = i2s_class
        self._pins = (
            pin_class(profile["rx_sck_pin"]),
            pin_class(profile["rx_ws_pin"]),
            pin_class(profile["rx_sd_pin"]),
        )
        self.id = profile.get("rx_i2s", 1)
        self.rate = profile.get("rx_rate") or rate  # 8000; 16000 if the ADC needs it
        self.volts_per_code = VOLTS_PER_CODE
        self.buf = array("H", [0] * RING_SAMPLES)  # the ring: 12-bit codes once converted
        mv = memoryview(self.buf)
        self._chunks = [mv[i * CHUNK : (i + 1) * CHUNK] for i in range(NCHUNK)]
        self._conv = _kernel()
        self._cb = self._filled  # bound once: the handler path never allocates a bound method
        self._i2s = None
        self._w = 0  # samples the port has filled (and converted), modulo 2**16
        self._r = 0  # samples handed out, modulo 2**16
        self.running = False
        self.samples = 0  # samples handed out since start()
        self.backlog = 0  # samples in the ring the last poll left for the next
        self.lost = 0  # samples overwritten before a poll took them

    def start(self):
        I2S = self._I2S
        sck, ws, sd = self._pins
        kw = {
            "sck": sck,
            "ws": ws,
            "sd": sd,
            "mode": I2S.RX,
            "bits": 16,
            "format": I2S.MONO,
            "rate": self.rate,
            "ibuf": IBUF,
        }
        if self._i2s is None:
            self._i2s = I2S(self.id, **kw)
        else:
            self._i2s.init(**kw)  # after stop(): the same object again
        self._w = 0
        self._r = 0
        self.samples = 0
        self.backlog = 0
        self.lost = 0
        self.running = True
        self._i2s.irq(self._cb)  # non-blocking mode (init() clears it)
        self._i2s.readinto(self._chunks[0])

    def _filled(self, i2s):
        """The port filled the chunk at _w (a scheduled soft callback)."""
        if not self.running:
            return
        w = self._w
        p = w & (RING_SAMPLES - 1)
        self._conv(self.buf, p, CHUNK)
        w = (w + CHUNK) & _MASK
        self._w = w
        i2s.readinto(self._chunks[(w & (RING_SAMPLES - 1)) // CHUNK])

    def stop(self):
        if not self.running:
            return
        self.running = False
        self._i2s.deinit()

    def poll(self, fn, limit=0):
        """Hand the samples that arrived since the last poll to fn(buf, start, count), at most
        `limit` of them (0: all); the rest wait in the ring (self.backlog)."""
        if not self.running:
            return 0
        r = self._r
        n = (self._w - r) & _MASK
        if n > RING_SAMPLES - CHUNK:  # lapped: the oldest were overwritten (or are being)
            skip = n - (RING_SAMPLES - CHUNK)
            self.lost += skip
            r = (r + skip) & _MASK
            n -= skip
        self.backlog = 0
        if limit and n > limit:
            self.backlog = n - limit
            n = limit
        if n == 0:
            self._r = r
            return 0
        p = r & (RING_SAMPLES - 1)
        if p + n > RING_SAMPLES:
            fn(self.buf, p, RING_SAMPLES - p)
            fn(self.buf, 0, p + n - RING_SAMPLES)
        else:
            fn(self.buf, p, n)
        self._r = (r + n) & _MASK
        self.samples += n
        return n

    def close(self):
        self.stop()
