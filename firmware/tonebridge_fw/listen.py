# The board's ear: its receive path (an ADC ring: backends/adc_rp2.py on rp2, backends/
# adc_i2s.py, an I2S ADC, on ESP32) feeding the DTMF
# receiver (dtmf_rx.py), with what it heard converted to line units.
#
#   ears = make_listener(profile, ticks_ms, backend)  # None: the profile has no receive path
#                                             # (an MT8880 board: its chip's receiver,
#                                             # mt8880_ear.py, with the same interface)
#   for h in ears.service(want):              # want: listen now (the ADC runs only then);
#                                             # at most PIECE samples a call: while
#   ears.backlog                              # samples are left in the ring (> 0), call
#                                             # again (the app services the player between)
#       h.key, h.on, h.off                    # ticks_ms of the tone's start and end
#       h.words                               # "ms=<d> lvl=<lo>,<hi> twist=<dB>" (and
#                                             # " hz=<lo>,<hi>" in the self-test)
#   ears.hear_progress(on)                    # feed call progress too (callprogress.Detector,
#   ears.progress()                           # profile "country"): its state's name when it
#                                             # changed since the last call, else None
#
# Levels: the receiver's amplitudes in ADC codes -> volts at the ADC pin (rp2: 3.3 V / 4096 a
# code; ESP32: the I2S ADC's, ear.volts_per_code) -> volts on the line (the sense stage's gain,
# profile "rx_gain", default 1.0) -> dBm into 600 ohm. Profile keys: "rx_adc" (rp2: ADC input
# of the line sense), "rx_i2s" (ESP32: the I2S id of the ADC, with "rx_sck_pin", "rx_ws_pin",
# "rx_sd_pin"), "rx_gain".

from math import log

from tonebridge_fw.dtmf_rx import Receiver
from tonebridge_fw.heard import Heard
from tonebridge_fw.ticks import ticks_add, ticks_diff

_LN10 = 2.302585092994046
POLL_MS = 10  # the ring is read at most this often while listening (12.75 ms blocks)
# samples the receiver takes per service() call: 20 ms of line, ~4 ms of an RP2040's CPU with a
# tone (3194 cycles a sample, docs/benchmarks.md), so the player's next DMA chunk (16.8 ms) is
# refilled in time between pieces however far behind the loop got (a burst of frames)
PIECE = 160


def dbm(amp_v):
    """dBm into 600 ohm of a sine of peak amplitude amp_v volts."""
    if amp_v <= 0:
        return -99.0
    return 10 * log(amp_v * amp_v / 2 / 600 / 0.001) / _LN10


