# Line check: what the engine does with what the board hears on its own line (sans-I/O).
# Verified sends (every digit played must be heard by the board's receiver, verify.py) and the
# self-test (SELFTEST: the 16 keys on hook through the loop relay, each judged, selftest.py).
# The engine owns the sequences and the protocol; a LineCheck keeps the receiver's side of the
# sequence playing and tells the engine what to report:
#
#   chk = LineCheck(verify=True, selftest=True)   # the board hears its line / has a loop relay
#   chk.verify                      # sends are verified (HELLO verify=1, verified= counts)
#   chk.begin()                     # a sequence starts
#   chk.played(kind, idx, key, t)   # a player "started"/"finished" event for digit idx
#   chk.hold(job)                   # the player is done: True while digits await being heard
#   chk.listening(job)              # 0 / 1 (verify) / 2 (self-test: measure frequencies too)
#   chk.heard(job, h)               # listen.Heard -> the HEARD event body, or None (stray)
#   chk.overdue(job, now)           # None, or (fault, body): a digit not heard in time; fault
#                                   # False: the self-test's "UNHEARD ..." (it goes on), True:
#                                   # the text of the line FAULT (the sequence ends)
#   chk.settled(job)                # the job's DONE waited for digits and all are now judged
#   chk.counts(job)                 # " verified=<n>" (and " pass=<n>") for DONE / ABORT
#   chk.refuse(args, boot_id, busy) # SELFTEST's checks: None or (code, text); ValueError
#   chk.selftest_plan()             # what SELFTEST plays
#
# job is the engine's Job: its verified, passed, done_pending, selftest and reason fields.

from tonebridge_fw import codec, dialstring
from tonebridge_fw import selftest as _selftest
from tonebridge_fw.verify import Verifier


class LineCheck:
    def __init__(self, verify, selftest):
        self.verifier = Verifier() if verify else None
        self.verify = verify
        self.can_selftest = selftest  # a receive path and a loop relay

    def begin(self):
        if self.verifier is not None:
            self.verifier.begin()

    def played(self, kind, idx, key, t):
        ver = self.verifier
        if ver is None or key == dialstring.FLASH:
            return
        if kind == "started":
            ver.started(idx, key, t)
        else:
            ver.finished(idx, key, t)

    def hold(self, job):
        if self.verifier is not None and self.verifier.pending():
            job.done_pending = True  # DONE once the last digits were heard (or not)
            return True
        return False

    def counts(self, job):
        s = ""
        if self.verifier is not None:
            s = " verified=" + str(job.verified)
        if job.selftest:
            s += " pass=" + str(job.passed)
        return s

    def listening(self, job):
        if self.verifier is None or job is None:
            return 0
        return 2 if job.selftest else 1

    def heard(self, job, h):
        if self.verifier is None:
            return None
        idx = self.verifier.heard(h.key, h.on, h.off)
        if idx < 0:
            return None  # not one of ours (the far end, or a digit already confirmed)
        job.verified = self.verifier.verified
        words = h.words
        if job.selftest:
            ok = _selftest.judge(h)
            if ok:
                job.passed += 1
            words += " pass=" + ("1" if ok else "0")
        return "HEARD " + str(idx) + " " + h.key + " " + words

    def overdue(self, job, now):
        if self.verifier is None:
            return None
        miss = self.verifier.overdue(now)
        if miss is None or job.reason == "not-heard":
            return None
        if job.selftest:
            # a self-test reports every key, heard or not, and goes on
            self.verifier.give_up(miss[0])
            return (False, "UNHEARD " + str(miss[0]) + " " + miss[1] + " pass=0")
        return (True, "digit " + str(miss[0]) + " key " + miss[1] + " not heard on the line")

    def settled(self, job):
        return job.done_pending and not self.verifier.pending()

    def refuse(self, args, boot_id, busy):
        kv, rest = codec.parse_kv(args)
        if rest or [k for k in kv if k != "boot"]:
            raise ValueError("SELFTEST takes only boot=<id>")
        boot = kv.get("boot")
        if boot is not None and boot != boot_id:
            return ("boot", "board restarted: boot is " + boot_id + " not " + boot)
        if not self.can_selftest:
            return ("bad-arg", "this board has no receive path and loop relay")
        if busy:
            return ("busy", "the self-test runs on hook with nothing playing")
        return None

    def selftest_plan(self):
        return _selftest.plan()
