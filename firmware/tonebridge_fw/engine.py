# tonebridge device-side command engine (sans-I/O).
#
# Bytes and time in, bytes and player actions out:
#
#     eng = Engine(ticks_ms, boot_id="3fa2c1d0", info={"board": "pico", "backend": "pwm"})
#     eng.receive(data)          # bytes read from the serial link
#     for act in eng.actions():  # ("play", rid, plan) / ("cancel", rid) / ("hook", off_hook)
#         ...                    # / ("config", dict) / ("flash", ms)
#     eng.player_event(ev)       # events from Player.service()
#     eng.line_event("hook", off_hook) / ("timeout",) / ("fault", text)
#     eng.line_event("progress", name)  # call progress heard on the line (callprogress.NAMES)
#     eng.heard(h)               # a digit the board's receiver heard (listen.Heard), when
#                                # Engine(verify=True): every played digit must be
#     eng.listening()            # 0/1/2: whether the receiver should run (linecheck.py)
#     eng.tick()                 # once per main-loop pass: stall guard, digits not heard
#     link.write(eng.output())   # bytes for the serial link
#
# The engine is split by concept: this file takes request frames in and answers them, keeping
# the exactly-once window (window.py): the last WINDOW request ids with a CRC of their body. A
# repeated id with the same body is answered from that record (for SEND: the current
# progress) and never executed again; the same id with another body is refused. What each
# request kind does is in verbs.py (VERBS: one function per verb; a SEND's dial string is
# compiled there before it is accepted, so a bad string plays nothing). The sequences, the
# queue of accepted jobs (job.py) and the one playing, the events of the player, the line
# and the receiver, and what goes out are the Sequencer's (sequencer.py; Engine is one). What
# the board hears of its own line (verified sends, SELFTEST) is kept by linecheck.LineCheck.
# HELLO (and BOOT) carry the board's hardware id (info["hwid"]), by which the host tells
# boards apart whatever port they appear on. The protocol is specified in docs/protocol.md.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw import codec, dialstring, verbs
from tonebridge_fw.job import Job
from tonebridge_fw.linecheck import LineCheck
from tonebridge_fw.sequencer import Sequencer
from tonebridge_fw.ticks import ticks_diff
from tonebridge_fw.window import Record, Window

FW_VERSION = "0.1.0"
WINDOW = const(32)
QUEUE_DEPTH = const(4)

DEFAULT_CONFIG = {"dialect": "catapult", "tone": 100, "gap": 100, "pause": 500, "flash": 100}


class Engine(Sequencer):
    def __init__(
        self,
        ticks_ms,
        boot_id,
        info=None,
        window=WINDOW,
        queue_depth=QUEUE_DEPTH,
        tunable=None,
        hold_max_ms=dialstring.HOLD_MAX_MS,
        max_plan_ms=0,
        flash_ms=dialstring.DEFAULT_FLASH_MS,
        hears=False,
        verify=False,
        selftest=False,
        underruns=None,
    ):
        # verified sends (every digit played must be heard by the board's receiver) and
        # SELFTEST (a receive path and a loop relay)
        Sequencer.__init__(self, ticks_ms, LineCheck(verify, selftest))
        self.boot_id = boot_id
        self.fw = FW_VERSION
        self.info = info or {}
        self.window = window
        self.queue_depth = queue_depth
        self.decoder = codec.Decoder(accept=codec.REQUEST)
        self.config = dict(DEFAULT_CONFIG)
        self.tunable = tunable or {}
        self.hold_max_ms = hold_max_ms  # longest held key the backend plays (0: none)
        # longest sequence the line lets play: its off-hook limit (0: no limit). A longer one
        # would certainly be cut by the hang-up, so it is refused before anything plays.
        self.max_plan_ms = max_plan_ms
        self.underruns = underruns  # () -> times the tone output ran dry (STATUS), or None
        for k in self.tunable:
            self.config[k] = self.tunable[k]
        dialstring.check_flash(flash_ms)  # the profile's flash_ms (boards.profile checks it)
        self.config[verbs.FLASH] = flash_ms
        # the board hears the line (a receive path feeding call progress): SEND dialtone=
        self.hears = hears
        self.started_ms = ticks_ms()
        self.recent = Window(window)  # the exactly-once window (window.py)
        self.executed = 0  # requests executed (not answered from the window)
        self.duplicates = 0
        boot = (
            "BOOT boot=" + boot_id + " fw=" + FW_VERSION + " proto=" + str(codec.PROTOCOL_VERSION)
        )
        if self.info.get("hwid"):
            boot += " hwid=" + self.info["hwid"]
        self.event(codec.NO_ID, boot)

    def uptime(self):
        return ticks_diff(self.ticks_ms(), self.started_ms)

    # ---- input -----------------------------------------------------------------------------

    def receive(self, data):
        for frame in self.decoder.feed(data):
            self.handle(frame[1], frame[2])

    def handle(self, rid, body):
        """Handle one request frame (already CRC-checked)."""
        crc = codec.crc16(body.encode())
        rec = self.recent.get(rid)
        if rec is not None:
            if rec.crc != crc:
                self.err(rid, "id-reused", "request id " + rid + " was used for another request")
                return
            self.duplicates += 1
            if rec.job is not None:
                self.reply(rid, self.job_state(rec.job) + " dup=1")
            else:
                self.reply(rid, rec.reply + " dup=1")
            return
        verb, args = codec.split_body(body)
        fn = verbs.VERBS.get(verb)
        if fn is None:
            self.err(rid, "unknown-verb", "unknown request " + verb)
            return
        try:
            result = fn(self, rid, args)
        except ValueError as e:
            self.err(rid, "bad-arg", str(e))
            return
        if result is None:
            return  # rejected; nothing executed, nothing remembered
        self.executed += 1
        if isinstance(result, Job):
            self.recent.remember(rid, Record(crc, None, result))
            self.reply(rid, self.job_state(result))
        else:
            if verb in verbs.EFFECTFUL:
                self.recent.remember(rid, Record(crc, result))
            self.reply(rid, result)

    def lookup(self, rid):
        """The Record remembered for request id rid (its job, or its reply), or None."""
        return self.recent.get(rid)

    def job_state(self, job):
        ahead = 0
        if job.state == "queued":
            if self.cur is not None:
                ahead = 1
            for j in self.queue:
                if j is job:
                    break
                ahead += 1
        return job.describe(self.check.verify, ahead)
