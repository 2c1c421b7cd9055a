# The sequences: the queue of accepted jobs (job.Job) and the one playing (sans-I/O).
#
# The engine's lower half (engine.Engine is a Sequencer): it starts a job when the one before
# ends, waits for dial tone first when asked (SEND dialtone=), keeps an inter-digit gap of
# silence between sequences that follow each other at once (two sequences never run into one
# tone on the line), turns the player's, the line's and the receiver's events into the
# protocol's events, and ends a sequence that stalls. It also holds what goes out: frames for
# the link and actions for the player and the line.
#
#     for act in seq.actions():  # ("play", rid, plan[, selftest]) / ("cancel", rid) /
#         ...                    # ("hook", off_hook) / ("loop", closed) / ("config", dict) /
#                                # ("flash", ms)
#     link.write(seq.output())   # frames (replies and events) since the last call
#     seq.queue.append(job); seq.start_next()   # a job accepted (verbs.py)
#     seq.drop(rid or None, reason)             # CANCEL, HOOK on
#     seq.player_event(ev)       # events from Player.service()
#     seq.line_event("hook", off_hook) / ("timeout",) / ("fault", text) / ("progress", name)
#     seq.heard(h)               # a digit the board's receiver heard (listen.Heard)
#     seq.listening()            # 0/1/2: whether the receiver should run (linecheck.py)
#     seq.tick()                 # once per main-loop pass: stall guard, digits not heard

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw import codec
from tonebridge_fw.ticks import ticks_diff

STALL_MARGIN_MS = const(2000)
_NONE = ()


