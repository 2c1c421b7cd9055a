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
# Exactly-once: the engine remembers the last WINDOW request ids with a CRC of their
# body.  A repeated id with the same body is answered from that record (for SEND: the
# current progress) and never executed again; the same id with another body is refused.
# Every dial string is compiled by dialstring.compile_plan before it is accepted, so a
# bad string plays nothing.  Queued sequences play one after another; one that follows
# another at once opens with its own gap of silence, so two sequences never run into one
# tone on the line.  What the board hears of its own line (verified sends, SELFTEST) is kept
# by linecheck.LineCheck; the engine reports it.  HELLO (and BOOT) carry the board's hardware id (info["hwid"]), by
# which the host tells boards apart whatever port they appear on.  The protocol is
# specified in docs/protocol.md.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw import codec, dialstring
from tonebridge_fw.linecheck import LineCheck
from tonebridge_fw.ticks import ticks_diff

FW_VERSION = "0.1.0"
WINDOW = const(32)
QUEUE_DEPTH = const(4)
STALL_MARGIN_MS = const(2000)
# a 40-char id, every SEND option at its longest (boot, dialect=tonebridge, tone, gap, pause,
# flash, dialtone) and this many characters of dial string still fit MAX_FRAME
# (test_longest_send_fits_one_frame); every dialect's own limit (92) is below it
MAX_SEND_CHARS = const(112)
DIALTONE_MAX_MS = const(60000)  # SEND dialtone=: the longest wait for dial tone
_NONE = ()

DEFAULT_CONFIG = {"dialect": "catapult", "tone": 100, "gap": 100, "pause": 500, "flash": 100}
_TIMING = ("tone", "gap", "pause")  # SEND options and CONFIG settings, in ms
_FLASH = "flash"  # SEND option and CONFIG setting: the hook flash, in ms (50-1500)
# settings a backend may let CONFIG change at run time (Engine(tunable={...}))
TWIST_RANGE = (0.0, 4.0)  # dB, high group above low group (synth.Renderer limits)
LEVEL_RANGE = (0.05, 1.0)  # peak of the two-tone sum as a fraction of full scale


class Job:
    """One accepted SEND: its plan and progress."""

    def __init__(self, rid, plan, ms):
        self.rid = rid
        self.plan = plan
        self.ms = ms
        n = 0
        for step in plan:
            if step[0] is not None:
                n += 1
        self.total = n
        self.state = "queued"  # queued -> playing -> done | aborted
        self.played = 0  # digits finished
        self.reason = ""
        self.deadline = 0
        self.deadline_ms = 0
        self.forced = False
        self.gap = 0  # ms of silence kept before this sequence if another one just ended
        self.dialtone = 0  # ms to wait for dial tone before the first step (0: do not wait)
        self.waiting = False  # waiting for dial tone: nothing played yet
        self.verified = 0  # digits the board heard on the line (Engine(verify=True))
        self.done_pending = False  # played in full; waiting for the last digits to be heard
        self.selftest = False  # SELFTEST: on hook through the loop relay, every key judged
        self.passed = 0


class Record:
    """What the engine remembers about one request id."""

    def __init__(self, crc, reply, job=None):
        self.crc = crc
        self.reply = reply  # reply body for non-SEND requests
        self.job = job


