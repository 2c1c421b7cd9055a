"""SimBoard running the firmware's own main.py (-> App) in its firmware thread: boot, lockstep
virtual time, Ctrl-C to the REPL, watchdog and soft resets, several boards in one process."""

import sys
import time

import numpy as np
import pytest
from tonebridge.sim import RealClock, SimBoard, VirtualClock
from tonebridge_fw import codec


@pytest.fixture
def boards():
    made = []

    def make(name="pico", clock=None, **kw):
        sb = SimBoard(name, clock or VirtualClock(), **kw)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.close()


def _frames(data):
    """The protocol frames (mark, id, body) in what the board wrote (REPL text is skipped)."""
    return list(codec.Decoder(accept="<!").feed(data))


def test_boot_runs_main_and_says_boot(boards):
    sb = boards()
    assert sb.run_main and sb.state == "running"
    sb.run_for(30)
    out = sb.read()
    assert b"BOOT" in out
    assert sb.now_us() == 30_000
    assert "machine" not in sys.modules  # nothing leaked into the host


@pytest.mark.slow
def test_send_frame_plays_and_reports_done_in_virtual_time(boards):
    sb = boards()
    sb.run_for(100)  # past the output stage's power-up settling (pwm_dma_rp2.SETTLE_MS)
    sb.read()
    sb.write(codec.encode(">", "7", "SEND 1WWW,59#"))
    t0 = time.perf_counter()
    got = bytearray()

    def done():
        got.extend(sb.read())
        return b"DONE" in got

    ok = sb.run_until(done, timeout_ms=10_000, step_ms=5)
    wall = time.perf_counter() - t0
    assert ok, got
    frames = _frames(bytes(got))
    assert frames[0][:2] == ("<", "7") and frames[0][2].startswith("OK state=playing")
    evs = [f[2] for f in frames if f[:2] == ("!", "7")]
    assert [e for e in evs if not e.startswith("HEARD")] == [
        "START 0 1", "END 0 1", "START 1 5", "END 1 5", "START 2 9", "END 2 9",
        "START 3 #", "END 3 #", "DONE 4" + (" verified=4" if "rx_adc" in sb.profile else ""),
    ]  # fmt: skip
    if "rx_adc" in sb.profile:  # a board that hears its line confirmed each digit
        assert [e.split()[1:3] for e in evs if e.startswith("HEARD")] == [
            ["0", "1"], ["1", "5"], ["2", "9"], ["3", "#"],
        ]  # fmt: skip
    assert 3_980_000 < sb.now_us() < 4_280_000  # 4 tones + 2 gaps + a 3.5 s pause
    assert wall < 30  # generous: the point is that virtual time is not wall time
    x = sb.line.samples(8000)
    assert np.max(np.abs(x)) > 0.1


def test_ctrl_c_reaches_the_repl_and_the_line_drops(boards):
    sb = boards()
    sb.run_for(20)
    sb.write(b"\x03")
    sb.run_for(5)
    out = sb.read()
    assert sb.state == "repl"
    assert b"KeyboardInterrupt" in out and out.endswith(b">>> ")
    hook = sb.profile["hook_pin"]
    assert sb.bus.level(hook) == 0
    assert sb.line_if.muted


def test_ctrl_c_keeps_a_started_watchdog_fed_at_the_repl(boards):
    # A started WDT cannot be stopped; after Ctrl-C a person (or mpremote, deploying) works at
    # the REPL, so the firmware hands the feeding to a timer instead of resetting under them.
    sb = boards(config={"watchdog_ms": 1000})
    sb.run_for(2000)
    assert sb.resets == []
    sb.read()
    sb.write(b"\x03")
    sb.run_for(10_000)
    assert sb.resets == []
    assert sb.state == "repl"


def test_watchdog_reboots_into_main_after_the_repl_grace(boards):
    sb = boards(config={"watchdog_ms": 1000, "repl_grace_s": 3})
    sb.run_for(2000)
    assert sb.resets == []  # the healthy main loop feeds it
    assert sb.wdt is not None and sb.wdt.feeds > 50
    sb.read()
    sb.write(b"\x03")  # main ends at the REPL: fed by the timer for the grace only
    sb.run_for(10)
    t_stop = sb.now_us()
    sb.run_for(2900)
    assert sb.resets == []
    sb.run_for(1500)
    assert [r[1] for r in sb.resets] == ["watchdog"]
    assert t_stop + 3_000_000 <= sb.resets[0][0] <= t_stop + 4_100_000
    assert sb.state == "running"
    assert sb.modules["machine"].reset_cause() == sb.modules["machine"].WDT_RESET
    assert sb.read().count(b"BOOT") == 1  # the new boot announced itself


def test_harness_reset_and_fresh_modules(boards):
    sb = boards()
    sb.run_for(20)
    app_mod = sb.loader.modules["tonebridge_fw.app"]
    sb.reset()
    sb.run_for(20)
    assert sb.loader.modules["tonebridge_fw.app"] is not app_mod
    assert [r[1] for r in sb.resets] == ["harness"]


