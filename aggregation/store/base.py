"""What the aggregator keeps: rounds, accepted updates, refusals. A Protocol plus its records.

The service only sees this interface (as Flower's server sees its LinkState); `memory.py` and
`sqlite.py` implement it, `open_store` in `__init__` picks one from a database string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class DuplicateUpdate(Exception):
    """The client already has an update in this round (the first one stays)."""


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


@dataclass(frozen=True)
class Refusal:
    model: str
    round_id: int | None
    client: str | None
    status: int
    reason: str
    at: float


class RoundStore(Protocol):
    """Durable state of every model's rounds. `add_update` returns only once the update is stored."""

    def open_round(self, model: str, base_version: str, now: float) -> RoundRecord:
        """Open the model's first round (a model has at most one open round)."""

    def current_round(self, model: str) -> RoundRecord | None:
        """The model's open round, or None before its first."""

    def add_update(self, round_id: int, update: StoredUpdate) -> None:
        """Store an accepted update; DuplicateUpdate if the client has one in this round."""

    def updates(self, round_id: int) -> list[StoredUpdate]: ...

    def close_round(self, round_id: int, new_version: str, summary: dict[str, Any], now: float) -> RoundRecord:
        """Close the round with the version it produced and open the next on that version, atomically."""

    def record_refusal(self, refusal: Refusal) -> None: ...

    def rounds(self, model: str) -> list[RoundRecord]:
        """Every round of the model, oldest first, with its clients and samples."""

    def refusals(self, model: str) -> list[Refusal]: ...

    def close(self) -> None: ...
