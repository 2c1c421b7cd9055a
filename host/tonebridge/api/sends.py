"""Sends and dials on a line (run by the line's worker thread; see api/line.py): submitting
a sequence to the board within the job's deadline, waiting while the board's queue is full,
recording it in the store before its SEND goes out, and what happens when the answer timed
out first."""

from __future__ import annotations

import logging
import time

from tonebridge_fw.dialstring import DialStringError

from tonebridge.api import recording
from tonebridge.api.calls import CallReleased, Job, SendFailed, fail, resolve
from tonebridge.link.errors import SendError

log = logging.getLogger("tonebridge.api")


def send(line, job: Job):
    call = job.call
    if call is None or not call.live or call.state == "Held" or line.call is not call:
        line.post(fail, job.accepted, CallReleased())
        line.post(fail, job.done, CallReleased())
        return
    if not job.start():  # expired in the queue: answered already (503), never sent
        expired = SendFailed(
            "its answer timed out before its turn; nothing was sent", 0, job.total, sent=False
        )
        line.post(fail, job.accepted, expired)
        line.post(fail, job.done, expired)
        return
    try:
        client = line.ensure_open()
        # the recording starts before the SEND goes out: the first tone starts on acceptance,
        # before the host hears of it (a queued one starts later; record() never overlaps)
        start_us = recording.now_us(recording.sim_of(client)[0])
        ticket = submit(line, client, job)
    except SendFailed as exc:
        exc.total = exc.total or job.total
        abandoned = job.finish_submit("failed")
        if exc.sent:  # it may have reached the board: ask it now (or when the link is back)
            line.store.seq_update(job.request_id, state="uncertain", message=exc.message)
            line.submit(Job(kind="reconcile", call=None))
        else:
            line.store.seq_final(job.request_id, "failed", 0, exc.message)
        line.post(line.board.send_failed, job, exc, abandoned)
        return
    abandoned = job.finish_submit("accepted")
    line.store.seq_update(job.request_id, state="accepted", boot=client.boot_id, hwid=client.hwid)
    if abandoned:
        log.warning(
            "line %s: %s accepted after its answer timed out; cancelling it",
            line.url,
            job.request_id,
        )
        line.post(fail, job.accepted, SendFailed("answered already (timed out)", 0, job.total))
        try:
            client.cancel(job.request_id)
        except Exception as exc:
            log.warning("line %s: cancel %s failed: %s", line.url, job.request_id, exc)
    else:
        line.post(resolve, job.accepted, None)
    line.follow(job, ticket, abandoned, start_us)


def submit(line, client, job: Job):
    """Submit the sequence (waiting while the board's queue is full) by the job's
    deadline. Returns a Ticket; raises SendFailed."""
    timeout = line.board.accept_timeout
    down = client.down_for()
    if down is not None and down > timeout:
        raise SendFailed(
            f"{line.fault or 'the board is not connected'}; nothing was sent",
            0,
            job.total,
            sent=False,
        )
    line.store.seq_new(
        job.request_id, job.call.id, line.device_id, job.text, job.dialect, job.tone_ms,
        job.gap_ms, job.total, job.number, boot=client.boot_id, hwid=client.hwid,
        pause_ms=job.pause_ms,
    )  # fmt: skip
    while True:
        left = (job.deadline or (time.monotonic() + timeout)) - time.monotonic()
        try:
            return client.submit(
                job.text,
                job.dialect,
                job.tone_ms,
                job.gap_ms,
                job.request_id,
                on_progress=progress_recorder(line, job.request_id),
                deadline=client.now() + max(0.0, left),
                pause_ms=job.pause_ms,
                flash_ms=job.flash_ms,
                dialtone_ms=job.dialtone_ms,
            )
        except SendError as exc:
            if exc.code == "busy" and left > 0.05:
                with line.slots:  # wait for a sequence to end, then ask again
                    line.slots.wait(min(left, 0.5))
                continue
            message = exc.message
            if exc.code == "busy":
                message = f"the line is busy ({message}); nothing was sent"
            if exc.uncertain:
                message += "; if it reached the board it is cancelled when the link is back"
            raise SendFailed(
                message,
                exc.played,
                exc.total,
                at_most=exc.at_most,
                sent=exc.sent,
                refused=exc.code == "dial",
            ) from exc
        except DialStringError as exc:  # what the board said it cannot play (HELLO)
            raise SendFailed(
                f"the board cannot play it: {exc}; nothing was sent",
                0,
                job.total,
                sent=False,
                refused=True,
            ) from exc
        except Exception as exc:
            raise SendFailed(f"board link error: {exc}", 0, job.total) from exc


def progress_recorder(line, rid):
    """Each digit's start and end as the board reports them (link thread): a finished digit
    is recorded in the store, and both are handed to the switchboard (live progress)."""

    def on_progress(event):
        if event.get("event") == "finished":
            line.store.seq_digit(rid, int(event["index"]), str(event["key"]))
        line.post(line.board.digit_progress, line, rid, dict(event))

    return on_progress


def dial(line, job: Job):
    call = job.call
    try:
        line.set_hook(True)
        line.wake.clear()
        hears = bool(line.cfg.dial_tone_ms) and line.ensure_open().hears
        if hears:
            job.dialtone_ms = line.cfg.dial_tone_ms  # the board listens for dial tone itself
        elif line.cfg.dial_wait_ms:
            line.wake.wait(line.cfg.dial_wait_ms / 1000.0)
        if not call.live or line.call is not call:
            raise CallReleased()
        client = line.ensure_open()
        sim = recording.sim_of(client)
        t0 = recording.now_us(sim[0])
        job.deadline = time.monotonic() + line.board.accept_timeout
        ticket = submit(line, client, job)
        line.store.seq_update(
            job.request_id, state="accepted", boot=client.boot_id, hwid=client.hwid
        )
        from tonebridge.link.errors import SendError

        try:
            result = ticket.wait()
        except SendError as exc:
            line.store.seq_final(
                job.request_id, "aborted", exc.played, exc.message, verified=exc.verified
            )
            raise SendFailed(exc.message, exc.played, exc.total, True) from exc
        finally:
            line.record(sim, t0, recording.now_us(sim[0]), call, job.number)
        line.store.seq_final(job.request_id, "done", result.played, verified=result.verified)
        line.post(line.board.dial_done, job, None)
    except (SendFailed, CallReleased) as exc:
        if isinstance(exc, SendFailed) and job.request_id:
            line.store.seq_final(
                job.request_id,
                "failed" if not exc.accepted else "aborted",
                exc.played,
                exc.message,
            )
        line.post(line.board.dial_done, job, exc)
