# MT8880 / CM8880 DTMF transceiver driver over a 4-bit 6800-style bus: the transmit side, and
# the receive registers for the board's ear (mt8880_ear.py: poll_status(), read_rx()).
#
# Bus: D0-D3, RS0, R/W, /CS, phi2, all GPIO driven through a small pin interface (what
# machine.Pin offers: Pin(id, mode), .value([v]), .init(mode), Pin.IN, Pin.OUT), so a
# Raspberry Pi adapter class with the same four members reuses this file unchanged.
#
# Two modes (profile "mt8880_mode"):
#   "manual" (default): CRB BURST=1; the tone is gated by CRA TOUT, timed in software from the
#       plan (any tone/gap length). Non-blocking: service() flips TOUT when a step is due.
#   "burst": CRB BURST=0; every write to the transmit register gives a chip-timed burst of
#       ~51 ms tone + ~51 ms pause; status b1 (transmit register empty) says the pause ended.
#       Plan silence steps longer than the chip pause extend the silence in software.
#       The status is read only once the pause may have ended (BURST_EARLY_MS before its
#       nominal end), never during the tone.
# due_ms() says when service() next has work (the main loop sleeps until then): manual, the
# next step boundary; burst, the chip's tone end (position moves), then the pause's nominal
# end, then every ms until b1 is seen.
#
# Power-up (datasheet): wait >= 100 ms, read status, CRA=0, CRA=0, CRA=RSEL, CRB=0, read status.
# CRA and CRB are write-only: shadow copies are kept in self.cra / self.crb.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


import time

from tonebridge_fw.dialstring import HOLD_MAX_MS
from tonebridge_fw.keypad import MT8880_CODE
from tonebridge_fw.ticks import ticks_add as _ticks_add
from tonebridge_fw.ticks import ticks_diff as _ticks_diff

# Control register A
_CRA_TOUT = const(0x01)  # tone output enable
_CRA_CP = const(0x02)  # call-progress mode (1) / DTMF (0)
_CRA_IRQ = const(0x04)  # interrupt enable
_CRA_RSEL = const(0x08)  # next control write goes to CRB
# Control register B
_CRB_BURST = const(0x01)  # 0 = burst mode ON, 1 = burst mode off (manual)
_CRB_TEST = const(0x02)
_CRB_SD = const(0x04)  # single tone
_CRB_CR = const(0x08)  # column/row for single tone
# Status register
_ST_IRQ = const(0x01)
_ST_TX_EMPTY = const(0x02)
_ST_RX_FULL = const(0x04)
_ST_DELAYED_STEERING = const(0x08)

_POWER_UP_MS = const(100)
# call progress: the IRQ/CP pin is read CP_READS times CP_GAP_US apart (3 ms: more than a
# period of any call-progress tone, >= 350 Hz) each time the ear samples it
CP_READS = const(12)
CP_GAP_US = const(250)
BURST_TONE_MS = const(51)
BURST_PAUSE_MS = const(51)
# burst mode: the transmit register's b1 is read from this long before the pause's nominal end
# (the chip's timing is divided from its crystal; its tolerance was not retrieved)
BURST_EARLY_MS = const(6)
_BURST_US = const(102000)  # (BURST_TONE_MS + BURST_PAUSE_MS) * 1000

_IDLE = const(0)
_RUN = const(1)
_DONE = const(2)


