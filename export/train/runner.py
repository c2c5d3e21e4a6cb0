"""Run a version folder's training step (`train.onnx`) under onnxruntime, as the browser does.

Needs numpy and onnxruntime only (no training framework), and reads every name from model.json's
`training` entry (docs/training.md). The API:

    step = TrainingStep.load(version_dir)            # or edge=True for train.edge.onnx
    base = base_parameters(version_dir)              # {initializer name: array}, read at `locations`
    result = train(version_dir, inputs, targets, epochs=1, learning_rate=None, shuffle=False, seed=0)
    result.parameters, result.losses, result.steps, result.samples
    personalized_model(version_dir, result.parameters)   # model.onnx bytes with those parameters

`inputs` is one array per model input (a bare array for a one-input model), one example per row;
`targets` one array per trained output (or a bare array); for cross-entropy, class indices are
accepted and turned into the one-hot rows the step takes. Batches are padded to the exported
batch with zero rows of weight 0, so a short last batch is the mean over its real rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import onnxruntime as ort

from registry import model_json

from .data_inputs import checked

MANIFEST = "model.json"
Arrays = Mapping[str, np.ndarray] | np.ndarray


@dataclass
class TrainResult:
    parameters: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    samples: int = 0


def read_training(version_dir: Path) -> dict[str, Any]:
    """model.json's `training` entry; a ValueError naming the folder if the model has none."""
    manifest = model_json.read(Path(version_dir) / MANIFEST)
    if "training" not in manifest:
        raise ValueError(f"{version_dir} has no training step (exported with --trainable none?)")
    return manifest["training"]


class TrainingStep:
    """One session of the step graph; `__call__` takes one padded batch and returns the new values."""

    def __init__(self, model: bytes | str | Path, training: dict[str, Any]) -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        source = str(model) if isinstance(model, Path) else model
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.training = training
        self.batch_size = int(training["batch_size"])

    @classmethod
    def load(cls, version_dir: Path, *, edge: bool = False) -> "TrainingStep":
        training = read_training(version_dir)
        name = training["edge"]["file"] if edge else training["file"]
        return cls(Path(version_dir) / name, training)

    def initial_state(self) -> dict[str, np.ndarray]:
        return {s["name"]: np.full(s["shape"], s["init"], np.float32) for s in self.training["state"]}

    def __call__(
        self,
        inputs: Mapping[str, np.ndarray],
        targets: Mapping[str, np.ndarray],
        weights: np.ndarray,
        parameters: Mapping[str, np.ndarray],
        state: Mapping[str, np.ndarray],
        learning_rate: float,
        step: int,
    ) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
        names = self.training["inputs"]
        feeds = {entry["input"]: np.asarray(inputs[entry["name"]], entry.get("dtype", "float32")) for entry in names["data"]}
        feeds.update({entry["input"]: np.asarray(targets[entry["output"]], np.float32) for entry in names["targets"]})
        feeds[names["example_weight"]] = np.asarray(weights, np.float32)
        feeds[names["learning_rate"]] = np.array([learning_rate], np.float32)
        if names.get("step"):
            feeds[names["step"]] = np.array([step], np.float32)
        feeds.update({p["input"]: np.asarray(parameters[p["name"]], np.float32) for p in self.training["parameters"]})
        feeds.update({s["input"]: np.asarray(state[s["name"]], np.float32) for s in self.training["state"]})
        wanted = [
            self.training["outputs"]["loss"],
            *(p["output"] for p in self.training["parameters"]),
            *(s["output"] for s in self.training["state"]),
        ]
        results = dict(zip(wanted, self.session.run(wanted, feeds)))
        new_params = {p["name"]: results[p["output"]] for p in self.training["parameters"]}
        new_state = {s["name"]: results[s["output"]] for s in self.training["state"]}
        return float(results[wanted[0]].reshape(-1)[0]), new_params, new_state


def _by_name(arrays: Arrays, names: list[str], what: str) -> dict[str, np.ndarray]:
    if isinstance(arrays, Mapping):
        missing = [name for name in names if name not in arrays]
        if missing:
            raise ValueError(f"{what} missing for {', '.join(missing)}")
        return {name: np.asarray(arrays[name]) for name in names}
    if len(names) != 1:
        raise ValueError(f"the model has {len(names)} {what}; pass a dict keyed by {', '.join(names)}")
    return {names[0]: np.asarray(arrays)}


