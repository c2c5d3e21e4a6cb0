"""`open_store(database)`: the round store a database string names.

`memory:` keeps rounds in this process only; `:memory:` is SQLite in memory (tests);
`postgresql://...` (or `postgres://...`) is PostgreSQL, the store several aggregator replicas
share; anything else is a SQLite file path (`sqlite:///abs/path` is accepted too), one process.
"""

from __future__ import annotations

from .base import DuplicateUpdate, Refusal, RoundClaim, RoundClosed, RoundRecord, RoundStore, StoredUpdate, StoreUnavailable
from .memory import MemoryStore
from .sqlite import SqliteStore

MEMORY = "memory:"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_shared(database: str) -> bool:
    """True when several aggregator processes may use the database at once (PostgreSQL)."""
    return database.startswith(POSTGRES_SCHEMES)


def open_store(database: str) -> RoundStore:
    if database == MEMORY:
        return MemoryStore()
    if is_shared(database):
        from .postgres import PostgresStore  # psycopg is loaded only when a server database is asked for

        return PostgresStore(database)
    if database.startswith("sqlite:///"):
        database = database[len("sqlite://") :]
    elif "://" in database:
        raise ValueError(f"database {database!r}: use postgresql://..., a SQLite file path (or sqlite:///PATH) or {MEMORY}")
    return SqliteStore(database)


__all__ = [
    "DuplicateUpdate",
    "MemoryStore",
    "Refusal",
    "RoundClaim",
    "RoundClosed",
    "RoundRecord",
    "RoundStore",
    "SqliteStore",
    "StoreUnavailable",
    "StoredUpdate",
    "is_shared",
    "open_store",
]
