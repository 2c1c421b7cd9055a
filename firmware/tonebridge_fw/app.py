# The board's main loop: serial link -> engine -> player/line -> engine -> serial link.
#
#   app = App(profile)      # builds backend + line (board.make_board), Player, link, Engine
#   app.step() -> ms        # one main-loop pass; returns how long the loop may sleep
#
# The player comes first: frames are handled one at a time, the player serviced after each (and
# between every FEED_BYTES of input decoded: 128, so a SEND frame is mostly decoded in one go, ~0.4
# ms of an RP2040 since the decoder copies a line's bytes in one slice), so a burst of requests arriving while a sequence
# plays never keeps the backend's next buffer from being refilled in time (one SEND costs
# ~15-20 ms of CPU on an RP2040, a DMA chunk lasts 16.8 ms). A SEND's sequence starts before
# its reply is written. While a sequence plays the loop sleeps until the backend's next buffer
# needs refilling or the next digit starts or ends (backend.due_ms()), or the receive path's
# next read if sooner (an MT8880 board's ear polls the chip: ChipEar.due_ms()); input wakes it
# at once.
#   app.run()               # forever; Ctrl-C (KeyboardInterrupt) stops the tone, hangs up and
#                           # returns to the REPL
#
# The watchdog (machine.WDT via line.Watchdog) is started only when the profile sets
# "watchdog_ms"; it is fed once per pass that completed without an exception. A started WDT
# cannot be stopped: after Ctrl-C a timer keeps feeding it for "repl_grace_s" (so mpremote can
# work at the REPL), then it resets the board back into service.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw import board as board_mod
from tonebridge_fw import dialstring
from tonebridge_fw import engine as engine_mod
from tonebridge_fw.listen import make_listener
from tonebridge_fw.player import Player

BUSY_MS = const(1)  # sleep while busy when the backend cannot say when it next has work
FEED_BYTES = const(128)  # input bytes decoded between two services of the player
# output the backend must have queued before the loop decodes or handles input: a SEND costs
# up to ~20 ms of CPU on an RP2040 (decode, engine, reply); a DMA chunk lasts 16.8 ms there
ROOM_MS = const(24)
# receive-path pieces per _hear() (listen.PIECE samples, ~20 ms of line each): a ring's worth
RX_PIECES = const(8)
RX_ROOM_MS = const(8)  # output queued before each piece (~4 ms on an RP2040 with a tone)
IDLE_MS = const(20)  # sleep while idle (input wakes the loop earlier)
ERROR_MS = const(100)


def hardware_id(profile):
    """The board's stable hardware id as lowercase hex: the profile's "hwid" when set (an SBC
    or a board whose MCU has none), else machine.unique_id() (the flash unique id on rp2,
    which MicroPython also reports as the USB serial number; the MAC on esp32). "" if none."""
    hw = profile.get("hwid")
    if hw:
        out = ""
        for ch in str(hw).lower()[:40]:
            if ch in "0123456789abcdefghijklmnopqrstuvwxyz_.:-":
                out += ch
        return out
    try:
        import machine

        uid = machine.unique_id()
    except (ImportError, AttributeError, OSError):
        return ""
    s = ""
    for b in uid:
        s += "%02x" % b
    return s


def new_boot_id():
    """32 random bits as 8 hex digits: different at every boot."""
    try:
        import os

        b = os.urandom(4)
        return "%02x%02x%02x%02x" % (b[0], b[1], b[2], b[3])
    except (ImportError, AttributeError, OSError):
        import time

        return "%08x" % (time.ticks_us() & 0xFFFFFFFF)