def prepare(training: dict[str, Any], inputs: Arrays, targets: Arrays) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Inputs by name in their dtype (float32, or checked integer ids), targets as float32 with class
    indices turned one-hot; all with the same rows."""
    data = _by_name(inputs, [entry["name"] for entry in training["inputs"]["data"]], "inputs")
    data = {entry["name"]: checked(entry, data[entry["name"]]) for entry in training["inputs"]["data"]}
    target_specs = training["inputs"]["targets"]
    wanted = _by_name(targets, [entry["output"] for entry in target_specs], "targets")
    for spec in target_specs:
        array = wanted[spec["output"]]
        if spec["encoding"] == "one-hot" and np.issubdtype(array.dtype, np.integer) and array.ndim == len(spec["shape"]) - 1:
            array = np.eye(spec["shape"][-1], dtype=np.float32)[array]
        wanted[spec["output"]] = array.astype(np.float32)
    rows = {len(array) for array in [*data.values(), *wanted.values()]}
    if len(rows) != 1 or 0 in rows:
        raise ValueError(f"inputs and targets must have the same, non-zero number of rows (got {sorted(rows)})")
    return data, wanted


def batches(
    inputs: dict[str, np.ndarray],
    targets: dict[str, np.ndarray],
    batch_size: int,
    *,
    shuffle: bool = False,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[dict, dict, np.ndarray]]:
    """Padded batches `(inputs, targets, example_weight)`: the last one padded with zero-weight rows."""
    count = len(next(iter(inputs.values())))
    order = (rng or np.random.default_rng(0)).permutation(count) if shuffle else np.arange(count)
    for start in range(0, count, batch_size):
        rows = order[start : start + batch_size]
        weights = np.zeros(batch_size, np.float32)
        weights[: len(rows)] = 1.0

        def padded(array: np.ndarray) -> np.ndarray:
            out = np.zeros((batch_size, *array.shape[1:]), array.dtype)  # float32 values; id 0 pads integer inputs
            out[: len(rows)] = array[rows]
            return out

        yield {k: padded(v) for k, v in inputs.items()}, {k: padded(v) for k, v in targets.items()}, weights


def base_parameters(version_dir: Path, file: str = "model.onnx") -> dict[str, np.ndarray]:
    """The shared model's trainable parameters, read from `file` at their recorded byte ranges."""
    training = read_training(version_dir)
    data = (Path(version_dir) / file).read_bytes()
    found = {}
    for entry in training["parameters"]:
        where = entry["locations"][file]
        raw = data[where["offset"] : where["offset"] + where["length"]]
        found[entry["name"]] = np.frombuffer(raw, "<f4").reshape(entry["shape"]).copy()
    return found


def personalized_model(version_dir: Path, parameters: Mapping[str, np.ndarray], file: str = "model.onnx") -> bytes:
    """`file`'s bytes with the given parameters written over their ranges (what the browser does)."""
    training = read_training(version_dir)
    data = bytearray((Path(version_dir) / file).read_bytes())
    for entry in training["parameters"]:
        where = entry["locations"][file]
        raw = np.ascontiguousarray(parameters[entry["name"]], "<f4").reshape(entry["shape"]).tobytes()
        if len(raw) != where["length"]:
            raise ValueError(f"parameter {entry['name']!r} has {len(raw)} bytes, {file} holds {where['length']}")
        data[where["offset"] : where["offset"] + where["length"]] = raw
    return bytes(data)


def train(
    version_dir: Path,
    inputs: Arrays,
    targets: Arrays,
    *,
    epochs: int = 1,
    learning_rate: float | None = None,
    shuffle: bool = False,
    seed: int = 0,
    edge: bool = False,
    parameters: Mapping[str, np.ndarray] | None = None,
) -> TrainResult:
    """`epochs` passes over the examples from the shared parameters (or `parameters`); losses per step."""
    step = TrainingStep.load(version_dir, edge=edge)
    data, wanted = prepare(step.training, inputs, targets)
    rate = float(learning_rate if learning_rate is not None else step.training["optimizer"]["learning_rate"])
    params = dict(parameters) if parameters is not None else base_parameters(version_dir)
    state = step.initial_state()
    rng = np.random.default_rng(seed)
    result = TrainResult(parameters=params, state=state, samples=len(next(iter(data.values()))))
    for _ in range(epochs):
        for batch_inputs, batch_targets, weights in batches(data, wanted, step.batch_size, shuffle=shuffle, rng=rng):
            loss, params, state = step(batch_inputs, batch_targets, weights, params, state, rate, result.steps + 1)
            result.losses.append(loss)
            result.steps += 1
    result.parameters, result.state = params, state
    return result
