"""Rounds and updates in PostgreSQL (`--database postgresql://...`): the store several aggregator
replicas share.

The service creates and migrates the schema itself (`initialize`: a `schema_version` row, each
step of `MIGRATIONS` applied once, under an advisory lock so replicas starting together do not
race). Exactly one replica closes a round: `claim_round` takes `SELECT ... FOR UPDATE NOWAIT` on
the round row and keeps its transaction open while the version is written; the close is committed
in that transaction, so a replica killed meanwhile releases the lock with its connection and the
round stays open for another. `add_update` takes `FOR SHARE NOWAIT` on the same row, so an update
either commits before the claim (and is read under it) or is refused with RoundClosed.

Connections come from psycopg_pool, which checks a connection before lending it and reconnects
after the database restarts; a database that is down, restarting or read-only raises
StoreUnavailable (the HTTP layer answers 503 with Retry-After), never a driver exception.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import psycopg
from psycopg.errors import LockNotAvailable, ReadOnlySqlTransaction, UniqueViolation
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from .base import DuplicateUpdate, Refusal, RoundClaim, RoundClosed, RoundRecord, StoredUpdate, StoreUnavailable

logger = logging.getLogger(__name__)
CONNECT_TIMEOUT_SECONDS = 3.0  # a request waits this long for a connection before it is a 503
SCHEMA_LOCK = 0x6564_6765  # pg_advisory_xact_lock key held while the schema is migrated ("edge")

SQL_CREATE_SCHEMA_VERSION = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
SQL_CREATE_ROUNDS = """
CREATE TABLE rounds (
    id BIGSERIAL PRIMARY KEY,
    model TEXT NOT NULL,
    base_version TEXT NOT NULL,
    opened_at DOUBLE PRECISION NOT NULL,
    closed_at DOUBLE PRECISION,
    new_version TEXT,
    summary JSONB NOT NULL DEFAULT '{}'
)"""
SQL_CREATE_OPEN_ROUND_INDEX = "CREATE UNIQUE INDEX one_open_round ON rounds (model) WHERE closed_at IS NULL"
SQL_CREATE_UPDATES = """
CREATE TABLE updates (
    id BIGSERIAL PRIMARY KEY,
    round_id BIGINT NOT NULL REFERENCES rounds (id),
    client TEXT NOT NULL,
    samples INTEGER NOT NULL,
    norm DOUBLE PRECISION NOT NULL,
    clipped BOOLEAN NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    UNIQUE (round_id, client)
)"""
SQL_CREATE_TENSORS = """
CREATE TABLE update_tensors (
    update_id BIGINT NOT NULL REFERENCES updates (id),
    name TEXT NOT NULL,
    shape INTEGER[] NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (update_id, name)
)"""
SQL_CREATE_REFUSALS = """
CREATE TABLE refusals (
    id BIGSERIAL PRIMARY KEY,
    model TEXT NOT NULL,
    round_id BIGINT,
    client TEXT,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
)"""
# Step i brings the schema from version i to i + 1; a new column is a new step, never an edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (SQL_CREATE_ROUNDS, SQL_CREATE_OPEN_ROUND_INDEX, SQL_CREATE_UPDATES, SQL_CREATE_TENSORS, SQL_CREATE_REFUSALS),
    (  # buffered rounds: each update's own base, its staleness and its weight (as sqlite.py's MIGRATIONS)
        "ALTER TABLE updates ADD COLUMN base_version TEXT",
        "UPDATE updates u SET base_version = r.base_version FROM rounds r WHERE r.id = u.round_id",
        "ALTER TABLE updates ADD COLUMN staleness INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE updates ADD COLUMN weight DOUBLE PRECISION NOT NULL DEFAULT 1.0",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_ROUND_COLUMNS = """r.id, r.model, r.base_version, r.opened_at, r.closed_at, r.new_version, r.summary,
    (SELECT COUNT(*) FROM updates u WHERE u.round_id = r.id),
    (SELECT COALESCE(SUM(samples), 0) FROM updates u WHERE u.round_id = r.id)"""


def _round(row: tuple) -> RoundRecord:
    return RoundRecord(
        id=row[0],
        model=row[1],
        base_version=row[2],
        opened_at=row[3],
        closed_at=row[4],
        new_version=row[5],
        summary=row[6],
        clients=int(row[7]),
        samples=int(row[8]),
    )


def _close(conn: psycopg.Connection, round_id: int, model: str, new_version: str, summary: dict[str, Any], now: float) -> RoundRecord:
    conn.execute(
        "UPDATE rounds SET closed_at = %s, new_version = %s, summary = %s WHERE id = %s",
        (now, new_version, Jsonb(summary), round_id),
    )
    (following,) = conn.execute(
        "INSERT INTO rounds (model, base_version, opened_at) VALUES (%s, %s, %s) RETURNING id", (model, new_version, now)
    ).fetchone()
    return RoundRecord(id=following, model=model, base_version=new_version, opened_at=now)


class _Claim:
    def __init__(self, conn: psycopg.Connection, round_id: int, model: str) -> None:
        self.conn, self.round_id, self.model = conn, round_id, model

    def close(self, new_version: str, summary: dict[str, Any], now: float) -> RoundRecord:
        return _close(self.conn, self.round_id, self.model, new_version, summary, now)

    def held(self) -> bool:
        """The row lock lives as long as the claim's transaction: is its connection still in it?"""
        try:
            self.conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True


