"""Publication killed midway (a child process SIGKILLs itself at a fault point, with a real SQLite
file): while version 2 is half written, and once it is whole but before latest.json moves. The
next close (the service on the same database, `RegistryPublisher` as `serve --federated` and
`edgecloud aggregate` run it) clears the half-written folder or publishes the whole one as it is,
hashes checked: the round, with every update, closes into version 2 = FedAvg of what was sent, and
latest.json never named what was not whole.

Serving is not here: the registry watcher serves only what latest.json names (tests/mms_handlers/replica/);
the real serve killed with SIGKILL is in test_federated_serve.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aggregation.service import FederatedService
from aggregation.settings import FederatedSettings
from aggregation.store import SqliteStore
from edgecloud.federation import RegistryPublisher, load_model
from export.federated_version import trainable_parameters
from export.manifest import read_manifest
from registry import Registry
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
import numpy as np
import export.federated_version as writer
from aggregation.service import FederatedService, Update
from aggregation.settings import FederatedSettings
from aggregation.store import SqliteStore
from edgecloud.federation import RegistryPublisher, load_model
from registry import Registry

registry, database, fault = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
die = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
if fault == "staging":  # every file copied and patched, model.json not yet written
    writer.write_manifest = die
else:  # the folder whole and renamed into place, latest.json not moved
    Registry.set_latest = die
service = FederatedService(SqliteStore(database), FederatedSettings(min_clients=3), [load_model(registry, "mlp")],
                           RegistryPublisher(registry))
for client, samples, delta in json.loads(sys.argv[4]):
    service.submit("mlp", Update(client, "1", samples, {k: np.asarray(v) for k, v in delta.items()}))
service.tick()
"""


def _updates() -> str:
    return json.dumps([[c, n, {k: v.tolist() for k, v in d.items()}] for c, n, d in CLIENTS])


@pytest.mark.parametrize("fault", ["staging", "latest"])
def test_a_publication_killed_midway_is_never_named_and_its_round_closes_again(tmp_path: Path, fault: str) -> None:
    root, database = tmp_path / "registry", str(tmp_path / "federated.sqlite")
    base_dir = write_trainable_version_dir(root / NAME / "1")
    registry = Registry(root)
    registry.set_latest(NAME, 1)
    base = trainable_parameters(base_dir)

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), database, fault, _updates()], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -9, child.stderr[-2000:]
    model_dir = root / NAME
    left = sorted(p.name for p in model_dir.iterdir() if p.is_dir())
    if fault == "staging":
        assert left == [".staging-2", "1"] and registry.versions(NAME) == [1]  # half written: no version
    else:
        assert left == ["1", "2"] and registry.versions(NAME) == [1, 2]  # whole, unpublished
        written = (model_dir / "2" / "model.json").stat()
    assert registry.latest(NAME) == 1

    store = SqliteStore(database)
    try:
        service = FederatedService(store, FederatedSettings(min_clients=3), [load_model(root, NAME)], RegistryPublisher(root))
        described = service.describe(NAME)
        assert (described["round"], described["base_version"], described["accepted"]) == (1, "1", 3)
        service.tick()
        (first, second) = store.rounds(NAME)
        assert (first.new_version, first.summary["outcome"], first.clients, second.base_version) == ("2", "published", 3, "2")
    finally:
        store.close()
    assert registry.latest(NAME) == 2 and registry.check(NAME, 2)
    assert sorted(p.name for p in model_dir.iterdir() if p.is_dir()) == ["1", "2"]  # no version 3, no staging left
    if fault == "latest":
        now = (model_dir / "2" / "model.json").stat()
        assert (now.st_ino, now.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)  # published as written, not again
    assert read_manifest(model_dir / "2")["federated"]["round"] == 1
    new = trainable_parameters(model_dir / "2")
    total = sum(n for _, n, _ in CLIENTS)
    for name, value in base.items():
        expected = value + sum(n * d[name] for _, n, d in CLIENTS) / total
        np.testing.assert_allclose(new[name], expected, rtol=0, atol=1e-6)
