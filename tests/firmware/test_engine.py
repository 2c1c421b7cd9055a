"""Command engine tests; run under CPython and under real MicroPython.

The player here is a tiny in-test double (the engine is what is tested): it plays a plan
in virtual time and reports the Player events of docs/architecture.md.
"""

from tonebridge_fw import codec, engine


class Clock:
    def __init__(self):
        self.ms = 0

    def __call__(self):
        return self.ms


class PlayerDouble:
    """Plays plans in virtual time; `emitted` lists every (rid, index, key) started."""

    def __init__(self, clock):
        self.clock = clock
        self.job = None
        self.emitted = []
        self.cancels = 0
        self.plans = []  # (rid, plan, t) of every play()

    def play(self, rid, plan):
        assert self.job is None, "engine started a second plan while one plays"
        self.plans.append((rid, plan, self.clock()))
        self.job = [rid, plan, self.clock(), 0, -1]  # rid, plan, t0, next step, digit index

    def cancel(self):
        self.cancels += 1
        if self.job is not None:
            rid = self.job[0]
            played = self._finished  # a digit in progress is cut: count only finished ones
            self.job = None
            return [("aborted", rid, played, "cancelled")]
        return []

    def service(self):
        evs = []
        job = self.job
        if job is None:
            return evs
        rid, plan, t0, k, di = job
        t = t0
        for i in range(k):
            t += plan[i][1]
        now = self.clock()
        while k < len(plan) and now >= t:
            key, ms = plan[k]
            if key is not None:
                if now >= t + ms:
                    # whole step passed
                    if di < self._digit_of(plan, k):
                        di = self._digit_of(plan, k)
                        self.emitted.append((rid, di, key))
                        evs.append(("started", rid, di, key))
                    evs.append(("finished", rid, di, key))
                    self._finished = di + 1
                    t += ms
                    k += 1
                    continue
                d = self._digit_of(plan, k)
                if di < d:
                    di = d
                    self.emitted.append((rid, di, key))
                    evs.append(("started", rid, di, key))
                break
            if now >= t + ms:
                t += ms
                k += 1
                continue
            break
        job[3] = k
        job[4] = di
        if k >= len(plan):
            evs.append(("done", rid, engine_digits(plan)))
            self.job = None
        return evs

    _finished = 0

    def _digit_of(self, plan, k):
        n = -1
        for i in range(k + 1):
            if plan[i][0] is not None:
                n += 1
        return n


def engine_digits(plan):
    n = 0
    for s in plan:
        if s[0] is not None:
            n += 1
    return n


class Rig:
    def __init__(self, boot="b007"):
        self.clock = Clock()
        self.eng = engine.Engine(self.clock, boot, info={"board": "test", "backend": "double"})
        self.player = PlayerDouble(self.clock)
        self.dec = codec.Decoder(accept="<!")
        self.frames = []
        self.hook = None
        self.pump()

    def pump(self):
        for act in self.eng.actions():
            if act[0] == "play":
                self.player._finished = 0
                self.player.play(act[1], act[2])
            elif act[0] == "cancel":
                for ev in self.player.cancel():
                    self.eng.player_event(ev)
            elif act[0] == "hook":
                self.hook = act[1]
        for ev in self.player.service():
            self.eng.player_event(ev)
        for act in self.eng.actions():
            if act[0] == "play":
                self.player._finished = 0
                self.player.play(act[1], act[2])
        self.eng.tick()
        got = self.dec.feed(self.eng.output())
        self.frames.extend(got)
        return got

    def request(self, rid, body):
        self.eng.receive(codec.encode(">", rid, body))
        got = self.pump()
        for f in got:
            if f[0] == "<" and f[1] == rid:
                return f[2]
        raise AssertionError("no reply to " + rid + " in " + repr(got))

    def run(self, ms, step=5):
        end = self.clock.ms + ms
        while self.clock.ms < end:
            self.clock.ms += step
            self.pump()

    def events(self, rid):
        return [f[2] for f in self.frames if f[0] == "!" and f[1] == rid]


def kv(reply):
    verb, words = codec.split_body(reply)
    d, rest = codec.parse_kv(words)
    return d


def test_boot_event_first():
    r = Rig("cafe01")
    assert r.frames[0] == ("!", "-", "BOOT boot=cafe01 fw=" + engine.FW_VERSION + " proto=1")


def test_hello_reports_capabilities():
    r = Rig("cafe01")
    h = kv(r.request("1", "HELLO"))
    assert h["boot"] == "cafe01"
    assert h["proto"] == "1"
    assert h["keys"] == "123A456B789C*0#D"
    assert "catapult" in h["dialects"].split(",")
    assert h["tone_min"] == "40" and h["tone_max"] == "5000"
    assert h["queue"] == str(engine.QUEUE_DEPTH)


