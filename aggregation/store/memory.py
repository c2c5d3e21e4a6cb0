"""Rounds in a dict: for tests and for a throwaway aggregator (`--federated-db memory:`); lost on exit."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from .base import DuplicateUpdate, LocalClaims, Refusal, RoundClaim, RoundClosed, RoundRecord, StoredUpdate


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rounds: list[RoundRecord] = []
        self._updates: dict[int, list[StoredUpdate]] = {}
        self._refusals: list[Refusal] = []
        self._claims = LocalClaims()

    def _with_counts(self, record: RoundRecord) -> RoundRecord:
        updates = self._updates.get(record.id, [])
        return replace(record, clients=len(updates), samples=sum(u.samples for u in updates))

    def open_round(self, model: str, base_version: str, now: float) -> RoundRecord:
        with self._lock:
            if any(r.model == model and r.closed_at is None for r in self._rounds):
                raise ValueError(f"model {model!r} already has an open round")
            record = RoundRecord(id=len(self._rounds) + 1, model=model, base_version=base_version, opened_at=now)
            self._rounds.append(record)
            self._updates[record.id] = []
            return record

    def current_round(self, model: str) -> RoundRecord | None:
        with self._lock:
            open_ = [r for r in self._rounds if r.model == model and r.closed_at is None]
            return self._with_counts(open_[-1]) if open_ else None

    def add_update(self, round_id: int, update: StoredUpdate) -> None:
        with self._lock:
            if self._claims.held(round_id) or any(r.id == round_id and r.closed_at is not None for r in self._rounds):
                raise RoundClosed(round_id)
            if any(u.client == update.client for u in self._updates[round_id]):
                raise DuplicateUpdate(update.client)
            if update.base_version is None:  # as SQLite fills it: the round's base
                update = replace(update, base_version=next(r.base_version for r in self._rounds if r.id == round_id))
            self._updates[round_id].append(update)

    def updates(self, round_id: int) -> list[StoredUpdate]:
        with self._lock:
            return list(self._updates.get(round_id, []))

    def close_round(self, round_id: int, new_version: str, summary: dict[str, Any], now: float) -> RoundRecord:
        with self._lock:
            index = next(i for i, r in enumerate(self._rounds) if r.id == round_id)
            closed = replace(self._rounds[index], closed_at=now, new_version=new_version, summary=dict(summary))
            self._rounds[index] = closed
            following = RoundRecord(id=len(self._rounds) + 1, model=closed.model, base_version=new_version, opened_at=now)
            self._rounds.append(following)
            self._updates[following.id] = []
            return following

    def claim_round(self, round_id: int) -> AbstractContextManager[RoundClaim | None]:
        with self._lock:
            is_open = any(r.id == round_id and r.closed_at is None for r in self._rounds)
        return self._claims.claim(round_id, is_open, self.close_round)

    def record_refusal(self, refusal: Refusal) -> None:
        with self._lock:
            self._refusals.append(refusal)

    def rounds(self, model: str) -> list[RoundRecord]:
        with self._lock:
            return [self._with_counts(r) for r in self._rounds if r.model == model]

    def refusals(self, model: str) -> list[Refusal]:
        with self._lock:
            return [r for r in self._refusals if r.model == model]

    def close(self) -> None:
        pass
