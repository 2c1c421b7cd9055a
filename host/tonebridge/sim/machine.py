"""The ``machine`` module a simulated board's firmware imports.

A thin layer: ``Pin`` is a view on the board's ``PinBus``; ``PWM``, ``mem32/16/8`` and ``freq`` go
to the rp2 register model (``Rp2Hardware``), so the PWM API and raw register writes meet in the
same registers; ``WDT`` resets the simulated board when it is not fed in time; ``Timer`` runs on the
board clock; ``UART`` is the board's serial link; ``I2S`` comes from ``sim/i2s.py`` (loaded on first
use), bound to this board's clock, line recorder and pin bus (``make_i2s_class``).
"""

from __future__ import annotations

import types

from . import pinbus

PWRON_RESET, WDT_RESET, SOFT_RESET, HARD_RESET, DEEPSLEEP_RESET = 1, 3, 5, 2, 4


class _Mem:
    def __init__(self, board, width):
        self._b = board
        self._w = width

    def _check(self, addr):
        if addr % self._w:
            raise ValueError("address must be aligned")

    def __getitem__(self, addr):
        self._check(addr)
        hw = self._b.hw
        if hw is None:
            v = self._b.regs.get(addr & ~3, 0)
        else:
            v = hw.reg_read(addr & ~3)
        shift = (addr & 3) * 8
        return (v >> shift) & ((1 << (8 * self._w)) - 1)

    def __setitem__(self, addr, value):
        self._check(addr)
        value = int(value) & ((1 << (8 * self._w)) - 1)
        if self._w == 2:
            value |= value << 16  # narrow writes are replicated on the APB bus
        elif self._w == 1:
            value *= 0x01010101
        hw = self._b.hw
        if hw is None:
            self._b.regs[addr & ~3] = value
        else:
            hw.reg_write(addr & ~3, value)


