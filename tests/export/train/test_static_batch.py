"""Issue 28's regression: `torch.export` programs saved at a static batch of 1 export again with
the default (a head step), their reference training run one example at a time; the step equals an
independent per-example torch.optim.Adam on the same batches; a program whose batch is neither the
step's nor 1 still exports, without a step, saying why in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.train.runner import base_parameters, train

from .static_programs import (
    MLP_CLASSES,
    MLP_FEATURES,
    OUTPUTS,
    SERIES,
    per_example_adam,
    save_program,
)

pytestmark = pytest.mark.torch
BATCH = 8
RATE = 0.01


@pytest.fixture(scope="module")
def exported(workdir: Path) -> dict[str, Path]:
    from export.pipeline import export_model

    folder = workdir / "static-programs"
    folder.mkdir()
    return {
        kind: export_model(
            save_program(kind, folder), name=f"static-{kind}", version="1", out=folder / "registry", train_batch=BATCH
        ).version_dir
        for kind in ("mlp", "conv-lstm")
    }


def examples(kind: str, count: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    if kind == "mlp":
        return rng.standard_normal((count, MLP_FEATURES)).astype(np.float32), rng.integers(0, MLP_CLASSES, count)
    return rng.standard_normal((count, 1, SERIES)).astype(np.float32), rng.standard_normal((count, OUTPUTS)).astype(np.float32)


@pytest.mark.parametrize("kind", ["mlp", "conv-lstm"])
def test_a_static_batch_program_exports_with_a_head_step(exported, kind: str) -> None:
    entry = json.loads((exported[kind] / "model.json").read_text())["training"]
    assert entry["trainable"] == "head"
    assert [p["name"] for p in entry["parameters"]] == ["program.head.weight", "program.head.bias"]
    assert entry["loss"]["kind"] == ("cross-entropy" if kind == "mlp" else "mse")
    assert entry["parity"]["passed"] and "one example at a time" in entry["parity"]["against"]
    assert max(entry["parity"]["steps"].values()) <= 1e-5


@pytest.mark.parametrize("kind", ["mlp", "conv-lstm"])
def test_the_step_equals_per_example_adam_on_the_program(exported, workdir: Path, kind: str) -> None:
    x, y = examples(kind)
    ours = train(exported[kind], x, y, learning_rate=RATE)
    assert ours.steps == 2  # 8 rows, then 3 padded to 8
    want = per_example_adam(kind, workdir / "static-programs" / f"{kind}-static1.pt2", x, y, batch=BATCH, rate=RATE)
    base = base_parameters(exported[kind])
    for name, value in want.items():
        assert np.abs(ours.parameters[name] - value).max() <= 1e-5, name
        assert np.abs(ours.parameters[name] - base[name]).max() > 1e-3, name  # it moved


def test_a_program_fixed_at_another_batch_exports_without_a_step(tmp_path: Path) -> None:
    from export.pipeline import export_model

    lines: list[str] = []
    result = export_model(
        save_program("mlp", tmp_path, batch=2), name="static2", version="1", out=tmp_path / "r", train_batch=BATCH, progress=lines.append
    )
    assert "training" not in result.manifest and not (result.version_dir / "train.onnx").exists()
    (why,) = [line for line in lines if line.startswith("no training step: ")]
    assert "\n" not in why and "Guard failed" in why