class App:
    def __init__(self, profile, ticks_ms=None, link=None, boot_id=None, sleep_ms=None):
        if ticks_ms is None or sleep_ms is None:
            import time

            ticks_ms = ticks_ms or time.ticks_ms
            sleep_ms = sleep_ms or time.sleep_ms
        self.sleep_ms = sleep_ms
        self.profile = profile
        self.ticks_ms = ticks_ms
        self.backend, self.line = board_mod.make_board(profile, ticks_ms)
        self.player = Player(self.backend, ticks_ms, self.line)
        if link is None:
            from tonebridge_fw import transport

            link = transport.open_link(profile, hardware_id(profile))
        self.link = link
        self.ears = make_listener(profile, ticks_ms, self.backend)  # the receive path (None: none)
        tunable = {}
        if hasattr(self.backend, "configure"):
            tunable = self.backend.configure()  # current {"twist": dB, "level": fraction}
        self.engine = engine_mod.Engine(
            ticks_ms,
            boot_id or new_boot_id(),
            info={
                "board": profile.get("board", "unknown"),
                "backend": profile["backend"],
                "hwid": hardware_id(profile),
            },
            tunable=tunable,
            underruns=self._underruns,
            # a backend whose tones have a fixed length (MT8880 burst mode) cannot hold keys
            hold_max_ms=getattr(self.backend, "hold_max_ms", dialstring.HOLD_MAX_MS),
            # a sequence longer than the line may stay off-hook would be cut by the hang-up
            max_plan_ms=getattr(self.line, "max_offhook_ms", 0),
            flash_ms=profile.get("flash_ms", dialstring.DEFAULT_FLASH_MS),
            verify=self.ears is not None,
            hears=self.ears is not None and self.ears.cp is not None,
            selftest=self.ears is not None and self.line.has_loop(),
        )
        self.wdt = None
        wd = profile.get("watchdog_ms")
        if wd:
            from tonebridge_fw.line import Watchdog

            self.wdt = Watchdog(wd, repl_grace_ms=1000 * profile.get("repl_grace_s", 600))
        self.passes = 0
        self.errors = 0
        self._flush()  # the BOOT event

    def _flush(self):
        out = self.engine.output()
        if out:
            self.link.write(out)

    def _apply(self, actions):
        for act in actions:
            kind = act[0]
            if kind == "play":
                if self.player.busy():
                    # the engine gave up on a stalled sequence; make sure it is silent
                    self.player.cancel()
                    self._service_player()
                try:
                    self.player.play(act[1], act[2], len(act) > 3 and act[3])
                except Exception as e:
                    self._player_failed(e)
            elif kind == "loop":
                self.line.loop(act[1])
            elif kind == "cancel":
                self.player.cancel()
            elif kind == "flash":
                self.line.flash(act[1])
            elif kind == "hook":
                if act[1]:
                    self.line.off_hook()
                else:
                    self.line.on_hook()
            elif kind == "config":
                cfg = act[1]
                if hasattr(self.backend, "configure"):
                    kw = {}
                    for k in ("twist", "level"):
                        if k in cfg:
                            kw[k] = cfg[k]
                    self.backend.configure(**kw)

    def _player_failed(self, e):
        """The player or backend raised: report, silence, end the sequence as 'error'."""
        eng = self.engine
        eng.player_failed(type(e).__name__ + " " + str(e))
        evs = ()
        try:
            self.player.cancel()  # back to idle, tone path muted
            evs = self.player.service()
        except Exception:
            pass
        for ev in evs:
            if ev[0] != "started":  # after a failure, "started" is not evidence of sound
                eng.player_event(ev)
        eng.abort_current("error")

    def _service_player(self):
        try:
            return self.player.service()
        except Exception as e:
            self._player_failed(e)
            return ()

    def _underruns(self):
        return getattr(self.backend, "underruns", 0)

    def _pump(self):
        """Service the player (refill the backend's buffers), report its progress, and start
        the next queued sequence at once."""
        eng = self.engine
        for ev in self._service_player():
            eng.player_event(ev)
        self._apply(eng.actions())

    def _hear(self):
        """Run the receive path over what the line brought since the last call, one bounded
        piece at a time (listen.PIECE: ~4 ms of an RP2040 with a tone), each only once the
        backend has RX_ROOM_MS of output queued: a loop that fell behind (a burst of frames)
        catches up without starving the DMA, and the ring (128 ms) never overflows."""
        ears = self.ears
        if ears is None:
            return
        eng = self.engine
        for _ in range(RX_PIECES):
            self._room(RX_ROOM_MS)
            progress = eng.hears and self.line.is_off_hook()
            if ears.cp is not None:
                # call progress while the line is held and none of our digits is on it
                quiet = progress and not self.player.busy()
                if not quiet and ears.progress_on:
                    eng.line_event("progress", "unknown")  # it starts afresh after
                ears.hear_progress(quiet)
            try:
                got = ears.service(eng.listening() or progress)
            except Exception as e:
                # the receive path failed (on an MT8880 board it reads the chip over the
                # backend's own bus): reported like a backend failure, the sequence ends 'error'
                self._player_failed(e)
                break
            for h in got:
                eng.heard(h)
            name = ears.progress() if ears.cp is not None else None
            if name is not None:
                eng.line_event("progress", name)
            if not ears.backlog:
                break
        self._apply(eng.actions())

    def _room(self, need_ms):
        """Service the player, and if the backend has less than need_ms of output queued, wait
        for its playing buffer to end and refill it (the next one then plays a whole buffer
        ahead). Only while a sequence plays; bounded."""
        self._pump()
        player = self.player
        for _ in range(4):
            slack = player.slack_ms()
            if slack < 0 or slack >= need_ms:
                return
            due = player.due_ms()
            if due > 0:
                self.sleep_ms(due)
            self._pump()

    def _make_room(self):
        """Before work that costs CPU (a frame): run the receive path (its own pieces budgeted),
        then make sure ROOM_MS of output is queued."""
        self._hear()
        self._room(ROOM_MS)

    def _receive(self, data):
        """Handle the input one frame at a time, the player serviced in between."""
        eng = self.engine
        dec = eng.decoder
        n = len(data)
        i = 0
        while i < n:
            self._make_room()
            j = i + FEED_BYTES
            for f in dec.feed(data[i:j]):
                self._make_room()
                eng.handle(f[1], f[2])
                self._apply(eng.actions())  # a sequence starts before its reply is written
                self._pump()
                self._flush()
            i = j

    def step(self):
        """One main-loop pass; returns the ms the loop may sleep before the next."""
        eng = self.engine
        self._apply(eng.actions())  # what the last pass's tick() asked for
        data = self.link.read()
        if data:
            self._receive(data)
        self._pump()
        self._hear()
        off = self.line.is_off_hook()
        if off != eng.off_hook:
            eng.line_event("hook", off)
        eng.tick()
        self._flush()
        self.passes += 1
        if self.wdt is not None:
            self.wdt.feed()
        if self.line.flashing():
            return BUSY_MS  # (a flash: if its timer is late, line.service() ends it)
        if self.player.busy():
            due = self.player.due_ms()
            if due <= 0:
                return BUSY_MS
            e = self._ear_due()
            if 0 < e < due:
                due = e  # (an MT8880 board's ear: its next status read)
            return due if due < IDLE_MS else IDLE_MS
        if eng.busy():
            return BUSY_MS
        return IDLE_MS

    def _ear_due(self):
        """ms until the receive path wants its next pass, 0 if it cannot say or needs none
        (an MT8880 board's ear polls the chip's status: ChipEar.due_ms(); the ADC listeners
        read rings the DMA fills and have none)."""
        ears = self.ears
        if ears is None or not hasattr(ears, "due_ms"):
            return 0
        return ears.due_ms()

    def shutdown(self):
        """Silence and hang up (Ctrl-C, fatal error)."""
        try:
            self.player.cancel()
            self.player.service()
        finally:
            self.line.on_hook()

    def run(self):
        try:
            while True:
                try:
                    ms = self.step()
                except KeyboardInterrupt:
                    raise
                except Exception as e:
                    # report and carry on; the watchdog (if any) was not fed this pass
                    self.errors += 1
                    try:
                        self.player.cancel()
                        self.engine.fault("error", type(e).__name__ + " " + str(e))
                        self._flush()
                    except Exception:
                        pass
                    ms = ERROR_MS
                self.link.wait(ms)
        except KeyboardInterrupt:
            if self.wdt is not None:
                self.wdt.keep_alive_for_repl()  # Ctrl-C: a person is at the REPL now
            raise
        finally:
            self.shutdown()
