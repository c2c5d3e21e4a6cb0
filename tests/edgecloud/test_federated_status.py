"""`edgecloud federated status` reads the store the aggregator writes, PostgreSQL too: rounds closed by
a real FederatedService on the session's real PostgreSQL (tests/postgres.py) are listed when the URL
comes from --database or from $EDGECLOUD_AGGREGATOR_DATABASE as the aggregator reads it; a server
that cannot be reached is one line, exit 1, without the URL's password."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aggregation.service import FederatedService, Refused, Update
from aggregation.settings import FederatedSettings
from aggregation.store import open_store
from edgecloud.cli import main as cli
from edgecloud.commands.aggregate import DATABASE_ENV
from edgecloud.federation import RegistryPublisher, load_model
from registry import Registry
from tests.builders import write_trainable_version_dir
from tests.conftest import free_port
from tests.postgres import postgres, postgres_url  # noqa: F401 - pytest fixtures

from .test_cli import one_error_line

pytestmark = pytest.mark.integration
RNG = np.random.default_rng(3)


def delta() -> dict[str, np.ndarray]:
    return {"head.weight": RNG.normal(0, 0.1, (8, 2)), "head.bias": RNG.normal(0, 0.1, 2)}


@pytest.fixture
def closed_round(tmp_path: Path, postgres_url: str) -> str:  # noqa: F811 - the fixture imported above
    """Round 1 of mlp closed from two updates into version 2, one stale update refused, in PostgreSQL."""
    registry = tmp_path / "registry"
    write_trainable_version_dir(registry / "mlp" / "1")
    Registry(registry).set_latest("mlp", 1)
    store = open_store(postgres_url)
    try:
        service = FederatedService(store, FederatedSettings(min_clients=2), [load_model(registry, "mlp")], RegistryPublisher(registry))
        service.submit("mlp", Update("client-0001", "1", 10, delta()))
        with pytest.raises(Refused):
            service.submit("mlp", Update("client-0002", "0", 5, delta()))
        service.submit("mlp", Update("client-0003", "1", 30, delta()))
        service.tick()
    finally:
        store.close()
    assert Registry(registry).latest("mlp") == 2
    return postgres_url


def test_status_lists_the_rounds_of_a_postgres_store_from_the_flag_or_the_aggregators_variable(
    closed_round: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    target = str(tmp_path / "store" / "mlp")  # no SQLite file there: the rounds come from PostgreSQL
    assert cli(["federated", "status", target, "--database", closed_round]) == 0
    table = capsys.readouterr().out
    first_round = table.splitlines()[1].split()
    assert first_round[:4] == ["1", "1", "2", "40"] and first_round[-2:] == ["2", "(fedavg)"], table
    assert "refused: 1 (stale-base 1)" in table

    monkeypatch.setenv(DATABASE_ENV, closed_round)
    assert cli(["federated", "status", target, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["clients"], r["samples"], r["new_version"]) for r in listed["rounds"]] == [(1, 2, 40, "2"), (2, 0, 0, None)]
    assert [r["reason"].split(":")[0] for r in listed["refusals"]] == ["stale-base"]


def test_status_on_an_unreachable_postgres_is_one_line_without_the_password(tmp_path: Path, capsys) -> None:
    url = f"postgresql://postgres:s3cret-word@127.0.0.1:{free_port()}/rounds"  # nothing listens there
    assert cli(["federated", "status", str(tmp_path / "mlp"), "--database", url]) == 1
    line = one_error_line(capsys)
    assert "cannot be reached" in line and "s3cret-word" not in line