class PostgresStore:
    """`url` is a libpq connection string, e.g. postgresql://user:password@host:5432/database."""

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=False,
            check=ConnectionPool.check_connection,
            kwargs={"connect_timeout": int(CONNECT_TIMEOUT_SECONDS)},
            name="edgecloud-aggregator",
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS * 3)
        except PoolTimeout:
            self._pool.close()
            raise StoreUnavailable(f"PostgreSQL at {self.where}: no connection within {CONNECT_TIMEOUT_SECONDS * 3:g} s") from None
        self.initialize()

    @property
    def where(self) -> str:
        """The URL without its password, for messages."""
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        """A pooled connection in one transaction: committed when the block ends, rolled back on error."""
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                yield conn
        except (PoolTimeout, ReadOnlySqlTransaction) as error:
            raise StoreUnavailable(f"PostgreSQL at {self.where}: {str(error).splitlines()[0]}") from None
        except psycopg.OperationalError as error:  # connection lost, shutting down, cannot connect now
            raise StoreUnavailable(f"PostgreSQL at {self.where}: {(str(error).splitlines() or [type(error).__name__])[0]}") from None

    def initialize(self) -> None:
        """Create the schema or bring it to SCHEMA_VERSION, once, whichever replica starts first."""
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(SQL_CREATE_SCHEMA_VERSION)
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise ValueError(f"PostgreSQL at {self.where} has schema version {current}; this aggregator knows up to {SCHEMA_VERSION}")
            for step in MIGRATIONS[current:]:
                for statement in step:
                    conn.execute(statement)
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
            elif current != SCHEMA_VERSION:
                conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
                logger.info("PostgreSQL at %s: schema migrated from version %d to %d", self.where, current, SCHEMA_VERSION)

    def schema_version(self) -> int:
        with self._transaction() as conn:
            return conn.execute("SELECT version FROM schema_version").fetchone()[0]

    def open_round(self, model: str, base_version: str, now: float) -> RoundRecord:
        try:
            with self._transaction() as conn:
                (round_id,) = conn.execute(
                    "INSERT INTO rounds (model, base_version, opened_at) VALUES (%s, %s, %s) RETURNING id", (model, base_version, now)
                ).fetchone()
        except UniqueViolation:
            raise ValueError(f"model {model!r} already has an open round") from None
        return RoundRecord(id=round_id, model=model, base_version=base_version, opened_at=now)

    def current_round(self, model: str) -> RoundRecord | None:
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_ROUND_COLUMNS} FROM rounds r WHERE r.model = %s AND r.closed_at IS NULL", (model,)).fetchone()
        return _round(row) if row else None

    def add_update(self, round_id: int, update: StoredUpdate) -> None:
        try:
            with self._transaction() as conn:
                try:
                    held = conn.execute("SELECT 1 FROM rounds WHERE id = %s AND closed_at IS NULL FOR SHARE NOWAIT", (round_id,)).fetchone()
                except LockNotAvailable:
                    held = None  # a replica is closing it
                if held is None:
                    raise RoundClosed(round_id)
                (update_id,) = conn.execute(
                    "INSERT INTO updates (round_id, client, samples, norm, clipped, received_at, base_version, staleness, weight) "
                    "VALUES (%s, %s, %s, %s, %s, %s, COALESCE(%s, (SELECT base_version FROM rounds WHERE id = %s)), %s, %s) "
                    "RETURNING id",
                    (
                        round_id,
                        update.client,
                        update.samples,
                        update.norm,
                        update.clipped,
                        update.received_at,
                        update.base_version,
                        round_id,
                        update.staleness,
                        update.weight,
                    ),
                ).fetchone()
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO update_tensors (update_id, name, shape, data) VALUES (%s, %s, %s, %s)",
                        [(update_id, name, list(value.shape), np.asarray(value, "<f4").tobytes()) for name, value in update.delta.items()],
                    )
        except UniqueViolation:
            raise DuplicateUpdate(update.client) from None

    def updates(self, round_id: int) -> list[StoredUpdate]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id, client, samples, norm, clipped, received_at, base_version, staleness, weight "
                "FROM updates WHERE round_id = %s ORDER BY id",
                (round_id,),
            ).fetchall()
            tensors: dict[int, dict[str, np.ndarray]] = {row[0]: {} for row in rows}
            for update_id, name, shape, data in conn.execute(
                "SELECT t.update_id, t.name, t.shape, t.data FROM update_tensors t JOIN updates u ON u.id = t.update_id "
                "WHERE u.round_id = %s",
                (round_id,),
            ):
                tensors[update_id][name] = np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)
        return StoredUpdate.from_rows(rows, tensors)

    def close_round(self, round_id: int, new_version: str, summary: dict[str, Any], now: float) -> RoundRecord:
        """As the Protocol says; a round another replica closed meanwhile is left as it is and the
        model's open round returned (two replicas starting after a publication both record it)."""
        with self._transaction() as conn:
            model, closed_at = conn.execute("SELECT model, closed_at FROM rounds WHERE id = %s FOR UPDATE", (round_id,)).fetchone()
            if closed_at is None:
                return _close(conn, round_id, model, new_version, summary, now)
            row = conn.execute(f"SELECT {_ROUND_COLUMNS} FROM rounds r WHERE r.model = %s AND r.closed_at IS NULL", (model,)).fetchone()
            return _round(row)

    @contextmanager
    def claim_round(self, round_id: int) -> Iterator[RoundClaim | None]:
        with self._transaction() as conn:
            try:
                row = conn.execute("SELECT model FROM rounds WHERE id = %s AND closed_at IS NULL FOR UPDATE NOWAIT", (round_id,)).fetchone()
            except LockNotAvailable:
                row = None  # another replica holds it
            yield _Claim(conn, round_id, row[0]) if row else None

    def record_refusal(self, refusal: Refusal) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO refusals (model, round_id, client, status, reason, at) VALUES (%s, %s, %s, %s, %s, %s)",
                (refusal.model, refusal.round_id, refusal.client, refusal.status, refusal.reason, refusal.at),
            )

    def rounds(self, model: str) -> list[RoundRecord]:
        with self._transaction() as conn:
            rows = conn.execute(f"SELECT {_ROUND_COLUMNS} FROM rounds r WHERE r.model = %s ORDER BY r.id", (model,)).fetchall()
        return [_round(row) for row in rows]

    def refusals(self, model: str) -> list[Refusal]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT model, round_id, client, status, reason, at FROM refusals WHERE model = %s ORDER BY id", (model,)
            ).fetchall()
        return [Refusal(*row) for row in rows]

    def close(self) -> None:
        self._pool.close()