def test_send_plays_and_reports_every_digit():
    r = Rig()
    rep = r.request("7", "SEND dialect=catapult tone=100 gap=100 1W5#")
    assert rep.startswith("OK state=playing played=0 digits=3")
    r.run(3000)
    ev = r.events("7")
    assert ev == ["START 0 1", "END 0 1", "START 1 5", "END 1 5", "START 2 #", "END 2 #", "DONE 3"]
    assert [e[2] for e in r.player.emitted] == ["1", "5", "#"]


def test_duplicate_request_is_not_executed_again():
    r = Rig()
    r.request("7", "SEND 123")
    r.run(100)
    rep = r.request("7", "SEND 123")
    assert "dup=1" in rep and "state=playing" in rep
    r.run(2000)
    rep = r.request("7", "SEND 123")
    assert kv(rep)["state"] == "done" and kv(rep)["played"] == "3"
    assert len(r.player.emitted) == 3
    assert r.eng.executed == 1 and r.eng.duplicates == 2


def test_same_id_other_body_refused():
    r = Rig()
    r.request("7", "SEND 123")
    rep = r.request("7", "SEND 456")
    assert rep.startswith("ERR id-reused")
    r.run(2000)
    assert [e[2] for e in r.player.emitted] == ["1", "2", "3"]


def test_invalid_string_plays_nothing():
    r = Rig()
    rep = r.request("8", "SEND 12x4")
    assert rep.startswith("ERR dial pos=2 invalid character")
    rep = r.request("9", "SEND dialect=gws 12,4")
    assert rep.startswith("ERR dial pos=2")
    rep = r.request("10", "SEND tone=20 123")
    assert rep.startswith("ERR dial tone_ms 20 is outside")
    rep = r.request("11", "SEND dialect=nope 123")
    assert rep.startswith("ERR dial unknown dialect")
    rep = r.request("12", "SEND tone=abc 123")
    assert rep.startswith("ERR bad-arg")
    rep = r.request("13", "SEND color=red 123")
    assert rep.startswith("ERR bad-arg")
    rep = r.request("14", "SEND " + "1" * 93)
    assert rep.startswith("ERR dial pos=92")
    r.run(3000)
    assert r.player.emitted == []
    # a refused request is not remembered: the same id may be used again
    assert r.request("8", "SEND 124").startswith("OK")


def test_boot_mismatch_refused():
    r = Rig("aaaa")
    rep = r.request("1", "SEND boot=bbbb 123")
    assert rep.startswith("ERR boot board restarted: boot is aaaa not bbbb")
    assert r.request("2", "SEND boot=aaaa 1").startswith("OK")


def test_queue_and_busy():
    r = Rig()
    assert "state=playing" in r.request("1", "SEND 1")
    for i in range(2, engine.QUEUE_DEPTH + 1):
        rep = r.request(str(i), "SEND 2")
        assert "state=queued" in rep and ("ahead=" + str(i - 1)) in rep
    rep = r.request("99", "SEND 3")
    assert rep.startswith("ERR busy")
    r.run(3000)
    assert len(r.player.emitted) == engine.QUEUE_DEPTH
    for i in range(1, engine.QUEUE_DEPTH + 1):
        assert r.events(str(i))[-1] == "DONE 1"


def test_cancel_current_and_queued():
    r = Rig()
    r.request("1", "SEND 123456")
    r.request("2", "SEND 99")
    r.run(250)  # digits 0 and 1 finished (0-100, 200-300 -> 1 finished, 2nd started)
    rep = r.request("3", "CANCEL")
    assert rep == "OK cancelled=2,1"
    r.run(10)
    assert r.events("2") == ["ABORT 0 cancelled"]
    ab = [e for e in r.events("1") if e.startswith("ABORT")]
    assert ab == ["ABORT 1 cancelled"]
    assert kv(r.request("4", "RESULT 1"))["state"] == "aborted"
    # a repeated CANCEL does not cancel a later sequence
    r.request("5", "SEND 7")
    assert r.request("3", "CANCEL").startswith("OK cancelled=2,1 dup=1")
    r.run(500)
    assert r.events("5")[-1] == "DONE 1"


def test_cancel_by_id():
    r = Rig()
    r.request("1", "SEND 12")
    r.request("2", "SEND 34")
    assert r.request("3", "CANCEL 2") == "OK cancelled=2"
    r.run(1000)
    assert r.events("1")[-1] == "DONE 2"
    assert r.events("2") == ["ABORT 0 cancelled"]
    assert r.request("4", "CANCEL 1") == "OK cancelled=none"


