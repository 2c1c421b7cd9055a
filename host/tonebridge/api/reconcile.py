"""What really happened to a sequence: followed to its end, or reconciled with its board.

`finish_sequence` runs in a line's follower thread for every accepted sequence: it waits
for the board's outcome, writes the recording, records the outcome in the store and hands
it to the switchboard (counts, failure queue, notifications).

`reconcile_line` runs in the line's worker whenever its link comes up (at start and after
every reconnect): every sequence of the line the store still has open (``sending``: the
SEND may have gone out when serve stopped; ``accepted``: it was playing; ``uncertain``: its
outcome was reported as unknown) and nobody in this process follows, is asked about
(RESULT), never re-sent:

* queued or playing: followed to its end, like any accepted sequence; one whose request
  was answered with a failure (``uncertain``) is cancelled first, so nothing plays that the
  client was told did not;
* done / aborted: recorded with the board's count;
* unknown on the same boot, for a SEND the board never acknowledged: it never arrived
  (nothing played);
* otherwise unknown (another boot, another board on the line, or a record the board's
  window no longer holds): the outcome cannot be known; the digits seen finishing are
  recorded, the total as the upper bound.
"""

from __future__ import annotations

import logging

from tonebridge.api import recording, sends
from tonebridge.api.calls import Job, SendFailed
from tonebridge.link.errors import BoardError, LinkError, SendError

log = logging.getLogger("tonebridge.api")


def finish_sequence(line, job: Job, ticket, start_us, abandoned: bool) -> None:
    sim = recording.sim_of(line.client)
    rid = job.request_id
    outcome = None
    try:
        result = ticket.wait()
        played, total, state = result.played, result.total, "done"
        job.verified = result.verified
    except SendError as exc:
        played, total = exc.played, exc.total
        state = "uncertain" if exc.uncertain else "aborted"
        msg = exc.message
        if exc.uncertain and exc.at_most > exc.played:
            msg += f" (outcome uncertain: at most {exc.at_most} digits may have played)"
        job.verified = exc.verified
        outcome = SendFailed(msg, played, total, True, at_most=exc.at_most, verified=exc.verified)
    except Exception as exc:  # never leave a sequence without an outcome
        played, total, state = ticket.played, job.total, "uncertain"
        outcome = SendFailed(f"board link error: {exc}", played, total, True, at_most=total)
    end_us = recording.now_us(sim[0])
    store = line.store
    if state == "uncertain":
        store.seq_update(rid, state="uncertain", message=outcome.message, verified=job.verified)
    else:
        store.seq_final(rid, state, played, outcome.message if outcome else "", None, job.verified)
    if abandoned:
        # its request was answered 503 (not accepted in time); the board took it late and
        # was told to cancel it: only digits that still went out need reporting
        outcome = None
        if played:
            outcome = SendFailed(
                f"sequence {job.text} was accepted by the board after its request timed out "
                f"and was cancelled; {played} of {total} digits played",
                played,
                total,
                True,
            )
    line.post_wait(line.board.sequence_ended, job, played, total, outcome, abandoned)
    if job.call is not None:  # after the outcome: whoever sees the file sees the counts
        line.record(sim, start_us, end_us, job.call, job.number)


def reconcile_line(line) -> None:
    client = line.client
    if client is None or not client.link_up:
        return
    for seq in line.store.seq_open(line.device_id):
        rid = seq["rid"]
        if rid in line.following:
            continue  # followed in this process; its ticket handles the reconnect
        try:
            _reconcile_one(line, client, seq)
        except (LinkError, BoardError) as exc:
            log.warning(
                "line %s: reconciling %s: %s (tried again on reconnect)", line.url, rid, exc
            )
            return


def _reconcile_one(line, client, seq: dict) -> None:
    rid = seq["rid"]
    board = line.board
    if seq["hwid"] and client.hwid and seq["hwid"] != client.hwid:
        _settle(
            line,
            seq,
            "unknown",
            seq["played"],
            f"the line's board changed (it was {seq['hwid']}, it is {client.hwid}); "
            f"outcome unknown: {seq['played']} of {seq['total']} digits confirmed played, "
            f"at most {seq['total']}; not resent",
            at_most=seq["total"],
        )
        return
    st, ticket = client.follow(
        rid,
        seq["text"],
        seq["dialect"],
        seq["tone_ms"],
        seq["gap_ms"],
        played=seq["played"],
        pause_ms=seq["pause_ms"],
        on_progress=sends.progress_recorder(line, rid),
    )
    state = st.get("state")
    log.info("line %s: reconciling %s (%s): the board says %s", line.url, rid, seq["state"], state)
    if ticket is not None:
        cancel = seq["state"] == "uncertain"
        if cancel:
            try:
                client.cancel(rid)  # its request was answered as failed: stop it
            except (LinkError, BoardError) as exc:
                log.warning("line %s: cancel %s failed: %s", line.url, rid, exc)
        job = Job(
            kind="send",
            call=board.calls.get(seq["call_id"]),
            text=seq["text"],
            dialect=seq["dialect"],
            tone_ms=seq["tone_ms"],
            gap_ms=seq["gap_ms"],
            pause_ms=seq["pause_ms"],
            request_id=rid,
            number=seq["number"],
            total=seq["total"],
            state="accepted",
        )
        if seq["state"] == "sending":
            line.store.seq_update(rid, state="accepted", boot=client.boot_id, hwid=client.hwid)
            line.post(board.settle_request, rid, "accepted", None)
        line.follow(job, ticket, abandoned=cancel)
        return
    played = max(int(st.get("played", 0) or 0), seq["played"])
    # the digits the board heard on its line (RESULT's verified=, a board that verifies)
    verified = int(st["verified"]) if str(st.get("verified", "")).isdigit() else None
    if state == "done":
        _settle(line, seq, "done", played, "", verified=verified)
    elif state == "aborted":
        _settle(
            line,
            seq,
            "aborted",
            played,
            f"sequence aborted ({st.get('reason', 'aborted')}); {played} of {seq['total']} digits played",
            verified=verified,
        )
    elif (
        state == "unknown"
        and seq["state"] == "sending"
        and seq["boot"]
        and str(st.get("boot", "")) == seq["boot"]
    ):
        # same boot, no record, and it never acknowledged it: the SEND never arrived (the
        # window forgets a sequence only after 32 newer requests; far fewer are in flight)
        _settle(line, seq, "failed", 0, "the board never received it; nothing was played")
    else:
        why = (
            "the board restarted"
            if str(st.get("boot", "")) != seq["boot"]
            else "the board has no record of it"
        )
        _settle(
            line,
            seq,
            "unknown",
            seq["played"],
            f"{why}; outcome unknown: {seq['played']} of {seq['total']} digits "
            f"confirmed played, at most {seq['total']}; not resent",
            at_most=seq["total"],
        )


def _settle(
    line, seq: dict, state: str, played: int, message: str, at_most=None, verified=None
) -> None:
    line.store.seq_final(seq["rid"], state, played, message, at_most, verified)
    line.post(line.board.reconciled, seq, state, played, message, at_most)
