"""`open_store(database)`: the round store a database string names.

`memory:` keeps rounds in this process only; `:memory:` is SQLite in memory (tests); anything
else is a SQLite file path (`sqlite:///abs/path` is accepted too). A server database
(PostgreSQL) would be a third `RoundStore`; docs/federated.md says when one machine is not enough.
"""

from __future__ import annotations

from .base import DuplicateUpdate, Refusal, RoundRecord, RoundStore, StoredUpdate
from .memory import MemoryStore
from .sqlite import SqliteStore

MEMORY = "memory:"


def open_store(database: str) -> RoundStore:
    if database == MEMORY:
        return MemoryStore()
    if database.startswith("sqlite:///"):
        database = database[len("sqlite://") :]
    elif "://" in database:
        raise ValueError(
            f"database {database!r}: only SQLite (a file path or sqlite:///PATH) and {MEMORY} are supported"
        )
    return SqliteStore(database)


__all__ = ["DuplicateUpdate", "MemoryStore", "Refusal", "RoundRecord", "RoundStore", "SqliteStore", "StoredUpdate", "open_store"]