def test_status_ping_result():
    r = Rig("beef")
    r.request("1", "SEND 1234")
    r.run(150)
    st = kv(r.request("2", "STATUS"))
    assert st["state"] == "playing" and st["rid"] == "1" and st["played"] == "1"
    assert st["digits"] == "4" and st["boot"] == "beef"
    assert r.request("3", "PING").startswith("OK pong up=")
    assert kv(r.request("4", "RESULT nope")) == {"state": "unknown", "boot": "beef"}
    r.run(1000)
    assert kv(r.request("5", "STATUS"))["state"] == "idle"


def test_config_get_set():
    r = Rig()
    c = kv(r.request("1", "CONFIG"))
    assert c == {"tone": "100", "gap": "100", "dialect": "catapult"}
    c = kv(r.request("2", "CONFIG tone=60 gap=50 dialect=gws"))
    assert c["tone"] == "60" and c["gap"] == "50" and c["dialect"] == "gws"
    assert r.request("3", "CONFIG tone=10").startswith("ERR bad-arg")
    assert r.request("4", "CONFIG bogus=1").startswith("ERR bad-arg")
    assert r.request("5", "CONFIG twist=1").startswith("ERR bad-arg twist cannot be changed")
    assert r.request("6", "CONFIG dialect=xx").startswith("ERR bad-arg")
    assert r.request("6b", "CONFIG tone=70 gap=1").startswith("ERR bad-arg")
    assert kv(r.request("7", "CONFIG"))["tone"] == "60"  # refused CONFIGs changed nothing
    # defaults apply to SEND (gws: no pauses)
    rep = kv(r.request("8", "SEND 11"))
    assert rep["ms"] == "170"


def test_config_tunable_settings():
    r = Rig()
    r.eng = engine.Engine(r.clock, "b1", tunable={"twist": 2.0, "level": 0.8})
    r.eng.output()
    c = kv(r.request("1", "CONFIG"))
    assert c["twist"] == "2.0" and c["level"] == "0.8"
    c = kv(r.request("2", "CONFIG twist=3.5 level=0.5"))
    assert c["twist"] == "3.5" and c["level"] == "0.5"
    assert ("config", r.eng.config) in [("config", r.eng.config)]
    assert r.request("3", "CONFIG twist=9").startswith("ERR bad-arg")
    assert r.request("4", "CONFIG level=x").startswith("ERR bad-arg")


def test_hook():
    r = Rig()
    assert r.request("1", "HOOK off") == "OK hook=off"
    assert r.hook is True
    assert ("!", "-", "HOOK off") in r.frames
    assert r.request("2", "HOOK on") == "OK hook=on"
    assert r.hook is False
    assert r.request("3", "HOOK sideways").startswith("ERR bad-arg")
    r.eng.line_event("timeout")
    r.pump()
    assert r.frames[-1] == ("!", "-", "HOOK on timeout")


def test_hangup_stops_sequence():
    r = Rig()
    r.request("1", "HOOK off")
    r.request("2", "SEND 123456")
    r.request("3", "SEND 7")
    r.run(150)
    assert r.request("4", "HOOK on") == "OK hook=on"
    r.run(20)
    assert r.events("3") == ["ABORT 0 hangup"]
    assert r.events("2")[-1] == "ABORT 1 hangup"
    assert r.hook is False


def test_player_hangup_event():
    r = Rig()
    r.request("1", "HOOK off")
    r.eng.player_event(("hangup", "timeout"))
    r.pump()
    assert r.frames[-1] == ("!", "-", "HOOK on timeout")


def test_unknown_verb():
    r = Rig()
    assert r.request("1", "FLY away").startswith("ERR unknown-verb")


def test_window_is_bounded():
    r = Rig()
    for i in range(engine.WINDOW * 3):
        r.request("p" + str(i), "HOOK on")
    # exactly the last WINDOW ids are remembered: no more (bounded memory), no fewer
    assert len(r.eng._records) == engine.WINDOW
    assert r.eng._ids == ["p" + str(i) for i in range(engine.WINDOW * 2, engine.WINDOW * 3)]
    assert r.request("p" + str(engine.WINDOW * 2), "HOOK on") == "OK hook=on dup=1"
    assert r.request("p" + str(engine.WINDOW * 2 - 1), "HOOK on") == "OK hook=on"  # forgotten


