"""Issue 28: a Keras Conv2D + BatchNormalization CNN classifier trains with `--trainable all` and `last:2`.

tf2onnx folds each BatchNormalization (a Mul + Add after the first conv, fused into the second
conv's weights); a step that trains one gets it back as a BatchNormalization node whose γ and β
are trained and whose running statistics stay frozen, proven against Keras's own Adam and SGD
(GradientTape, training=False) at 1 and 10 steps; the default export keeps the fused graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from export.pipeline import export_model
from export.train.runner import personalized_model, train

from .keras_layer_models import batchnorm_cnn, conv2d_batchnorm_classifier

pytestmark = pytest.mark.keras
BATCH, RATE = 8, 0.05


@pytest.fixture(scope="module")
def source(workdir: Path) -> Path:
    return batchnorm_cnn(workdir / "bn-cnn.keras")


def export(source: Path, out: Path, name: str, trainable: str | None, optimizer: str = "adam", lines: list[str] | None = None) -> Path:
    return export_model(
        source,
        name=name,
        version="1",
        out=out,
        trainable=trainable,
        optimizer=optimizer,
        learning_rate=RATE if optimizer == "sgd" else None,
        train_batch=BATCH,
        progress=(lines if lines is not None else []).append,
    ).version_dir


@pytest.fixture(scope="module")
def exported_all(source: Path, workdir: Path) -> tuple[Path, list[str]]:
    lines: list[str] = []
    return export(source, workdir / "bn-registry", "bn-all", "all", "sgd", lines), lines


def initializers(version_dir: Path) -> dict[str, np.ndarray]:
    model = onnx.load(str(version_dir / "model.onnx"))
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def op_types(version_dir: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(version_dir / "model.onnx")).graph.node]


def same_up_to_layout(a: np.ndarray, b: np.ndarray) -> bool:
    return a.size == b.size and np.array_equal(np.sort(a, axis=None), np.sort(b, axis=None))


def test_all_trains_exactly_the_keras_models_trainable_variables(source: Path, exported_all) -> None:
    """Every trainable variable (conv kernels and biases, γ, β, Dense) is one trained tensor, and no other."""
    import keras

    version_dir, lines = exported_all
    training = json.loads((version_dir / "model.json").read_text())["training"]
    keras_variables = keras.saving.load_model(source).trainable_variables
    values = initializers(version_dir)
    trained = {p["name"]: values[p["name"]] for p in training["parameters"]}
    assert len(trained) == len(keras_variables) == 10
    for variable in keras_variables:
        holders = [name for name, value in trained.items() if same_up_to_layout(value, np.asarray(variable))]
        assert holders, f"{variable.path} is not trained"
        if "norm" in variable.path:
            assert variable.path in holders  # γ and β are initializers named after the Keras variables
    total = sum(int(np.prod(v.shape)) for v in keras_variables)
    assert training["trained"]["parameters"] == total
    assert any(line.startswith(f"exporting the training step (all: 10 tensors, {total:,} parameters") for line in lines)


def test_running_statistics_are_frozen_in_a_batchnormalization_node(exported_all) -> None:
    version_dir, _ = exported_all
    training = json.loads((version_dir / "model.json").read_text())["training"]
    assert op_types(version_dir).count("BatchNormalization") == 2
    frozen = {entry["name"] for entry in training["trained"]["frozen"]}
    assert frozen == {f"norm{i}/{s}" for i in (1, 2) for s in ("moving_mean", "moving_variance")}
    trained = {p["name"] for p in training["parameters"]}
    assert not frozen & trained


def keras_sgd_cross_entropy(source: Path, x: np.ndarray, y: np.ndarray, steps: int):
    """Keras's own SGD on every trainable variable, BatchNormalization in inference mode (statistics frozen)."""
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(source)
    optimizer = keras.optimizers.SGD(learning_rate=RATE)
    for step in range(steps):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        with tf.GradientTape() as tape:
            loss = keras.losses.CategoricalCrossentropy()(y[rows], model(x[rows], training=False))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    return model


