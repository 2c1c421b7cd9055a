"""Command engine tests; run under CPython and under real MicroPython.

The player here is a tiny in-test double (the engine is what is tested): it plays a plan
in virtual time and reports the Player events of docs/architecture.md.
"""

from tonebridge_fw import codec, dialstring, engine, sequencer, verbs


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


def test_a_send_reply_is_encoded_when_the_output_is_taken():
    # the App starts a SEND's sequence (its play action) before it writes the reply; encoding
    # frames in output() keeps the reply's encoding (~2-5 ms of an RP2040) off the tone's start
    r = Rig()
    r.eng.output()
    encoded = []
    orig = codec.encode

    def counting(mark, rid, body):
        encoded.append(rid)
        return orig(mark, rid, body)

    codec.encode = counting
    try:
        r.eng.receive(orig(">", "9", "SEND dialect=catapult tone=40 gap=40 1"))
        acts = r.eng.actions()
        assert acts[0][0] == "play" and acts[0][1] == "9"
        assert encoded == []  # nothing encoded yet
        out = r.eng.output()
        assert encoded == ["9"]
    finally:
        codec.encode = orig
    got = r.dec.feed(out)
    assert len(got) == 1 and got[0][:2] == ("<", "9") and got[0][2].startswith("OK state=playing")


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
    # unknown options sorting before "boot" and after "dialect" too (not a range check)
    for i, opt in enumerate(("amp=1", "volume=3")):
        rep = r.request("13" + "ab"[i], "SEND " + opt + " 123")
        assert rep.startswith("ERR bad-arg unknown SEND option " + opt[:-2]), rep
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
    assert c == {"tone": "100", "gap": "100", "pause": "500", "dialect": "catapult", "flash": "100"}
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
    assert len(r.eng.recent.records) == engine.WINDOW
    assert r.eng.recent.ids == ["p" + str(i) for i in range(engine.WINDOW * 2, engine.WINDOW * 3)]
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
    r.run(300 + sequencer.STALL_MARGIN_MS * 2 + 50, step=50)
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
    longest = max(dialstring.DIALECTS, key=len)
    opts = "boot=12345678 dialect=" + longest + " tone=5000 gap=5000 pause=5000 flash=1500 "
    opts += "dialtone=60000 "
    assert sorted(verbs.TIMING) == ["gap", "pause", "tone"]  # every option is above
    assert verbs.FLASH == "flash"
    body = "SEND " + opts + "1" * verbs.MAX_SEND_CHARS
    f = codec.encode(">", rid, body)
    assert len(f) <= codec.MAX_FRAME + 1
    r = Rig("12345678")
    rep = r.request(rid, body)
    assert rep.startswith("ERR dial pos=92")  # the dialect's own limit comes first
    rep = r.request("y", "SEND " + "1" * (verbs.MAX_SEND_CHARS + 1))
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


def test_hardware_id_in_hello_and_boot():
    clock = Clock()
    eng = engine.Engine(
        clock, "b1", info={"board": "t", "backend": "d", "hwid": "e6614103e73f4a2b"}
    )
    dec = codec.Decoder(accept="<!")
    eng.receive(codec.encode(">", "1", "HELLO"))
    frames = dec.feed(eng.output())
    assert frames[0] == (
        "!",
        "-",
        "BOOT boot=b1 fw=" + engine.FW_VERSION + " proto=1 hwid=e6614103e73f4a2b",
    )
    assert kv(frames[1][2])["hwid"] == "e6614103e73f4a2b"
    # a board that knows no id says nothing about one
    assert "hwid" not in kv(Rig().request("1", "HELLO"))


def test_hardware_id_from_profile_is_frame_safe():
    from tonebridge_fw import app

    assert app.hardware_id({"hwid": "Pi 4B:0x10 !>"}) == "pi4b:0x10"
    # at most 40 characters are kept (of the profile's value, before filtering)
    assert app.hardware_id({"hwid": "0123456789" * 4 + "abcde"}) == "0123456789" * 4
    assert app.hardware_id({"hwid": "a_b-c.d:" + "9" * 31 + "xy"}) == "a_b-c.d:" + "9" * 31 + "x"


class _UidMachine:
    @staticmethod
    def unique_id():
        return b"\xe6\x61\x41\x03\x0f\x00\x4a\x2b"


