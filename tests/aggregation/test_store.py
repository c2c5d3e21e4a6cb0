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

    def test_each_update_keeps_its_base_staleness_and_weight(self) -> None:
        store = self.store()
        first = store.open_round("m", "5", now=1.0)
        store.add_update(first.id, update("client-aaaa", 1.0))  # no base given: the round's
        stale = StoredUpdate("client-bbbb", 3, {"w": np.zeros((2, 3), np.float32)}, 0.0, False, 6.0,
                             base_version="4", staleness=1, weight=0.5)  # fmt: skip
        store.add_update(first.id, stale)
        assert [(u.base_version, u.staleness, u.weight) for u in store.updates(first.id)] == [("5", 0, 1.0), ("4", 1, 0.5)]

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


def test_a_file_from_before_staleness_is_migrated_at_open(tmp_path: Path) -> None:
    import sqlite3

    from aggregation.store.sqlite import SQL_CREATE_UPDATES

    path = tmp_path / "old.sqlite"
    store = SqliteStore(path)
    first = store.open_round("m", "3", now=1.0)
    store.close()
    old_updates = SQL_CREATE_UPDATES.split("base_version TEXT")[0] + "UNIQUE (round_id, client)\n)"
    with sqlite3.connect(path) as db:  # the updates table as the previous release wrote it
        db.execute("DROP TABLE update_tensors")
        db.execute("DROP TABLE updates")
        db.execute(old_updates)
        db.execute("INSERT INTO updates (round_id, client, samples, norm, clipped, received_at) VALUES (?, 'client-old1', 2, 1.0, 0, 2.0)",
                   (first.id,))  # fmt: skip
    assert "staleness" not in {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(updates)")}
    migrated = SqliteStore(path)
    (kept,) = migrated.updates(first.id)
    assert (kept.client, kept.base_version, kept.staleness, kept.weight) == ("client-old1", "3", 0, 1.0)
    migrated.add_update(first.id, StoredUpdate("client-new1", 1, {}, 0.0, False, 3.0, base_version="2", staleness=1, weight=0.5))
    migrated.close()
    assert [(u.base_version, u.weight) for u in SqliteStore(path).updates(first.id)] == [("3", 1.0), ("2", 0.5)]


def test_factory_refuses_server_databases() -> None:
    assert isinstance(open_store("memory:"), MemoryStore)
    with pytest.raises(ValueError, match="only SQLite"):
        open_store("postgresql://db/federated")
