"""The demo forecaster (Conv1D → MaxPool → LSTM → Dropout → Dense) and a softmax classifier get a
training step by default, proven against Keras's own optimizer, lowered for ONNX.js, located in
the inference files, and runnable by the onnxruntime runner."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from export.pipeline import export_model
from export.train.runner import base_parameters, personalized_model, train

pytestmark = pytest.mark.keras
WINDOW, HORIZON, BATCH = 64, 8, 8


@pytest.fixture(scope="module")
def forecaster(workdir: Path) -> Path:
    """The demo template with default hyperparameters, its head bias made non-zero (tf2onnx drops a zero bias)."""
    import keras
    import keras_tuner

    from edgecloud.builder.templates import ecg_forecaster

    keras.utils.set_random_seed(3)
    model = ecg_forecaster(keras_tuner.HyperParameters(), window=WINDOW, horizon=HORIZON)
    head = model.get_layer("head")
    head.bias.assign(np.linspace(-0.1, 0.1, HORIZON).astype("float32"))
    np.save(workdir / "fc-sample.npy", np.sin(np.linspace(0, 6, WINDOW)).reshape(1, WINDOW, 1).astype("float32"))
    model.save(workdir / "fc.keras")
    result = export_model(
        workdir / "fc.keras",
        name="train-fc",
        version="1",
        out=workdir / "train-registry",
        sample=workdir / "fc-sample.npy",
        train_batch=BATCH,
    )
    return result.version_dir


@pytest.fixture(scope="module")
def classifier(workdir: Path) -> Path:
    import keras

    keras.utils.set_random_seed(5)
    inputs = keras.Input((6,), name="features")
    hidden = keras.layers.Dense(10, activation="tanh", name="hidden")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="label")(hidden)
    keras.Model(inputs, outputs).save(workdir / "clf.keras")
    result = export_model(
        workdir / "clf.keras",
        name="train-clf",
        version="1",
        out=workdir / "train-registry",
        trainable="head",
        optimizer="sgd",
        learning_rate=0.1,
        train_batch=BATCH,
    )
    return result.version_dir


def manifest(version_dir: Path) -> dict:
    import json

    return json.loads((version_dir / "model.json").read_text())


def test_forecaster_gets_a_head_step_by_default_proven_against_keras(forecaster: Path) -> None:
    training = manifest(forecaster)["training"]
    assert training["trainable"] == "head" and training["batch_size"] == BATCH
    assert training["loss"] == {"kind": "mse", "inferred": True}
    assert training["optimizer"] == {
        "kind": "adam",
        "flavor": "keras",
        "learning_rate": 0.001,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-07,
    }
    parity = training["parity"]
    assert parity["passed"] and parity["against"].startswith("keras ") and "Adam" in parity["against"]
    assert set(parity["steps"]) == {"1", "10"} and max(parity["steps"].values()) <= 1e-5
    model = onnx.load(forecaster / "model.onnx")
    initializers = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    names = [p["name"] for p in training["parameters"]]
    assert len(names) == 2 and all(name in initializers for name in names)  # the head's kernel and bias
    assert [p["shape"] for p in training["parameters"]] == [[16, HORIZON], [HORIZON]]
    inputs = training["inputs"]
    assert inputs["data"] == [{"name": "window", "input": "window", "dtype": "float32", "shape": [BATCH, WINDOW, 1]}]
    assert inputs["targets"][0]["shape"] == [BATCH, HORIZON] and inputs["targets"][0]["encoding"] == "value"
    step = onnx.load(forecaster / "train.onnx")
    assert {node.domain for node in step.graph.node} <= {"", "ai.onnx"}
    assert [v.name for v in step.graph.input] == [
        "window",
        inputs["targets"][0]["input"],
        "example_weight",
        "learning_rate",
        "step",
        *names,
        *(s["input"] for s in training["state"]),
    ]
    assert [v.name for v in step.graph.output] == [
        "loss",
        *(p["output"] for p in training["parameters"]),
        *(s["output"] for s in training["state"]),
    ]


def test_forecaster_step_is_lowered_for_onnxjs_and_matches_train_onnx(forecaster: Path) -> None:
    content = manifest(forecaster)
    edge = content["training"]["edge"]
    assert edge["file"] == "train.edge.onnx" and edge["lowered"] and edge["runtime"] == "onnxjs"
    assert {"cpu", "wasm"} <= set(edge["backends"]), edge["blockers"]
    assert "unroll-recurrent" in [p["name"] for p in edge["passes"] if p["applied"]]  # the LSTM inside the step
    for name in ("train.onnx", "train.edge.onnx"):
        assert content["files"][name]["size"] == (forecaster / name).stat().st_size
    rng = np.random.default_rng(0)
    x = rng.normal(size=(13, WINDOW, 1)).astype("float32")  # 2 batches of 8, the second padded
    y = rng.normal(size=(13, HORIZON)).astype("float32")
    cloud, browser = train(forecaster, x, y, epochs=2), train(forecaster, x, y, epochs=2, edge=True)
    assert cloud.steps == 4 and cloud.samples == 13 and all(np.isfinite(cloud.losses))
    for name, value in cloud.parameters.items():
        assert np.max(np.abs(value - browser.parameters[name])) <= 1e-5
        assert not np.array_equal(value, base_parameters(forecaster)[name])  # it trained


def test_parameters_are_located_in_both_inference_files(forecaster: Path) -> None:
    training = manifest(forecaster)["training"]
    for file in ("model.onnx", "model.edge.onnx"):
        values = {i.name: numpy_helper.to_array(i) for i in onnx.load(forecaster / file).graph.initializer}
        base = base_parameters(forecaster, file)
        for entry in training["parameters"]:
            assert set(entry["locations"]) == {"model.onnx", "model.edge.onnx"}
            assert np.array_equal(base[entry["name"]], values[entry["name"]])
    new = {name: value + 0.5 for name, value in base_parameters(forecaster).items()}
    model = onnx.load(forecaster / "model.onnx")
    for init in model.graph.initializer:
        if init.name in new:
            init.CopyFrom(numpy_helper.from_array(new[init.name], init.name))
    window = np.random.default_rng(1).normal(size=(2, WINDOW, 1)).astype("float32")
    by_bytes = ort.InferenceSession(personalized_model(forecaster, new)).run(None, {"window": window})[0]
    by_onnx = ort.InferenceSession(model.SerializeToString()).run(None, {"window": window})[0]
    assert np.array_equal(by_bytes, by_onnx)


def test_archive_carries_only_the_cloud_model(forecaster: Path, tmp_path: Path) -> None:
    from mms_handlers.archive import build_archive

    mar = Path(build_archive(forecaster, tmp_path))
    names = zipfile.ZipFile(mar).namelist()
    assert "model.onnx" in names and not any(name.startswith("train") for name in names)


def test_softmax_classifier_infers_cross_entropy_on_one_hot_targets(classifier: Path) -> None:
    training = manifest(classifier)["training"]
    assert training["loss"] == {"kind": "cross-entropy", "inferred": True}
    assert training["inputs"]["targets"][0]["encoding"] == "one-hot"
    assert training["optimizer"] == {"kind": "sgd", "flavor": "keras", "learning_rate": 0.1}
    assert "step" not in training["inputs"] and training["state"] == []
    assert training["parity"]["passed"] and max(training["parity"]["steps"].values()) <= 1e-5
    assert {"cpu", "wasm"} <= set(training["edge"]["backends"]), training["edge"]["blockers"]
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 6)).astype("float32")
    labels = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)
    result = train(classifier, x, labels, epochs=15)  # class indices are turned one-hot
    assert result.losses[-1] < result.losses[0]
