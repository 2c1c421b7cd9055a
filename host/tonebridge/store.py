"""Durable state of `tonebridge serve`: SQLite (stdlib sqlite3) in WAL mode.

What survives a restart or a crash (kill -9) of serve, and why:

* ``lines``: the hardware id each line is bound to (recorded when it binds);
* ``calls``: every call with its state and counters (digits played);
* ``idempotency``: per user, method, path and key, the request's fingerprint and, once
  known, its answer (status, body, headers), so a retry after a restart gets the recorded
  answer and never plays twice; rows expire by age (``prune``), never by count;
* ``sequences``: every sequence handed to a board, written *before* its SEND goes out
  (state ``sending``), then ``accepted`` with the board's boot and hardware id, and per
  digit as it finishes (``digits``), so a crash loses at most what was in flight; on start
  serve reconciles every sequence not yet final with its board (RESULT) and records what
  really happened (``done``, ``aborted``, ``failed``: never played, ``unknown``);
* ``failures``: sequence failures not yet reported to the client, in order;
* per sequence and per failure the digits the board heard on its own line (``verified``;
  NULL for a board that does not verify its sends), so a call's verified count (the sum over
  its sequences) is what it was after a restart.

Writes are small transactions under one lock; ``synchronous=NORMAL`` with WAL keeps every
committed transaction across a process crash (only a power loss may drop the last ones).
A second serve on the same file is refused (an exclusive lock on ``FILE.lock``).
``Store(None)`` (or ":memory:") keeps everything in memory: nothing survives a restart.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA_VERSION = 4  # 2: sequences.pause_ms; 3: sequences.verified, failures.verified;
# 4: calls.progress
FINAL = ("done", "aborted", "failed", "unknown", "expired")
OPEN = ("sending", "accepted", "uncertain")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    device TEXT PRIMARY KEY, hwid TEXT NOT NULL, bound_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, owner TEXT NOT NULL, direction TEXT NOT NULL,
    local TEXT NOT NULL, remote TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL,
    active_time REAL, end_time REAL, conn_id TEXT NOT NULL, sends INTEGER NOT NULL,
    digits_sent INTEGER NOT NULL, progress TEXT);
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
    created REAL NOT NULL, updated REAL NOT NULL, pause_ms INTEGER, verified INTEGER);
CREATE INDEX IF NOT EXISTS sequences_open ON sequences (device, state);
CREATE TABLE IF NOT EXISTS digits (
    rid TEXT NOT NULL, idx INTEGER NOT NULL, key TEXT NOT NULL, finished REAL NOT NULL,
    PRIMARY KEY (rid, idx));
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL, rid TEXT, digits TEXT NOT NULL,
    played INTEGER NOT NULL, total INTEGER NOT NULL, at_most INTEGER, message TEXT NOT NULL,
    time REAL NOT NULL, reported INTEGER NOT NULL DEFAULT 0, verified INTEGER);
"""


def _migrate(db, version: int) -> None:
    """Bring a state file written by an older tonebridge up to SCHEMA_VERSION in place
    (version 0: a new file, created by _SCHEMA as it is now). Schema 1 -> 2 adds
    sequences.pause_ms; the old rows get NULL: the board's own pause, which is what their
    SENDs carried. Schema 2 -> 3 adds sequences.verified and failures.verified (NULL for the
    old rows: not known). Schema 3 -> 4 adds calls.progress (the call progress the board heard
    last, NULL for the old rows: not heard). Tested on the previous releases' layouts (tests/host/test_store.py)."""
    if 0 < version < 2:  # 1 -> 2: the tonebridge dialect's pause length of a sequence
        _add_column(db, "sequences", "pause_ms INTEGER")
    if 0 < version < 3:  # 2 -> 3: the digits heard on the line, per sequence and failure
        _add_column(db, "sequences", "verified INTEGER")
        _add_column(db, "failures", "verified INTEGER")
    if 0 < version < 4:  # 3 -> 4: what the line did after dialling (lineProgress)
        _add_column(db, "calls", "progress TEXT")


def _add_column(db, table: str, column: str) -> None:
    columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    if column.split()[0] not in columns:  # (a migration cut off before user_version moved)
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


class StoreError(RuntimeError):
    """The state file cannot be used (in use by another serve, unreadable, newer schema)."""


