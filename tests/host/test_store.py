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


def test_a_sequence_keeps_the_timing_its_send_carried(tmp_path):
    path = str(tmp_path / "state.db")
    s = Store(path)
    s.seq_new("r1", "c-1", "dev-1", "1,5(2000)", "tonebridge", 250, 400, 2, 1, pause_ms=800)
    s.seq_new("r2", "c-1", "dev-1", "12", "catapult", None, None, 2, 2)  # the board's own
    s.close()
    s = Store(path)
    r1, r2 = s.seq_get("r1"), s.seq_get("r2")
    assert (r1["dialect"], r1["tone_ms"], r1["gap_ms"], r1["pause_ms"]) == (
        "tonebridge",
        250,
        400,
        800,
    )
    assert (r2["tone_ms"], r2["gap_ms"], r2["pause_ms"]) == (None, None, None)
    s.close()


# The state file as the previous release (schema 1) wrote it: its _SCHEMA, verbatim (frozen
# here: this is the layout files in the field have; never edit it to match store.py).
SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS lines (
    device TEXT PRIMARY KEY, hwid TEXT NOT NULL, bound_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, owner TEXT NOT NULL, direction TEXT NOT NULL,
    local TEXT NOT NULL, remote TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL,
    active_time REAL, end_time REAL, conn_id TEXT NOT NULL, sends INTEGER NOT NULL,
    digits_sent INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    user TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, key TEXT NOT NULL,
    fingerprint TEXT NOT NULL, created REAL NOT NULL, rid TEXT,
    status INTEGER, body BLOB, headers TEXT,
    PRIMARY KEY (user, method, path, key));
CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency (user, created);
CREATE TABLE IF NOT EXISTS sequences (
    rid TEXT PRIMARY KEY, call_id TEXT NOT NULL, device TEXT NOT NULL, text TEXT NOT NULL,
    dialect TEXT NOT NULL, tone_ms INTEGER, gap_ms INTEGER, total INTEGER NOT NULL,
    number INTEGER NOT NULL, state TEXT NOT NULL, played INTEGER NOT NULL DEFAULT 0,
    at_most INTEGER, boot TEXT, hwid TEXT, message TEXT, counted INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sequences_open ON sequences (device, state);
CREATE TABLE IF NOT EXISTS digits (
    rid TEXT NOT NULL, idx INTEGER NOT NULL, key TEXT NOT NULL, finished REAL NOT NULL,
    PRIMARY KEY (rid, idx));
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL, rid TEXT, digits TEXT NOT NULL,
    played INTEGER NOT NULL, total INTEGER NOT NULL, at_most INTEGER, message TEXT NOT NULL,
    time REAL NOT NULL, reported INTEGER NOT NULL DEFAULT 0);