class Sequencer:
    def __init__(self, ticks_ms, check):
        self.ticks_ms = ticks_ms
        # verified sends and SELFTEST: what the board hears of its own line (linecheck.py)
        self.check = check
        self.off_hook = False
        self.progress = "unknown"  # the last call-progress state heard
        self._out = []
        self._actions = []
        self.queue = []  # Jobs waiting for the player
        self.cur = None  # Job the player is playing
        self._ended = None  # ticks_ms when the last sequence ended (None: never / long ago)

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

    def reply(self, rid, body):
        self._send(codec.REPLY, rid, body)

    def event(self, rid, body):
        self._send(codec.EVENT, rid, body)

    def err(self, rid, code, text):
        self.reply(rid, "ERR " + code + " " + codec.clean(text))

    def act(self, action):
        """Queue a player/line action (see actions())."""
        self._actions.append(action)

    # ---- player and line ---------------------------------------------------------------------

    def start_next(self):
        if self.cur is not None or not self.queue:
            return
        job = self.queue.pop(0)
        self.cur = job
        job.state = "playing"
        self.check.begin()
        job.deadline = self.ticks_ms()
        job.deadline_ms = job.ms + STALL_MARGIN_MS
        if job.total == 0 and not job.plan:
            self._end(job, "done", "")
            return
        if job.dialtone:
            # listen for dial tone first: the line held, nothing played until it is heard
            job.waiting = True
            job.deadline_ms += job.dialtone
            if not self.off_hook:
                self._actions.append(("hook", True))
            self.event(job.rid, "DIALTONE wait " + str(job.dialtone))
            if self.progress == "dial":
                self._dialtone_heard(job)
            return
        self._play(job)

    def drop(self, rid, reason):
        """End the sequences of request id rid (None: every one) with reason: the queued ones
        now, the playing one once the player has stopped it. The request ids dropped."""
        dropped = []
        keep = []
        for job in self.queue:
            if rid is None or job.rid == rid:
                self._finish(job, "aborted", reason)
                dropped.append(job.rid)
            else:
                keep.append(job)
        self.queue = keep
        cur = self.cur
        if cur is not None and (rid is None or cur.rid == rid):
            cur.reason = reason
            dropped.append(cur.rid)
            if not self._end_waiting(cur, reason):
                self._actions.append(("cancel", cur.rid))
        return dropped

    def _end_waiting(self, job, reason):
        """End the current job if it is still waiting for dial tone (the player has nothing
        to stop); False if it is playing."""
        if not job.waiting:
            return False
        job.waiting = False
        self._end(job, "aborted", reason)
        return True

    def _dialtone_heard(self, job):
        job.waiting = False
        job.deadline = self.ticks_ms()
        job.deadline_ms = job.ms + STALL_MARGIN_MS
        self.event(job.rid, "DIALTONE heard")
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
        if job is self.cur:
            self._ended = self.ticks_ms()
        ver = self.check.counts(job)
        if job.selftest and job is self.cur:
            self._actions.append(("loop", False))  # the loop relay opens again
        if state == "done":
            self.event(job.rid, "DONE " + str(job.played) + ver)
        else:
            self.event(job.rid, "ABORT " + str(job.played) + " " + (reason or "aborted") + ver)

    def _end(self, job, state, reason):
        """The current job ends: report it and start the next one."""
        self._finish(job, state, reason)
        self.cur = None
        self.start_next()

    def player_event(self, ev):
        """Feed one Player event tuple."""
        kind = ev[0]
        if kind == "hangup":
            self.line_event("timeout" if ev[1] == "timeout" else "hook", False)
            return
        job = self.cur
        if job is None or ev[1] != job.rid:
            return  # stale event (a job already given up on)
        if kind == "started":
            self.check.played(kind, ev[2], ev[3], self.ticks_ms())
            self.event(job.rid, "START " + str(ev[2]) + " " + codec.dial_to_wire(str(ev[3])))
        elif kind == "finished":
            if ev[2] + 1 > job.played:
                job.played = ev[2] + 1
            self.check.played(kind, ev[2], ev[3], self.ticks_ms())
            self.event(job.rid, "END " + str(ev[2]) + " " + codec.dial_to_wire(str(ev[3])))
        elif kind == "done" or kind == "aborted":
            if ev[2] > job.played:
                job.played = ev[2]
            if kind == "done" and self.check.hold(job):
                return  # DONE once the last digits were heard (or not)
            if kind == "done":
                self._end(job, "done", "")
            else:
                reason = job.reason or (ev[3] if len(ev) > 3 and ev[3] else "aborted")
                self._end(job, "aborted", codec.clean(str(reason)).replace(" ", "-"))

    def listening(self):
        """Whether the board's receiver should run: 0 no, 1 a sequence plays or awaits its
        last digits being heard, 2 the self-test (frequencies measured too)."""
        return self.check.listening(self.cur)

    def heard(self, h):
        """The receiver heard a digit (listen.Heard): confirm the played digit it matches."""
        job = self.cur
        if job is None:
            return
        body = self.check.heard(job, h)
        if body is None:
            return
        self.event(job.rid, body)
        if self.check.settled(job):
            self._end(job, "done", "")

    def _check_heard(self):
        """A digit played but not heard in time: a line FAULT; the sequence ends (the
        self-test reports it and goes on)."""
        job = self.cur
        miss = self.check.overdue(job, self.ticks_ms())
        if miss is None:
            return
        if not miss[0]:
            self.event(job.rid, miss[1])
            if self.check.settled(job):
                self._end(job, "done", "")
            return
        self.fault("line", miss[1])
        job.reason = "not-heard"
        if job.done_pending:
            self._end(job, "aborted", "not-heard")
        else:
            self._actions.append(("cancel", job.rid))

    def player_failed(self, text):
        """The player/backend raised: report it; the current sequence ends as 'error'."""
        self.fault("backend", text)
        if self.cur is not None:
            self.cur.reason = "error"

    def abort_current(self, reason):
        """End the current sequence now with what is known (the player cannot say more)."""
        job = self.cur
        if job is None:
            return
        self._end(job, "aborted", job.reason or reason)

    def line_event(self, kind, value=None):
        """Feed a line-controller event: ("hook", off_hook), ("timeout",), ("fault", text)."""
        if kind == "hook":
            off = bool(value)
            if off != self.off_hook:
                self.off_hook = off
                self.event(codec.NO_ID, "HOOK " + ("off" if off else "on"))
        elif kind == "timeout":
            self.off_hook = False
            self.event(codec.NO_ID, "HOOK on timeout")
        elif kind == "progress":
            name = str(value)
            if name != self.progress:
                self.progress = name
                self.event(codec.NO_ID, "PROGRESS " + codec.clean(name))
            job = self.cur
            if name == "dial" and job is not None and job.waiting:
                self._dialtone_heard(job)
        else:
            self.fault(str(kind), "" if value is None else str(value))

    def fault(self, code, text=""):
        body = "FAULT " + codec.clean(code).replace(" ", "-")
        if text:
            body += " " + codec.clean(text)
        self.event(codec.NO_ID, body)

    def tick(self):
        """Stall guard: a sequence that outlives its plan by STALL_MARGIN_MS is aborted."""
        job = self.cur
        if job is None:
            return
        if job.waiting:
            if ticks_diff(self.ticks_ms(), job.deadline) >= job.dialtone:
                # no dial tone: nothing was played; the line stays as it is (the caller hangs
                # up or tries again)
                self._end(job, "aborted", "no-dial-tone")
            return
        if self.check.verify:
            self._check_heard()
            job = self.cur
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
            self._end(job, "aborted", "stalled")

    def busy(self):
        return self.cur is not None or bool(self.queue)
