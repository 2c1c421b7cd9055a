"""The durable store (tonebridge.store): WAL, one serve per file, records that survive a
reopen, sequences counted once, idempotency records kept per user by age."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from starlette.requests import Request
from starlette.responses import Response
from tonebridge.api.idempotency import Idempotency
from tonebridge.store import Store, StoreError


def test_wal_mode_and_one_serve_per_file(tmp_path):
    path = str(tmp_path / "state.db")
    s = Store(path)
    assert s.journal_mode == "wal"
    with pytest.raises(StoreError, match="in use by another tonebridge serve"):
        Store(path)
    s.close()
    Store(path).close()  # free again once closed


def test_a_newer_schema_is_refused(tmp_path):
    path = str(tmp_path / "state.db")
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StoreError, match="newer tonebridge"):
        Store(path)


def test_sequences_and_digits_survive_a_reopen(tmp_path):
    path = str(tmp_path / "state.db")
    s = Store(path)
    s.seq_new("r1", "c-1", "dev-1", "123", "catapult", None, None, 3, 1, boot="b1", hwid="aa")
    s.seq_update("r1", state="accepted")
    s.seq_digit("r1", 0, "1")
    s.seq_digit("r1", 1, "2")
    s.seq_digit("r1", 1, "2")  # the same event twice: counted once
    s.close()  # (a crash loses nothing committed: WAL, every digit its own transaction)
    s = Store(path)
    (seq,) = s.seq_open("dev-1")
    assert (seq["rid"], seq["state"], seq["played"], seq["boot"], seq["hwid"]) == (
        "r1",
        "accepted",
        2,
        "b1",
        "aa",
    )
    assert s.digits_of("r1") == [(0, "1"), (1, "2")]
    assert s.seq_count("r1", 2) == 2 and s.seq_count("r1", 3) == 1 and s.seq_count("r1", 3) == 0
    assert s.seq_final("r1", "done", 3) is True
    assert s.seq_final("r1", "aborted", 1) is False  # final once
    assert s.seq_open("dev-1") == [] and s.seq_get("r1")["played"] == 3
    s.close()


def test_failures_are_kept_in_order_until_reported(tmp_path):
    s = Store(str(tmp_path / "state.db"))
    a = s.failure_add("c-1", "r1", "111", 1, 3, "first")
    b = s.failure_add("c-1", "r2", "22", 0, 2, "second")
    assert [f["message"] for f in s.failures_of("c-1")] == ["first", "second"]
    s.failure_reported(a)
    assert [f["id"] for f in s.failures_of("c-1")] == [b]
    assert len(s.failures_of("c-1", unreported_only=False)) == 2
    s.close()


def _request(path, key):
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"idempotency-key", key.encode())],
        "server": ("127.0.0.1", 80),
        "scheme": "http",
    }
    return Request(scope)


def test_one_users_keys_never_push_out_anothers(tmp_path):
    """Keys are kept by age only: thousands of alice's keys leave bob's record alone (the
    old store held the last 4096 keys of everyone together)."""
    store = Store(str(tmp_path / "state.db"))
    idem = Idempotency(store, ttl_s=86400)
    calls = []

    async def handler(rid):
        calls.append(rid)
        return Response(status_code=200)

    async def scenario():
        await idem.run(_request("/v1/users/bob/calls/c/dtmf", "bob-1"), "bob", b"{}", handler)
        for i in range(4200):
            await idem.run(
                _request("/v1/users/alice/calls/c/dtmf", f"a{i}"), "alice", b"{}", handler
            )
        again = await idem.run(
            _request("/v1/users/bob/calls/c/dtmf", "bob-1"), "bob", b"{}", handler
        )
        return again

    again = asyncio.run(scenario())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(calls) == 4201  # bob's retry did not run again
    store.close()


def test_keys_expire_by_age(tmp_path):
    store = Store(str(tmp_path / "state.db"))
    slot = ("bob", "POST", "/p", "k")
    store.idem_begin(slot, "f", "r")
    store.idem_finish(slot, 200, b"", {})
    assert store.prune(86400) == 0 and store.idem_get(slot) is not None
    import time

    store.seq_new("r", "c", "d", "1", "catapult", None, None, 1, 1)
    store.seq_digit("r", 0, "1")
    store.seq_final("r", "done", 1)
    store.seq_new("open", "c", "d", "1", "catapult", None, None, 1, 2)  # still to reconcile
    assert store.prune(86400, now=time.time() + 86401) == 1
    assert store.idem_get(slot) is None
    assert store.seq_get("r") is None and store.digits_of("r") == []
    assert store.seq_get("open") is not None  # an open sequence is never forgotten
    store.close()
