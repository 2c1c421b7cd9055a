# Player: plays a plan on a backend and reports progress (docs/architecture.md).
#
# Player(backend, ticks_ms, line=None)
#   play(request_id, plan)  start (RuntimeError if still playing: the engine queues)
#   cancel()                stop at once; service() then reports ("aborted", rid, n, "cancelled")
#   due_ms() -> ms until service() next has work (0: at once / not known; the caller polls)
#   slack_ms() -> ms of output the backend has queued (-1: not known / nothing to starve)
#   service() -> list of events, in order:
#     ("started", rid, digit_index, key)   the backend began emitting tone step digit_index
#     ("finished", rid, digit_index, key)  that tone is over
#     ("done", rid, digits_played)         the whole plan was emitted
#     ("aborted", rid, digits_played, reason)  reason "cancelled" or "hangup"
#     ("hangup", reason)                   (only with a line) the line hung up by itself
# Progress comes from backend.position() (the step the hardware is emitting now).
# With a line: play() takes the line off-hook if it is on-hook and unmutes; the plan starts
# once line.ready() (the hook relay has settled), so the first tone is not clipped; the line is
# muted again when the plan ends or is aborted; line.service() runs inside service().
# A backend with ready() (its output stage settling after power-up) keeps the line muted
# until it is True: a sequence sent right after boot then starts late, but with no transient.
# A hook flash step (dialstring.FLASH, ms) is a step like a tone ("started"/"finished", counted
# in digits_played): the backend plays it as silence and, when the backend reaches it, the line
# flashes the hook for ms (line.flash: timed by the line, not by the loop's passes).

_IDLE = 0
_PLAY = 1
_WAIT = 2  # waiting for the hook relay (line.ready) and the output stage (backend.ready)
_FLASH = "!"  # dialstring.FLASH


class Player:
    def __init__(self, backend, ticks_ms, line=None):
        self.backend = backend
        self._ticks = ticks_ms
        self.line = line
        self._state = _IDLE
        self._rid = None
        self._plan = ()
        self._out = ()
        self._tone_steps = []  # plan index of each tone step
        self._next_start = 0  # index into _tone_steps of the next "started" to report
        self._next_finish = 0
        self._pending = []
        self.started_ms = 0

    def busy(self):
        return self._state != _IDLE

    def due_ms(self):
        """How long the main loop may sleep before service() has work: what the backend says
        while it plays (its next buffer to refill or step boundary), else 0 (not known: a
        backend without due_ms(), or waiting for the hook relay)."""
        if self._state == _PLAY and hasattr(self.backend, "due_ms"):
            return self.backend.due_ms()
        return 0

    def slack_ms(self):
        """ms before the line runs dry unless service() refills the backend; -1 when there is
        nothing to starve (not playing, or the backend has all of the plan queued) or the
        backend cannot say."""
        if self._state == _PLAY and hasattr(self.backend, "slack_ms"):
            return self.backend.slack_ms()
        return -1

    def play(self, request_id, plan, local=False):
        """local: a self-test on the board's loop relay: the line stays on hook."""
        if self._state != _IDLE:
            raise RuntimeError("player busy")
        tones = []
        flash = False
        for i in range(len(plan)):
            if plan[i][0] is not None:
                tones.append(i)
                if plan[i][0] == _FLASH:
                    flash = True
        self._rid = request_id
        self._plan = plan
        # the backend plays tones and silence: a flash is silence there
        self._out = [(None, s[1]) if s[0] == _FLASH else s for s in plan] if flash else plan
        self._tone_steps = tones
        self._next_start = 0
        self._next_finish = 0
        settled = self._settled()
        if self.line is not None:
            if not local and not self.line.is_off_hook():
                self.line.off_hook()
            if settled:
                self.line.unmute()
        self.started_ms = self._ticks()
        if not settled or (
            self.line is not None and hasattr(self.line, "ready") and not self.line.ready()
        ):
            self._state = _WAIT  # service() starts the backend once both have settled
            return
        self._start_backend()

    def _settled(self):
        """The backend's output stage has settled after power-up (True if it cannot say)."""
        return not hasattr(self.backend, "ready") or self.backend.ready()

    def _start_backend(self):
        """Start the backend; if it fails, nothing has played: idle, muted, and re-raise (no
        digit is ever reported started for a sequence whose output never began)."""
        try:
            self.backend.start(self._out)
        except Exception:
            self._state = _IDLE
            if self.line is not None:
                self.line.mute()
            raise
        self._state = _PLAY

    def cancel(self):
        self._abort("cancelled")

    def _abort(self, reason):
        if self._state == _IDLE:
            return
        if self._state == _PLAY:
            self.backend.abort()
            self._progress(self.backend.position())
        self._state = _IDLE
        if self.line is not None:
            self.line.mute()
        self._pending.append(("aborted", self._rid, self._next_finish, reason))

    def _progress(self, pos):
        tones = self._tone_steps
        plan = self._plan
        ev = self._pending
        n = len(tones)
        while True:
            if self._next_finish < self._next_start and tones[self._next_finish] < pos:
                i = self._next_finish
                ev.append(("finished", self._rid, i, plan[tones[i]][0]))
                self._next_finish = i + 1
            elif self._next_start < n and tones[self._next_start] <= pos and (self._state == _PLAY):
                i = self._next_start
                step = plan[tones[i]]
                if step[0] == _FLASH and self.line is not None:
                    self.line.flash(step[1])
                ev.append(("started", self._rid, i, step[0]))
                self._next_start = i + 1
            else:
                break

    def service(self):
        if self.line is not None:
            for e in self.line.service():
                if e[0] == "hangup":
                    self._abort("hangup")
                self._pending.append(e)
        if self._state == _WAIT and (self.line is None or self.line.ready()) and self._settled():
            if self.line is not None:
                self.line.unmute()
            self._start_backend()  # raises (idle, muted) if the backend cannot start
        if self._state == _PLAY:
            self.backend.service()
            pos = self.backend.position()
            self._progress(pos)
            if pos >= len(self._plan):
                self._state = _IDLE
                if self.line is not None:
                    self.line.mute()
                self._pending.append(("done", self._rid, self._next_finish))
        if not self._pending:
            return []
        ev = self._pending
        self._pending = []
        return ev