def test_hardware_id_from_machine_unique_id():
    import sys

    from tonebridge_fw import app

    saved = sys.modules.get("machine")
    try:
        sys.modules["machine"] = _UidMachine
        # every byte as two lowercase hex digits, leading zeros kept
        assert app.hardware_id({}) == "e66141030f004a2b"
        assert app.hardware_id({"hwid": ""}) == "e66141030f004a2b"  # an empty hwid is no hwid
        assert app.hardware_id({"hwid": "cafe"}) == "cafe"  # the profile's wins
        sys.modules["machine"] = object()  # a port without unique_id
        assert app.hardware_id({}) == ""
    finally:
        if saved is None:
            sys.modules.pop("machine", None)
        else:
            sys.modules["machine"] = saved


def r_step(r):
    r.clock.ms += 1
    return r.pump()


def test_queued_sequence_waits_its_gap_after_the_previous_one():
    """Two sequences back to back must not run into one tone: the second starts no sooner
    than its gap after the first one's last tone ended."""
    r = Rig()
    r.request("1", "SEND tone=100 gap=100 5")
    rep = r.request("2", "SEND tone=100 gap=80 5")
    assert "state=queued" in rep
    starts = {}
    ends = {}
    for _ in range(500):
        for f in r_step(r):
            if f[0] == "!" and f[2].startswith("START"):
                starts[f[1]] = r.clock.ms
            if f[0] == "!" and f[2].startswith("DONE"):
                ends[f[1]] = r.clock.ms
    assert ends["1"] == 100
    assert starts["2"] - ends["1"] >= 80
    assert r.events("2")[-1] == "DONE 1"
    # after a long idle a new sequence starts at once
    r.run(6000, step=50)
    assert "state=playing" in r.request("3", "SEND 1")


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


# ---- exact protocol answers (each one pins a branch a mutation test found unchecked) ------


def events_all(r):
    return [f[2] for f in r.frames if f[0] == "!" and f[1] == "-"]


def test_line_events_from_the_line_controller():
    r = Rig()
    r.eng.line_event("hook", True)
    r.eng.line_event("hook", True)  # no change: no second event
    r.pump()
    assert events_all(r)[-1] == "HOOK off" and events_all(r).count("HOOK off") == 1
    assert kv(r.request("1", "STATUS"))["hook"] == "off"
    r.eng.line_event("hook", False)
    r.pump()
    assert events_all(r)[-1] == "HOOK on"
    r.eng.line_event("hook", True)
    r.eng.line_event("timeout")
    r.pump()
    assert events_all(r)[-1] == "HOOK on timeout"
    assert r.eng.off_hook is False and kv(r.request("2", "STATUS"))["hook"] == "on"
    r.eng.line_event("relay", None)
    r.eng.line_event("relay stuck", "contact 2")
    r.pump()
    assert events_all(r)[-2:] == ["FAULT relay", "FAULT relay-stuck contact 2"]


def test_player_hangup_events():
    r = Rig()
    r.request("1", "HOOK off")
    r.eng.player_event(("hangup", "line"))  # the line dropped, not the timeout
    r.pump()
    assert events_all(r)[-1] == "HOOK on"
    r.request("2", "HOOK off")
    r.eng.player_event(("hangup", "timeout"))
    r.pump()
    assert events_all(r)[-1] == "HOOK on timeout"


def test_result_states_exactly():
    r = Rig()
    r.request("a", "SEND tone=100 gap=100 12")
    r.request("b", "SEND tone=100 gap=100 3")
    r.request("c", "SEND tone=100 gap=100 45")
    r.pump()
    assert r.request("q1", "RESULT a") == "OK state=playing played=0 digits=2 ms=300"
    assert r.request("q2", "RESULT b") == "OK state=queued played=0 digits=1 ahead=1 ms=100"
    assert r.request("q3", "RESULT c") == "OK state=queued played=0 digits=2 ahead=2 ms=300"
    assert r.request("q4", "CANCEL c") == "OK cancelled=c"
    assert r.request("q5", "RESULT c") == "OK state=aborted played=0 digits=2 reason=cancelled"
    assert r.request("q6", "RESULT q4") == "OK state=answered"
    assert r.request("q7", "RESULT nope") == "OK state=unknown boot=b007"
    assert r.request("q8", "RESULT").startswith("ERR bad-arg RESULT takes one request id")
    assert r.request("q9", "RESULT a b").startswith("ERR bad-arg")
    r.run(1000)
    assert r.request("q10", "RESULT a") == "OK state=done played=2 digits=2"
    assert r.request("q11", "RESULT b") == "OK state=done played=1 digits=1"


