"""pico-mt8880 hears its line with the MT8880's own receiver: the chip model's receiver
(sim/mt8880_rx.py) listens on IN+/IN- through the hybrid (the line's signal, with the board's
own tones, the line's loss and noise), loads the receive register on delayed steering (b2, b3,
IRQ); the firmware's driver polls the status and receive registers (mt8880_ear.py) and feeds
the same verification path as the ADC boards' listener (HEARD, verified=, FAULT)."""

import pytest
from tonebridge.sim import SimBoard, VirtualClock, play_on_board
from tonebridge_fw import keypad
from tonebridge_fw.mt8880_ear import POLL_MS


def _events(res):
    return [f[3] for f in res["frames"] if f[1] == "!" and f[2] == "1"]


def _faults(res):
    return [f[3] for f in res["frames"] if f[1] == "!" and f[3].startswith("FAULT")]


def _hello(sb):
    codec = sb.load("tonebridge_fw.codec")
    sb.run_for(300)  # the chip's 100 ms power-up
    sb.link.host_read(-1)
    sb.write(codec.encode(">", "h", "HELLO"))
    sb.run_for(50)
    frames = list(codec.Decoder(accept="<!").feed(sb.link.host_read(-1)))
    return [f[2] for f in frames if f[0] == "<"][0]


def test_hello_says_verify_1_when_the_chip_receive_side_is_wired():
    with SimBoard("pico-mt8880", VirtualClock()) as sb:
        assert " verify=1" in " " + _hello(sb)
    with SimBoard("pico-mt8880", VirtualClock(), config={"mt8880_rx": None}) as sb:
        assert " verify=0" in " " + _hello(sb)


@pytest.mark.parametrize("tone, gap", [(40, 40), (100, 100)])
def test_sixteen_keys_verified_digit_by_digit(tone, gap):
    with SimBoard("pico-mt8880", VirtualClock()) as sb:
        res = play_on_board(sb, keypad.KEYS, "catapult", tone, gap, lead_ms=30)
        ev = _events(res)
        heard = [e.split() for e in ev if e.startswith("HEARD")]
        assert [(h[1], h[2]) for h in heard] == [(str(i), k) for i, k in enumerate(keypad.KEYS)]
        for h in heard:
            kv = dict(w.split("=") for w in h[3:])
            # the chip's delayed steering: up a guard time after the tone began, down about
            # as long after it ended as the capacitor charged (tGTA from its voltage); the ear
            # reads the status every POLL_MS (4 ms), so ms is that length to within 4 ms
            # (40/40: 28-40 ms; 28-38 when it read every 1 ms)
            assert 0.6 * tone <= int(kv["ms"]) <= tone + POLL_MS, h
        assert ev[-1] == "DONE 16 verified=16"
        assert not _faults(res)


@pytest.mark.parametrize("fault, value", [("relay", None), ("attenuation", 40)])
def test_a_broken_line_is_a_fault_naming_the_first_digit_not_heard(fault, value):
    with SimBoard("pico-mt8880", VirtualClock()) as sb:
        sb.run_for(30)
        sb.seed_line_fault(fault, value)
        res = play_on_board(sb, "5#9", "catapult", 40, 40, lead_ms=10)
        assert _faults(res) == ["FAULT line digit 0 key 5 not heard on the line"]
        ev = _events(res)
        assert not any(e.startswith("HEARD") for e in ev)
        assert ev[-1].startswith("ABORT") and ev[-1].endswith("not-heard verified=0")


def _tone_through_driver(tone_ms):
    """Play one '5' of tone_ms off hook with the firmware's driver and listen with its ear."""
    sb = SimBoard("pico-mt8880", VirtualClock(), run_main=False)
    try:
        sb.run_for(1)
        prof = sb.profile
        t = sb.modules["time"]
        board = sb.load("tonebridge_fw.board")
        listen = sb.load("tonebridge_fw.listen")
        backend, line = board.make_board(prof, t.ticks_ms)
        ear = listen.make_listener(prof, t.ticks_ms, backend)
        line.off_hook()
        line.unmute()
        sb.run_for(50)
        heard = list(ear.service(1))
        backend.start([("5", tone_ms), (None, 200)])
        for _ in range(300):
            backend.service()
            heard += ear.service(1)
            sb.run_for(1)
        return heard, sb.chip
    finally:
        sb.close()


def test_a_tone_shorter_than_the_guard_time_is_not_reported():
    heard, chip = _tone_through_driver(16)
    assert heard == [] and chip.rx.latches == []
    # the detector saw the tone (early steering), for less than the guard time tGTP
    ((on, off, code),) = chip.rx.est_log
    assert code == 0x5 and (off - on) / 1000 < chip.rx.guard_ms[0]
    heard, chip = _tone_through_driver(40)
    assert [h.key for h in heard] == ["5"]
    ((on, off, code),) = chip.rx.est_log
    assert (off - on) / 1000 > chip.rx.guard_ms[0]


def test_irq_falls_when_the_receive_register_is_loaded_and_a_read_clears_it():
    sb = SimBoard("pico-mt8880", VirtualClock(), run_main=False)
    try:
        sb.run_for(1)
        t = sb.modules["time"]
        backend, line = sb.load("tonebridge_fw.board").make_board(sb.profile, t.ticks_ms)
        line.off_hook()
        line.unmute()
        backend.write_cra(backend.cra | 0x4)  # CRA b2: interrupt enable
        sb.run_for(50)
        irq = sb.profile["irq_pin"]
        backend.start([("8", 60), (None, 100)])
        low_at = None
        for _ in range(120):
            backend.service()  # no status reads in manual mode: only the IRQ says it
            sb.run_for(1)
            if low_at is None and sb.bus.level(irq) == 0:
                low_at = sb.now_us()
        ((t_latch, code),) = sb.chip.rx.latches
        assert code == 0x8 and low_at is not None
        assert 0 <= low_at - t_latch <= 3000  # within the chip's 2 ms of detection steps
        st = backend.poll_status()
        assert st & 0x4 and st & 0x1  # b2 receive register full, b0 IRQ
        assert sb.bus.level(irq) != 0  # the status read released IRQ/CP
        assert backend.read_rx() == 0x8
        assert not backend.poll_status() & 0x4  # reading the receive register cleared b2
    finally:
        sb.close()


def test_a_wrong_code_table_is_a_fault_at_the_first_digit():
    with SimBoard("pico-mt8880", VirtualClock()) as sb:
        # the board's own loaded keypad table: '5' sent as the chip's code for '6'
        sb.load("tonebridge_fw.keypad").MT8880_CODE["5"] = 0x6
        res = play_on_board(sb, "555", "catapult", 40, 40, lead_ms=300)
        assert _faults(res) == ["FAULT line digit 0 key 5 not heard on the line"]


def test_burst_mode_sends_are_verified_too():
    # the ear's status polls take b1 from the chip; the burst transmitter keeps it (poll_status)
    with SimBoard("pico-mt8880", VirtualClock(), config={"mt8880_mode": "burst"}) as sb:
        res = play_on_board(sb, keypad.KEYS, "catapult", 60, 60, lead_ms=300)
        assert _events(res)[-1] == "DONE 16 verified=16"
