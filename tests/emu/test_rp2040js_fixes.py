"""Each fix tonebridge makes to rp2040js 1.4.1 (host/tonebridge/emu/fixes.mjs, docs/emulator.md)
has a test here that runs twice: with the fix (must pass) and with only that fix switched off,
i.e. stock rp2040js behaviour (the same check must fail). So every test is shown to fail
without its fix, in the same run.

The PWM fixes are checked at register level on a bare emulated chip (tests/emu/js/
pwm_probe.mjs drives the slice and the DMA from outside the CPU, timestamps in system clock
cycles) against the RP2040 datasheet's timing; the others on the MicroPython image through
its REPL (mpremote's own transport over an emu:// port).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from emuhelpers import wait_for
from tonebridge.emu.image import NODE_MODULES

pytestmark = pytest.mark.emu
PROBE = Path(__file__).with_name("js") / "pwm_probe.mjs"
FIX_ON, FIX_OFF = "fixed", "stock"


def probe(scenario, without=()):
    argv = ["node", str(PROBE), "--rp2040js", str(NODE_MODULES / "rp2040js")]
    argv += ["--scenario", scenario]
    if without:
        argv += ["--without", ",".join(without)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(r.stdout)


# ------------------------------------------------------------------ pwm-phase-correct
def phase_correct_problems(d) -> list[str]:
    """What differs from the RP2040 datasheet's phase-correct PWM (TOP 99, DIV 1, CC A 30,
    CC B 70, started at counter 0): period 2 * (TOP + 1) = 200 clocks, output high while the
    counter is below CC (2 * CC clocks per period, centred on the wrap), edges symmetric about
    the turn-around at TOP, one wrap IRQ per period at the counter's return to 0, CC latched
    there, CTR counting 0..TOP, TOP..0; DIV 2.5 stretches every tick to 2.5 clocks."""
    bad = []
    wraps = d["wraps"]
    first = [w for w in wraps if w <= 2000]
    if first != list(range(200, 2001, 200)):
        bad.append(f"wraps at {first[:12]}, want every 200 clocks from 200")
    a = [(t, v) for t, pin, v in d["edges"] if pin == 0 and t < 1000]
    b = [(t, v) for t, pin, v in d["edges"] if pin == 1 and t < 1000]
    want_a = [(0, 1)] + [e for k in range(5) for e in ((200 * k + 30, 0), (200 * k + 170, 1))]
    want_b = [(0, 1)] + [e for k in range(5) for e in ((200 * k + 70, 0), (200 * k + 130, 1))]
    if a != want_a:
        bad.append(f"channel A edges {a[:11]}, want {want_a}")
    if b != want_b:
        bad.append(f"channel B edges {b[:11]}, want {want_b}")
    # CC written at 1025 (counting up in period 5): period 5 keeps CC 30, period 6 has CC 50
    a5 = [(t, v) for t, pin, v in d["edges"] if pin == 0 and 1000 <= t < 1400]
    if a5 != [(1030, 0), (1170, 1), (1250, 0), (1350, 1)]:
        bad.append(f"CC written mid-period: A edges {a5}, want latched at the wrap at 1200")
    ctr = dict(d["ctr"])
    want_ctr = {10: 10, 99: 99, 100: 99, 101: 98, 150: 49, 199: 0}
    if ctr != {int(k): v for k, v in want_ctr.items()}:
        bad.append(f"CTR reads {ctr}, want {want_ctr}")
    # DIV = 2 + 8/16 from 2000: ticks of 2.5 clocks, period 500, A low at 2000 + 50 * 2.5
    a_div = [(t, v) for t, pin, v in d["edges"] if pin == 0 and 2000 < t < 3000]
    if a_div[:4] != [(2125, 0), (2375, 1), (2625, 0), (2875, 1)]:
        bad.append(f"DIV 2.5: A edges {a_div[:4]}")
    w_div = [w for w in wraps if 2000 < w <= 4000]
    if w_div != [2500, 3000, 3500, 4000]:
        bad.append(f"DIV 2.5: wraps {w_div}")
    return bad


@pytest.mark.parametrize("mode", [FIX_ON, FIX_OFF])
def test_pwm_phase_correct_matches_the_datasheet(mode):
    d = probe("phase", without=("pwm-phase-correct",) if mode == FIX_OFF else ())
    bad = phase_correct_problems(d)
    if mode == FIX_ON:
        assert not bad, bad
    else:
        # stock 1.4.1: no edges at all, wraps every ~99 clocks
        assert bad and not [e for e in d["edges"] if e[0] > 0], bad


# ------------------------------------------------------------------ pwm-dreq
def dreq_problems(d) -> list[str]:
    """A DMA channel paced by the slice's wrap DREQ (trailing-edge, TOP 99: a wrap every 100
    clocks) must move one of its 8 values per wrap, each in force for the period after the
    wrap that paced it (CC is latched at the wrap)."""
    bad = []
    want = [8 - min(k, 8) for k in range(1, 13)]
    got = [c for _t, c in d["count"]]
    if got != want:
        bad.append(f"TRANS_COUNT after each wrap {got}, want {want}")
    falls = [t for t, pin, v in d["edges"] if pin == 0 and v == 0]
    want_falls = [105] + [100 * k + 10 * (k - 1) for k in range(2, 10)]
    if falls[:9] != want_falls:
        bad.append(f"channel A falls at {falls[:9]}, want {want_falls}")
    return bad


@pytest.mark.parametrize("mode", [FIX_ON, FIX_OFF])
def test_pwm_wrap_dreq_paces_one_transfer_per_wrap(mode):
    d = probe("dma", without=("pwm-dreq",) if mode == FIX_OFF else ())
    bad = dreq_problems(d)
    if mode == FIX_ON:
        assert not bad, bad
    else:
        # stock 1.4.1: all eight transfers at the first wrap
        assert bad and d["count"][0][1] == 0, bad


# ------------------------------------------------------------------ on the MicroPython image
def transport(url):
    import tonebridge.link  # noqa: F401  (registers emu://)
    from mpremote.transport_serial import SerialTransport

    return SerialTransport(url)


def run(t, code: str) -> str:
    # generous wall-clock bounds: the emulator is slow for CPU-bound code on a loaded host
    t.enter_raw_repl(soft_reset=False, timeout_overall=60)
    try:
        out, err = t.exec_raw(code, timeout=120)
        assert not err, err
        return out.decode()
    finally:
        t.exit_raw_repl()


def url(tmp_path, name, without=(), **opts):
    from urllib.parse import urlencode

    if without:
        opts["without"] = ",".join(without)
    q = urlencode(opts)
    return f"emu://pico?{q}" if q else "emu://pico"


@pytest.mark.parametrize("mode", [FIX_ON, FIX_OFF])
def test_qspi_flash_filesystem_persists_and_unique_id(mode, tmp_path, emu_image):
    # a file written through littlefs is there after a power cycle; the flash's unique
    # id (SPI command 0x4B) is the board's machine.unique_id()
    without = ("qspi-flash",) if mode == FIX_OFF else ()
    hwid = "e661a4d41b2c3d4e"
    t = transport(url(tmp_path, "q", without, flash=tmp_path / "q.lfs", hwid=hwid))
    try:
        out = run(
            t,
            "import machine, os\n"
            "print(machine.unique_id().hex())\n"
            "try:\n"
            "    with open('/hello.txt', 'w') as f:\n"
            "        f.write('tonebridge')\n"
            "    print('wrote')\n"
            "except OSError as e:\n"
            "    print('write failed', e)\n",
        )
        board = t.serial.board
        board.reset()
        time.sleep(0.5)
        after = run(
            t,
            "try:\n    print(open('/hello.txt').read())\nexcept OSError as e:\n    print('read failed', e)\n",
        )
    finally:
        t.close()
    ok = out.split()[0] == hwid and "wrote" in out and after.strip() == "tonebridge"
    if mode == FIX_ON:
        assert ok, (out, after)
        from tonebridge.emu.fsimage import read_image

        assert read_image(tmp_path / "q.lfs")["hello.txt"] == b"tonebridge"
    else:
        assert not ok, (out, after)  # stock: id 0000000000000000, no filesystem


CPU_LOOP = (
    "import time\n"
    "t = time.ticks_us()\n"
    "for i in range(20000):\n"
    "    pass\n"
    "print(time.ticks_diff(time.ticks_us(), t))\n"
)


def test_usb_cdc_hold_leaves_the_cpu_to_the_program(tmp_path, emu_image):
    # the same CPU-bound loop, in emulated microseconds: with the stock CDC host model the
    # device spends most of its cycles answering zero-length OUT packets
    times = {}
    for mode, without in ((FIX_ON, ()), (FIX_OFF, ("usb-cdc-hold",))):
        t = transport(url(tmp_path, mode, without))
        try:
            times[mode] = int(run(t, CPU_LOOP).split()[-1])
            zlp = t.serial.board.stats()["zlp"]
        finally:
            t.close()
        if mode == FIX_OFF:
            assert zlp > 1000, zlp
    assert times[FIX_OFF] > 2 * times[FIX_ON], times


@pytest.mark.parametrize("mode", [FIX_ON, FIX_OFF])
def test_watchdog_reset_reboots_the_chip(mode, tmp_path, emu_image):
    # machine.reset() (watchdog_reboot in the SDK) must reset the chip: USB re-enumerates,
    # the REPL comes back and machine.reset_cause() says WDT_RESET
    without = ("watchdog-reset",) if mode == FIX_OFF else ()
    t = transport(url(tmp_path, "w", without))
    try:
        board = t.serial.board
        n = board.usb_connects
        t0 = board.stats()["t_ns"]
        t.serial.write(b"\x03\x03\r\nimport machine; machine.reset()\r\n")
        # wait in emulated time (a reboot and USB enumeration take ~40 ms of it), bounded
        # generously in wall time for a loaded host
        deadline = time.monotonic() + 120
        while board.usb_connects <= n and time.monotonic() < deadline:
            if board.stats()["t_ns"] - t0 > 3e9:
                break
            time.sleep(0.1)
        rebooted = board.usb_connects > n
        cause = run(t, "import machine; print(machine.reset_cause())") if rebooted else ""
    finally:
        t.close()
    if mode == FIX_ON:
        assert rebooted and cause.strip() == "3", cause  # machine.WDT_RESET
        assert board.resets and board.resets[-1][1] == "watchdog-force"
    else:
        assert not rebooted


def boot_ids(board, n):
    """The protocol boot id the firmware announces (`!- BOOT boot=...`) at n power-ups."""
    ids = []
    for _ in range(n):
        ids.append(wait_for(board.read, rb"BOOT boot=([0-9a-f]{8})", 30).group(1).decode())
        board.reset()
    return ids


@pytest.mark.parametrize("mode", [FIX_ON, FIX_OFF])
def test_rosc_random_boot_ids_differ_between_boots(mode, emu_board, provisioned):
    # the firmware's boot id (os.urandom at start-up: pico_rand mixes ROSC bits with the timer
    # and SRAM, all deterministic in an emulator) must change at every boot, or the host cannot
    # tell a restarted board from the same run (exactly-once across restarts rests on it)
    without = ("rosc-random",) if mode == FIX_OFF else ()
    ids = boot_ids(emu_board(flash=provisioned(), without=without), 3)
    if mode == FIX_ON:
        assert len(set(ids)) == 3, ids
    else:
        assert len(set(ids)) == 1, ids