def test_queued_sequences_play_in_order():
    r = Rig()
    for rid, text in (("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")):
        assert r.request(rid, "SEND tone=40 gap=40 " + text).startswith("OK")
    r.run(1000)
    assert [e[2] for e in r.player.emitted] == ["1", "2", "3", "4"]
    assert [e[0] for e in r.player.emitted] == ["a", "b", "c", "d"]


def test_queue_depth_is_exactly_four():
    r = Rig()
    assert kv(r.request("h", "HELLO"))["queue"] == "4"
    for i in range(4):
        assert r.request("s" + str(i), "SEND 1").startswith("OK"), i
    assert r.request("s4", "SEND 1") == "ERR busy queue full (4 sequences)"
    assert r.eng.busy()


def test_busy_while_only_one_plays():
    r = Rig()
    r.request("1", "SEND 1")
    r.pump()
    assert r.eng.busy() and not r.eng.queue
    r.run(300)
    assert not r.eng.busy()


def test_pause_only_sequence_plays_its_pause():
    r = Rig()
    assert r.request("1", "SEND W") == "OK state=playing played=0 digits=0 ms=1000"
    r.run(500)
    assert r.events("1") == []  # still pausing
    r.run(600)
    assert r.events("1") == ["DONE 0"]


def test_hook_arguments():
    r = Rig()
    assert r.request("1", "HOOK").startswith("ERR bad-arg HOOK takes on or off")
    assert r.request("2", "HOOK on off").startswith("ERR bad-arg")
    assert r.request("3", "HOOK up").startswith("ERR bad-arg")
    assert r.request("4", "HOOK off") == "OK hook=off"
    assert r.hook is True and events_all(r)[-1] == "HOOK off"
    n = len(events_all(r))
    assert r.request("5", "HOOK off") == "OK hook=off"
    assert len(events_all(r)) == n  # no change, no event
    assert r.request("6", "HOOK on") == "OK hook=on"
    assert r.hook is False and events_all(r)[-1] == "HOOK on"


def test_cancel_arguments_and_other_ids():
    r = Rig()
    r.request("a", "SEND 123")
    r.request("b", "SEND 4")
    r.run(50)
    assert r.request("c1", "CANCEL a b").startswith("ERR bad-arg CANCEL takes at most one")
    assert r.request("c2", "CANCEL zz") == "OK cancelled=none"
    assert r.request("c3", "CANCEL b") == "OK cancelled=b"
    assert r.player.job is not None and r.player.job[0] == "a"  # a plays on
    r.run(600)
    assert r.events("a")[-1] == "DONE 3" and r.events("b") == ["ABORT 0 cancelled"]
    assert r.request("c4", "CANCEL") == "OK cancelled=none"


def test_progress_from_late_or_repeated_events():
    r = Rig()
    r.request("1", "SEND 123")
    r.pump()
    eng = r.eng
    eng.player_event(("finished", "1", 1, "2"))  # digit 1 done: 2 played
    eng.player_event(("finished", "1", 0, "1"))  # a late event never lowers the count
    assert kv(r.request("q", "RESULT 1"))["played"] == "2"
    eng.player_event(("finished", "zz", 2, "3"))  # another id: ignored
    assert kv(r.request("q2", "RESULT 1"))["played"] == "2"
    r.player.job = None
    eng.player_event(("aborted", "1", 3, ""))  # the player's count is higher: it wins
    r.pump()
    assert r.events("1")[-1] == "ABORT 3 aborted"


def test_abort_reason_from_the_player():
    r = Rig()
    r.request("1", "SEND 123")
    r.pump()
    r.player.job = None
    r.eng.player_event(("aborted", "1", 0, "hang up"))
    r.pump()
    assert r.events("1")[-1] == "ABORT 0 hang-up"
    r.request("2", "SEND 4")
    r.pump()
    r.player.job = None
    r.eng.player_event(("aborted", "2", 0))  # no reason given
    r.pump()
    assert r.events("2")[-1] == "ABORT 0 aborted"


def test_abort_current_reason():
    r = Rig()
    r.request("1", "SEND 123")
    r.pump()
    r.player.job = None
    r.eng.abort_current("gone")
    r.pump()
    assert r.events("1")[-1] == "ABORT 0 gone"
    r.eng.abort_current("again")  # nothing playing: nothing happens
    r.pump()
    assert r.events("1")[-1] == "ABORT 0 gone"


