# Line control: hook relay, tone mute, maximum off-hook time, watchdog.
#
# hook_pin high = relay energised = off-hook (the board holds the line). The board has a
# pull-down on the relay driver, so a reset or crash (pins float) drops the line.
# mute_pin high = tone path shunted. A pull-up keeps it muted while the pin floats.
# (hw/line-interface.md)
#
# Line(profile, ticks_ms) ; off_hook(), on_hook(), mute(), unmute(), is_off_hook(),
# ready() (off-hook for profile "relay_settle_ms", default 10 ms: the relay has closed),
# flash(ms): a hook flash, the relay released for exactly ms while the line stays held
# (is_off_hook() stays True; flashing() while the break lasts; profile "flash_ms" is the
# board's default length, dialstring.FLASH_MIN_MS..FLASH_MAX_MS),
# service() -> list of events: ("hangup", reason) when the board hung up by itself
# (reason "timeout": off-hook longer than max_offhook_s).
# A flash ends by a one-shot machine.Timer (its callback closes the relay, whatever the main
# loop is doing: a pass that refills tone buffers can take milliseconds); service() ends it
# too if the timer is late or the port has none (timed on ticks_us, the last part under
# SPIN_US slept out).
# Watchdog(timeout_ms): machine.WDT fed only by feed(), which the main loop calls once per
# healthy pass.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw.ticks import ticks_add as _add
from tonebridge_fw.ticks import ticks_diff as _diff

MAX_OFFHOOK_S_DEFAULT = const(600)
RELAY_SETTLE_MS_DEFAULT = const(10)  # hook relay operate time + contact bounce (hw/)
SPIN_US = const(1500)  # a flash ending sooner than this is slept out in service()


def _clock_us(ticks_ms):
    """(ticks_us, sleep_us) of the time module; on a host without them, from ticks_ms."""
    try:
        import time

        return time.ticks_us, time.sleep_us
    except (ImportError, AttributeError):
        return (lambda: ticks_ms() * 1000), None


