"""Call progress in the engine (issue 12 item 4): PROGRESS events from the receive path, and
SEND dialtone=<ms>, which holds the line and plays nothing until dial tone is heard ("ABORT 0
no-dial-tone" when it is not). Runs under CPython and MicroPython."""

from test_engine import Rig, kv
from tonebridge_fw import engine, sequencer


class HearingRig(Rig):
    def __init__(self, hears=True):
        Rig.__init__(self, "b007")
        self.eng = engine.Engine(self.clock, "b007", hears=hears)
        self.pump()


def test_a_board_that_cannot_hear_refuses_dialtone():
    r = HearingRig(hears=False)
    rep = r.request("1", "SEND dialtone=2000 123")
    assert rep == "ERR bad-arg dialtone: this board does not hear the line"
    assert "progress" not in kv(r.request("2", "HELLO"))
    assert "progress" not in kv(r.request("3", "STATUS"))


def test_dial_tone_heard_then_the_digits_play():
    r = HearingRig()
    assert kv(r.request("0", "HELLO"))["progress"] == "1"
    rep = r.request("1", "SEND dialtone=3000 123")
    assert rep.startswith("OK state=playing played=0 digits=3")
    assert r.hook is True  # the line is held to listen
    r.run(500)
    assert r.player.plans == [] and r.events("1") == ["DIALTONE wait 3000"]
    r.eng.line_event("progress", "dial")
    r.pump()
    assert ("!", "-", "PROGRESS dial") in r.frames
    assert r.events("1")[1] == "DIALTONE heard"
    assert len(r.player.plans) == 1
    r.run(1000)
    assert r.events("1")[-1] == "DONE 3"
    assert kv(r.request("2", "STATUS"))["progress"] == "dial"


def test_no_dial_tone():
    r = HearingRig()
    r.request("1", "SEND dialtone=2000 123")
    r.eng.line_event("progress", "silence")
    r.run(1990)
    assert r.events("1") == ["DIALTONE wait 2000"]
    r.run(20)
    assert r.events("1") == ["DIALTONE wait 2000", "ABORT 0 no-dial-tone"]
    assert r.player.plans == []  # nothing was played
    assert kv(r.request("2", "RESULT 1"))["reason"] == "no-dial-tone"
    # the next sequence in the queue goes on as usual
    r.request("3", "SEND 5")
    r.run(300)
    assert r.events("3")[-1] == "DONE 1"


def test_dial_tone_already_there_plays_at_once():
    r = HearingRig()
    r.eng.line_event("progress", "dial")
    r.request("1", "SEND dialtone=2000 1")
    assert r.events("1")[:2] == ["DIALTONE wait 2000", "DIALTONE heard"]
    assert len(r.player.plans) == 1


def test_cancel_and_hangup_while_waiting():
    r = HearingRig()
    r.request("1", "SEND dialtone=5000 1")
    r.request("2", "SEND 2")
    assert r.request("3", "CANCEL 1") == "OK cancelled=1"
    assert r.events("1")[-1] == "ABORT 0 cancelled"
    assert r.player.plans[0][0] == "2"  # the next one started
    r.run(500)
    r.request("4", "SEND dialtone=5000 1")
    assert r.request("5", "HOOK on") == "OK hook=on"
    assert r.events("4")[-1] == "ABORT 0 hangup"
    assert r.player.cancels == 0  # nothing was playing: nothing to stop


def test_a_retry_while_waiting_is_not_a_second_sequence():
    r = HearingRig()
    r.request("1", "SEND dialtone=5000 12")
    rep = r.request("1", "SEND dialtone=5000 12")
    assert rep.startswith("OK state=playing played=0 digits=2") and rep.endswith("dup=1")
    r.eng.line_event("progress", "dial")
    r.run(600)
    assert len(r.player.plans) == 1 and r.events("1")[-1] == "DONE 2"