def test_stall_guard_timing_exactly():
    r = Rig()

    class Dead:
        def play(self, rid, plan):
            pass

        def cancel(self):
            return []

        def service(self):
            return []

    r.player = Dead()
    r.request("1", "SEND tone=100 gap=100 12")  # plan: 300 ms
    r.run(300 + sequencer.STALL_MARGIN_MS - 1, step=1)
    assert not [f for f in r.frames if f[2].startswith("FAULT")]
    r.run(1, step=1)
    assert events_all(r)[-1] == "FAULT stall sequence 1 did not finish; aborting"
    assert sequencer.STALL_MARGIN_MS == 2000
    r.run(sequencer.STALL_MARGIN_MS - 1, step=1)
    assert r.events("1") == []  # the abort is given its own margin
    r.run(1, step=1)
    assert r.events("1") == ["ABORT 0 stalled"]


def test_config_ranges_exactly():
    r = Rig()
    r.eng = engine.Engine(r.clock, "b1", tunable={"twist": 2.0, "level": 0.8})
    for body, ok in (
        ("CONFIG twist=0.0", True), ("CONFIG twist=4.0", True), ("CONFIG twist=4.01", False),
        ("CONFIG twist=-0.01", False), ("CONFIG level=0.05", True), ("CONFIG level=1.0", True),
        ("CONFIG level=0.049", False), ("CONFIG level=1.01", False),
    ):  # fmt: skip
        rep = r.request("k" + str(len(r.frames)), body)
        assert rep.startswith("OK") == ok, (body, rep)
    assert r.request("l", "CONFIG level=1.01") == "ERR bad-arg level must be within 0.05..1.0"
    assert r.request("t", "CONFIG twist=5") == "ERR bad-arg twist must be within 0.0..4.0"
    assert r.request("d", "CONFIG dialect=gws").startswith("OK dialect=gws")
    assert r.request("d2", "CONFIG dialect=nope") == "ERR bad-arg unknown dialect nope"
    assert r.request("x", "CONFIG volume=3") == "ERR bad-arg unknown setting volume"


def test_info_defaults():
    eng = engine.Engine(Clock(), "b2")
    r = Rig()
    r.eng = eng
    h = kv(r.request("1", "HELLO"))
    assert h["board"] == "unknown" and h["backend"] == "unknown"


def test_id_reuse_detected_whichever_crc_is_larger():
    # CRC-16 of the two bodies: one larger, one smaller than the first; both are refused
    r = Rig()
    bodies = ["CANCEL", "HOOK on", "HOOK off"]  # remembered (effectful) requests
    crcs = [codec.crc16(b.encode()) for b in bodies]
    first = bodies[0]
    r.request("x", first)
    for b, c in zip(bodies, crcs):
        if b == first:
            continue
        assert r.request("x", b).startswith("ERR id-reused"), (b, c, crcs[0])
    assert min(crcs) < crcs[0] < max(crcs)


def test_boot_mismatch_either_side():
    r = Rig("5555")
    assert r.request("1", "SEND boot=4444 1").startswith("ERR boot")  # sorts before
    assert r.request("2", "SEND boot=6666 1").startswith("ERR boot")  # and after


def test_config_unknown_keys_whatever_their_spelling():
    # keys sorting before "dialect", between, and after "twist"/"level"
    r = Rig()
    for k in ("aaa", "gzz", "mmm", "zzz"):
        assert r.request("c" + k, "CONFIG " + k + "=1") == "ERR bad-arg unknown setting " + k


def test_cancel_matches_the_id_exactly():
    r = Rig()
    r.request("b", "SEND 123")
    r.request("c", "SEND 4")
    r.request("d", "SEND 5")
    r.pump()
    # ids sorting before and after the playing "b" and the queued "c"
    assert r.request("x1", "CANCEL a") == "OK cancelled=none"
    assert r.request("x2", "CANCEL bb") == "OK cancelled=none"
    assert r.request("x3", "CANCEL c") == "OK cancelled=c"
    assert kv(r.request("x4", "RESULT d"))["state"] == "queued"
    assert kv(r.request("x5", "RESULT b"))["state"] == "playing"


def test_events_of_other_ids_are_ignored_whatever_their_spelling():
    r = Rig()
    r.request("m", "SEND 123")
    r.pump()
    for rid in ("a", "z"):
        r.eng.player_event(("finished", rid, 2, "3"))
        r.eng.player_event(("done", rid, 3))
    r.pump()
    assert kv(r.request("q", "RESULT m"))["state"] == "playing"
    assert kv(r.request("q2", "RESULT m"))["played"] == "0"


