"""The buffered-rounds simulation on the browser trainer's plumbing fixture: with one late client
of three, synchronous rounds refuse its stale updates and never take one, buffered rounds take
them with their staleness; both stop at the same number of accepted updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.federated_async import late_clients, simulate
from tests.web.registry_models import fitted_forecaster, write_version
from tests.web.train_fixture import make_trainable

from .test_federated_bench import person


def test_late_clients_count_only_in_buffered_rounds(tmp_path: Path) -> None:
    model, _weights, _bias = fitted_forecaster()
    version_dir = write_version(tmp_path, "fc", "1", model)
    make_trainable(version_dir)
    clients = [person(seed) for seed in (2, 3, 4)]
    runs = {
        mode: simulate(
            version_dir, clients, {2}, person(9, 40), mode=mode, buffer=2, max_staleness=2, updates=6, epochs=1, learning_rate=0.05
        )
        for mode in ("synchronous", "buffered")
    }
    synchronous, buffered = runs["synchronous"], runs["buffered"]
    assert (synchronous.accepted, synchronous.versions, buffered.accepted, buffered.versions) == (6, 3, 6, 3)
    assert synchronous.late_accepted == 0 and synchronous.refused.get("stale-base", 0) >= 1
    assert set(synchronous.staleness) == {"0"}
    assert buffered.late_accepted >= 1 and "stale-base" not in buffered.refused
    assert sum(n for s, n in buffered.staleness.items() if s != "0") >= 1
    assert all(np.isfinite(r.validation_mae) for r in runs.values())
    assert len(late_clients(9, 1 / 3)) == 3 and late_clients(9, 1 / 3) == late_clients(9, 1 / 3)
