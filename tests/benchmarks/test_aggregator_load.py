"""`python -m benchmarks.aggregator_load` end to end on a tiny trainable model and short runs (real
aggregate processes, a real PostgreSQL with a replica SIGKILLed and the database restarted, then
SQLite), so the benchmark cannot rot; and its check catches an aggregate that misses an update.
Asserted: the check's verdicts and counts, never a speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import aggregator_load
from registry import Registry
from tests.builders import write_trainable_version_dir

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    write_trainable_version_dir(tmp_path / "registry" / "mlp" / "1")
    Registry(tmp_path / "registry").set_latest("mlp", 1)
    return tmp_path / "registry"


def test_short_run_passes_its_check_on_both_stores(registry: Path, tmp_path: Path) -> None:
    argv = [
        "--registry",
        str(registry),
        "--model",
        "mlp",
        "--seconds",
        "9",
        "--clients",
        "40",
        "--min-clients",
        "5",
        "--concurrency",
        "4",
        "--out",
        str(tmp_path / "out"),
    ]
    assert aggregator_load.main(argv) == 0
    runs = json.loads((tmp_path / "out" / "aggregator_load.json").read_text())
    assert [(r["name"], r["replicas"], r["database"]) for r in runs] == [("postgres-2", 2, "PostgreSQL"), ("sqlite-1", 1, "SQLite")]
    for run in runs:
        check = run["check"]
        assert check["passed"] and check["acknowledged_not_stored"] == 0 and check["versions_not_fedavg"] == []
        assert check["rounds_closed"] >= 1 and run["accepted"] == check["acknowledged"] > 0
    assert len(runs[0]["faults"]) == 2  # the SIGKILL and the PostgreSQL restart happened
    assert "AGGREGATOR_LOAD.md" in {p.name for p in (tmp_path / "out").iterdir()}


def test_the_check_sees_an_update_missing_from_an_aggregate(registry: Path, tmp_path: Path) -> None:
    """A round whose version leaves out one stored update fails the check (the sum is recomputed)."""
    import sqlite3

    from aggregation.service import FederatedService, Update
    from aggregation.settings import FederatedSettings
    from aggregation.store import SqliteStore
    from edgecloud.federation import RegistryPublisher, load_model

    reg = Registry(registry)
    specs = reg.manifest("mlp", 1)["training"]["parameters"]
    database = str(tmp_path / "rounds.sqlite")
    service = FederatedService(
        SqliteStore(database), FederatedSettings(min_clients=3), [load_model(registry, "mlp")], RegistryPublisher(registry)
    )
    sent = []
    for client in ("client-aaaa", "client-bbbb", "client-cccc"):
        samples, delta = aggregator_load.delta_of(client, "1", specs)
        answer = service.submit("mlp", Update(client, "1", samples, delta))
        sent.append(aggregator_load.Sent(client, "1", samples, "200", answer["round"], 0.01))
    service.tick()
    assert reg.latest("mlp") == 2
    assert aggregator_load.check(database, reg, "mlp", specs, sent)["passed"]
    with sqlite3.connect(database) as conn:  # a fourth row the version never saw: as if an update were lost
        conn.execute("INSERT INTO updates (round_id, client, samples, norm, clipped, received_at) VALUES (1, 'client-dddd', 7, 0, 0, 0)")
    verdict = aggregator_load.check(database, reg, "mlp", specs, sent)
    assert not verdict["passed"] and verdict["versions_not_fedavg"] == ["2"]
    missing = aggregator_load.check(database, reg, "mlp", specs, [*sent, aggregator_load.Sent("client-eeee", "1", 3, "200", 1, 0.01)])
    assert missing["acknowledged_not_stored"] == 1 and not missing["passed"]