@pytest.mark.slow
def test_boards_are_independent_and_deterministic(boards):
    a = boards("pico")
    b = boards("pico")
    c = boards("pico2")
    for sb in (a, b, c):
        sb.run_for(20)
        sb.write(codec.encode(">", "1", "SEND 123"))
        sb.run_for(800)
    assert a.load("tonebridge_fw.player") is not b.load("tonebridge_fw.player")
    xa, xb = a.line.samples(16000), b.line.samples(16000)
    assert xa.size == xb.size and np.array_equal(xa, xb)
    assert np.max(np.abs(xa)) > 0.1
    assert c.hw.freq == 150_000_000 and a.hw.freq == 125_000_000


def test_real_clock_board_boots_and_answers(boards):
    sb = boards(clock=RealClock())
    deadline = time.monotonic() + 5
    out = b""
    while b"BOOT" not in out and time.monotonic() < deadline:
        time.sleep(0.02)
        out += sb.read()
    assert b"BOOT" in out
    sb.write(codec.encode(">", "1", "HELLO"))
    while b"<1 OK" not in out and time.monotonic() < deadline:
        time.sleep(0.02)
        out += sb.read()
    assert b"<1 OK" in out


def _repl(sb):
    sb.run_for(20)
    sb.write(b"\x03")
    sb.run_for(5)
    assert sb.read().endswith(b">>> ")


def test_repl_evaluates_in_the_board_namespace(boards):
    sb = boards()
    _repl(sb)
    sb.write(b"import machine\r")
    sb.write(b"machine.freq()\r")
    sb.run_for(5)
    out = sb.read()
    assert b"125000000\r\n>>> " in out
    sb.write(b"1/0\r")
    sb.run_for(5)
    assert b"ZeroDivisionError" in sb.read()


def test_ctrl_d_soft_reboots_into_main(boards):
    sb = boards()
    _repl(sb)
    sb.write(b"\x04")
    sb.run_for(30)
    out = sb.read()
    assert b"MPY: soft reboot" in out and b"BOOT" in out
    assert sb.state == "running"
    assert sb.resets[-1][1] == "soft reboot"


def test_raw_repl_as_mpremote_uses_it(boards):
    sb = boards()
    _repl(sb)
    sb.write(b"\x01")
    sb.run_for(5)
    assert sb.read().endswith(b"raw REPL; CTRL-B to exit\r\n>")
    sb.write(b"\x05A\x01")  # raw-paste query: this REPL answers "not supported"
    sb.run_for(5)
    assert sb.read() == b"R\x00"
    sb.write(b"import sys\nprint(sys.platform, 6 * 7)\x04")
    sb.run_for(5)
    assert sb.read() == b"OKrp2 42\r\n\x04\x04>"
    sb.write(b"raise ValueError('x')\x04")
    sb.run_for(5)
    out = sb.read()
    assert out.startswith(b"OK\x04") and b"ValueError: x" in out and out.endswith(b"\x04>")
    sb.write(b"\x02")
    sb.run_for(5)
    assert sb.read().endswith(b">>> ")


def test_uart_profile_speaks_on_the_uart(boards):
    sb = boards(config={"uart": {"id": 0, "tx": 0, "rx": 1, "baudrate": 115200}})
    sb.run_for(20)
    assert b"BOOT" in sb.read()
    sb.write(codec.encode(">", "3", "HELLO"))
    sb.run_for(30)
    assert b"<3 OK" in sb.read()


@pytest.mark.parametrize("name", ["esp32-i2s", "pico-mt8880", "pico2", "picow"])
def test_every_board_boots_main(boards, name):
    sb = boards(name)
    sb.run_for(150)
    out = sb.read()
    assert b"BOOT" in out, out
    assert sb.state == "running"


def test_rp2040_watchdog_limit(boards):
    sb = boards(run_main=False)
    with pytest.raises(ValueError, match="too long"):
        sb.modules["machine"].WDT(timeout=9000)


@pytest.mark.slow
def test_idle_board_keeps_no_line_samples(boards):
    # on-hook and muted: what the line switches cut off is not stored (bounded memory for a
    # board left running), and the rendered line is the same silence
    sb = boards()
    sb.run_for(30_000)
    stored = sum(v.size for segs in sb.line._segs.values() for _s, _r, v in segs)
    assert sb.line.dropped_samples > 30 * 90_000
    assert stored < 100_000
    x = sb.line.samples(8000)
    assert x.size == pytest.approx(30 * 8000, abs=800) and not np.any(x)


def test_pyboard_raw_repl_soft_reset_sequence(boards):
    # what mpremote/pyboard.py send: interrupt, raw REPL, Ctrl-D soft reset (main.py is
    # skipped after a raw-REPL soft reset), run code, leave the raw REPL
    sb = boards()
    sb.run_for(20)
    sb.write(b"\r\x03\x03")
    sb.run_for(5)
    sb.write(b"\r\x01")
    sb.run_for(5)
    assert sb.read().endswith(b"raw REPL; CTRL-B to exit\r\n>")
    sb.write(b"\x04")
    sb.run_for(20)
    out = sb.read()
    assert out == b"OK\r\nMPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>"
    assert b"BOOT" not in out
    sb.write(b"print(1 + 1)\x04")
    sb.run_for(5)
    assert sb.read() == b"OK2\r\n\x04\x04>"
    sb.write(b"\x02")  # friendly REPL; Ctrl-D there reboots into main.py
    sb.run_for(5)
    sb.read()
    sb.write(b"\x04")
    sb.run_for(30)
    assert b"BOOT" in sb.read()
    assert sb.state == "running"
