"""Issue 28's regression in the page: `torch.export` programs saved at a static batch of 1 (an MLP
classifier, a Conv1d → LSTM regressor), exported with the default, personalise in Chromium; the
browser's head after the steps equals onnxruntime running train.onnx in Python and an independent
per-example torch.optim.Adam on the program."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.export.train.static_programs import MLP_CLASSES, MLP_FEATURES, OUTPUTS, SERIES, per_example_adam, save_program

from .test_personalize import ORT_ONLY
from .trainer_driver import TrainerDriver

pytestmark = [pytest.mark.integration, pytest.mark.torch]

BATCH = 4
RATE = 0.01


@pytest.fixture(scope="session")
def static_programs(registry: Path, workdir: Path) -> dict[str, tuple[Path, Path]]:
    """kind → (version folder, .pt2), exported with every training option left at its default but the batch."""
    from export.pipeline import export_model

    folder = workdir / "static-batch-programs"
    folder.mkdir()
    found = {}
    for kind in ("mlp", "conv-lstm"):
        program = save_program(kind, folder)
        result = export_model(program, name=f"static-{kind}", version="1", out=registry, train_batch=BATCH)
        found[kind] = (result.version_dir, program)
    return found


@pytest.fixture
def trainer(page, site, mms, static_programs) -> TrainerDriver:
    return TrainerDriver(page, site, mms).open()


def examples(kind: str, count: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    if kind == "mlp":
        return rng.standard_normal((count, MLP_FEATURES)).astype(np.float32), rng.integers(0, MLP_CLASSES, count)
    return rng.standard_normal((count, 1, SERIES)).astype(np.float32), rng.standard_normal((count, OUTPUTS)).astype(np.float32)


@pytest.mark.parametrize("kind, policy, backend", [("mlp", {}, "onnxjs/"), ("conv-lstm", ORT_ONLY, "onnxruntime-web/wasm")])
def test_a_static_batch_program_personalises_in_the_page(trainer, static_programs, kind, policy, backend) -> None:
    from export.train.runner import base_parameters, train

    version_dir, program = static_programs[kind]
    assert trainer.create(f"static-{kind}", cloud=False, policy=policy)["state"] == "ready"
    x, y = examples(kind)
    result = trainer.personalize(x, y, epochs=1, learningRate=RATE, shuffle=False)
    assert "error" not in result, result
    assert result["backend"].startswith(backend) and result["steps"] == 3 and result["samples"] == 10
    got = trainer.parameters()
    ours = train(version_dir, x, y, learning_rate=RATE)
    want = per_example_adam(kind, program, x, y, batch=BATCH, rate=RATE)
    base = base_parameters(version_dir)
    assert set(got) == set(want) == set(ours.parameters)
    for name in want:
        assert np.abs(got[name] - ours.parameters[name]).max() <= 1e-5, name
        assert np.abs(got[name] - want[name]).max() <= 1e-5, name
        assert np.abs(got[name] - base[name]).max() > 1e-3, name  # it moved
    np.testing.assert_allclose(result["loss"], ours.losses, atol=1e-5)
    assert trainer.page.errors == []
