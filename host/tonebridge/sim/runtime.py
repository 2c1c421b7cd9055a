"""How a simulated board's firmware thread and its time interact.

Three ways to run, chosen by the board's clock:

* lockstep (``VirtualClock``, the default): the firmware and the harness take turns. The harness
  sets a target time (``run_until_us``); the firmware runs until its next ``sleep_*``/
  ``poll(timeout)``/blocking read would pass it, then hands back. Deterministic; a 3.5 s pause
  costs no wall time.
* paced (``VirtualClock`` with ``paced=True``: ``sim://`` URLs, ``tonebridge sim``): nobody
  drives; the firmware thread advances the virtual clock itself, never past the wall clock
  (``WallPacer``), and blocks on the serial link's condition until the host writes or the wall
  clock reaches its next deadline (a sleep's end, a timer or model event). Time inside stays
  exact (firmware code runs in zero time; the line depends only on what it configured), a
  board that waits costs nothing, and host bytes are seen the moment they arrive.
* real (``RealClock``): the same blocking waits on the host's monotonic clock.

``ClockView`` is the board clock as peripheral models see it: advancing goes through the
runtime, so a model that blocks the firmware (a full I2S ring) keeps the lockstep intact.
"""

from __future__ import annotations

import threading
import time


class BoardReset(BaseException):
    """Raised inside the firmware thread to unwind it when the board resets."""


class WallPacer:
    """Maps the virtual clock onto the wall clock: virtual ``us0`` was wall ``t0`` (monotonic)."""

    def __init__(self, clock):
        self.t0 = time.monotonic()
        self.us0 = clock.now_us()

    def virtual_now(self) -> int:
        return self.us0 + int((time.monotonic() - self.t0) * 1e6)

    def wall_of(self, t_us) -> float:
        return self.t0 + (t_us - self.us0) / 1e6


