"""Issue 28: the step trains every framework variable of the chosen layers, beyond Dense heads.

A Keras Conv1D → MaxPool → Conv1D → GlobalAveragePooling → Dense model with `--trainable all`
trains all six tensors (it used to train the Dense kernel only and still say "all"), and two SGD
steps of train.onnx give the predictions Keras's own SGD gives; a Keras regressor whose head bias
is zero keeps that bias as an initializer and trains it like Keras; bad --trainable values and
layers that cannot be trained are one line, exit 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from export.pipeline import export_model
from export.train.runner import personalized_model, train

from .keras_layer_models import SERIES, cnn, keras_trained

pytestmark = pytest.mark.keras
BATCH, RATE = 8, 0.05


def zero_bias_regressor(path: Path) -> Path:
    import keras

    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [keras.Input((6,), name="features"), keras.layers.Dense(8, activation="tanh", name="hidden"), keras.layers.Dense(2, name="out")]
    )
    model.get_layer("hidden").bias.assign(np.full(8, 0.05, "float32"))  # only the head's bias is zero
    model.save(path)
    return path


@pytest.fixture(scope="module")
def exported(workdir: Path) -> dict[str, tuple[Path, Path]]:
    folder = workdir / "layers-step"
    folder.mkdir()
    found = {}
    for name, build, trainable in [("cnn", cnn, "all"), ("zero-bias", zero_bias_regressor, "head")]:
        source = build(folder / f"{name}.keras")
        result = export_model(
            source,
            name=name,
            version="1",
            out=folder / "registry",
            trainable=trainable,
            optimizer="sgd",
            learning_rate=RATE,
            train_batch=BATCH,
        )
        found[name] = (result.version_dir, source)
    return found


def keras_sgd(source: Path, variables: list[str], x: np.ndarray, y: np.ndarray, steps: int):
    """Keras's own SGD on the named variables (GradientTape, training=False); returns the model."""
    import keras

    return keras_trained(source, keras.optimizers.SGD(learning_rate=RATE), x, y, batch=BATCH, steps=steps, variables=variables)


def data(shape: tuple[int, ...], outputs: int, count: int = 2 * BATCH) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(6)
    return rng.standard_normal((count, *shape)).astype(np.float32), rng.standard_normal((count, outputs)).astype(np.float32)