def test_the_step_trains_like_keras_sgd_with_frozen_statistics(source: Path, exported_all) -> None:
    """Ten steps of train.onnx (onnxruntime runner) give Keras's γ and predict what ten steps of
    Keras's SGD predict; β moved (it is trained, not folded into a constant)."""
    version_dir, _ = exported_all
    training = json.loads((version_dir / "model.json").read_text())["training"]
    assert training["parity"]["passed"] and set(training["parity"]["steps"]) == {"1", "10"}
    assert max(training["parity"]["steps"].values()) <= 1e-5 and "SGD" in training["parity"]["against"]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((10 * BATCH, 8, 8, 1)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 10 * BATCH)]
    ours = train(version_dir, x, y, learning_rate=RATE)
    assert ours.steps == 10
    theirs = keras_sgd_cross_entropy(source, x, y, steps=10)
    for norm in ("norm1", "norm2"):
        np.testing.assert_allclose(ours.parameters[f"{norm}/gamma"], np.asarray(theirs.get_layer(norm).gamma), atol=1e-5)
        assert np.abs(ours.parameters[f"{norm}/beta"] - initializers(version_dir)[f"{norm}/beta"]).max() > 1e-4  # it moved
    import onnxruntime as ort

    probe = rng.standard_normal((5, 8, 8, 1)).astype(np.float32)
    session = ort.InferenceSession(personalized_model(version_dir, ours.parameters), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"image": probe})[0], np.asarray(theirs(probe, training=False)), atol=1e-5)


@pytest.mark.parametrize("trainable, tensors", [("all", 10), ("last:2", 4)])
def test_adam_step_equals_keras_adam_at_1_and_10_steps(source: Path, workdir: Path, trainable: str, tensors: int) -> None:
    """`last:2` is norm2 + the Dense head, counted in Keras's layers (the unfolded graph's)."""
    version_dir = export(source, workdir / "bn-registry", f"bn-adam-{trainable.replace(':', '')}", trainable)
    training = json.loads((version_dir / "model.json").read_text())["training"]
    assert training["trained"]["tensors"] == tensors and "Adam" in training["parity"]["against"]
    assert training["parity"]["passed"] and max(training["parity"]["steps"].values()) <= 1e-5
    if trainable == "last:2":
        assert [p["name"] for p in training["parameters"]][:2] == ["norm2/gamma", "norm2/beta"]


def test_the_default_head_export_keeps_the_fused_graph(source: Path, workdir: Path) -> None:
    """No step over a BatchNormalization: model.onnx stays as tf2onnx folded it (no new node, no γ)."""
    version_dir = export(source, workdir / "bn-registry", "bn-head", None)
    assert json.loads((version_dir / "model.json").read_text())["training"]["trainable"] == "head"
    assert "BatchNormalization" not in op_types(version_dir)
    assert not any(name.startswith("norm") for name in initializers(version_dir))


def test_a_depthwise_classifier_with_batchnorm_trains_all_its_variables(tmp_path: Path) -> None:
    """Conv2D → BatchNorm → ReLU → MaxPool → DepthwiseConv2D → GAP → Dense: `all` used to fail naming norm/gamma."""
    import keras

    source = conv2d_batchnorm_classifier(tmp_path / "bn.keras")
    version_dir = export(source, tmp_path / "out", "bn-depthwise", "all")
    training = json.loads((version_dir / "model.json").read_text())["training"]
    assert training["trained"]["tensors"] == len(keras.saving.load_model(source).trainable_variables) == 8
    assert training["parity"]["passed"] and max(training["parity"]["steps"].values()) <= 1e-5


def test_last_n_beyond_the_keras_layers_counts_them_and_writes_nothing(source: Path, tmp_path: Path) -> None:
    """Five layers with parameters in Keras (two convs, two BatchNormalizations, Dense), not tf2onnx's three."""
    from export.errors import BadInputError

    with pytest.raises(BadInputError, match="--trainable last:6: the model has only 5 layers with parameters"):
        export(source, tmp_path / "out", "bn-last6", "last:6")
    assert not any((tmp_path / "out").rglob("model.json"))