class BoardRuntime:
    def __init__(self, board, clock, paced: bool = False):
        self.board = board
        self.clock = clock
        self.paced = bool(paced and clock.virtual)
        self.lockstep = clock.virtual and not self.paced
        self.pacer = WallPacer(clock) if self.paced else None
        self.thread: threading.Thread | None = None
        self.ident = None  # the firmware thread's (checked on every time read and pin access)
        self._ident_lock = threading.Lock()
        self.turn = "harness"
        self.target = clock.now_us()
        self.cv = threading.Condition()
        self.closed = False
        self.waiting = False  # paced: blocked until the wall clock catches up (not behind)
        # paced/real: held by the firmware thread while it runs, released while it waits; hold
        # it to read the board's state (its line recording) consistently from another thread
        self.lock = threading.RLock()

    # ---- the firmware thread ----------------------------------------------------------------
    def in_firmware(self) -> bool:
        return threading.get_ident() == self.ident

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, main, name: str) -> None:
        def run():
            me = threading.get_ident()
            with self._ident_lock:
                self.ident = me
            try:
                if self.lockstep:
                    main()
                    return
                with self.lock:
                    main()
            finally:
                with self._ident_lock:  # (a reset may have started the next thread already)
                    if self.ident == me:
                        self.ident = None

        t = threading.Thread(target=run, name=name, daemon=True)
        self.thread = t
        t.start()

    def wait_first_turn(self) -> bool:
        """In the firmware thread before anything runs: False if the board closed meanwhile."""
        if self.lockstep:
            with self.cv:
                self.cv.wait_for(lambda: self.turn == "fw" or self.closed)
        return not self.closed

    def firmware_ended(self) -> None:
        with self.cv:
            self.turn = "harness"
            self.cv.notify_all()

    def wake(self) -> None:
        """Make a blocked paced/real firmware thread look again (reset, close)."""
        cond = self.board.link.cond
        # bounded: close() wakes again after raising BoardReset into the firmware thread, and
        # an exception delivered that way while the thread was taking the link's lock can
        # leave the lock held for good (seen: `bench --only latency` hung here 1 run in 3);
        # the thread is joined with a timeout after this anyway
        if cond.acquire(timeout=0.5):
            try:
                cond.notify_all()
            finally:
                cond.release()

    def check_async(self) -> None:
        """In the firmware thread: a reset, a Ctrl-C or scheduled callbacks take effect here."""
        b = self.board
        if self.closed and self.in_firmware():
            raise BoardReset("closed")
        if b.reset_pending is not None and self.in_firmware():
            raise BoardReset(b.reset_pending[0])
        if b.link.interrupt_pending and self.in_firmware():
            if b.link.take_interrupt():
                raise KeyboardInterrupt
        while b.scheduled:
            fn, arg = b.scheduled.pop(0)
            fn(arg)

    def touch(self) -> None:
        """Called on every time read / pin access by the firmware."""
        if self.ident == threading.get_ident():
            b = self.board
            if self.closed or b.reset_pending is not None or b.link.interrupt_pending:
                self.check_async()
            elif b.scheduled:
                self.check_async()

    # ---- lockstep turns -------------------------------------------------------------------
    def yield_to_harness(self) -> None:
        with self.cv:
            self.turn = "harness"
            self.cv.notify_all()
            self.cv.wait_for(lambda: self.turn == "fw" or self.closed)
        if self.closed:
            raise BoardReset("closed")
        self.check_async()

    def resume(self) -> None:
        with self.cv:
            self.turn = "fw"
            self.cv.notify_all()
            self.cv.wait_for(lambda: self.turn == "harness")

    # ---- time as the firmware experiences it ---------------------------------------------------
    def advance_us(self, n: int, until_event: bool = False) -> None:
        end = self.clock.now_us() + max(0, int(n))
        if until_event:
            nxt = self.clock.next_event_us()
            if nxt is not None:
                end = min(end, max(nxt, self.clock.now_us()))
        self.advance_to(end)

    def advance_to(self, t_end: int, wake=None) -> bool:
        """Let time pass until ``t_end`` or until ``wake()`` is true. True if woken."""
        in_fw = self.in_firmware()
        if in_fw:
            self.check_async()
        if not self.lockstep:
            return self._advance_blocking(t_end, wake, in_fw)
        if not in_fw:
            if wake is not None and wake():
                return True
            self.clock.advance_to(max(t_end, self.clock.now_us()))
            return bool(wake and wake())
        while True:
            if wake is not None and wake():
                return True
            if t_end <= self.target:
                if t_end > self.clock.now_us():
                    self.clock.advance_to(t_end)
                self.check_async()
                return bool(wake and wake())
            if self.clock.now_us() < self.target:
                self.clock.advance_to(self.target)
                self.check_async()
                if wake is not None and wake():
                    return True
            self.yield_to_harness()

    def _advance_blocking(self, t_end, wake, in_fw) -> bool:
        """Paced or real time: block on the serial link until the host writes or the next
        deadline (``t_end``, a clock event) is due on the wall clock. A paced clock moves once
        per wait, when it ends (and at once if the wall clock is already past ``t_end``):
        every move runs the models' catch-up, and the firmware's 1 ms passes would otherwise
        pay for it twice."""
        clock, cond = self.clock, self.board.link.cond
        pacer = self.pacer
        first = True
        while True:
            if pacer is not None:  # catch the virtual clock up with the wall clock
                reach = min(t_end, pacer.virtual_now())
                if reach > clock.now_us() and (not first or reach >= t_end):
                    clock.advance_to(reach)
            else:
                clock.run_due()
            first = False
            if in_fw:
                self.check_async()
            now = clock.now_us()
            if now >= t_end:
                return bool(wake is not None and wake())
            due = t_end
            nxt = clock.next_event_us()
            if nxt is not None:
                due = min(due, max(nxt, now))
            left = (pacer.wall_of(due) - time.monotonic()) if pacer else (due - now) / 1e6
            if left <= 0:
                continue
            left = min(left, 60.0)  # (waiting "forever": look again once a minute)
            with cond:
                if wake is not None and wake():
                    return True
                if in_fw and self._stop_waiting():
                    continue
                self.waiting = True
                held = in_fw
                if held:
                    self.lock.release()
                try:
                    cond.wait(left)
                finally:
                    self.waiting = False
                    if held:
                        self.lock.acquire()

    def _stop_waiting(self) -> bool:
        b = self.board
        return self.closed or b.reset_pending is not None or b.link.interrupt_pending

    def wait_until(self, pred, timeout_ms) -> bool:
        """Block the firmware until ``pred()`` or ``timeout_ms`` passes (None: forever)."""
        if pred():
            return True
        if timeout_ms is None:
            return self.advance_to(1 << 62, pred)
        return self.advance_to(self.clock.now_us() + int(timeout_ms) * 1000, pred)

    # ---- the harness side ---------------------------------------------------------------
    def run_until_us(self, t_us: int) -> bool:
        """The harness lets the board run until its clock reads ``t_us``. Lockstep: the
        firmware gets turns (the clock moves itself when no firmware runs), True. Paced/real:
        the firmware thread keeps its own time; this waits for the wall clock, moving time
        only for a board whose firmware ended (e.g. a watchdog at the REPL), False."""
        b, clock = self.board, self.clock
        if not self.lockstep:
            while clock.now_us() < t_us:
                time.sleep(min(0.05, max(0.001, (t_us - clock.now_us()) / 1e6)))
                if not self.alive():
                    if self.pacer is not None:
                        clock.advance_to(max(clock.now_us(), self.pacer.virtual_now()))
                    else:
                        clock.run_due()
                    if b.reset_pending is not None:
                        b.do_pending_reset()
            return False
        for _ in range(10_000):
            alive = self.alive()
            if alive and self.turn == "harness":
                self.target = t_us
                self.resume()
                alive = self.alive()
            if b.reset_pending is not None:
                b.do_pending_reset()
                continue
            if alive and clock.now_us() >= t_us:
                break
            # no firmware thread (or it ended): the harness moves time
            while clock.now_us() < t_us and b.reset_pending is None:
                nxt = clock.next_event_us()
                clock.advance_to(t_us if nxt is None else min(t_us, max(nxt, clock.now_us())))
            if b.reset_pending is not None:
                continue
            break
        return True

    def behind_s(self) -> float:
        """How far a paced board's clock is behind the wall clock (0 while it waits for it)."""
        if self.pacer is None or self.waiting:
            return 0.0
        return max(0.0, (self.pacer.virtual_now() - self.clock.now_us()) / 1e6)


class ClockView:
    """The board clock as peripheral models see it (see module docstring)."""

    def __init__(self, runtime: BoardRuntime):
        self._rt = runtime
        self.virtual = runtime.clock.virtual

    def now_us(self):
        return self._rt.clock.now_us()

    def call_at(self, t_us, fn):
        return self._rt.clock.call_at(t_us, fn)

    def call_later(self, d_us, fn):
        return self._rt.clock.call_later(d_us, fn)

    def cancel(self, h):
        return self._rt.clock.cancel(h)

    def advance_to(self, t_us):
        self._rt.advance_to(t_us)

    def advance_us(self, n):
        self._rt.advance_us(n)