def test_progress_events_follow_the_line():
    r = HearingRig()
    for name in ("dial", "dial", "ringing", "ringing", "voice", "busy"):
        r.eng.line_event("progress", name)
    r.pump()
    got = [f[2] for f in r.frames if f[2].startswith("PROGRESS")]
    assert got == ["PROGRESS dial", "PROGRESS ringing", "PROGRESS voice", "PROGRESS busy"]


def test_dialtone_limits():
    r = HearingRig()
    assert r.request("1", "SEND dialtone=60001 1") == "ERR bad-arg dialtone must be 0-60000 ms"
    assert r.request("2", "SEND dialtone=-1 1").startswith("ERR bad-arg")
    assert r.request("3", "SEND dialtone=x 1").startswith("ERR bad-arg dialtone must be")
    assert r.request("4", "SEND dialtone=0 1").startswith("OK state=playing")


def test_dialtone_at_its_limit_is_accepted():
    r = HearingRig()
    assert r.request("1", "SEND dialtone=60000 1") == ("OK state=playing played=0 digits=1 ms=100")
    assert r.events("1") == ["DIALTONE wait 60000"]


def test_no_dial_tone_exactly_at_the_wait():
    r = HearingRig()
    r.request("1", "SEND dialtone=1000 1")
    r.run(999, step=1)
    assert r.events("1") == ["DIALTONE wait 1000"]
    r.run(1, step=1)  # the wait is over at 1000 ms, not a ms later
    assert r.events("1")[-1] == "ABORT 0 no-dial-tone"
    # a main-loop pass that comes late still ends the wait
    r.request("2", "SEND dialtone=1000 1")
    r.run(990, step=1)
    r.run(20, step=20)
    assert r.events("2")[-1] == "ABORT 0 no-dial-tone"


def test_other_call_progress_does_not_end_the_wait():
    r = HearingRig()
    r.request("1", "SEND dialtone=2000 1")
    for name in ("busy", "reorder", "silence", "ringing", "voice", "unknown"):
        r.eng.line_event("progress", name)
        r.pump()
    assert r.player.plans == [] and r.events("1") == ["DIALTONE wait 2000"]
    r.eng.line_event("progress", "dial")
    r.pump()
    assert len(r.player.plans) == 1


def test_a_sequence_started_by_dial_tone_has_the_stall_guard():
    r = HearingRig()

    class Dead:
        def play(self, rid, plan):
            pass

        def cancel(self):
            return []

        def service(self):
            return []

    r.player = Dead()
    r.request("1", "SEND tone=100 gap=100 dialtone=5000 12")  # plan: 300 ms
    r.run(700, step=1)
    r.eng.line_event("progress", "dial")  # heard at 700 ms: the plan's time runs from here
    r.pump()
    r.run(300 + sequencer.STALL_MARGIN_MS - 1, step=1)
    assert not [f for f in r.frames if f[2].startswith("FAULT")]
    r.run(1, step=1)
    assert r.frames[-1][2] == "FAULT stall sequence 1 did not finish; aborting"


def test_other_call_progress_before_the_send_is_not_dial_tone():
    r = HearingRig()
    r.eng.line_event("progress", "busy")  # the last state heard: not dial tone
    r.request("1", "SEND dialtone=2000 1")
    assert r.player.plans == [] and r.events("1") == ["DIALTONE wait 2000"]


def test_once_dial_tone_is_heard_the_sequence_is_no_longer_waiting():
    r = HearingRig()
    r.request("1", "SEND dialtone=1000 123456789012")  # 2.3 s of digits, past the 1 s wait
    r.run(100)
    r.eng.line_event("progress", "dial")
    r.pump()
    r.run(1500)
    assert r.events("1")[-1].startswith("END")  # still playing, not "no-dial-tone"
    r.eng.line_event("progress", "silence")
    r.eng.line_event("progress", "dial")  # dial tone again (heard through the tones)
    r.pump()
    assert len(r.player.plans) == 1  # not played a second time
    assert r.request("2", "CANCEL 1") == "OK cancelled=1"
    assert r.player.cancels == 1  # a playing sequence is stopped in the player
    r.pump()
    assert r.events("1")[-1].startswith("ABORT") and "cancelled" in r.events("1")[-1]
