"""The MT8880 board's ear (firmware/tonebridge_fw/mt8880_ear.py) on the driver's bus double:
it reads only the status and receive registers (runs under CPython and MicroPython)."""

from test_mt8880 import make
from tonebridge_fw.mt8880_ear import ChipEar


def _ear(mode=None):
    be, bus, clock = make(mode)
    bus.take()
    ear = ChipEar(be, lambda: clock.us // 1000)
    return ear, be, bus, clock


def test_a_digit_is_read_on_b2_and_reported_when_steering_falls():
    ear, be, bus, clock = _ear()
    assert ear.service(1) == ()
    assert bus.take() == [("r", 1, 0), ("r", 1, 0)]  # start (nothing stale), then a poll
    bus.status = 0x0C  # b2 receive register full, b3 delayed steering
    bus.rx = 0x5
    clock.us += 2000
    assert ear.service(1) == ()
    assert bus.take() == [("r", 1, 0x0C), ("r", 0, 0x5)]
    bus.status = 0x08  # still steering, register read
    clock.us += 20000
    assert ear.service(1) == ()
    bus.status = 0x00
    clock.us += 9000
    (h,) = ear.service(1)
    assert h.key == "5" and h.words == "ms=29" and h.ms == 29
    assert h.off - h.on == 29
    assert bus.errors == []


def test_codes_map_to_keys_as_the_transmitter_sends_them():
    ear, be, bus, clock = _ear()
    ear.service(1)
    got = []
    for code, key in ((0xA, "0"), (0xB, "*"), (0xC, "#"), (0x0, "D"), (0xD, "A")):
        bus.status, bus.rx = 0x04, code  # a digit begun and ended between two polls
        clock.us += 1000
        got += [h.key for h in ear.service(1)]
    assert got == ["0", "*", "#", "D", "A"]


def test_a_stale_code_is_discarded_when_listening_starts():
    ear, be, bus, clock = _ear()
    bus.status_script, bus.rx = [0x04], 0x7  # then 0: reading the register cleared b2
    assert ear.service(1) == ()
    assert bus.take() == [("r", 1, 0x04), ("r", 0, 0x7), ("r", 1, 0)]


def test_not_listening_touches_no_register():
    ear, be, bus, clock = _ear()
    assert ear.service(0) == ()
    assert bus.take() == []


def test_transmit_empty_seen_by_the_ear_is_kept_for_the_burst_transmitter():
    ear, be, bus, clock = _ear("burst")
    be.start([("7", 100), (None, 40), ("0", 100)])
    bus.take()
    clock.us += 98000
    assert be.due_ms() == 4  # the pause's nominal end (102 ms)
    bus.status_script = [0x02]  # the ear's poll takes b1 (a read clears it on the chip)
    ear.service(1)
    assert be.due_ms() == 1  # a chip 4 ms early: its next step at once, not at 102 ms
    be.service()  # no b1 in the status any more: the kept one ends the pause
    assert [c for c in bus.take() if c[0] == "w"] == [("w", 0, 0xA)]


def test_while_listening_the_ear_asks_for_a_status_read_every_poll_interval():
    # due_ms(): the main loop sleeps until the ear's next status read (or the backend's next
    # step, whichever is sooner), not 1 ms at a time
    from tonebridge_fw.mt8880_ear import POLL_MS

    ear, be, bus, clock = _ear()
    assert ear.due_ms() == 0  # not listening: it needs no pass
    ear.service(1)
    assert ear.due_ms() == POLL_MS == 4
    clock.us += 3000
    assert ear.due_ms() == 1
    clock.us += 5000  # a late pass
    assert ear.due_ms() == 1
    ear.service(1)
    assert ear.due_ms() == POLL_MS
    ear.service(0)  # the sequence heard: listening stops
    assert ear.due_ms() == 0