"""


def _schema_1_file(path, with_pause_column=False, version=1):
    """A schema-1 state file with a row in every table, in WAL mode as serve leaves it
    (version=2: schema 2's, which is schema 1 with sequences.pause_ms)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA_1)
    if with_pause_column:  # a migration cut off after its ALTER, before user_version moved
        db.execute("ALTER TABLE sequences ADD COLUMN pause_ms INTEGER")
    if version >= 3:  # schema 3: the verified counts
        db.execute("ALTER TABLE sequences ADD COLUMN verified INTEGER")
        db.execute("ALTER TABLE failures ADD COLUMN verified INTEGER")
    db.executescript(
        """
INSERT INTO lines VALUES ('dev-1', 'e6614103e73f4a2b', 1.0);
INSERT INTO calls VALUES ('c', 'dev-1', 'ops', 'out', '15000', '15001', 'active', 1.0, 2.0,
    NULL, 'conn-1', 2, 4);
INSERT INTO idempotency (user, method, path, key, fingerprint, created, rid, status, body,
    headers) VALUES ('ops', 'POST', '/v1/users/ops/calls/c/dtmf', 'k-1', 'fp', 1.0, 'old', 200,
    X'', '{}');
INSERT INTO sequences (rid, call_id, device, text, dialect, tone_ms, gap_ms, total, number,
    state, played, created, updated) VALUES ('old', 'c', 'dev-1', '123', 'catapult', 80, 90, 3,
    1, 'accepted', 1, 1.0, 1.0);
INSERT INTO digits VALUES ('old', 0, '1', 1.5);
INSERT INTO failures (call_id, rid, digits, played, total, message, time) VALUES ('c', 'f',
    '9', 0, 1, 'board unplugged', 1.0);
"""
    )
    db.execute(f"PRAGMA user_version={version}")
    db.close()


@pytest.mark.parametrize(
    "cut_off, version",
    [(False, 1), (True, 1), (True, 2), (True, 3)],
    ids=["schema-1", "half-migrated", "schema-2", "schema-3"],
)
def test_a_schema_1_state_file_is_migrated_in_place_and_keeps_everything(
    tmp_path, cut_off, version
):
    """A state file of a previous release (schema 1: no sequences.pause_ms; schema 2: no
    verified counts; schema 3: no calls.progress) is migrated in place when serve opens it:
    everything it held is still there (an open sequence still gets reconciled), its old
    sequences have the board's own pause (NULL) and no verified count (NULL: not known), its
    calls no line progress (NULL: not heard), new ones keep theirs, and it says schema 4 from
    then on. A migration cut off half-way finishes on the next open."""
    path = str(tmp_path / "state.db")
    _schema_1_file(path, with_pause_column=cut_off, version=version)
    s = Store(path)
    (seq,) = s.seq_open("dev-1")
    assert (seq["rid"], seq["tone_ms"], seq["gap_ms"], seq["played"]) == ("old", 80, 90, 1)
    assert seq["pause_ms"] is None
    assert s.digits_of("old") == [(0, "1")]
    assert s.line_hwid("dev-1") == "e6614103e73f4a2b"
    assert [(c["id"], c["digits_sent"], c["progress"]) for c in s.load_calls()] == [("c", 4, None)]
    assert s.idem_get(("ops", "POST", "/v1/users/ops/calls/c/dtmf", "k-1"))["status"] == 200
    assert [f["message"] for f in s.failures_of("c")] == ["board unplugged"]
    assert seq["verified"] is None and s.call_verified("c") is None
    assert [f["verified"] for f in s.failures_of("c")] == [None]
    s.seq_new("new", "c", "dev-1", "1,2", "tonebridge", None, None, 2, 2, pause_ms=700)
    assert s.seq_get("new")["pause_ms"] == 700
    s.seq_final("new", "done", 2, verified=2)
    assert s.call_verified("c") == 2
    s.save_call(dict(s.load_calls()[0], progress="busy"))
    assert s.journal_mode == "wal"
    s.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    columns = [row[1] for row in db.execute("PRAGMA table_info(sequences)")]
    assert columns.count("pause_ms") == 1 and columns.count("verified") == 1
    assert [row[1] for row in db.execute("PRAGMA table_info(calls)")].count("progress") == 1
    db.close()
    s = Store(path)  # and it opens again as it is, with what the first open wrote
    assert s.seq_get("new")["pause_ms"] == 700 and s.seq_get("old")["text"] == "123"
    assert [c["progress"] for c in s.load_calls()] == ["busy"]
    assert s.call_verified("c") == 2
    s.close()


def test_verified_counts_per_sequence_and_failure_survive_a_reopen(tmp_path):
    path = str(tmp_path / "state.db")
    s = Store(path)
    s.seq_new("a", "c", "dev-1", "123", "catapult", 80, 80, 3, 1)
    s.seq_new("b", "c", "dev-1", "45", "catapult", 80, 80, 2, 2)
    s.seq_new("z", "other", "dev-1", "9", "catapult", 80, 80, 1, 1)
    assert s.call_verified("c") is None  # nothing verified yet: not available
    s.seq_final("a", "done", 3, verified=3)
    s.seq_final("b", "aborted", 1, "not-heard", verified=0)
    s.seq_final("z", "done", 1)  # a board that does not verify
    fid = s.failure_add("c", "b", "45", 1, 2, "not-heard", verified=0)
    s.close()
    s = Store(path)
    assert s.call_verified("c") == 3 and s.call_verified("other") is None
    assert [(f["id"], f["verified"]) for f in s.failures_of("c")] == [(fid, 0)]
    assert s.seq_final("a", "done", 3, verified=1) is False  # final already: kept as it was
    assert s.seq_get("a")["verified"] == 3
    s.close()