def test_a_lower_count_at_the_end_never_lowers_played():
    r = Rig()
    r.request("1", "SEND 123")
    r.pump()
    r.eng.player_event(("finished", "1", 2, "3"))
    r.player.job = None
    r.eng.player_event(("aborted", "1", 1, "x"))
    r.pump()
    assert r.events("1")[-1] == "ABORT 3 x"


def test_player_failure_with_nothing_playing():
    r = Rig()
    r.eng.player_failed("OSError EIO")  # must not raise
    r.pump()
    assert events_all(r)[-1] == "FAULT backend OSError EIO"


def test_line_event_kinds_around_hook_and_timeout():
    r = Rig()
    r.eng.line_event("fault", "x")  # sorts before "hook"
    r.eng.line_event("watchdog", "y")  # after "timeout"
    r.eng.line_event("hook", True)
    r.eng.player_event(("hangup", "watchdog"))  # a hang-up that is not the timeout
    r.pump()
    assert events_all(r)[-4:] == ["FAULT fault x", "FAULT watchdog y", "HOOK off", "HOOK on"]


def test_stall_guard_fires_on_a_late_pass():
    # passes every 7 ms never land on the deadline exactly: the guard fires on the first pass
    # after it, and the forced abort likewise
    r = Rig()

    class Dead:
        def play(self, rid, plan):
            pass

        def cancel(self):
            return []

        def service(self):
            return []

    r.player = Dead()
    r.request("1", "SEND tone=100 gap=100 12")
    r.run(2300 + 7, step=7)
    assert any(f[2].startswith("FAULT stall") for f in r.frames)
    r.run(2000 + 7, step=7)
    assert r.events("1") == ["ABORT 0 stalled"]


def test_back_to_back_gap_details():
    r = Rig()
    r.request("a", "SEND tone=100 gap=60 1")
    r.run(100, step=1)
    assert r.events("a")[-1] == "DONE 1"
    r.run(59, step=1)  # one ms of the gap is left
    r.request("b", "SEND tone=100 gap=60 2W")  # ends with a pause, starts with a tone
    assert r.player.plans[-1][1] == [(None, 1), ("2", 100), (None, 1000)]
    # a real backend's renderer plays that plan (a 1 ms step is shorter than a ramp; the
    # emulated Pico once faulted on it: "step 0: 1 ms is shorter than the 2 ms ramp")
    from tonebridge_fw.synth import Renderer

    Renderer((125_000_000 * 16, 32768), bits=10, shaping=True).load(r.player.plans[-1][1])
    while "DONE 1" not in r.events("b"):
        r.run(1, step=1)
    assert r.events("b")[-1] == "DONE 1"
    r.request("c", "SEND tone=100 gap=60 W3")  # right after, but it starts with a pause
    assert r.player.plans[-1][1] == [(None, 1000), ("3", 100)]
    while "DONE 1" not in r.events("c"):
        r.run(1, step=1)
    r.run(60, step=1)  # the whole gap has passed: nothing to add, not even 0 ms
    r.request("d", "SEND tone=100 gap=60 4")
    assert r.player.plans[-1][1] == [("4", 100)]


# ---- timing under the caller's control (issue 15) ----------------------------------------


def test_send_timing_options_reach_the_plan():
    r = Rig()
    rep = kv(r.request("1", "SEND dialect=tonebridge tone=250 gap=400 pause=800 12,3"))
    assert rep["ms"] == str(250 + 400 + 250 + 800 + 250)
    assert r.player.plans[-1][1] == [
        ("1", 250), (None, 400), ("2", 250), (None, 800), ("3", 250)
    ]  # fmt: skip
    # catapult's ',' is its document's 500 ms whatever pause= says
    r.run(3000)
    r.request("2", "SEND dialect=catapult pause=800 1,2")
    assert r.player.plans[-1][1] == [("1", 100), (None, 500), ("2", 100)]
    for body in ("SEND pause=39 1", "SEND pause=5001 1", "SEND tone=39 1", "SEND gap=5001 1"):
        rep = r.request("e" + str(len(r.frames)), body)
        assert rep.startswith("ERR dial") and "outside 40-5000 ms" in rep, rep
    assert r.request("f", "SEND pause=x 1") == "ERR bad-arg pause must be an integer, not x"


