"""One set of store tests, run on every RoundStore (Flower's linkstate_test shape): memory, SQLite
and a real PostgreSQL started by the tests (tests/postgres.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aggregation.store import (
    DuplicateUpdate,
    MemoryStore,
    Refusal,
    RoundClosed,
    SqliteStore,
    StoredUpdate,
    StoreUnavailable,
    open_store,
)
from tests.postgres import PostgresCluster, postgres, postgres_url  # noqa: F401 - pytest fixtures


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
        stale = StoredUpdate(
            "client-bbbb", 3, {"w": np.zeros((2, 3), np.float32)}, 0.0, False, 6.0, base_version="4", staleness=1, weight=0.5
        )
        store.add_update(first.id, stale)
        assert [(u.base_version, u.staleness, u.weight) for u in store.updates(first.id)] == [("5", 0, 1.0), ("4", 1, 0.5)]

    def test_refusals_are_kept_per_model(self) -> None:
        store = self.store()
        store.record_refusal(Refusal("m", 1, "client-aaaa", 409, "stale-base: ...", 2.0))
        store.record_refusal(Refusal("n", None, None, 404, "unknown-model", 2.0))
        assert [(r.status, r.reason) for r in store.refusals("m")] == [(409, "stale-base: ...")]

    def test_one_claim_at_a_time_and_no_update_enters_a_claimed_round(self) -> None:
        store = self.store()
        first = store.open_round("m", "1", now=1.0)
        store.add_update(first.id, update("client-aaaa", 1.0))
        with store.claim_round(first.id) as claim:
            assert claim is not None
            with store.claim_round(first.id) as second:
                assert second is None
            with pytest.raises(RoundClosed):
                store.add_update(first.id, update("client-bbbb", 2.0))
            following = claim.close("2", {"clients": 1}, now=2.0)
        assert store.current_round("m").id == following.id and following.base_version == "2"
        assert [u.client for u in store.updates(first.id)] == ["client-aaaa"]
        with store.claim_round(first.id) as closed:
            assert closed is None
        with pytest.raises(RoundClosed):
            store.add_update(first.id, update("client-cccc", 3.0))

    def test_a_claim_ended_by_an_error_leaves_the_round_open(self) -> None:
        store = self.store()
        first = store.open_round("m", "1", now=1.0)
        with pytest.raises(RuntimeError, match="publish failed"):
            with store.claim_round(first.id) as claim:
                assert claim is not None
                raise RuntimeError("publish failed")
        store.add_update(first.id, update("client-aaaa", 1.0))
        with store.claim_round(first.id) as again:
            assert again is not None
        assert store.current_round("m").id == first.id


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


class TestPostgres(StoreTest):
    @pytest.fixture(autouse=True)
    def _database(self, postgres: PostgresCluster, postgres_url: str) -> None:  # noqa: F811 - fixtures
        self.cluster, self.url = postgres, postgres_url
        self.opened: list = []
        yield
        for store in self.opened:
            store.close()

    def store(self):
        store = open_store(self.url)
        self.opened.append(store)
        return store

    def test_schema_is_created_once_and_versioned(self) -> None:
        from aggregation.store.postgres import SCHEMA_VERSION

        first = self.store()
        first.open_round("m", "1", now=1.0)
        second = self.store()  # a second replica starting: migrates nothing, loses nothing
        assert second.schema_version() == SCHEMA_VERSION and second.current_round("m").base_version == "1"

    def test_a_newer_schema_is_refused(self) -> None:
        import psycopg

        self.store()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("UPDATE schema_version SET version = version + 1")
        with pytest.raises(ValueError, match="schema version"):
            self.store()

    def test_a_killed_holder_releases_its_claim(self) -> None:
        store = self.store()
        first = store.open_round("m", "1", now=1.0)
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time\nfrom aggregation.store import open_store\n"
                f"s = open_store({self.url!r})\nwith s.claim_round({first.id}) as c:\n    print(c is not None, flush=True)\n    time.sleep(600)",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "True"
            with store.claim_round(first.id) as claim:
                assert claim is None
            with pytest.raises(RoundClosed):
                store.add_update(first.id, update("client-aaaa", 1.0))
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
        for _ in range(300):  # the server notices the dropped connection and ends its transaction
            with store.claim_round(first.id) as claim:
                if claim is not None:
                    break
            time.sleep(0.1)
        assert claim is not None
        store.add_update(first.id, update("client-aaaa", 1.0))

    def test_database_down_is_unavailable_then_recovers(self) -> None:
        store = self.store()
        first = store.open_round("m", "1", now=1.0)
        self.cluster.stop()
        try:
            with pytest.raises(StoreUnavailable, match="PostgreSQL at 127.0.0.1"):
                store.add_update(first.id, update("client-aaaa", 1.0))
            with pytest.raises(StoreUnavailable):
                store.current_round("m")
        finally:
            self.cluster.start()
        store.add_update(first.id, update("client-aaaa", 1.0))  # the pool reconnects by itself
        assert store.current_round("m").clients == 1


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
        db.execute(
            "INSERT INTO updates (round_id, client, samples, norm, clipped, received_at) VALUES (?, 'client-old1', 2, 1.0, 0, 2.0)",
            (first.id,),
        )
    assert "staleness" not in {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(updates)")}
    migrated = SqliteStore(path)
    (kept,) = migrated.updates(first.id)
    assert (kept.client, kept.base_version, kept.staleness, kept.weight) == ("client-old1", "3", 0, 1.0)
    migrated.add_update(first.id, StoredUpdate("client-new1", 1, {}, 0.0, False, 3.0, base_version="2", staleness=1, weight=0.5))
    migrated.close()
    assert [(u.base_version, u.weight) for u in SqliteStore(path).updates(first.id)] == [("3", 1.0), ("2", 0.5)]


def test_factory_refuses_unknown_databases() -> None:
    assert isinstance(open_store("memory:"), MemoryStore)
    with pytest.raises(ValueError, match="postgresql://"):
        open_store("mysql://db/federated")