class MT8880Backend:
    """Backend interface: start(plan), service(), due_ms(), position(), abort(), close()."""

    def __init__(self, profile, pin_class=None, ticks_us=None, sleep_ms=None):
        if pin_class is None:
            from machine import Pin

            pin_class = Pin
        self._P = pin_class
        self._ticks_us = ticks_us if ticks_us is not None else time.ticks_us
        self._sleep_ms = sleep_ms if sleep_ms is not None else time.sleep_ms
        self._sleep_us = getattr(time, "sleep_us", None) or (lambda us: time.sleep(us / 1e6))
        d_ids = profile["d_pins"]
        if len(d_ids) != 4:
            raise ValueError("mt8880 needs 4 data pins (D0-D3)")
        mode = profile.get("mt8880_mode", "manual")
        if mode not in ("manual", "burst"):
            raise ValueError("mt8880_mode must be 'manual' or 'burst'")
        self.burst = mode == "burst"
        # longest held key (a tone step longer than the dial string's tone) this mode plays as
        # planned: manual mode times any step; burst tones are the chip's ~51 ms (0: none)
        self.hold_max_ms = 0 if self.burst else HOLD_MAX_MS
        OUT = pin_class.OUT
        # Idle bus: /CS high, phi2 low, R/W high (read), data pins inputs.
        self._cs = pin_class(profile["cs_pin"], OUT)
        self._cs.value(1)
        self._phi2 = pin_class(profile["phi2_pin"], OUT)
        self._phi2.value(0)
        self._rw = pin_class(profile["rw_pin"], OUT)
        self._rw.value(1)
        self._rs0 = pin_class(profile["rs0_pin"], OUT)
        self._rs0.value(0)
        self._d = [pin_class(i, pin_class.IN) for i in d_ids]
        self._d_out = False
        self.cra = 0
        self.crb = 0
        self._plan = None
        self._state = _IDLE
        self._k = 0  # step index now being emitted
        self._t0 = 0  # ticks_us: scheduled start of step k (manual) / its real start (burst)
        self._due = 0  # ms: length of step k (manual) / software wait of step k (burst)
        self._tone_on = False
        self._saw_empty = False
        self._tx_empty = False  # b1 seen by a status read of the receive side
        self.status_reads = 0
        self._irq_id = profile.get("irq_pin")
        self._cp_pin = None  # IRQ/CP as an input (call_progress())
        self._power_up()

    # ---- bus cycles -------------------------------------------------------------
    def _data_dir(self, out):
        if out != self._d_out:
            mode = self._P.OUT if out else self._P.IN
            for p in self._d:
                p.init(mode)
            self._d_out = out

    def _write(self, rs0, nibble):
        # R/W low, RS0, data on D0-D3, /CS low, phi2 high then low (latched on the falling edge).
        self._rw.value(0)
        self._rs0.value(rs0)
        self._data_dir(True)
        d = self._d
        d[0].value(nibble & 1)
        d[1].value((nibble >> 1) & 1)
        d[2].value((nibble >> 2) & 1)
        d[3].value((nibble >> 3) & 1)
        self._cs.value(0)
        self._phi2.value(1)
        self._phi2.value(0)
        self._cs.value(1)
        self._rw.value(1)

    def _read(self, rs0):
        # D pins inputs, R/W high, RS0, /CS low, phi2 high, sample D, phi2 low.
        self._data_dir(False)
        self._rw.value(1)
        self._rs0.value(rs0)
        self._cs.value(0)
        self._phi2.value(1)
        d = self._d
        v = d[0].value() | (d[1].value() << 1) | (d[2].value() << 2) | (d[3].value() << 3)
        self._phi2.value(0)
        self._cs.value(1)
        return v

    def write_cra(self, v):
        self._write(1, v)
        self.cra = v

    def write_crb(self, v):
        # CRB is reached by a control write right after a CRA write with RSEL set; the chip
        # then sends the following control write to CRA again.
        if not self.cra & _CRA_RSEL:
            self.write_cra(self.cra | _CRA_RSEL)
        self._write(1, v)
        self.crb = v
        self.cra &= ~_CRA_RSEL

    def write_tx(self, code):
        self._write(0, code)

    def read_status(self):
        self.status_reads += 1
        return self._read(1)

    def poll_status(self):
        """The status for the receive side: a read clears b1, so it is kept for the transmit
        side (burst mode waits for it)."""
        st = self.read_status()
        if st & _ST_TX_EMPTY:
            self._tx_empty = True
        return st

    def read_rx(self):
        """The receive data register (the code of the digit the chip heard; clears b2)."""
        return self._read(0)

    # ---- chip setup -------------------------------------------------------------
    def _power_up(self):
        self._sleep_ms(_POWER_UP_MS)
        self.read_status()
        self.write_cra(0)
        self.write_cra(0)
        self.write_cra(_CRA_RSEL)
        self.write_crb(0)
        self.read_status()
        if self.burst:
            # Burst mode: TOUT + IRQ enable (+RSEL), then CRB = 0 (BURST bit clear = burst on).
            self.write_cra(_CRA_TOUT | _CRA_IRQ | _CRA_RSEL)
            self.write_crb(0)
        else:
            # Manual: burst off; the tone output stays off until a tone step.
            self.write_cra(_CRA_RSEL)
            self.write_crb(_CRB_BURST)

    def _tout(self, on):
        v = (self.cra | _CRA_TOUT) if on else (self.cra & ~_CRA_TOUT)
        self.write_cra(v & ~_CRA_RSEL)
        self._tone_on = on

    # ---- call-progress mode (mt8880_ear.py) -------------------------------------------
    def call_progress(self, on):
        """CRA CP+IRQ (on): the chip's call-progress band-pass drives the IRQ/CP pin with a
        rectangular wave while a tone in its band is above its detection level, and its DTMF
        receiver decodes nothing; off: back to DTMF mode. Returns the pin (an input with a
        pull-up: the output is open drain) or None when the profile has no "irq_pin"."""
        if self._irq_id is None:
            return None
        base = self.cra & (_CRA_TOUT | _CRA_IRQ) if self.burst else self.cra & _CRA_TOUT
        if on:
            if self._cp_pin is None:
                P = self._P
                self._cp_pin = P(self._irq_id, P.IN, P.PULL_UP)
            v = (base | _CRA_CP | _CRA_IRQ) & ~_CRA_RSEL
        else:
            v = (_CRA_IRQ | base) if self.burst else base
        if v != self.cra:
            self.write_cra(v)
        return self._cp_pin

    def cp_lows(self):
        """In call-progress mode: how many of CP_READS reads of the IRQ/CP pin, CP_GAP_US
        apart, found it low (the chip's rectangular wave: a tone in band above its level)."""
        pin = self._cp_pin
        lows = 0
        for i in range(CP_READS):
            if i:
                self._sleep_us(CP_GAP_US)
            if not pin.value():
                lows += 1
        return lows

    # ---- backend interface ------------------------------------------------------
    def start(self, plan):
        if self._state == _RUN:
            self.abort()
        if self.cra & _CRA_CP:
            self.call_progress(False)  # our digits go out (and are heard) in DTMF mode
        for key, ms in plan:
            if key is not None and key not in MT8880_CODE:
                raise ValueError("key not in MT8880 table: " + str(key))
            if not isinstance(ms, int) or ms <= 0:
                raise ValueError("step duration must be a positive int of ms")
        self._plan = plan
        self._k = 0
        self._due = 0
        self._state = _RUN
        self._t0 = self._ticks_us()
        if self.burst:
            if not self.cra & _CRA_TOUT:
                self.write_cra(_CRA_TOUT | _CRA_IRQ)
            self._begin_burst_step()
        else:
            self._begin_manual_step()

    def _end(self):
        self._state = _DONE
        self._k = len(self._plan)

    # manual mode: each step starts when the previous one was scheduled to end (no drift, and
    # ticks differences stay within one step, far from the ticks_us wrap).
    def _begin_manual_step(self):
        plan = self._plan
        if self._k >= len(plan):
            if self._tone_on:
                self._tout(False)
            self._end()
            return
        key, ms = plan[self._k]
        if key is None:
            if self._tone_on:
                self._tout(False)
        else:
            # The code takes effect at once; TOUT gates the output.
            self.write_tx(MT8880_CODE[key])
            if not self._tone_on:
                self._tout(True)
        self._due = ms

    def _service_manual(self):
        # Handle every step that became due (a late pass never skips a step's switching).
        while self._state == _RUN:
            if _ticks_diff(self._ticks_us(), self._t0) < self._due * 1000:
                return
            self._t0 = _ticks_add(self._t0, self._due * 1000)
            self._k += 1
            self._begin_manual_step()

    # burst mode: tone steps are one chip burst; silence steps wait (ms - chip pause).
    def _begin_burst_step(self):
        plan = self._plan
        if self._k >= len(plan):
            self._end()
            return
        key, ms = plan[self._k]
        self._t0 = self._ticks_us()
        if key is None:
            self._due = ms - BURST_PAUSE_MS if ms > BURST_PAUSE_MS else 0
        else:
            self._saw_empty = False
            self.read_status()  # clears a stale TX_EMPTY latched by the previous pause
            self._tx_empty = False
            self.write_tx(MT8880_CODE[key])
            self._due = -1

    def _service_burst(self):
        while self._state == _RUN:
            if self._due < 0:
                if not self._saw_empty:
                    if not self._tx_empty:
                        el = _ticks_diff(self._ticks_us(), self._t0)
                        if el < _BURST_US - BURST_EARLY_MS * 1000:
                            return  # the chip's tone or the start of its pause: no read
                        if not self.read_status() & _ST_TX_EMPTY:
                            return
                    self._saw_empty = True
            elif _ticks_diff(self._ticks_us(), self._t0) < self._due * 1000:
                return
            self._k += 1
            self._begin_burst_step()

    def service(self):
        if self._state != _RUN:
            return
        if self.burst:
            self._service_burst()
        else:
            self._service_manual()

    def due_ms(self):
        """ms until service() next has work while a plan plays (the main loop may sleep that
        long): manual, the next step boundary; burst, the chip's tone end (position() moves
        on), then the nominal end of its pause (a status read for b1), then 1 ms at a time
        until b1 is seen; a silence step's own wait. At least 1; 0 when not playing."""
        if self._state != _RUN:
            return 0
        el = _ticks_diff(self._ticks_us(), self._t0)
        if self._due >= 0:
            left = self._due * 1000 - el
        elif self._tx_empty:
            return 1  # the ear's status read saw b1 (a chip faster than nominal): next step
        elif el < BURST_TONE_MS * 1000:
            left = BURST_TONE_MS * 1000 - el
        else:
            left = _BURST_US - el
        if left <= 0:
            return 1
        return (left + 999) // 1000

    def position(self):
        if self._plan is None:
            return 0
        k = self._k
        if self.burst and self._state == _RUN and self._due < 0 and k + 1 < len(self._plan):
            # The chip ends the tone BURST_TONE_MS after the write; the pause is the next step.
            if _ticks_diff(self._ticks_us(), self._t0) >= BURST_TONE_MS * 1000:
                return k + 1
        return k

    def abort(self):
        if self._tone_on or (self.burst and self.cra & _CRA_TOUT):
            self._tout(False)
        if self._plan is not None and self._state == _RUN:
            self._state = _DONE

    def close(self):
        self.abort()
        self._data_dir(False)
        self._cs.value(1)
