"""The federated benchmark's loop on the browser trainer's plumbing fixture: its personalisation
equals the fixture's numpy twin, and rounds of three people lower the held-out person's MAE."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.federated import federated_rounds, markdown, personalise
from export.federated_version import trainable_parameters
from tests.web.registry_models import fitted_forecaster, pulse_signal, windows, write_version
from tests.web.train_fixture import make_trainable, reference_steps


def person(seed: int, count: int = 24) -> tuple[np.ndarray, np.ndarray]:
    x, y = windows(pulse_signal(count + 72, period=34.0, noise=0.03, seed=seed))
    return x[:count].astype(np.float32), y[:count].astype(np.float32)


def test_rounds_of_personalisation_lower_the_held_out_error(tmp_path: Path) -> None:
    model, weights, bias = fitted_forecaster()
    version_dir = write_version(tmp_path, "fc", "1", model)
    make_trainable(version_dir)
    x, y = person(1)
    got = personalise(version_dir, trainable_parameters(version_dir), (x, y), epochs=2, learning_rate=0.05)
    want_w, want_b, _ = reference_steps(weights, bias, x, y, epochs=2, batch_size=8, learning_rate=0.05)
    np.testing.assert_allclose(got["W"], want_w, atol=1e-5)
    np.testing.assert_allclose(got["b"], want_b, atol=1e-5)

    rows = federated_rounds(version_dir, [person(s) for s in (2, 3, 4)], person(9, 40), rounds=2, epochs=2, learning_rate=0.05)
    assert [(r.version, r.round, r.clients, r.samples) for r in rows] == [("1", None, 0, 0), ("2", 1, 3, 72), ("3", 2, 3, 72)]
    assert rows[2].validation_mae < rows[1].validation_mae < rows[0].validation_mae, markdown(rows)
