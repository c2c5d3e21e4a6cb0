"""Issue 28, recurrent layers as the converters emit them: Keras's default GRU (reset_after=True),
which tf2onnx leaves as TensorFlow's while loop (an ONNX Loop carrying the kernel, recurrent
kernel and [2, 3H] bias), trains every variable with `--trainable all`; the step equals Keras's own
Adam at 1 and 10 steps (≤ 1e-5) and the personalised model predicts what Keras's trained model does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export.pipeline import export_model
from export.train.runner import personalized_model, train

from .keras_layer_models import RECURRENT_STEPS, conv_recurrent_regressor, keras_trained

pytestmark = pytest.mark.keras
BATCH, RATE = 4, 0.01
GRU_VARIABLES = [
    "conv/kernel",
    "conv/bias",
    "rnn/gru_cell/kernel",
    "rnn/gru_cell/recurrent_kernel",
    "rnn/gru_cell/bias",
    "out/kernel",
    "out/bias",
]


@pytest.fixture(scope="module")
def keras_gru(workdir: Path) -> tuple[Path, Path, list[str]]:
    source = conv_recurrent_regressor(workdir / "keras-gru.keras")
    lines: list[str] = []
    result = export_model(
        source,
        name="keras-gru",
        version="1",
        out=workdir / "keras-gru",
        trainable="all",
        learning_rate=RATE,
        train_batch=BATCH,
        progress=lines.append,
    )
    return result.version_dir, source, lines


def test_a_keras_bidirectional_lstm_trains_each_direction_like_keras_adam(tmp_path: Path) -> None:
    """tf2onnx emits one bidirectional ONNX LSTM: W, R and B stack both directions, which are two
    Keras layers (forward_lstm, backward_lstm): each direction's kernel, recurrent kernel and bias
    is its own tensor (tf2onnx's zero recurrent bias halves stay constants)."""
    import keras

    source = conv_recurrent_regressor(tmp_path / "bilstm.keras", "bidirectional-lstm")
    result = export_model(source, name="bilstm", version="1", out=tmp_path / "out", trainable="all", learning_rate=RATE, train_batch=BATCH)
    entry = result.manifest["training"]
    variables = keras.models.load_model(source).trainable_variables
    layers = {v.path.split("/")[0] for v in variables}  # Keras numbers a name taken earlier in the process: forward_lstm_1
    assert any(name.startswith("forward_lstm") for name in layers) and any(name.startswith("backward_lstm") for name in layers)
    assert entry["trained"]["tensors"] == len(variables) == 10
    assert entry["trained"]["parameters"] == sum(int(np.prod(v.shape)) for v in variables)
    assert entry["parity"]["passed"] and max(entry["parity"]["steps"].values()) <= 1e-5


def test_a_fresh_keras_bidirectional_gru_trains_both_directions_biases_like_keras_adam(tmp_path: Path) -> None:
    """Two Loops (the backward one behind a ReverseSequence); the directions' fresh zero biases are
    equal, so tf2onnx shares one initializer between both Loops: each Loop gets its own copy, told
    apart by the Keras layer of its Loop's kernels, so all 10 variables train."""
    import keras

    source = conv_recurrent_regressor(tmp_path / "bigru.keras", "bidirectional-gru", fresh_biases=True)
    model = keras.models.load_model(source)
    biases = [np.asarray(v) for v in model.trainable_variables if re.sub(r"_\d+(?=/)", "", v.path).endswith("gru_cell/bias")]
    assert len(biases) == 2 and np.array_equal(*biases)
    result = export_model(source, name="bigru", version="1", out=tmp_path / "out", trainable="all", learning_rate=RATE, train_batch=BATCH)
    entry = result.manifest["training"]
    assert entry["trained"]["tensors"] == len(model.trainable_variables) == 10
    assert entry["trained"]["parameters"] == sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert entry["parity"]["passed"] and max(entry["parity"]["steps"].values()) <= 1e-5


def keras_adam(source: Path, x: np.ndarray, y: np.ndarray, steps: int):
    import keras

    return keras_trained(source, keras.optimizers.Adam(learning_rate=RATE), x, y, batch=BATCH, steps=steps)


def test_the_keras_gru_is_a_loop_and_all_trains_its_three_variables(keras_gru) -> None:
    version_dir, source, lines = keras_gru
    model = onnx.load(version_dir / "model.onnx")
    assert "Loop" in [node.op_type for node in model.graph.node] and "GRU" not in [node.op_type for node in model.graph.node]
    entry = json.loads((version_dir / "model.json").read_text())["training"]
    import keras

    variables = keras.models.load_model(source).trainable_variables
    assert sorted(re.sub(r"_\d+(?=/)", "", v.path) for v in variables) == sorted(GRU_VARIABLES)  # gru_cell_1 if a GRU came earlier
    assert entry["trained"]["tensors"] == len(entry["parameters"]) == 7
    assert entry["trained"]["parameters"] == sum(int(np.prod(v.shape)) for v in variables)
    assert any(line.startswith("exporting the training step (all: 7 tensors,") for line in lines)
    assert entry["parity"]["passed"] and set(entry["parity"]["steps"]) == {"1", "10"}
    assert max(entry["parity"]["steps"].values()) <= 1e-5
    assert "Adam" in entry["parity"]["against"]


def test_the_personalised_keras_gru_predicts_what_keras_adam_trained(keras_gru) -> None:
    version_dir, source, _ = keras_gru
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2 * BATCH, RECURRENT_STEPS, 1)).astype(np.float32)
    y = rng.standard_normal((2 * BATCH, 2)).astype(np.float32)
    ours = train(version_dir, x, y, learning_rate=RATE)
    assert ours.steps == 2
    theirs = keras_adam(source, x, y, steps=2)
    probe = rng.standard_normal((3, RECURRENT_STEPS, 1)).astype(np.float32)
    session = ort.InferenceSession(personalized_model(version_dir, ours.parameters), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: probe})[0]
    np.testing.assert_allclose(got, np.asarray(theirs(probe, training=False)), atol=1e-5)
    (bias,) = [value for value in ours.parameters.values() if value.shape == (2, 12)]  # the GRU's input and recurrent biases
    want = np.asarray(theirs.get_layer("rnn").cell.bias)
    np.testing.assert_allclose(bias, want, atol=1e-6)
    assert np.abs(want - np.asarray(keras_adam(source, x, y, steps=0).get_layer("rnn").cell.bias)).max() > 1e-3  # it moved