def make_machine_module(board) -> types.ModuleType:
    mod = types.ModuleType("machine")
    bus = board.bus
    hw = board.hw
    clock = board.clock
    profile = board.profile

    # ---- Pin -----------------------------------------------------------------------
    class Pin:
        IN = pinbus.IN
        OUT = pinbus.OUT
        OPEN_DRAIN = pinbus.OPEN_DRAIN
        ALT = pinbus.ALT
        PULL_UP = pinbus.PULL_UP
        PULL_DOWN = pinbus.PULL_DOWN
        IRQ_FALLING = 4
        IRQ_RISING = 8

        def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
            self._id = board.pin_number(id)
            self._irq = None
            self.init(mode, pull, value=value)

        def init(self, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
            board.runtime.touch()
            if hw is not None and mode != -1:
                hw.set_pin_function(self._id, "sio")
            bus.configure(self._id, None if mode == -1 else mode, -1 if pull == -1 else pull, value)
            if mode != -1 and bus.function(self._id) != "sio":
                bus.set_function(self._id, "sio")

        def value(self, v=None):
            board.runtime.touch()
            if v is None:
                return bus.read(self._id)
            bus.set_output(self._id, v)
            return None

        def __call__(self, v=None):
            return self.value(v)

        def on(self):
            self.value(1)

        def off(self):
            self.value(0)

        high = on
        low = off

        def toggle(self):
            self.value(0 if bus.output_latch(self._id) else 1)

        def mode(self, m=None):
            if m is None:
                return bus.mode(self._id)
            self.init(m)

        def pull(self, p=None):
            if p is None:
                return bus.pull(self._id)
            self.init(-1, p)

        def irq(self, handler=None, trigger=12, hard=False):
            self._irq = (handler, trigger)
            return None

        def __repr__(self):
            return f"Pin(GPIO{self._id}, mode={bus.mode(self._id)})"

    mod.Pin = Pin

    def _gpio(pin):
        return pin._id if isinstance(pin, Pin) else board.pin_number(pin)

    # ---- PWM -------------------------------------------------------------------------
    class PWM:
        def __init__(self, dest, *, freq=None, duty_u16=None, duty_ns=None, invert=None):
            self._gpio = _gpio(dest)
            if hw is None:
                self._freq, self._duty = 0, 0
                bus.set_function(self._gpio, "pwm")
            else:
                self._slice = hw.slice_of(self._gpio)
                self._ch = self._gpio & 1
                self._base = hw.c["pwm_base"] + 0x14 * self._slice
                hw.set_pin_function(self._gpio, "pwm")
            self.init(freq=freq, duty_u16=duty_u16, duty_ns=duty_ns, invert=invert)

        def init(self, *, freq=None, duty_u16=None, duty_ns=None, invert=None):
            if freq is not None:
                self.freq(freq)
            if duty_u16 is not None:
                self.duty_u16(duty_u16)
            if duty_ns is not None:
                self.duty_ns(duty_ns)
            if invert is not None and hw is not None:
                bit = 0x8 if self._ch else 0x4
                csr = hw.reg_read(self._base)
                hw.reg_write(self._base, (csr | bit) if invert else (csr & ~bit))

        def freq(self, f=None):
            if hw is None:
                if f is None:
                    return self._freq
                self._freq = int(f)
                return None
            src = hw.freq
            if f is None:
                div = hw.reg_read(self._base + 0x04)
                top = hw.reg_read(self._base + 0x10)
                div16 = (((div >> 4) & 0xFF) or 256) * 16 + (div & 0xF)
                return src * 16 // (div16 * (top + 1))
            f = int(f)
            top_max = 65534
            if f <= 0:
                raise ValueError("freq too small")
            if (src + f // 2) // f < top_max:
                div16 = 16
                top = (src + f // 2) // f - 1
            else:
                div16 = (16 * src + top_max * f - 1) // (top_max * f)
                top = (src * 16 + (div16 * f) // 2) // (div16 * f) - 1
            if div16 < 16:
                raise ValueError("freq too large")
            if div16 >= 256 * 16:
                raise ValueError("freq too small")
            hw.reg_write(self._base + 0x04, div16)
            hw.reg_write(self._base + 0x10, top)
            return None

        def duty_u16(self, d=None):
            if hw is None:
                if d is None:
                    return self._duty
                self._duty = int(d)
                return None
            top = hw.reg_read(self._base + 0x10)
            cc = hw.reg_read(self._base + 0x0C)
            if d is None:
                lvl = (cc >> 16) if self._ch else (cc & 0xFFFF)
                return min(65535, lvl * 65535 // (top + 1))
            d = max(0, min(65535, int(d)))
            lvl = d * (top + 1) // 65535
            cc = (cc & 0xFFFF) | (lvl << 16) if self._ch else (cc & 0xFFFF0000) | lvl
            hw.reg_write(self._base + 0x0C, cc)
            hw.reg_write(self._base + 0x00, hw.reg_read(self._base) | 1)
            return None

        def duty_ns(self, ns=None):
            f = self.freq()
            if ns is None:
                return self.duty_u16() * 1_000_000_000 // (65535 * max(1, f))
            self.duty_u16(int(ns) * 65535 * f // 1_000_000_000)
            return None

        def deinit(self):
            if hw is not None:
                hw.reg_write(self._base, hw.reg_read(self._base) & ~1)

    mod.PWM = PWM

    # ---- WDT -------------------------------------------------------------------------
    class WDT:
        def __init__(self, id=0, timeout=5000):
            if profile.get("mcu") == "rp2040" and int(timeout) > 8388:
                raise ValueError("WDT timeout too long")  # 24-bit counter at 2 ticks/us
            if board.wdt is not None:
                board.wdt.timeout_us = int(timeout) * 1000
                board.wdt.feed()
                self._w = board.wdt
                return
            self._w = board.start_watchdog(int(timeout) * 1000)

        def feed(self):
            self._w.feed()

    mod.WDT = WDT

    # ---- Timer -------------------------------------------------------------------------
    class Timer:
        ONE_SHOT = 0
        PERIODIC = 1

        def __init__(self, id=-1, **kw):
            self._h = None
            if kw:
                self.init(**kw)

        def init(self, *, mode=PERIODIC, freq=None, period=None, tick_hz=1000, callback=None):
            self.deinit()
            if freq is not None:
                us = int(1_000_000 / freq)
            else:
                us = int((period if period is not None else 1000) * 1_000_000 // tick_hz)
            self._cb = callback
            self._us = max(1, us)
            self._mode = mode
            self._next = clock.now_us() + self._us
            self._h = clock.call_at(self._next, self._fire)

        def _fire(self):
            if self._mode == Timer.PERIODIC:
                self._next += self._us
                self._h = clock.call_at(self._next, self._fire)
            else:
                self._h = None
            if self._cb is not None:
                self._cb(self)

        def deinit(self):
            if self._h is not None:
                clock.cancel(self._h)
                self._h = None

    mod.Timer = Timer

    # ---- UART: the board's serial link when the profile says so ---------------------
    class UART:
        def __init__(self, id, baudrate=115200, **kw):
            self._id = id
            self.init(baudrate, **kw)

        def init(
            self,
            baudrate=115200,
            bits=8,
            parity=None,
            stop=1,
            *,
            tx=None,
            rx=None,
            timeout=0,
            timeout_char=0,
            rxbuf=256,
            txbuf=256,
            **kw,
        ):
            self._timeout = timeout
            self.baudrate = baudrate
            uart = profile.get("uart")
            self._linked = bool(uart) and int(uart.get("id", 0)) == int(self._id)

        def any(self):
            board.runtime.touch()
            return board.link.board_available() if self._linked else 0

        def read(self, n=-1):
            if not self._linked:
                return None
            if not board.link.board_available() and self._timeout:
                board.runtime.wait_until(lambda: board.link.board_available() > 0, self._timeout)
            data = board.link.board_read(n)
            return data or None

        def readinto(self, buf, n=None):
            data = self.read(len(buf) if n is None else n)
            if not data:
                return None
            buf[: len(data)] = data
            return len(data)

        def readline(self):
            if not self._linked:
                return None
            out = bytearray()
            while board.link.board_available() and not out.endswith(b"\n"):
                out += board.link.board_read(1)
            return bytes(out) or None

        def write(self, data):
            return board.link.board_write(data) if self._linked else len(data)

        def flush(self):
            pass

        def txdone(self):
            return True

        def deinit(self):
            pass

    mod.UART = UART

    # ---- the rest --------------------------------------------------------------------------
    mod.mem32 = _Mem(board, 4)
    mod.mem16 = _Mem(board, 2)
    mod.mem8 = _Mem(board, 1)

    def freq(hz=None):
        if hw is None:
            if hz is None:
                return board.cpu_freq
            board.cpu_freq = int(hz)
            return None
        if hz is None:
            return hw.freq
        hw.set_freq(int(hz))
        return None

    def reset():
        board.request_reset("machine.reset", HARD_RESET)

    def soft_reset():
        board.request_reset("machine.soft_reset", SOFT_RESET)

    def reset_cause():
        return board.reset_cause

    def unique_id():
        return bytes.fromhex(board.hwid)

    def idle():
        board.runtime.advance_us(1000, until_event=True)

    def lightsleep(ms=None):
        board.runtime.advance_us(int(ms or 0) * 1000)

    def disable_irq():
        return 0

    def enable_irq(state=0):
        return None

    def bootloader():
        board.request_reset("machine.bootloader", HARD_RESET)

    mod.freq = freq
    mod.reset = reset
    mod.soft_reset = soft_reset
    mod.reset_cause = reset_cause
    mod.unique_id = unique_id
    mod.idle = idle
    mod.lightsleep = lightsleep
    mod.deepsleep = lightsleep
    mod.disable_irq = disable_irq
    mod.enable_irq = enable_irq
    mod.bootloader = bootloader
    mod.PWRON_RESET, mod.WDT_RESET, mod.SOFT_RESET = PWRON_RESET, WDT_RESET, SOFT_RESET
    mod.HARD_RESET, mod.DEEPSLEEP_RESET = HARD_RESET, DEEPSLEEP_RESET

    def __getattr__(name):
        if name == "I2S":
            from . import i2s

            cls = i2s.make_i2s_class(
                board.clock_view,
                board.recorder,
                profile,
                bus=bus,
                rx_source=getattr(board, "rx_source", None),
            )
            board.recorder.add_flusher(lambda: [i.flush() for i in cls.instances])
            mod.I2S = cls
            return cls
        raise AttributeError(f"module 'machine' has no attribute '{name}' (in the simulator)")

    mod.__getattr__ = __getattr__
    return mod
