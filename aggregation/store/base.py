"""What the aggregator keeps: rounds, accepted updates, refusals. A Protocol plus its records.

The service only sees this interface (as Flower's server sees its LinkState); `memory.py`,
`sqlite.py` and `postgres.py` implement it, `open_store` in `__init__` picks one from a database
string. Several aggregator processes may share one store (PostgreSQL): `claim_round` is how
exactly one of them closes a round, and `add_update` refuses an update for a round that is being
closed, so an acknowledged update is always in the aggregate of its round.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import numpy as np


class DuplicateUpdate(Exception):
    """The client already has an update in this round (the first one stays)."""


class RoundClosed(Exception):
    """The round is closed, or a process is closing it: the update was not stored."""


class StoreUnavailable(Exception):
    """The database cannot be reached or written now (down, restarting, read-only): nothing was
    stored; the request may be sent again (HTTP 503 with Retry-After)."""


@dataclass(frozen=True)
class RoundRecord:
    id: int
    model: str
    base_version: str
    opened_at: float
    closed_at: float | None = None
    new_version: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # what closing recorded (aggregation, clients, ...)
    clients: int = 0  # accepted updates so far
    samples: int = 0


@dataclass(frozen=True)
class StoredUpdate:
    client: str
    samples: int
    delta: dict[str, np.ndarray]  # float32, as accepted (after clipping)
    norm: float  # L2 norm as received, before clipping
    clipped: bool
    received_at: float
    base_version: str | None = None  # the version the delta was computed on (None: the round's base)
    staleness: int = 0  # versions between that base and the round's (buffered rounds; 0 when fresh)
    weight: float = 1.0  # how much it counts in the aggregate: (1 + staleness) ** -a, see settings.py

    @classmethod
    def from_rows(cls, rows: list[tuple[Any, ...]], tensors: dict[int, dict[str, np.ndarray]]) -> list[StoredUpdate]:
        """The SQL stores' `updates()`: rows of (id, client, samples, norm, clipped, received_at, base_version,
        staleness, weight) with each update's tensors by id."""
        return [
            cls(
                client=c,
                samples=n,
                delta=tensors[i],
                norm=norm,
                clipped=bool(clipped),
                received_at=at,
                base_version=base,
                staleness=staleness,
                weight=weight,
            )
            for i, c, n, norm, clipped, at, base, staleness, weight in rows
        ]


@dataclass(frozen=True)
class Refusal:
    model: str
    round_id: int | None
    client: str | None
    status: int
    reason: str
    at: float


class RoundClaim(Protocol):
    """A round held for closing by this process (see `RoundStore.claim_round`)."""

    def close(self, new_version: str, summary: dict[str, Any], now: float) -> RoundRecord:
        """Close the held round and open the next on `new_version`, in the claim's own transaction."""

    def held(self) -> bool:
        """Whether the claim still holds (a database restart ends it silently): asked before publishing."""


class RoundStore(Protocol):
    """Durable state of every model's rounds. `add_update` returns only once the update is stored."""

    def open_round(self, model: str, base_version: str, now: float) -> RoundRecord:
        """Open the model's first round (a model has at most one open round)."""

    def current_round(self, model: str) -> RoundRecord | None:
        """The model's open round, or None before its first."""

    def add_update(self, round_id: int, update: StoredUpdate) -> None:
        """Store an accepted update; DuplicateUpdate if the client has one in this round, RoundClosed
        if the round is closed or claimed for closing."""

    def updates(self, round_id: int) -> list[StoredUpdate]: ...

    def close_round(self, round_id: int, new_version: str, summary: dict[str, Any], now: float) -> RoundRecord:
        """Close the round with the version it produced and open the next on that version, atomically."""

    def claim_round(self, round_id: int) -> AbstractContextManager[RoundClaim | None]:
        """Hold the open round for closing until the block ends, or None when it is closed or another
        process holds it. A holder that dies (SIGKILL) releases it; while it is held, `add_update` to
        the round raises RoundClosed, so the updates read under the claim are all the round gets."""

    def record_refusal(self, refusal: Refusal) -> None: ...

    def rounds(self, model: str) -> list[RoundRecord]:
        """Every round of the model, oldest first, with its clients and samples."""

    def refusals(self, model: str) -> list[Refusal]: ...

    def close(self) -> None: ...


class _LocalClaim:
    def __init__(self, close_round: Callable[..., RoundRecord], round_id: int) -> None:
        self._close_round, self.round_id = close_round, round_id

    def close(self, new_version: str, summary: dict[str, Any], now: float) -> RoundRecord:
        return self._close_round(self.round_id, new_version, summary, now)

    def held(self) -> bool:
        return True  # one process: nothing else can take it


class LocalClaims:
    """Claims of a store only one process writes (memory, SQLite): held round ids under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[int] = set()

    def held(self, round_id: int) -> bool:
        with self._lock:
            return round_id in self._held

    @contextmanager
    def claim(self, round_id: int, is_open: bool, close_round: Callable[..., RoundRecord]) -> Iterator[RoundClaim | None]:
        with self._lock:
            if not is_open or round_id in self._held:
                claimed = False
            else:
                self._held.add(round_id)
                claimed = True
        if not claimed:
            yield None
            return
        try:
            yield _LocalClaim(close_round, round_id)
        finally:
            with self._lock:
                self._held.discard(round_id)