def default_path() -> str:
    """$XDG_STATE_HOME/tonebridge/state.db (~/.local/state/tonebridge/state.db)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "tonebridge", "state.db")


class Store:
    def __init__(self, path: str | None = None):
        self.path = None if path in (None, ":memory:") else str(path)
        self._lock = threading.Lock()
        self._lockfile = None
        if self.path is not None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lockfile = open(self.path + ".lock", "a+")  # noqa: SIM115 (held for life)
            try:
                fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lockfile.close()
                raise StoreError(
                    f"state file {self.path} is in use by another tonebridge serve"
                ) from None
        try:
            self.db = sqlite3.connect(
                self.path or ":memory:", check_same_thread=False, isolation_level=None
            )
            self.db.row_factory = sqlite3.Row
            if self.path is not None:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=5000")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"state file {self.path} was written by a newer tonebridge "
                    f"(schema {version}, this one knows {SCHEMA_VERSION})"
                )
            self.db.executescript(_SCHEMA)
            # the migration and the new version number commit together (a crash between
            # them would leave a file that says schema 1 with schema 2's columns; _migrate
            # copes with that too)
            self.db.execute("BEGIN IMMEDIATE")
            try:
                _migrate(self.db, version)
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as e:
            self.close()
            raise StoreError(f"state file {self.path}: {e}") from None

    @property
    def journal_mode(self) -> str:
        return self._one("PRAGMA journal_mode")[0]

    def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            with self._lock:
                db.close()
            self.db = None
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

    # ---- helpers ---------------------------------------------------------------------------

    def _exec(self, sql: str, args=()) -> int:
        with self._lock:
            return self.db.execute(sql, args).rowcount

    def _one(self, sql: str, args=()):
        with self._lock:
            return self.db.execute(sql, args).fetchone()

    def _all(self, sql: str, args=()) -> list:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    # ---- lines -----------------------------------------------------------------------------

    def bind_line(self, device: str, hwid: str) -> None:
        self._exec(
            "INSERT INTO lines (device, hwid, bound_at) VALUES (?, ?, ?) "
            "ON CONFLICT(device) DO UPDATE SET hwid = excluded.hwid, bound_at = excluded.bound_at",
            (device, hwid, time.time()),
        )

    def line_hwid(self, device: str) -> str | None:
        row = self._one("SELECT hwid FROM lines WHERE device = ?", (device,))
        return row[0] if row else None

    # ---- calls -----------------------------------------------------------------------------

    _CALL_FIELDS = (
        "id device owner direction local remote state created active_time end_time "
        "conn_id sends digits_sent progress"
    ).split()

    def save_call(self, call: dict) -> None:
        cols = self._CALL_FIELDS
        self._exec(
            f"INSERT OR REPLACE INTO calls ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [call[c] for c in cols],
        )

    def load_calls(self) -> list[dict]:
        return [dict(r) for r in self._all("SELECT * FROM calls ORDER BY created")]

    # ---- idempotency records ---------------------------------------------------------------

    def idem_get(self, slot: tuple) -> dict | None:
        row = self._one(
            "SELECT * FROM idempotency WHERE user = ? AND method = ? AND path = ? AND key = ?", slot
        )
        return dict(row) if row else None

    def idem_begin(self, slot: tuple, fingerprint: str, rid: str | None) -> None:
        self._exec(
            "INSERT OR REPLACE INTO idempotency (user, method, path, key, fingerprint, created, rid) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*slot, fingerprint, time.time(), rid),
        )

    def idem_finish(self, slot: tuple, status: int, body: bytes, headers: dict) -> None:
        self._exec(
            "UPDATE idempotency SET status = ?, body = ?, headers = ? "
            "WHERE user = ? AND method = ? AND path = ? AND key = ?",
            (status, body, json.dumps(headers), *slot),
        )

    def idem_forget(self, slot: tuple) -> None:
        self._exec(
            "DELETE FROM idempotency WHERE user = ? AND method = ? AND path = ? AND key = ?", slot
        )

    def idem_pending_for(self, rid: str) -> list[dict]:
        rows = self._all("SELECT * FROM idempotency WHERE rid = ? AND status IS NULL", (rid,))
        return [dict(r) for r in rows]

    def prune(self, max_age_s: float, now: float | None = None) -> int:
        """Forget idempotency records older than `max_age_s` (every user's by its own age),
        and sequences (with their digits) and reported failures that ended that long ago.
        Returns the number of idempotency records dropped."""
        cutoff = (time.time() if now is None else now) - max_age_s
        final = ", ".join("?" * len(FINAL))
        with self._lock:
            self.db.execute("BEGIN")
            try:
                n = self.db.execute("DELETE FROM idempotency WHERE created < ?", (cutoff,)).rowcount
                self.db.execute(
                    "DELETE FROM digits WHERE rid IN (SELECT rid FROM sequences "
                    f"WHERE updated < ? AND state IN ({final}))",
                    (cutoff, *FINAL),
                )
                self.db.execute(
                    f"DELETE FROM sequences WHERE updated < ? AND state IN ({final})",
                    (cutoff, *FINAL),
                )
                self.db.execute("DELETE FROM failures WHERE time < ? AND reported = 1", (cutoff,))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return n

    # ---- sequences -------------------------------------------------------------------------

    def seq_new(
        self,
        rid,
        call_id,
        device,
        text,
        dialect,
        tone_ms,
        gap_ms,
        total,
        number,
        boot=None,
        hwid=None,
        pause_ms=None,
    ) -> None:
        """A sequence about to be sent (before its SEND is written), with the timing its SEND
        carries (None: the board's own)."""
        now = time.time()
        self._exec(
            "INSERT OR REPLACE INTO sequences (rid, call_id, device, text, dialect, tone_ms, "
            "gap_ms, total, number, state, played, boot, hwid, created, updated, pause_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'sending', 0, ?, ?, ?, ?, ?)",
            (
                rid,
                call_id,
                device,
                text,
                dialect,
                tone_ms,
                gap_ms,
                total,
                number,
                boot,
                hwid,
                now,
                now,
                pause_ms,
            ),
        )

    def seq_update(self, rid: str, **fields) -> None:
        fields["updated"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._exec(f"UPDATE sequences SET {sets} WHERE rid = ?", (*fields.values(), rid))

    def seq_digit(self, rid: str, idx: int, key: str) -> None:
        """Digit `idx` of sequence `rid` finished playing (one transaction)."""
        now = time.time()
        with self._lock:
            self.db.execute("BEGIN")
            try:
                self.db.execute(
                    "INSERT OR IGNORE INTO digits (rid, idx, key, finished) VALUES (?, ?, ?, ?)",
                    (rid, idx, key, now),
                )
                self.db.execute(
                    "UPDATE sequences SET played = MAX(played, ?), updated = ? WHERE rid = ?",
                    (idx + 1, now, rid),
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def seq_final(
        self, rid: str, state: str, played: int, message: str = "", at_most=None, verified=None
    ) -> bool:
        """Record a sequence's outcome (and `verified`: the digits its board heard on the
        line, None when it does not verify or did not say); True if it was not final before
        (count it once)."""
        if state not in FINAL:
            raise ValueError(f"not a final state: {state}")
        n = self._exec(
            "UPDATE sequences SET state = ?, played = MAX(played, ?), at_most = ?, message = ?, "
            "verified = COALESCE(?, verified), "
            f"updated = ? WHERE rid = ? AND state NOT IN ({', '.join('?' * len(FINAL))})",
            (state, played, at_most, message, verified, time.time(), rid, *FINAL),
        )
        return n > 0

    def call_verified(self, call_id: str) -> int | None:
        """Digits the board heard on the line over a call's sequences (None: none of them was
        verified: its board does not verify its sends)."""
        row = self._one("SELECT SUM(verified) FROM sequences WHERE call_id = ?", (call_id,))
        return None if row is None or row[0] is None else int(row[0])

    def seq_count(self, rid: str, played: int) -> int:
        """How many of `played` digits are not yet counted in the call's digits_sent (and
        count them now): every digit is counted once, whichever path learns of it."""
        with self._lock:
            self.db.execute("BEGIN")
            try:
                row = self.db.execute(
                    "SELECT counted FROM sequences WHERE rid = ?", (rid,)
                ).fetchone()
                old = row[0] if row else 0
                if row and played > old:
                    self.db.execute("UPDATE sequences SET counted = ? WHERE rid = ?", (played, rid))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return max(0, played - old) if row else 0

    def seq_get(self, rid: str) -> dict | None:
        row = self._one("SELECT * FROM sequences WHERE rid = ?", (rid,))
        return dict(row) if row else None

    def seq_open(self, device: str) -> list[dict]:
        """Sequences of a line whose outcome is not final yet, oldest first."""
        rows = self._all(
            f"SELECT * FROM sequences WHERE device = ? AND state IN ({', '.join('?' * len(OPEN))}) "
            "ORDER BY created",
            (device, *OPEN),
        )
        return [dict(r) for r in rows]

    def sequences_of(self, call_id: str, limit: int = 200) -> list[dict]:
        """A call's sequences, newest first (the dashboard's history)."""
        rows = self._all(
            "SELECT * FROM sequences WHERE call_id = ? ORDER BY created DESC LIMIT ?",
            (call_id, limit),
        )
        return [dict(r) for r in rows]

    def digits_of(self, rid: str) -> list[tuple[int, str]]:
        return [
            (r[0], r[1])
            for r in self._all("SELECT idx, key FROM digits WHERE rid = ? ORDER BY idx", (rid,))
        ]

    # ---- failures not yet reported ---------------------------------------------------------

    def failure_add(
        self, call_id, rid, digits, played, total, message, at_most=None, verified=None
    ) -> int:
        with self._lock:
            cur = self.db.execute(
                "INSERT INTO failures (call_id, rid, digits, played, total, at_most, message, "
                "time, verified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (call_id, rid, digits, played, total, at_most, message, time.time(), verified),
            )
            return cur.lastrowid

    def failure_reported(self, failure_id: int) -> None:
        self._exec("UPDATE failures SET reported = 1 WHERE id = ?", (failure_id,))

    def failure_update(self, failure_id: int, played: int, message: str, at_most=None) -> None:
        self._exec(
            "UPDATE failures SET played = ?, message = ?, at_most = ? WHERE id = ?",
            (played, message, at_most, failure_id),
        )

    def failures_of(self, call_id: str, unreported_only: bool = True) -> list[dict]:
        sql = "SELECT * FROM failures WHERE call_id = ?"
        if unreported_only:
            sql += " AND reported = 0"
        return [dict(r) for r in self._all(sql + " ORDER BY id", (call_id,))]