def test_exactly_once_window_is_the_32_hello_advertises():
    # a retry of a SEND after 31 other requests (the window HELLO advertises: 32 ids) is
    # answered from the record, never dialled again
    r = Rig()
    assert kv(r.request("h", "HELLO"))["window"] == "32"
    assert r.request("s0", "SEND tone=40 gap=40 12").startswith("OK state=playing")
    r.run(200)
    assert r.events("s0")[-1] == "DONE 2"
    for i in range(1, 31):  # with "h": 31 other ids after s0
        r.request("p" + str(i), "HOOK on")
    assert r.request("s0", "SEND tone=40 gap=40 12") == "OK state=done played=2 digits=2 dup=1"
    r.run(200)
    assert [e for e in r.player.emitted if e[0] == "s0"] == [("s0", 0, "1"), ("s0", 1, "2")]


def test_stall_guard_aborts_silent_player():
    r = Rig()

    class Dead:
        def play(self, rid, plan):
            pass

        def cancel(self):
            return []

        def service(self):
            return []

    r.player = Dead()
    r.request("1", "SEND 12")
    r.run(300 + engine.STALL_MARGIN_MS * 2 + 50, step=50)
    assert any(f[2].startswith("FAULT stall") for f in r.frames)
    assert r.events("1")[-1] == "ABORT 0 stalled"
    assert not r.eng.busy()


def test_garbage_and_banner_between_requests():
    r = Rig()
    r.eng.receive(b"\x00\xff garbage >>> \r\nMicroPython v1.24\r\n>1 SEND 1 *0000\n")
    r.pump()
    assert r.player.job is None
    assert r.request("2", "PING").startswith("OK")


def test_longest_send_fits_one_frame():
    rid = "x" * codec.MAX_ID
    body = "SEND boot=12345678 dialect=catapult tone=5000 gap=5000 " + "1" * engine.MAX_SEND_CHARS
    f = codec.encode(">", rid, body)
    assert len(f) <= codec.MAX_FRAME + 1
    r = Rig("12345678")
    rep = r.request(rid, body)
    assert rep.startswith("ERR dial pos=92")  # the dialect's own limit comes first
    rep = r.request("y", "SEND " + "1" * (engine.MAX_SEND_CHARS + 1))
    assert rep.startswith("ERR too-long")


def test_idle_pass_allocates_nothing():
    """Under MicroPython the idle main-loop work of the engine runs with the heap locked."""
    r = Rig()
    r.request("1", "PING")
    eng = r.eng
    dec = eng.decoder
    try:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    except (ImportError, AttributeError):
        lock = unlock = None
    if lock is not None:
        lock()
    try:
        for _ in range(10):
            a = eng.actions()
            eng.tick()
            o = eng.output()
            f = dec.feed(b"")
            busy = eng.busy()
    finally:
        if unlock is not None:
            unlock()
    assert a == () and o == b"" and f == () and busy is False


def test_player_failure_ends_sequence_as_error():
    r = Rig()
    r.request("1", "SEND 123")
    r.request("2", "SEND 4")
    r.run(150)
    r.eng.player_failed("OSError EIO")
    r.player.job = None
    r.eng.abort_current("error")
    r.pump()
    assert ("!", "-", "FAULT backend OSError EIO") in r.frames
    assert r.events("1")[-1] == "ABORT 1 error"
    r.run(300)
    assert r.events("2")[-1] == "DONE 1"  # the queue goes on


def test_app_and_transport_import_without_hardware():
    """app.py and transport.py import hardware modules only when an App/link is built."""
    from tonebridge_fw import app, transport

    assert app.BUSY_MS >= 1 and app.IDLE_MS > app.BUSY_MS
    assert len(app.new_boot_id()) == 8
    assert transport.MAX_READ >= codec.MAX_FRAME


def test_back_to_back_sequences_keep_the_gap():
    # "1" then "1" queued: the second must not follow the first without a gap (the line would
    # carry one long tone: one digit to the exchange, where the board reported two)
    r = Rig()
    r.request("a", "SEND tone=100 gap=80 1")
    r.request("b", "SEND tone=100 gap=60 1")
    r.run(600, step=1)
    assert r.events("a")[-1] == "DONE 1" and r.events("b")[-1] == "DONE 1"
    (ra, pa, ta), (rb, pb, tb) = r.player.plans
    assert pa == [("1", 100)]
    # the second plan opens with its own gap of silence (less what already passed)
    assert pb[0][0] is None and 55 <= pb[0][1] <= 60, pb
    assert pb[1:] == [("1", 100)]
    # one queued long after the last ended starts at once
    r.run(500)
    r.request("c", "SEND tone=100 gap=60 1")
    assert r.player.plans[-1][1] == [("1", 100)]