def predictions(version_dir: Path, parameters: dict, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(personalized_model(version_dir, parameters), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_all_trains_every_convolution_and_dense_tensor_like_keras(exported) -> None:
    version_dir, source = exported["cnn"]
    entry = json.loads((version_dir / "model.json").read_text())["training"]
    assert entry["trainable"] == "all"
    assert entry["trained"]["tensors"] == len(entry["parameters"]) == 6
    assert entry["trained"]["parameters"] == (5 * 4 + 4) + (3 * 4 * 6 + 6) + (6 * 3 + 3)
    assert entry["parity"]["passed"] and max(entry["parity"]["steps"].values()) <= 1e-5
    x, y = data((SERIES, 1), 3)
    ours = train(version_dir, x, y, learning_rate=RATE)
    assert ours.steps == 2
    theirs = keras_sgd(source, ["c1/kernel", "c1/bias", "c2/kernel", "c2/bias", "out/kernel", "out/bias"], x, y, steps=2)
    probe = data((SERIES, 1), 3, count=5)[0]
    want = np.asarray(theirs(probe, training=False))
    np.testing.assert_allclose(predictions(version_dir, ours.parameters, probe), want, atol=1e-5)


def test_a_zero_head_bias_stays_an_initializer_and_is_trained_like_keras(exported) -> None:
    version_dir, source = exported["zero-bias"]
    entry = json.loads((version_dir / "model.json").read_text())["training"]
    assert [p["name"] for p in entry["parameters"]][1:] == ["out/bias"] and entry["parameters"][1]["shape"] == [2]
    x, y = data((6,), 2)
    ours = train(version_dir, x, y, learning_rate=RATE)
    theirs = keras_sgd(source, ["out/kernel", "out/bias"], x, y, steps=2)
    np.testing.assert_allclose(ours.parameters["out/bias"], np.asarray(theirs.get_layer("out").bias), atol=1e-6)
    assert np.abs(ours.parameters["out/bias"]).max() > 1e-3  # it moved
    probe = data((6,), 2, count=5)[0]
    np.testing.assert_allclose(predictions(version_dir, ours.parameters, probe), np.asarray(theirs(probe)), atol=1e-5)


@pytest.mark.parametrize(
    "trainable, says",
    [
        ("last:0", "--trainable 'last:0': choose one of head, last:N (N >= 1), all, none"),
        ("last:4", "--trainable last:4: the model has only 3 layers with parameters"),
    ],
)
def test_bad_trainable_values_are_one_line_exit_2_nothing_written(exported, tmp_path: Path, trainable, says) -> None:
    _, source = exported["cnn"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgecloud",
            "export",
            str(source),
            "--name",
            "bad",
            "--out",
            str(tmp_path / "out"),
            "--trainable",
            trainable,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("edgecloud export: error")]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("model.json"))


@pytest.fixture(scope="module")
def forecaster(workdir: Path):
    """The demo template at a 64-sample window: Conv1D → MaxPool → LSTM → Dropout → Dense."""
    import keras
    import keras_tuner

    from edgecloud.builder.templates import ecg_forecaster

    keras.utils.set_random_seed(3)
    model = ecg_forecaster(keras_tuner.HyperParameters(), window=64, horizon=8)
    model.save(workdir / "fc-all.keras")
    np.save(workdir / "fc-all.npy", np.sin(np.linspace(0, 6, 64)).reshape(1, 64, 1).astype("float32"))
    return model


def test_the_demo_forecaster_trains_all_its_layers_like_keras_adam(forecaster, workdir: Path) -> None:
    """`--trainable all`: 7 tensors (the LSTM's bias without tf2onnx's zero recurrent half), Keras
    Adam parity at 1 and 10 steps ≤ 1e-5."""
    model = forecaster
    lines: list[str] = []
    result = export_model(
        workdir / "fc-all.keras",
        name="fc-all",
        version="1",
        out=workdir / "fc-all-registry",
        sample=workdir / "fc-all.npy",
        trainable="all",
        train_batch=BATCH,
        progress=lines.append,
    )
    entry = result.manifest["training"]
    assert entry["trained"]["tensors"] == 7
    assert entry["trained"]["parameters"] == sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert any(line.startswith("exporting the training step (all: 7 tensors,") for line in lines)
    assert entry["parity"]["passed"] and set(entry["parity"]["steps"]) == {"1", "10"}
    assert max(entry["parity"]["steps"].values()) <= 1e-5
    assert all(list(p["locations"]) == ["model.onnx"] for p in entry["parameters"])  # edge LSTM is unrolled


def test_a_federated_round_over_all_layers_publishes_the_averaged_model(exported, tmp_path: Path) -> None:
    """Two clients personalise every tensor; FedAvg of their deltas becomes version 2, whose cloud
    and edge files predict what the averaged parameters predict (the contract is unchanged:
    parameters named by their initializer names, whatever the trainable set)."""
    import shutil

    from aggregation.fedavg import Contribution, aggregate
    from export.federated_version import trainable_parameters, write_federated_version

    version_dir, _ = exported["cnn"]
    model_dir = tmp_path / "cnn"
    shutil.copytree(version_dir, model_dir / "1")
    base = trainable_parameters(model_dir / "1")
    contributions = []
    for seed, count in ((1, 8), (2, 16)):
        x, y = data((SERIES, 1), 3, count=count)
        x = x + seed  # two people's data
        trained = train(model_dir / "1", x, y, learning_rate=RATE).parameters
        contributions.append(Contribution(delta={n: trained[n] - base[n] for n in base}, samples=count))
    averaged = aggregate(base, contributions)
    assert len(averaged) == 6 and all(np.abs(averaged[n] - base[n]).max() > 0 for n in base)
    new_dir = write_federated_version(model_dir, "1", averaged, {"round": 1, "base_version": "1", "clients": 2})
    manifest = json.loads((new_dir / "model.json").read_text())
    assert manifest["parity"]["federated_cloud_vs_edge"]["passed"] is True
    probe = data((SERIES, 1), 3, count=1)[0]  # one row: the edge file's batch is pinned
    want = predictions(model_dir / "1", averaged, probe)
    for file in ("model.onnx", "model.edge.onnx"):
        session = ort.InferenceSession(str(new_dir / file), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: probe})[0], want, atol=1e-5)


def test_last_2_of_the_demo_forecaster_starts_at_its_time_major_lstm(forecaster, workdir: Path) -> None:
    """last:2 = LSTM + Dense: the step's first input is the LSTM's time-major sequence [T, B, C]
    (the example weights once took their length from it: T rows instead of B)."""
    result = export_model(
        workdir / "fc-all.keras",
        name="fc-last2",
        version="1",
        out=workdir / "fc-all-registry",
        sample=workdir / "fc-all.npy",
        trainable="last:2",
        train_batch=BATCH,
    )
    entry = result.manifest["training"]
    assert entry["trained"]["tensors"] == 5  # LSTM W, R, input-half bias; Dense kernel, bias
    assert entry["parity"]["passed"] and max(entry["parity"]["steps"].values()) <= 1e-5
