"""One board line: its BoardClient, a worker thread that runs the line's jobs in arrival
order, and a follower thread that waits for accepted sequences to end.

The worker takes jobs (sends, hook changes, dials, reconciliations) from a FIFO queue and
submits each send to the board (`BoardClient.submit`): the send is answered (its
`accepted` future) as soon as the board accepted it into its queue, so a request behind a
long sequence is answered at once; the board plays them in order, one gap apart. The
follower waits for each accepted sequence in turn (`Ticket.wait`), records every finished
digit in the store, writes the recording and reports the outcome. Sends on one call never
interleave and are never dropped; different lines run concurrently.

Bounds: a send carries a deadline (`accept_timeout`). A job whose deadline passed before
the worker took it is never started; one the board accepts after its answer went out is
cancelled on the board at once (and what played is reported). When the board has been
unreachable for longer than the bound, sends fail at once (503, nothing sent).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time

from tonebridge.api import reconcile, recording, sends
from tonebridge.api.calls import Job, SendFailed, fail, resolve
from tonebridge.api.config import LineConfig

log = logging.getLogger("tonebridge.api")

TRIM_EVERY_S = 5.0


class Line:
    def __init__(self, cfg: LineConfig, board, client_factory):
        self.cfg = cfg
        self.board = board  # the Switchboard
        self.url = cfg.url
        self.device_id = cfg.device_id
        self.owner = cfg.owner
        self.number = cfg.number
        self.store = board.store
        self._client_factory = client_factory
        self.client = None  # the BoardClient once it was opened (or keeps trying)
        self._client = None
        self.ready = threading.Event()  # the first open (and hook) was tried
        self.open_error: str | None = None
        self.call = None
        self._queue: queue.Queue = queue.Queue()
        self._tickets: queue.Queue = queue.Queue()
        self.slots = threading.Condition()  # sequences accepted and not yet ended
        self._inflight = 0
        self.published = None  # the line state last published to clients
        self._current: Job | None = None
        self.wake = threading.Event()  # interrupts the dial wait on hangup
        self._commanded_off_hook = False  # last hook state the worker told the board
        self._last_trim = time.monotonic()
        self._last_end_us = None
        self.following: set[str] = set()  # sequence ids the follower is waiting for
        name = f"line-{cfg.device_id}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._follower = threading.Thread(target=self._follow, name=name + "-f", daemon=True)

    # ------------------------------------------------------------ what clients see
    @property
    def hwid(self) -> str | None:
        c = self.client
        return (c.hwid if c is not None else None) or self.cfg.hwid

    @property
    def path(self) -> str:
        c = self.client
        return c.url if c is not None else self.url

    @property
    def fault(self) -> str | None:
        """Why this line cannot play now (None: it can)."""
        c = self.client
        if c is None or c.closed:
            return self.open_error or (None if c is None else f"board {self.url} is not open")
        if not c.link_up:
            return c.fault or f"the board on {c.url} is not connected"
        return None

    @property
    def off_hook(self) -> bool:
        """The hook state the bridge last set on the board (True: off-hook, seized)."""
        return self._commanded_off_hook

    @property
    def board_info(self) -> dict:
        """What the board said in its HELLO (fw version, board, backend, ...); {} before."""
        c = self.client
        return dict(getattr(c, "info", None) or {}) if c is not None else {}

    @property
    def link_up(self) -> bool:
        c = self.client
        return c is not None and not c.closed and bool(c.link_up)

    @property
    def reconnects(self) -> int:
        """How often the link to the board was re-established since serve started."""
        c = self.client
        return int(getattr(c, "reconnects", 0) or 0) if c is not None else 0

    @property
    def queue_depth(self) -> int:
        """Jobs waiting for the line's worker plus sequences the board accepted and is
        playing or holds in its queue."""
        return self._queue.qsize() + self._inflight

    def state_json(self) -> dict:
        return {"hardwareId": self.hwid, "port": self.path, "fault": self.fault}

    # ------------------------------------------------------------ threads
    def start(self):
        self._thread.start()
        self._follower.start()

    def stop(self, timeout=5.0):
        if self._current is not None or self._inflight:
            self.cancel_current()
        self._queue.put(None)
        self.wake.set()
        self._thread.join(timeout)
        self._tickets.put(None)
        self._follower.join(timeout)
        while True:  # nothing left unanswered
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                failure = SendFailed(
                    "the bridge is shutting down; nothing was sent", 0, job.total, sent=False
                )
                self.post(fail, job.accepted, failure)
                self.post(fail, job.done, failure)
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                log.exception("line %s: close failed", self.url)

    def post(self, fn, *args) -> bool:
        """Run fn(*args) on the event loop (False if it is gone: shutting down)."""
        try:
            self.board.loop.call_soon_threadsafe(fn, *args)
            return True
        except RuntimeError:  # loop closed during shutdown
            return False

    def post_wait(self, fn, *args, timeout=5.0):
        """post(), then wait (at most `timeout`) until the loop has run it."""
        done = threading.Event()

        def run():
            try:
                fn(*args)
            finally:
                done.set()

        if self.post(run):
            done.wait(timeout)

    def ensure_open(self):
        if self.client is not None and not self.client.closed:
            return self.client
        client = self._client or self._client_factory(
            self.url, self._on_board_event, **self._link_kw()
        )
        self._client = client
        try:
            client.open()
            self.open_error = None
        except Exception as exc:
            self.open_error = f"cannot open board {self.url}: {exc}"
            if getattr(client, "background", False):
                client.open(wait=False)  # keeps trying in its reader; sends see the fault
                self.client = client
                if client.link_up:
                    self.open_error = None
                    return client
            raise SendFailed(self.open_error, sent=False) from exc
        self.client = client
        return client

    def _link_kw(self) -> dict:
        kw = {}
        if self.cfg.hwid:
            kw["hwid"] = self.cfg.hwid
        search = list(self.cfg.search or ())

        def locate(hwid):
            from tonebridge.link.discovery import locate_candidates

            return locate_candidates(hwid, search)

        kw["locate"] = locate
        return kw

    def _on_board_event(self, event):
        """Unsolicited board and link events (link thread)."""
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "hook" and event.get("off_hook") is False:
            # Our own HOOK on produces the same event; the check job runs after any hook
            # command queued before it and tells a spontaneous hang-up from ours.
            self._queue.put(
                Job(kind="check_hook", call=self.call, text=event.get("reason") or "board")
            )
        elif kind == "fault":
            log.warning("line %s: board fault %s", self.url, event)
            self.post(self.board.board_fault, self, dict(event))
        elif kind == "progress" and event.get("args"):
            self.post(self.board.line_progress, self, self.call, str(event["args"][0]))
        elif kind == "bound":
            self.store.bind_line(self.device_id, event["hwid"])
        elif kind == "link" and event.get("state") == "up":
            self.open_error = None
            self._queue.put(Job(kind="reconcile", call=None))
        if kind in ("link", "wrong_board", "bound"):
            self.post(self.board.line_changed, self)

    def _run(self):
        try:
            self.ensure_open()
            if self.call is not None and self.call.state == "Established":
                self.set_hook(True)
        except Exception as exc:
            log.error("line %s: %s", self.url, exc)
        self.ready.set()
        self.post(self.board.line_changed, self)
        if self.client is not None and self.client.link_up:
            self._queue.put(Job(kind="reconcile", call=None))
        while True:
            try:
                job = self._queue.get(timeout=TRIM_EVERY_S)
            except queue.Empty:
                self._trim()
                continue
            if job is None:
                break
            self._current = job
            try:
                self._run_job(job)
            except Exception as exc:  # never let the worker die
                log.exception("line %s: job failed", self.url)
                failure = SendFailed(f"internal error: {exc}", 0, job.total)
                self.post(fail, job.accepted, failure)
                self.post(fail, job.done, failure)
            finally:
                self._current = None
            if time.monotonic() - self._last_trim > TRIM_EVERY_S:
                self._trim()

    def _run_job(self, job: Job):
        if job.kind == "send":
            self._do_send(job)
        elif job.kind == "hook":
            try:
                self.set_hook(job.off_hook)
            except SendFailed as exc:
                log.warning("line %s: hook(%s): %s", self.url, job.off_hook, exc)
            self.post(resolve, job.done, None)
        elif job.kind == "dial":
            self._do_dial(job)
        elif job.kind == "check_hook":
            self._check_hook(job)
        elif job.kind == "reconcile":
            reconcile.reconcile_line(self)

    def _trim(self):
        self._last_trim = time.monotonic()
        if self.client is not None and not self._inflight:
            recording.trim(self.client)

    def _check_hook(self, job: Job):
        """The board reported on-hook: if we last told it off-hook, it hung up by itself."""
        if not self._commanded_off_hook:
            return
        try:
            status = self.ensure_open().status()
        except Exception as exc:
            log.warning("line %s: status after a hook event failed: %s", self.url, exc)
            return
        if str(status.get("hook", "")).lower() == "on":
            self._commanded_off_hook = False
            self.post(self.board.board_on_hook, self, job.call, job.text)

    def set_hook(self, off_hook: bool):
        self._commanded_off_hook = off_hook
        try:
            self.ensure_open().hook(off_hook)
        except SendFailed:
            raise
        except Exception as exc:
            log.warning("line %s: hook(%s) failed: %s", self.url, off_hook, exc)
        finally:
            self.post(self.board.hook_changed, self)

    # ------------------------------------------------------------ sends
    def _do_send(self, job: Job):
        sends.send(self, job)

    def follow(self, job: Job, ticket, abandoned=False, start_us=None):
        with self.slots:
            self._inflight += 1
        self.following.add(job.request_id)
        sim = recording.sim_of(self.client)
        if start_us is None:
            start_us = recording.now_us(sim[0])
        self._tickets.put((job, ticket, start_us, abandoned))

    def _follow(self):
        """Follower thread: waits for accepted sequences in the order the board plays them."""
        while True:
            item = self._tickets.get()
            if item is None:
                break
            job, ticket, start_us, abandoned = item
            try:
                reconcile.finish_sequence(self, job, ticket, start_us, abandoned)
            except Exception:
                log.exception("line %s: following %s failed", self.url, job.request_id)
            finally:
                self.following.discard(job.request_id)
                with self.slots:
                    self._inflight -= 1
                    self.slots.notify_all()

    def record(self, sim, start_us, end_us, call, number):
        """Write sequence `number` of `call` as <record_dir>/<callId>-<number>.wav."""
        if self.board.record_dir and sim[0] is not None:
            if self._last_end_us is not None and start_us is not None:
                start_us = max(start_us, self._last_end_us)
            path = os.path.join(self.board.record_dir, f"{call.id}-{number}.wav")
            if recording.write_recording(sim, start_us, end_us, path):
                self.post(self.board.recorded, self, call, number)
        self._last_end_us = end_us

    # ------------------------------------------------------------ dial
    def _do_dial(self, job: Job):
        sends.dial(self, job)

    # ------------------------------------------------------------ loop side
    def submit(self, job: Job):
        self._queue.put(job)

    def busy_with(self, call) -> bool:
        job = self._current
        return (job is not None and job.call is call) or self._inflight > 0

    def cancel_current(self):
        """Abort what the board is playing or has queued (used on hangup); runs in a thread."""
        client = self.client
        if client is not None and client.link_up:
            try:
                client.cancel()
            except Exception as exc:
                log.warning("line %s: cancel failed: %s", self.url, exc)
        self.wake.set()
