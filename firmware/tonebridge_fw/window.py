# The exactly-once window: what the engine remembers of the last request ids (sans-I/O).
#
#   w = Window(32)
#   rec = w.get(rid)                 # the Record for rid, or None
#   w.remember(rid, Record(crc, reply, job))
#
# A Record keeps the CRC of the request's body (a repeated id with another body is refused)
# and its reply (for a request that did something) or its Job (SEND, SELFTEST: answered with
# the job's state as it is now). Past `size` ids the oldest finished record is forgotten; a
# live job (queued or playing) is never forgotten, so a retry of it is never played again.


class Record:
    """What the engine remembers about one request id."""

    def __init__(self, crc, reply, job=None):
        self.crc = crc
        self.reply = reply  # reply body for non-SEND requests
        self.job = job


class Window:
    def __init__(self, size):
        self.size = size
        self.ids = []  # request ids in arrival order (bounded by size)
        self.records = {}

    def get(self, rid):
        return self.records.get(rid)

    def remember(self, rid, rec):
        self.records[rid] = rec
        self.ids.append(rid)
        if len(self.ids) > self.size:
            # forget the oldest finished record; live jobs are never forgotten
            for i in range(len(self.ids)):
                old = self.records[self.ids[i]]
                if old.job is None or old.job.state in ("done", "aborted"):
                    del self.records[self.ids[i]]
                    self.ids.pop(i)
                    break
