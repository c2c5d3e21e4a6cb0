"""Rounds and updates in SQLite (the default: one file under the serve folder).

Every accepted update is committed (WAL, synchronous=FULL) before `add_update` returns, so the
answer a page gets is never ahead of the disk; a round's close and the next round's opening are
one transaction. One connection, serialised by a lock: SQLite allows one writer anyway, and an
aggregator takes a few updates per second at the intended scale (see docs/federated.md).
Tensors are stored as float32 little-endian BLOBs with their shape, one row each.

A file written before a column existed is migrated at open (`MIGRATIONS`: the missing columns are
added, their values filled in), since a deployed aggregator keeps its file across upgrades.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .base import DuplicateUpdate, LocalClaims, Refusal, RoundClaim, RoundClosed, RoundRecord, StoredUpdate, StoreUnavailable

SQL_CREATE_ROUNDS = """
CREATE TABLE IF NOT EXISTS rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    base_version TEXT NOT NULL,
    opened_at REAL NOT NULL,
    closed_at REAL,
    new_version TEXT,
    summary TEXT NOT NULL DEFAULT '{}'
)"""
SQL_CREATE_OPEN_ROUND_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS one_open_round ON rounds (model) WHERE closed_at IS NULL"
SQL_CREATE_UPDATES = """
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    round_id INTEGER NOT NULL REFERENCES rounds (id),
    client TEXT NOT NULL,
    samples INTEGER NOT NULL,
    norm REAL NOT NULL,
    clipped INTEGER NOT NULL,
    received_at REAL NOT NULL,
    base_version TEXT,
    staleness INTEGER NOT NULL DEFAULT 0,
    weight REAL NOT NULL DEFAULT 1.0,
    UNIQUE (round_id, client)
)"""
SQL_CREATE_TENSORS = """
CREATE TABLE IF NOT EXISTS update_tensors (
    update_id INTEGER NOT NULL REFERENCES updates (id),
    name TEXT NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (update_id, name)
)"""
SQL_CREATE_REFUSALS = """
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    round_id INTEGER,
    client TEXT,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
)"""
SCHEMA = (SQL_CREATE_ROUNDS, SQL_CREATE_OPEN_ROUND_INDEX, SQL_CREATE_UPDATES, SQL_CREATE_TENSORS, SQL_CREATE_REFUSALS)
# (table, column, statements adding it to a file made before it existed), applied in order.
MIGRATIONS = (
    (
        "updates",
        "base_version",
        (
            "ALTER TABLE updates ADD COLUMN base_version TEXT",
            "UPDATE updates SET base_version = (SELECT r.base_version FROM rounds r WHERE r.id = updates.round_id)",
        ),
    ),
    ("updates", "staleness", ("ALTER TABLE updates ADD COLUMN staleness INTEGER NOT NULL DEFAULT 0",)),
    ("updates", "weight", ("ALTER TABLE updates ADD COLUMN weight REAL NOT NULL DEFAULT 1.0",)),
)

_ROUND_COLUMNS = """r.id, r.model, r.base_version, r.opened_at, r.closed_at, r.new_version, r.summary,
    (SELECT COUNT(*) FROM updates u WHERE u.round_id = r.id),
    (SELECT COALESCE(SUM(samples), 0) FROM updates u WHERE u.round_id = r.id)"""


@contextmanager
def _writable(database: str) -> Iterator[None]:
    """A file that is read-only, locked past the timeout or on a full disk: StoreUnavailable (503)."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise StoreUnavailable(f"SQLite {database}: {error}") from None


def _round(row: tuple) -> RoundRecord:
    return RoundRecord(
        id=row[0],
        model=row[1],
        base_version=row[2],
        opened_at=row[3],
        closed_at=row[4],
        new_version=row[5],
        summary=json.loads(row[6]),
        clients=row[7],
        samples=row[8],
    )


