"""One set of store tests, run on every RoundStore (Flower's linkstate_test shape)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aggregation.store import DuplicateUpdate, MemoryStore, Refusal, SqliteStore, StoredUpdate, open_store


def update(client: str, value: float, samples: int = 2) -> StoredUpdate:
    return StoredUpdate(client, samples, {"w": np.full((2, 3), value, np.float32)}, norm=1.5, clipped=False, received_at=5.0)


class StoreTest:
    def store(self):
        raise NotImplementedError

    def test_round_keeps_updates_and_refuses_a_second_from_one_client(self) -> None:
        store = self.store()
        first = store.open_round("m", "1", now=1.0)
        store.add_update(first.id, update("client-aaaa", 0.25))
        store.add_update(first.id, update("client-bbbb", -2.0, samples=5))
        with pytest.raises(DuplicateUpdate):
            store.add_update(first.id, update("client-aaaa", 9.0))
        kept = store.updates(first.id)
        assert [u.client for u in kept] == ["client-aaaa", "client-bbbb"]
        assert np.array_equal(kept[0].delta["w"], np.full((2, 3), 0.25, np.float32)) and kept[1].samples == 5
        current = store.current_round("m")
        assert (current.id, current.clients, current.samples) == (first.id, 2, 7)
        with pytest.raises(ValueError, match="open round"):
            store.open_round("m", "1", now=2.0)

    def test_close_records_the_version_and_opens_the_next_round(self) -> None:
        store = self.store()
        first = store.open_round("m", "1", now=1.0)
        store.add_update(first.id, update("client-aaaa", 1.0))
        following = store.close_round(first.id, "2", {"clients": 1}, now=3.0)
        assert (following.base_version, store.current_round("m").id) == ("2", following.id)
        rounds = store.rounds("m")
        assert [(r.base_version, r.new_version, r.clients) for r in rounds] == [("1", "2", 1), ("2", None, 0)]
        assert rounds[0].summary == {"clients": 1} and store.updates(following.id) == []
        assert store.current_round("other") is None

    def test_refusals_are_kept_per_model(self) -> None:
        store = self.store()
        store.record_refusal(Refusal("m", 1, "client-aaaa", 409, "stale-base: ...", 2.0))
        store.record_refusal(Refusal("n", None, None, 404, "unknown-model", 2.0))
        assert [(r.status, r.reason) for r in store.refusals("m")] == [(409, "stale-base: ...")]


class TestMemoryStore(StoreTest):
    def store(self):
        return MemoryStore()


class TestSqliteInMemory(StoreTest):
    def store(self):
        return SqliteStore(":memory:")


class TestSqliteFile(StoreTest):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.path = tmp_path / "federated.sqlite"

    def store(self):
        return open_store(str(self.path))

    def test_everything_survives_reopening(self) -> None:
        store = self.store()
        first = store.open_round("m", "1", now=1.0)
        store.add_update(first.id, update("client-aaaa", 0.5))
        # no close(): as after SIGKILL, only what was committed is there
        again = open_store(f"sqlite://{self.path}")
        assert again.current_round("m").clients == 1
        assert np.array_equal(again.updates(first.id)[0].delta["w"], np.full((2, 3), 0.5, np.float32))
        assert again.rounds("m")[0].opened_at == 1.0


def test_factory_refuses_server_databases() -> None:
    assert isinstance(open_store("memory:"), MemoryStore)
    with pytest.raises(ValueError, match="only SQLite"):
        open_store("postgresql://db/federated")
