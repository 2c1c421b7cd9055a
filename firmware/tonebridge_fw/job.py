# One accepted sequence (a SEND, or the SELFTEST's keys) and its progress (sans-I/O).
#
#   job = Job(rid, plan, ms)   # plan: dialstring.compile_plan's steps; ms: how long it lasts
#   job.describe(verify, ahead)  # "OK state=... played=... digits=...": its reply body
#
# The engine (engine.py) queues, plays and ends jobs; the request verbs (verbs.py) create them;
# the line check (linecheck.py) counts what the board heard of them.


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

    def describe(self, verify, ahead):
        """The reply body for the job's state (SEND, RESULT): ahead is how many sequences play
        or wait before a queued one."""
        s = "OK state=" + self.state + " played=" + str(self.played) + " digits=" + str(self.total)
        if verify:
            s += " verified=" + str(self.verified)
        if self.state == "queued":
            s += " ahead=" + str(ahead) + " ms=" + str(self.ms)
        elif self.state == "playing":
            s += " ms=" + str(self.ms)
        elif self.state == "aborted":
            s += " reason=" + self.reason
        return s