class Engine:
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
        self.ticks_ms = ticks_ms
        self.boot_id = boot_id
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
        # verified sends (every digit played must be heard by the board's receiver) and
        # SELFTEST (a receive path and a loop relay)
        self.check = LineCheck(verify, selftest)
        for k in self.tunable:
            self.config[k] = self.tunable[k]
        dialstring.check_flash(flash_ms)  # the profile's flash_ms (boards.profile checks it)
        self.config[_FLASH] = flash_ms
        self.off_hook = False
        # the board hears the line (a receive path feeding call progress): SEND dialtone=
        self.hears = hears
        self.progress = "unknown"  # the last call-progress state heard
        self.started_ms = ticks_ms()
        self._out = []
        self._actions = []
        self._ids = []  # request ids in arrival order (bounded by window)
        self._records = {}
        self._queue = []  # Jobs waiting for the player
        self._cur = None  # Job the player is playing
        self._ended = None  # ticks_ms when the last sequence ended (None: never / long ago)
        self.executed = 0  # requests executed (not answered from the window)
        self.duplicates = 0
        boot = (
            "BOOT boot=" + boot_id + " fw=" + FW_VERSION + " proto=" + str(codec.PROTOCOL_VERSION)
        )
        if self.info.get("hwid"):
            boot += " hwid=" + self.info["hwid"]
        self._event(codec.NO_ID, boot)

    # ---- outputs ---------------------------------------------------------------------------

    def output(self):
        """Bytes to write to the link since the last call. Frames are encoded here, not when
        queued: a SEND's reply (~2-5 ms of an RP2040) is then encoded after its sequence has
        started (the App applies the play action before it writes), not before."""
        if not self._out:
            return b""
        out = self._out
        self._out = []
        return b"".join([codec.encode(f[0], f[1], f[2]) for f in out])

    def actions(self):
        """Player/line actions since the last call."""
        a = self._actions
        if not a:
            return _NONE  # no allocation on the idle path
        self._actions = []
        return a

    def _send(self, mark, rid, body):
        self._out.append((mark, rid, body))  # encoded by output()

    def _reply(self, rid, body):
        self._send(codec.REPLY, rid, body)

    def _event(self, rid, body):
        self._send(codec.EVENT, rid, body)

    def _err(self, rid, code, text):
        self._reply(rid, "ERR " + code + " " + codec.clean(text))

    def uptime(self):
        return ticks_diff(self.ticks_ms(), self.started_ms)

    # ---- input -----------------------------------------------------------------------------

    def receive(self, data):
        for frame in self.decoder.feed(data):
            self.handle(frame[1], frame[2])

    def handle(self, rid, body):
        """Handle one request frame (already CRC-checked)."""
        crc = codec.crc16(body.encode())
        rec = self._records.get(rid)
        if rec is not None:
            if rec.crc != crc:
                self._err(rid, "id-reused", "request id " + rid + " was used for another request")
                return
            self.duplicates += 1
            if rec.job is not None:
                self._reply(rid, self._job_state(rec.job) + " dup=1")
            else:
                self._reply(rid, rec.reply + " dup=1")
            return
        verb, args = codec.split_body(body)
        fn = _VERBS.get(verb)
        if fn is None:
            self._err(rid, "unknown-verb", "unknown request " + verb)
            return
        try:
            result = fn(self, rid, args)
        except ValueError as e:
            self._err(rid, "bad-arg", str(e))
            return
        if result is None:
            return  # rejected; nothing executed, nothing remembered
        self.executed += 1
        if isinstance(result, Job):
            self._remember(rid, Record(crc, None, result))
            self._reply(rid, self._job_state(result))
        else:
            if verb in _EFFECTFUL:
                self._remember(rid, Record(crc, result))
            self._reply(rid, result)

    def _remember(self, rid, rec):
        self._records[rid] = rec
        self._ids.append(rid)
        if len(self._ids) > self.window:
            # forget the oldest finished record; live jobs are never forgotten
            for i in range(len(self._ids)):
                old = self._records[self._ids[i]]
                if old.job is None or old.job.state in ("done", "aborted"):
                    del self._records[self._ids[i]]
                    self._ids.pop(i)
                    break

    def _job_state(self, job):
        s = "OK state=" + job.state + " played=" + str(job.played) + " digits=" + str(job.total)
        if self.check.verify:
            s += " verified=" + str(job.verified)
        if job.state == "queued":
            ahead = 0
            if self._cur is not None:
                ahead = 1
            for j in self._queue:
                if j is job:
                    break
                ahead += 1
            s += " ahead=" + str(ahead) + " ms=" + str(job.ms)
        elif job.state == "playing":
            s += " ms=" + str(job.ms)
        elif job.state == "aborted":
            s += " reason=" + job.reason
        return s

    # ---- requests --------------------------------------------------------------------------

    def _hello(self, rid, args):
        info = self.info
        pairs = [
            ("proto", codec.PROTOCOL_VERSION),
            ("fw", FW_VERSION),
            ("boot", self.boot_id),
            ("board", info.get("board", "unknown")),
            ("backend", info.get("backend", "unknown")),
            ("keys", dialstring_keys()),
            ("dialects", ",".join(dialects())),
            ("tone_min", dialstring.TIMING_MIN_MS),
            ("tone_max", dialstring.TIMING_MAX_MS),
            ("hold_max", self.hold_max_ms),
            ("queue", self.queue_depth),
            ("window", self.window),
            ("frame", codec.MAX_FRAME),
            ("chars", MAX_SEND_CHARS),
            ("verify", 1 if self.check.verify else 0),
        ]
        if self.hears:
            pairs.append(("progress", 1))
        if info.get("hwid"):
            pairs.append(("hwid", info["hwid"]))
        return "OK " + codec.format_kv(pairs)

    def _ping(self, rid, args):
        return "OK pong up=" + str(self.uptime())

    def _status(self, rid, args):
        cur = self._cur
        pairs = [
            ("boot", self.boot_id),
            ("state", "playing" if cur is not None else "idle"),
        ]
        if cur is not None:
            pairs.append(("rid", cur.rid))
            pairs.append(("played", cur.played))
            pairs.append(("digits", cur.total))
        pairs.append(("queue", len(self._queue)))
        pairs.append(("hook", "off" if self.off_hook else "on"))
        if self.hears:
            pairs.append(("progress", self.progress))
        pairs.append(("up", self.uptime()))
        pairs.append(("frames", self.decoder.frames))
        pairs.append(("dropped", self.decoder.dropped))
        pairs.append(("dups", self.duplicates))
        pairs.append(("underruns", self.underruns() if self.underruns else 0))
        return "OK " + codec.format_kv(pairs)

    def _result(self, rid, args):
        if len(args) != 1:
            raise ValueError("RESULT takes one request id")
        rec = self._records.get(args[0])
        if rec is None:
            return "OK state=unknown boot=" + self.boot_id
        if rec.job is None:
            return "OK state=answered"
        return self._job_state(rec.job)

    def _config(self, rid, args):
        kv, rest = codec.parse_kv(args)
        if rest:
            raise ValueError("CONFIG takes key=value words")
        new = dict(self.config)
        for k in kv:
            v = kv[k]
            if k == "dialect":
                if v not in dialects():
                    raise ValueError("unknown dialect " + v)
                new[k] = v
            elif k in _TIMING or k == _FLASH:
                new[k] = _int(v, k)
            elif k == "twist" or k == "level":
                if k not in self.tunable:
                    raise ValueError(k + " cannot be changed on this board")
                f = _float(v, k)
                lo, hi = TWIST_RANGE if k == "twist" else LEVEL_RANGE
                if not lo <= f <= hi:
                    raise ValueError(k + " must be within " + str(lo) + ".." + str(hi))
                new[k] = f
            else:
                raise ValueError("unknown setting " + k)
        try:
            dialstring.check_timing(new["tone"], new["gap"], new["pause"])
            dialstring.check_flash(new[_FLASH])
        except ValueError as e:
            raise ValueError(str(e))
        if kv:
            self.config = new
            self._actions.append(("config", dict(new)))
        c = self.config
        pairs = [("dialect", c["dialect"])]
        for k in _TIMING:
            pairs.append((k, c[k]))
        pairs.append((_FLASH, c[_FLASH]))
        for k in ("twist", "level"):
            if k in c:
                pairs.append((k, c[k]))
        return "OK " + codec.format_kv(pairs)

    def _hook(self, rid, args):
        if len(args) != 1 or args[0] not in ("on", "off"):
            raise ValueError("HOOK takes on or off")
        off = args[0] == "off"
        cur = self._cur
        if not off and cur is not None:
            # hanging up stops the sequence (and drops the queued ones)
            for job in self._queue:
                self._finish(job, "aborted", "hangup")
            self._queue = []
            cur.reason = "hangup"
            if not self._end_waiting(cur, "hangup"):
                self._actions.append(("cancel", cur.rid))
        self._actions.append(("hook", off))
        if off != self.off_hook:
            self.off_hook = off
            self._event(codec.NO_ID, "HOOK " + args[0])
        return "OK hook=" + args[0]

    def _flash(self, rid, args):
        if len(args) > 1:
            raise ValueError("FLASH takes at most one length in ms")
        ms = _int(args[0], "flash") if args else self.config[_FLASH]
        dialstring.check_flash(ms)
        if not self.off_hook:
            self._err(rid, "on-hook", "line is on-hook: a flash needs the line held (HOOK off)")
            return None
        if self._cur is not None or self._queue:
            self._err(rid, "busy", "a sequence is playing (put '!' in a tonebridge dial string)")
            return None
        self._actions.append(("flash", ms))
        return "OK flash=" + str(ms)

    def _cancel(self, rid, args):
        if len(args) > 1:
            raise ValueError("CANCEL takes at most one request id")
        target = args[0] if args else None
        cancelled = []
        keep = []
        for job in self._queue:
            if target is None or job.rid == target:
                self._finish(job, "aborted", "cancelled")
                cancelled.append(job.rid)
            else:
                keep.append(job)
        self._queue = keep
        cur = self._cur
        if cur is not None and (target is None or cur.rid == target):
            cur.reason = "cancelled"
            cancelled.append(cur.rid)
            if not self._end_waiting(cur, "cancelled"):
                self._actions.append(("cancel", cur.rid))
        if not cancelled:
            return "OK cancelled=none"
        return "OK cancelled=" + ",".join(cancelled)

    def _send_req(self, rid, args):
        kv, rest = codec.parse_kv(args)
        if not rest:
            self._err(rid, "bad-arg", "SEND needs a dial string")
            return None
        text = codec.dial_from_wire(" ".join(rest))  # '^' on the wire is the dialect's '!'
        for k in kv:
            if (
                k != "boot"
                and k != "dialect"
                and k != _FLASH
                and k != "dialtone"
                and k not in _TIMING
            ):
                self._err(rid, "bad-arg", "unknown SEND option " + k)
                return None
        boot = kv.get("boot")
        if boot is not None and boot != self.boot_id:
            self._err(rid, "boot", "board restarted: boot is " + self.boot_id + " not " + boot)
            return None
        if len(text) > MAX_SEND_CHARS:
            self._err(rid, "too-long", "dial string longer than " + str(MAX_SEND_CHARS))
            return None
        dialect = kv.get("dialect", self.config["dialect"])
        t = {}
        try:
            for k in _TIMING:
                t[k] = _int(kv[k], k) if k in kv else self.config[k]
            t[_FLASH] = _int(kv[_FLASH], _FLASH) if _FLASH in kv else self.config[_FLASH]
            wait = _int(kv["dialtone"], "dialtone") if "dialtone" in kv else 0
        except ValueError as e:
            self._err(rid, "bad-arg", str(e))
            return None
        gap = t["gap"]
        try:
            plan = dialstring.compile_plan(
                text, dialect, t["tone"], gap, t["pause"], self.hold_max_ms, t[_FLASH]
            )
        except dialstring.DialStringError as e:
            pos = getattr(e, "position", None)
            where = "" if pos is None else " pos=" + str(pos)
            self._err(rid, "dial" + where, codec.dial_to_wire(str(e)))
            return None
        except ValueError as e:
            self._err(rid, "bad-arg", str(e))
            return None
        if wait and not self.hears:
            self._err(rid, "bad-arg", "dialtone: this board does not hear the line")
            return None
        if wait < 0 or wait > DIALTONE_MAX_MS:
            self._err(rid, "bad-arg", "dialtone must be 0-" + str(DIALTONE_MAX_MS) + " ms")
            return None
        if len(self._queue) + (1 if self._cur is not None else 0) >= self.queue_depth:
            self._err(rid, "busy", "queue full (" + str(self.queue_depth) + " sequences)")
            return None
        ms = dialstring.plan_ms(plan)
        if self.max_plan_ms and ms > self.max_plan_ms:
            self._err(
                rid,
                "dial",
                "sequence lasts %d ms, longer than the line may stay off-hook (%d ms)"
                % (ms, self.max_plan_ms),
            )
            return None
        job = Job(rid, plan, ms)
        job.gap = gap
        job.dialtone = wait
        self._queue.append(job)
        self._start_next()
        return job

    # ---- player and line ---------------------------------------------------------------------

    def _start_next(self):
        if self._cur is not None or not self._queue:
            return
        job = self._queue.pop(0)
        self._cur = job
        job.state = "playing"
        self.check.begin()
        job.deadline = self.ticks_ms()
        job.deadline_ms = job.ms + STALL_MARGIN_MS
        if job.total == 0 and not job.plan:
            self._finish(job, "done", "")
            self._cur = None
            self._start_next()
            return
        if job.dialtone:
            # listen for dial tone first: the line held, nothing played until it is heard
            job.waiting = True
            job.deadline_ms += job.dialtone
            if not self.off_hook:
                self._actions.append(("hook", True))
            self._event(job.rid, "DIALTONE wait " + str(job.dialtone))
            if self.progress == "dial":
                self._dialtone_heard(job)
            return
        self._play(job)

    def _end_waiting(self, job, reason):
        """End the current job if it is still waiting for dial tone (the player has nothing
        to stop); False if it is playing."""
        if not job.waiting:
            return False
        job.waiting = False
        self._finish(job, "aborted", reason)
        self._cur = None
        self._start_next()
        return True

    def _dialtone_heard(self, job):
        job.waiting = False
        job.deadline = self.ticks_ms()
        job.deadline_ms = job.ms + STALL_MARGIN_MS
        self._event(job.rid, "DIALTONE heard")
        self._play(job)

    def _play(self, job):
        plan = job.plan
        if job.selftest:
            self._actions.append(("loop", True))
            self._actions.append(("play", job.rid, plan, True))
            return
        if self._ended is not None:
            # a sequence that follows another at once keeps the inter-digit gap: without it
            # "1" then "1" would reach the line as one long tone, one digit to the exchange
            quiet = job.gap - ticks_diff(job.deadline, self._ended)
            if quiet > 0 and plan and plan[0][0] is not None:
                plan = [(None, quiet)] + list(plan)
                job.deadline_ms += quiet
        self._actions.append(("play", job.rid, plan))

    def _finish(self, job, state, reason):
        job.state = state
        job.reason = reason
        if job is self._cur:
            self._ended = self.ticks_ms()
        ver = self.check.counts(job)
        if job.selftest and job is self._cur:
            self._actions.append(("loop", False))  # the loop relay opens again
        if state == "done":
            self._event(job.rid, "DONE " + str(job.played) + ver)
        else:
            self._event(job.rid, "ABORT " + str(job.played) + " " + (reason or "aborted") + ver)

    def player_event(self, ev):
        """Feed one Player event tuple."""
        kind = ev[0]
        if kind == "hangup":
            self.line_event("timeout" if ev[1] == "timeout" else "hook", False)
            return
        job = self._cur
        if job is None or ev[1] != job.rid:
            return  # stale event (a job already given up on)
        if kind == "started":
            self.check.played(kind, ev[2], ev[3], self.ticks_ms())
            self._event(job.rid, "START " + str(ev[2]) + " " + codec.dial_to_wire(str(ev[3])))
        elif kind == "finished":
            if ev[2] + 1 > job.played:
                job.played = ev[2] + 1
            self.check.played(kind, ev[2], ev[3], self.ticks_ms())
            self._event(job.rid, "END " + str(ev[2]) + " " + codec.dial_to_wire(str(ev[3])))
        elif kind == "done" or kind == "aborted":
            if ev[2] > job.played:
                job.played = ev[2]
            if kind == "done" and self.check.hold(job):
                return  # DONE once the last digits were heard (or not)
            if kind == "done":
                self._finish(job, "done", "")
            else:
                reason = job.reason or (ev[3] if len(ev) > 3 and ev[3] else "aborted")
                self._finish(job, "aborted", codec.clean(str(reason)).replace(" ", "-"))
            self._cur = None
            self._start_next()

    def listening(self):
        """Whether the board's receiver should run: 0 no, 1 a sequence plays or awaits its
        last digits being heard, 2 the self-test (frequencies measured too)."""
        return self.check.listening(self._cur)

    def heard(self, h):
        """The receiver heard a digit (listen.Heard): confirm the played digit it matches."""
        job = self._cur
        if job is None:
            return
        body = self.check.heard(job, h)
        if body is None:
            return
        self._event(job.rid, body)
        if self.check.settled(job):
            self._complete(job)

    def _check_heard(self):
        """A digit played but not heard in time: a line FAULT; the sequence ends (the
        self-test reports it and goes on)."""
        job = self._cur
        miss = self.check.overdue(job, self.ticks_ms())
        if miss is None:
            return
        if not miss[0]:
            self._event(job.rid, miss[1])
            if self.check.settled(job):
                self._complete(job)
            return
        self.fault("line", miss[1])
        job.reason = "not-heard"
        if job.done_pending:
            self._finish(job, "aborted", "not-heard")
            self._cur = None
            self._start_next()
        else:
            self._actions.append(("cancel", job.rid))

    def _complete(self, job):
        self._finish(job, "done", "")
        self._cur = None
        self._start_next()

    def _selftest_req(self, rid, args):
        busy = self.off_hook or self._cur is not None or bool(self._queue)
        err = self.check.refuse(args, self.boot_id, busy)
        if err is not None:
            self._err(rid, err[0], err[1])
            return None
        plan = self.check.selftest_plan()
        job = Job(rid, plan, dialstring.plan_ms(plan))
        job.selftest = True
        self._queue.append(job)
        self._start_next()
        return job

    def player_failed(self, text):
        """The player/backend raised: report it; the current sequence ends as 'error'."""
        self.fault("backend", text)
        if self._cur is not None:
            self._cur.reason = "error"

    def abort_current(self, reason):
        """End the current sequence now with what is known (the player cannot say more)."""
        job = self._cur
        if job is None:
            return
        self._finish(job, "aborted", job.reason or reason)
        self._cur = None
        self._start_next()

    def line_event(self, kind, value=None):
        """Feed a line-controller event: ("hook", off_hook), ("timeout",), ("fault", text)."""
        if kind == "hook":
            off = bool(value)
            if off != self.off_hook:
                self.off_hook = off
                self._event(codec.NO_ID, "HOOK " + ("off" if off else "on"))
        elif kind == "timeout":
            self.off_hook = False
            self._event(codec.NO_ID, "HOOK on timeout")
        elif kind == "progress":
            name = str(value)
            if name != self.progress:
                self.progress = name
                self._event(codec.NO_ID, "PROGRESS " + codec.clean(name))
            job = self._cur
            if name == "dial" and job is not None and job.waiting:
                self._dialtone_heard(job)
        else:
            self.fault(str(kind), "" if value is None else str(value))

    def fault(self, code, text=""):
        body = "FAULT " + codec.clean(code).replace(" ", "-")
        if text:
            body += " " + codec.clean(text)
        self._event(codec.NO_ID, body)

    def tick(self):
        """Stall guard: a sequence that outlives its plan by STALL_MARGIN_MS is aborted."""
        job = self._cur
        if job is None:
            return
        if job.waiting:
            if ticks_diff(self.ticks_ms(), job.deadline) >= job.dialtone:
                # no dial tone: nothing was played; the line stays as it is (the caller hangs
                # up or tries again)
                self._finish(job, "aborted", "no-dial-tone")
                self._cur = None
                self._start_next()
            return
        if self.check.verify:
            self._check_heard()
            job = self._cur
            if job is None:
                return
        late = ticks_diff(self.ticks_ms(), job.deadline) - job.deadline_ms
        if late < 0:
            return
        if not job.forced:
            job.forced = True
            job.reason = "stalled"
            self.fault("stall", "sequence " + job.rid + " did not finish; aborting")
            self._actions.append(("cancel", job.rid))
            job.deadline_ms += STALL_MARGIN_MS
        else:
            # the player never confirmed the abort: report what is known and move on
            self._finish(job, "aborted", "stalled")
            self._cur = None
            self._start_next()

    def busy(self):
        return self._cur is not None or bool(self._queue)


def _int(v, name):
    try:
        return int(v)
    except ValueError:
        raise ValueError(name + " must be an integer, not " + v)


def _float(v, name):
    try:
        return float(v)
    except ValueError:
        raise ValueError(name + " must be a number, not " + v)


def dialects():
    d = getattr(dialstring, "DIALECTS", None)
    if d is None:
        return ("catapult",)
    # sorted: MicroPython's dict does not keep insertion order (HELLO said gws,catapult on
    # the emulated Pico, catapult,gws in CPython; docs/emulator.md)
    return tuple(sorted(d))


def dialstring_keys():
    try:
        from tonebridge_fw import keypad

        return keypad.KEYS
    except ImportError:
        return "123A456B789C*0#D"


_VERBS = {
    "HELLO": Engine._hello,
    "PING": Engine._ping,
    "STATUS": Engine._status,
    "RESULT": Engine._result,
    "CONFIG": Engine._config,
    "HOOK": Engine._hook,
    "CANCEL": Engine._cancel,
    "SEND": Engine._send_req,
    "FLASH": Engine._flash,
    "SELFTEST": Engine._selftest_req,
}
_EFFECTFUL = ("CONFIG", "HOOK", "CANCEL", "FLASH")