class SqliteStore:
    """`database` is a file path or ':memory:'."""

    def __init__(self, database: str | Path) -> None:
        self.database = str(database)
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.database, check_same_thread=False, isolation_level=None)
        self._claims = LocalClaims()
        self.initialize()

    def initialize(self) -> None:
        """Create the tables if they are missing; set WAL and full sync (a commit survives SIGKILL)."""
        with self._lock:
            if self.database != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            for statement in SCHEMA:
                self._db.execute(statement)
            self._migrate()

    def _migrate(self) -> None:
        """Add the columns an older file lacks, each with its backfill, in one transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for table, column, statements in MIGRATIONS:
                if column not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}:
                    for statement in statements:
                        self._db.execute(statement)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def open_round(self, model: str, base_version: str, now: float) -> RoundRecord:
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT INTO rounds (model, base_version, opened_at) VALUES (?, ?, ?)", (model, base_version, now)
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"model {model!r} already has an open round") from None
            return RoundRecord(id=cursor.lastrowid, model=model, base_version=base_version, opened_at=now)

    def current_round(self, model: str) -> RoundRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_ROUND_COLUMNS} FROM rounds r WHERE r.model = ? AND r.closed_at IS NULL", (model,)).fetchone()
        return _round(row) if row else None

    def add_update(self, round_id: int, update: StoredUpdate) -> None:
        with self._lock, _writable(self.database):
            if self._claims.held(round_id) or not self._is_open(round_id):
                raise RoundClosed(round_id)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO updates (round_id, client, samples, norm, clipped, received_at, base_version, staleness, weight) "
                    "VALUES (?, ?, ?, ?, ?, ?, COALESCE(?, (SELECT base_version FROM rounds WHERE id = ?)), ?, ?)",
                    (
                        round_id,
                        update.client,
                        update.samples,
                        update.norm,
                        int(update.clipped),
                        update.received_at,
                        update.base_version,
                        round_id,
                        update.staleness,
                        update.weight,
                    ),
                )
                self._db.executemany(
                    "INSERT INTO update_tensors (update_id, name, shape, data) VALUES (?, ?, ?, ?)",
                    [
                        (cursor.lastrowid, name, json.dumps(list(value.shape)), np.asarray(value, "<f4").tobytes())
                        for name, value in update.delta.items()
                    ],
                )
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise DuplicateUpdate(update.client) from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def updates(self, round_id: int) -> list[StoredUpdate]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, client, samples, norm, clipped, received_at, base_version, staleness, weight "
                "FROM updates WHERE round_id = ? ORDER BY id",
                (round_id,),
            ).fetchall()
            tensors: dict[int, dict[str, np.ndarray]] = {row[0]: {} for row in rows}
            for update_id, name, shape, data in self._db.execute(
                "SELECT t.update_id, t.name, t.shape, t.data FROM update_tensors t JOIN updates u ON u.id = t.update_id "
                "WHERE u.round_id = ?",
                (round_id,),
            ):
                tensors[update_id][name] = np.frombuffer(data, dtype="<f4").reshape(json.loads(shape)).astype(np.float32)
        return StoredUpdate.from_rows(rows, tensors)

    def close_round(self, round_id: int, new_version: str, summary: dict[str, Any], now: float) -> RoundRecord:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (model,) = self._db.execute("SELECT model FROM rounds WHERE id = ? AND closed_at IS NULL", (round_id,)).fetchone()
                self._db.execute(
                    "UPDATE rounds SET closed_at = ?, new_version = ?, summary = ? WHERE id = ?",
                    (now, new_version, json.dumps(summary), round_id),
                )
                cursor = self._db.execute("INSERT INTO rounds (model, base_version, opened_at) VALUES (?, ?, ?)", (model, new_version, now))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return RoundRecord(id=cursor.lastrowid, model=model, base_version=new_version, opened_at=now)

    def _is_open(self, round_id: int) -> bool:
        return self._db.execute("SELECT 1 FROM rounds WHERE id = ? AND closed_at IS NULL", (round_id,)).fetchone() is not None

    def claim_round(self, round_id: int) -> AbstractContextManager[RoundClaim | None]:
        with self._lock:
            is_open = self._is_open(round_id)
        return self._claims.claim(round_id, is_open, self.close_round)

    def record_refusal(self, refusal: Refusal) -> None:
        with self._lock, _writable(self.database):
            self._db.execute(
                "INSERT INTO refusals (model, round_id, client, status, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
                (refusal.model, refusal.round_id, refusal.client, refusal.status, refusal.reason, refusal.at),
            )

    def rounds(self, model: str) -> list[RoundRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_ROUND_COLUMNS} FROM rounds r WHERE r.model = ? ORDER BY r.id", (model,))
            return [_round(row) for row in rows.fetchall()]

    def refusals(self, model: str) -> list[Refusal]:
        with self._lock:
            rows = self._db.execute(
                "SELECT model, round_id, client, status, reason, at FROM refusals WHERE model = ? ORDER BY id", (model,)
            ).fetchall()
        return [Refusal(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