class Listener:
    def __init__(self, ear, ticks_ms, volts_per_code):
        self.ear = ear
        self.ticks_ms = ticks_ms
        self.rx = Receiver(ear.rate)
        self.volts_per_code = volts_per_code
        self.listening = False
        self.backlog = 0  # samples the last service() left in the ring
        self._t0 = 0  # ticks_ms of the receiver's sample self._s0
        self._polled = 0
        self._s0 = 0
        self.cp = None  # call progress (callprogress.Detector), fed beside the DTMF receiver
        self.progress_on = False
        self._cp_changed = False
        self._feed = self.rx.feed

    def attach_progress(self, detector):
        self.cp = detector
        self._feed = self._feed_both  # bound once: poll() calls it per piece of the ring

    def _feed_both(self, buf, start, count):
        self.rx.feed(buf, start, count)
        if self.progress_on and self.cp.feed(buf, start, count):
            self._cp_changed = True

    def hear_progress(self, on):
        """Feed call progress (on) or not (off: e.g. while our own digits are on the line);
        turned on again it starts afresh (reset: what it heard before is forgotten)."""
        if self.cp is None:
            return
        if on and not self.progress_on:
            self.cp.reset()
            self._cp_changed = False
        self.progress_on = on

    def progress(self):
        """The call-progress state's name if it changed since the last call, else None."""
        if not self._cp_changed:
            return None
        self._cp_changed = False
        from tonebridge_fw.callprogress import NAMES

        return NAMES[self.cp.state]

    def start(self):
        self.rx.reset()
        self.ear.start()
        self._t0 = self.ticks_ms()
        self._polled = self._t0
        self._s0 = self.rx.samples
        self.listening = True

    def stop(self):
        self.ear.stop()
        self.listening = False
        self.backlog = 0

    def _ticks(self, sample):
        return ticks_add(self._t0, (sample - self._s0) * 1000 // self.ear.rate)

    def service(self, want=True):
        """want: 0 (stop once the digit being heard ended), 1 (listen), 2 (listen and measure
        each digit's frequencies: the self-test)."""
        self.rx.measure_hz = want == 2
        if want and not self.listening:
            self.start()
        if not self.listening:
            return ()
        now = self.ticks_ms()
        if want and not self.backlog and ticks_diff(now, self._polled) < POLL_MS:
            return ()  # a block's worth at a time: the ring holds 128 ms
        self._polled = now
        ear = self.ear
        ear.poll(self._feed, PIECE)
        self.backlog = ear.backlog
        got = self.rx.take()
        if not want and self.rx.key is None and not self.backlog:
            self.stop()
        if not got:
            return ()
        out = []
        k = self.volts_per_code
        for d in got:
            lvl = (dbm(d.lo_amp * k), dbm(d.hi_amp * k))
            words = "ms=%d lvl=%.1f,%.1f twist=%.1f" % (d.ms, lvl[0], lvl[1], d.twist_db)
            if d.lo_hz:
                words += " hz=%.1f,%.1f" % (d.lo_hz, d.hi_hz)
            h = Heard(d.key, self._ticks(d.on), self._ticks(d.off), words, d.ms, lvl)
            h.twist = d.twist_db
            h.lo_hz = d.lo_hz
            h.hi_hz = d.hi_hz
            out.append(h)
        return out

    def late_ms(self):
        """How far behind the newest sample's time the ticks clock is (diagnostics)."""
        return ticks_diff(self.ticks_ms(), self._ticks(self.rx.samples))


def make_listener(profile, ticks_ms, backend=None):
    if profile.get("backend") == "mt8880":
        if not profile.get("mt8880_rx") or backend is None:
            return None
        from tonebridge_fw.mt8880_ear import ChipEar

        ears = ChipEar(backend, ticks_ms)  # the chip's own receiver
        if profile.get("country") and profile.get("irq_pin") is not None:
            # call progress from the chip's call-progress mode: cadence only (in band)
            from tonebridge_fw.callprogress import Classifier

            ears.attach_progress(Classifier(profile["country"], in_band=True))
        return ears
    mcu = profile.get("mcu", "")
    if mcu.startswith("esp32"):
        if profile.get("rx_i2s") is None:
            return None
        try:
            from tonebridge_fw.backends.adc_i2s import I2sEar

            ear = I2sEar(profile)  # an I2S ADC on the second I2S peripheral
        except (ImportError, AttributeError):
            return None  # a port without machine.I2S (MicroPython's unix port in tests)
        volts_per_code = ear.volts_per_code
    else:
        if profile.get("rx_adc") is None or not mcu.startswith("rp2"):
            return None
        try:
            from tonebridge_fw.backends.adc_rp2 import AdcEar
        except ImportError:
            return None  # a port without rp2/uctypes (MicroPython's unix port in tests)
        ear = AdcEar(profile)
        volts_per_code = 3.3 / 4096
    ears = Listener(ear, ticks_ms, volts_per_code / profile.get("rx_gain", 1.0))
    if profile.get("country"):
        # call progress on the same samples (docs/callprogress.md)
        from tonebridge_fw.callprogress import Detector

        ears.attach_progress(Detector(profile["country"], ear.rate))
    return ears
