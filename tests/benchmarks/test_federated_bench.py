"""The federated benchmark's loop on the browser trainer's plumbing fixture: three people's rounds
give versions that are FedAvg of what each client trains, and lower the
held-out person's MAE (the benchmark itself runs on the demo build under `make bench`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.federated import federated_rounds, markdown
from tests.web.registry_models import fitted_forecaster, pulse_signal, windows, write_version
from tests.web.train_fixture import make_trainable, reference_steps


def person(seed: int, count: int = 24) -> tuple[np.ndarray, np.ndarray]:
    x, y = windows(pulse_signal(count + 72, period=34.0, noise=0.03, seed=seed))
    return x[:count].astype(np.float32), y[:count].astype(np.float32)


def test_rounds_average_what_the_runner_trains_and_lower_the_held_out_error(tmp_path: Path) -> None:
    model, weights, bias = fitted_forecaster()
    version_dir = write_version(tmp_path, "fc", "1", model)
    make_trainable(version_dir)
    clients = [person(s, count) for s, count in ((2, 16), (3, 24), (4, 32))]
    rows = federated_rounds(version_dir, clients, person(9, 40), rounds=2, epochs=2, learning_rate=0.05, shuffle=False)
    assert [(r.version, r.round, r.clients, r.samples) for r in rows] == [("1", None, 0, 0), ("2", 1, 3, 72), ("3", 2, 3, 72)]
    assert rows[2].validation_mae < rows[1].validation_mae < rows[0].validation_mae, "\n".join(markdown(rows))

    # Version 2's MAE is that of Σ nᵢ·(W, b)ᵢ / Σ nᵢ over the fixture's numpy twin of each client's training.
    trained = [reference_steps(weights, bias, x, y, epochs=2, batch_size=8, learning_rate=0.05)[:2] for x, y in clients]
    counts = [len(x) for x, _ in clients]
    w, b = (sum(n * t[i] for n, t in zip(counts, trained)) / sum(counts) for i in (0, 1))
    x, y = person(9, 40)
    assert abs(float(np.mean(np.abs(x @ w + b - y))) - rows[1].validation_mae) < 1e-5