def test_held_key_plays_its_own_length_and_the_stall_guard_waits_for_it():
    r = Rig()
    rep = kv(r.request("1", "SEND dialect=tonebridge 15(10000)2"))
    assert rep["digits"] == "3" and rep["ms"] == str(100 + 100 + 10000 + 100 + 100)
    assert r.player.plans[-1][1] == [
        ("1", 100), (None, 100), ("5", 10000), (None, 100), ("2", 100)
    ]  # fmt: skip
    r.run(10350, step=50)
    assert r.events("1")[-1] == "START 2 2"
    r.run(100, step=50)
    assert r.events("1")[-1] == "DONE 3"
    assert not [f for f in r.frames if f[2].startswith("FAULT")]


def test_config_pause_is_the_send_default():
    r = Rig()
    c = kv(r.request("1", "CONFIG pause=2000 dialect=tonebridge"))
    assert c["pause"] == "2000" and c["dialect"] == "tonebridge"
    assert kv(r.request("2", "SEND 1,2"))["ms"] == "2200"
    assert r.request("3", "CONFIG pause=39").startswith("ERR bad-arg pause_ms 39 is outside")
    assert kv(r.request("4", "CONFIG"))["pause"] == "2000"


def test_hello_says_how_long_a_key_can_be_held():
    assert kv(Rig().request("1", "HELLO"))["hold_max"] == "10000"
    assert "tonebridge" in kv(Rig().request("1", "HELLO"))["dialects"].split(",")


def test_a_board_that_cannot_hold_keys_refuses_them_before_playing():
    r = Rig()
    r.eng = engine.Engine(r.clock, "b1", hold_max_ms=0)
    r.eng.output()
    assert kv(r.request("0", "HELLO"))["hold_max"] == "0"
    rep = r.request("1", "SEND dialect=tonebridge 15(2000)")
    assert rep.startswith("ERR dial pos=2 held key at position 1: this board cannot hold keys")
    assert r.player.plans == []
    # everything else still plays, and the refused id may be used again
    assert kv(r.request("1", "SEND dialect=tonebridge 15"))["digits"] == "2"


def test_a_sequence_longer_than_the_line_may_stay_off_hook_is_refused_before_playing():
    # the line hangs up after max_offhook_s: a sequence that cannot end before that would be
    # cut part-way, so the board refuses it whole (ERR dial; the host answers 400)
    r = Rig()
    r.eng = engine.Engine(r.clock, "b1", max_plan_ms=1000)
    r.eng.output()
    rep = r.request("1", "SEND tone=451 gap=100 12")  # 1002 ms
    assert (
        rep == "ERR dial sequence lasts 1002 ms, longer than the line may stay off-hook (1000 ms)"
    )
    rep = r.request("2", "SEND dialect=tonebridge 1(901)2")  # a held key counts too: 1101 ms
    assert rep.startswith("ERR dial sequence lasts 1101 ms")
    assert r.player.plans == []
    # exactly the limit plays
    assert kv(r.request("3", "SEND tone=450 gap=100 12"))["ms"] == "1000"
    assert len(r.player.plans) == 1
    # no limit (a board without a line controller): anything valid plays
    r = Rig()
    long_send = "SEND tone=5000 gap=5000 " + "1" * 92  # 915 s
    assert kv(r.request("1", long_send))["ms"] == "915000"


def test_hook_off_while_a_sequence_plays_leaves_it_playing():
    # only hanging up stops a sequence: taking the line (again) while one plays changes nothing
    r = Rig()
    r.request("1", "SEND 12")
    r.request("2", "SEND 3")
    r.run(50)
    assert r.request("3", "HOOK off") == "OK hook=off"
    assert r.player.cancels == 0 and r.player.job is not None
    r.run(1000)
    assert r.events("1")[-1] == "DONE 2" and r.events("2")[-1] == "DONE 1"


def test_engine_defaults_hear_nothing_and_have_no_selftest():
    # Engine() without hears/selftest/underruns: a board with no receive path, no loop relay
    r = Rig()
    hello = kv(r.request("1", "HELLO"))
    assert "progress" not in hello and hello["verify"] == "0"
    st = kv(r.request("2", "STATUS"))
    assert "progress" not in st and st["underruns"] == "0"
    rep = r.request("3", "SEND dialtone=1000 1")
    assert rep == "ERR bad-arg dialtone: this board does not hear the line"
    rep = r.request("4", "SELFTEST")
    assert rep == "ERR bad-arg this board has no receive path and loop relay"