class Line:
    def __init__(
        self,
        profile,
        ticks_ms,
        pin_class=None,
        max_offhook_s=None,
        ticks_us=None,
        sleep_us=None,
        timer_class=None,
    ):
        if pin_class is None:
            from machine import Pin

            pin_class = Pin
        self._ticks = ticks_ms
        out = pin_class.OUT
        self._hook = None
        self._mute = None
        hp = profile.get("hook_pin")
        mp = profile.get("mute_pin")
        # set the level before switching to output: no glitch
        if hp is not None:
            self._hook = pin_class(hp, out, value=0)
        if mp is not None:
            self._mute = pin_class(mp, out, value=1)
        if max_offhook_s is None:
            max_offhook_s = profile.get("max_offhook_s", MAX_OFFHOOK_S_DEFAULT)
        if not isinstance(max_offhook_s, int) or max_offhook_s <= 0:
            raise ValueError("max_offhook_s must be a positive integer")
        self.max_offhook_ms = max_offhook_s * 1000
        self.settle_ms = profile.get("relay_settle_ms", RELAY_SETTLE_MS_DEFAULT)
        lp = profile.get("loop_pin")
        self._loop = None  # the self-test loop relay K2 (hw/line-interface.md)
        if lp is not None:
            self._loop = pin_class(lp, out, value=0)
        self._looped = False
        self._loop_since = 0
        self._off = False
        self._since = 0
        self._closed = 0  # ticks_ms when the hook relay last closed (off-hook, end of a flash)
        self._muted = True
        self._events = []
        if ticks_us is None:
            ticks_us, sleep_us = _clock_us(ticks_ms)
        self._ticks_us = ticks_us
        self._sleep_us = sleep_us
        self.flash_ms = profile.get("flash_ms", 100)
        self._flash_end = 0  # ticks_us when the flash ends
        self._flashing = False
        self.flashes = 0  # flashes completed
        self._timer_class = timer_class
        self._timer = None  # made at the first flash (a board that never flashes needs none)
        self._timer_cb = self._timer_end  # bound once: no allocation in the callback

    def off_hook(self):
        if self._flashing:
            self._end_flash()
        if not self._off:
            if self._hook is not None:
                self._hook.value(1)  # first: if the driver fails, the line stays on-hook
            self._off = True
            self._since = self._ticks()
            self._closed = self._since

    def on_hook(self):
        self.mute()
        self._flashing = False  # hanging up ends a flash: the line stays released
        if self._off:
            self._off = False
            if self._hook is not None:
                self._hook.value(0)

    def is_off_hook(self):
        return self._off

    def flash(self, ms):
        """Release the hook relay for ms (a hook flash); service() closes it again. The line
        must be held (ValueError otherwise: a flash on-hook would seize it)."""
        if not self._off:
            raise ValueError("line is on-hook")
        if self._hook is not None:
            self._hook.value(0)
        self._flash_end = _add(self._ticks_us(), ms * 1000)
        self._flashing = True
        t = self._flash_timer()
        if t is not None:
            t.init(mode=t.ONE_SHOT, period=ms, callback=self._timer_cb)

    def _flash_timer(self):
        if self._timer is None and self._timer_class is not False:
            cls = self._timer_class
            try:
                if cls is None:
                    from machine import Timer as cls
                try:
                    self._timer = cls(-1)  # a soft timer where the port has them (rp2)
                except (ValueError, TypeError):
                    self._timer = cls(1)  # esp32: hardware timer 1 (the watchdog's is 0)
            except (ImportError, AttributeError, OSError):
                self._timer_class = False  # no timers here: service() ends flashes
        return self._timer

    def _timer_end(self, timer):
        if self._flashing:
            self._end_flash()

    def flashing(self):
        return self._flashing

    def flash_left_ms(self):
        """Whole ms until the flash ends (0: ends within the next ms, or no flash)."""
        if not self._flashing:
            return 0
        left = _diff(self._flash_end, self._ticks_us()) // 1000
        return left if left > 0 else 0

    def _end_flash(self):
        if not self._flashing:
            return
        self._flashing = False
        if self._hook is not None:
            self._hook.value(1)
        self._closed = self._ticks()
        self.flashes += 1

    def ready(self):
        """Off-hook (or, for a self-test, looped) long enough for the relay contacts to have
        settled (tones may start); not during a flash, nor until the relay has settled after
        it (a SEND that arrives while the line flashes waits: its first digit would go
        nowhere)."""
        if self._looped and _diff(self._ticks(), self._loop_since) >= self.settle_ms:
            return True
        return (
            self._off
            and not self._flashing
            and _diff(self._ticks(), self._closed) >= self.settle_ms
        )

    def loop(self, on):
        """Close (True) or open the self-test loop relay: the board's transmit path into its
        test load and line sense, with the line itself left on hook."""
        if on and not self._looped:
            self._loop_since = self._ticks()
        self._looped = bool(on)
        if self._loop is not None:
            self._loop.value(1 if on else 0)

    def has_loop(self):
        return self._loop is not None

    def offhook_ms(self):
        """How long the line has been held (0 when on-hook)."""
        if not self._off:
            return 0
        return _diff(self._ticks(), self._since)

    def mute(self):
        self._muted = True
        if self._mute is not None:
            self._mute.value(1)

    def unmute(self):
        self._muted = False
        if self._mute is not None:
            self._mute.value(0)

    def is_muted(self):
        return self._muted

    def service(self):
        """Hang up when held too long; returns (and clears) the events since the last call."""
        if self._flashing:
            left = _diff(self._flash_end, self._ticks_us())
            if 0 < left < SPIN_US and self._sleep_us is not None:
                self._sleep_us(left)
                left = 0
            if left <= 0:
                self._end_flash()
        if self._off and _diff(self._ticks(), self._since) >= self.max_offhook_ms:
            self.on_hook()
            self._events.append(("hangup", "timeout"))
        if not self._events:
            return ()
        ev = self._events
        self._events = []
        return ev


class Watchdog:
    """machine.WDT wrapper: feed() from the main loop, once per healthy pass."""

    def __init__(self, timeout_ms=5000, wdt_class=None, repl_grace_ms=600000):
        if wdt_class is None:
            from machine import WDT

            wdt_class = WDT
        self.timeout_ms = timeout_ms
        self.repl_grace_ms = repl_grace_ms
        self._wdt = wdt_class(timeout=timeout_ms)
        self.feeds = 0

    def feed(self):
        self._wdt.feed()
        self.feeds += 1

    def keep_alive_for_repl(self):
        """After Ctrl-C: feed from a timer from now on. A started machine.WDT cannot be
        stopped, and a person (or mpremote deploying new firmware) is now working at the
        REPL with the line on-hook and silent; without this the board would reset under
        them. A crash or a hung main loop never gets here, so those still reset. The grace
        is bounded (repl_grace_ms, default 10 min): a board left at the REPL is then reset
        by the watchdog and boots back into service."""
        from machine import Timer

        try:
            timer = Timer(-1)  # a virtual (soft) timer where the port has them (rp2)
        except (ValueError, TypeError):
            timer = Timer(0)  # esp32: hardware timer 0
        self._feed_cb = self._timer_feed  # bound once, not in the callback
        period = max(50, self.timeout_ms // 4)
        self._grace_feeds = self.repl_grace_ms // period
        timer.init(mode=Timer.PERIODIC, period=period, callback=self._feed_cb)
        self._timer = timer

    def _timer_feed(self, timer):
        if self._grace_feeds > 0:
            self._grace_feeds -= 1
            self._wdt.feed()
        else:
            timer.deinit()  # grace over: the watchdog resets the board into service
