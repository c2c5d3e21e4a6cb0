"""Publication killed midway (a child process SIGKILLs itself at a fault point, with a real SQLite
file): while version 2 is half written, and once it is whole with its archive but before MMS
answers and latest.json moves. The next start (`recover`, then the service on the same database)
leaves no half or unpublished version for MMS or pages, and the round, with every update, closes
again into version 2 = FedAvg of what was sent.

MMS is a stand-in here (its `register` is the fault point, or records what it is asked); the real
MMS, serve and SIGKILL of the whole process are in test_federated_serve.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from aggregation.service import FederatedService, Update
from aggregation.settings import FederatedSettings
from aggregation.store import SqliteStore
from edgecloud.federation import FederatedOptions, ServingPublisher, load_model, recover
from export.federated_version import trainable_parameters
from export.manifest import read_manifest, update_latest
from mms_handlers.archive import build_archive
from tests.builders import write_trainable_version_dir

NAME = "mlp"
RNG = np.random.default_rng(5)
CLIENTS = [
    (f"client-{i:04d}", n, {"head.weight": RNG.normal(0, 0.1, (8, 2)), "head.bias": RNG.normal(0, 0.1, 2)})
    for i, n in enumerate((10, 20, 30))
]

# The child: three updates into round 1, then the close, killed at FAULT.
CHILD = """
import json, os, signal, sys
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import export.federated_version as writer
from aggregation.service import FederatedService, Update
from aggregation.settings import FederatedSettings
from aggregation.store import SqliteStore
from edgecloud.federation import ServingPublisher, load_model

registry, store_dir, database, fault = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
die = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
if fault == "staging":  # every file copied and patched, model.json not yet written
    writer.write_manifest = die
mms = SimpleNamespace(config=SimpleNamespace(model_store=store_dir), register=die)  # fault "register"
service = FederatedService(SqliteStore(database), FederatedSettings(min_clients=3), [load_model(registry, "mlp")],
                           ServingPublisher(registry, mms))
for client, samples, delta in json.loads(sys.argv[5]):
    service.submit("mlp", Update(client, "1", samples, {k: np.asarray(v) for k, v in delta.items()}))
service.tick()
"""


def _updates() -> str:
    return json.dumps([[c, n, {k: v.tolist() for k, v in d.items()}] for c, n, d in CLIENTS])


@pytest.mark.parametrize("fault", ["staging", "register"])
def test_a_publication_killed_midway_leaves_nothing_served_and_its_round_closes_again(tmp_path: Path, fault: str) -> None:
    registry, store_dir, database = tmp_path / "registry", tmp_path / "store", str(tmp_path / "federated.sqlite")
    base_dir = write_trainable_version_dir(registry / NAME / "1")
    update_latest(registry / NAME)
    build_archive(base_dir, store_dir)
    base = trainable_parameters(base_dir)

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(registry), str(store_dir), database, fault, _updates()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr[-2000:]
    model_dir = registry / NAME
    left = sorted(p.name for p in model_dir.iterdir() if p.is_dir())
    if fault == "staging":
        assert len(left) == 2 and left[1] == "1" and left[0] == ".staging-2"  # the half-written one
    else:
        assert left == ["1", "2"] and (store_dir / f"{NAME}-v2.mar").is_file()  # whole, archived, unpublished
    assert json.loads((model_dir / "latest.json").read_text())["version"] == "1"

    removed = recover(FederatedOptions([NAME], database=database), registry, store_dir)
    assert len(removed) == 1 and ("half written" if fault == "staging" else "never published") in removed[0]
    assert sorted(p.name for p in model_dir.iterdir() if p.is_dir()) == ["1"]
    assert sorted(p.name for p in store_dir.iterdir()) == [f"{NAME}.mar"]
    assert recover(FederatedOptions([NAME], database=database), registry, store_dir) == []

    registered: list[str] = []
    mms = SimpleNamespace(config=SimpleNamespace(model_store=store_dir), register=registered.append)
    store = SqliteStore(database)
    try:
        service = FederatedService(store, FederatedSettings(min_clients=3), [load_model(registry, NAME)], ServingPublisher(registry, mms))
        described = service.describe(NAME)
        assert (described["round"], described["base_version"], described["accepted"]) == (1, "1", 3)
        service.tick()
        (first, second) = store.rounds(NAME)
        assert (first.new_version, first.summary["outcome"], first.clients, second.base_version) == ("2", "published", 3, "2")
    finally:
        store.close()
    assert registered == [f"{NAME}-v2.mar"]
    assert json.loads((model_dir / "latest.json").read_text())["version"] == "2"
    assert sorted(p.name for p in model_dir.iterdir() if p.is_dir()) == ["1", "2"]
    assert read_manifest(model_dir / "2")["federated"]["round"] == 1
    new = trainable_parameters(model_dir / "2")
    total = sum(n for _, n, _ in CLIENTS)
    for name, value in base.items():
        expected = value + sum(n * d[name] for _, n, d in CLIENTS) / total
        np.testing.assert_allclose(new[name], expected, rtol=0, atol=1e-6)


def test_a_publication_mms_refuses_leaves_no_version_behind(tmp_path: Path) -> None:
    registry, store_dir = tmp_path / "registry", tmp_path / "store"
    write_trainable_version_dir(registry / NAME / "1")
    update_latest(registry / NAME)

    def refuse(mar: str) -> None:
        raise RuntimeError(f"MMS refused {mar}")

    mms = SimpleNamespace(config=SimpleNamespace(model_store=store_dir), register=refuse)
    store = SqliteStore(tmp_path / "federated.sqlite")
    try:
        service = FederatedService(store, FederatedSettings(min_clients=3), [load_model(registry, NAME)], ServingPublisher(registry, mms))
        for client, samples, delta in CLIENTS:
            service.submit(NAME, Update(client, "1", samples, delta))
        service.tick()
        assert "MMS refused mlp-v2.mar" in service.describe(NAME)["last_error"]
        assert store.current_round(NAME).clients == 3  # the round stays open with its updates
    finally:
        store.close()
    assert sorted(p.name for p in (registry / NAME).iterdir() if p.is_dir()) == ["1"]
    assert list(store_dir.glob("*.mar")) == []
