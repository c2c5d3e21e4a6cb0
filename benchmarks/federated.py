"""Federated personalisation, measured (issue 14 item 9): the shared model after R rounds against the original.

Each round, every client personalises the current version on its own data with the version's
`train.onnx` under onnxruntime (the contract of docs/training.md: fixed batch, zero-padded rows of
weight 0, optimizer state starting at zero), sends its delta through the real `FederatedService`
(memory store), and the round's close writes the next version with `write_federated_version`
(no MMS: serving is measured elsewhere). The report is the validation people's forecast MAE per
version, with clients and samples per round.

    python -m benchmarks.federated REGISTRY/NAME/VERSION [--rounds 3] [--epochs 2] [--learning-rate LR]

takes a version exported with `--trainable` and the demo's simulated people (edgecloud.builder.data).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from aggregation.service import FederatedModel, FederatedService, ParameterSpec, Update
from aggregation.settings import FederatedSettings
from aggregation.store import MemoryStore
from export.federated_version import trainable_parameters, write_federated_version
from export.manifest import read_manifest

Data = tuple[np.ndarray, np.ndarray]  # (inputs, targets), one example per row


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def personalise(version_dir: Path, params: dict[str, np.ndarray], data: Data, *, epochs: int, learning_rate: float) -> dict[str, np.ndarray]:
    """`epochs` passes of train.onnx over `data` in order, from `params`; the new parameters."""
    training = read_manifest(version_dir)["training"]
    session = _session(Path(version_dir) / training["file"])
    names = training["inputs"]
    batch = int(training["batch_size"])
    (data_input,), (target_input,) = names["data"], names["targets"]
    x, y = data
    params = {p["name"]: np.asarray(params[p["name"]], np.float32) for p in training["parameters"]}
    state = {s["name"]: np.full(s["shape"], s.get("init", 0.0), np.float32) for s in training["state"]}
    step = 0
    for _ in range(epochs):
        for start in range(0, len(x), batch):
            rows = slice(start, start + batch)
            count = len(x[rows])
            xb = np.zeros([batch, *x.shape[1:]], np.float32)
            yb = np.zeros([batch, *y.shape[1:]], np.float32)
            weight = np.zeros(batch, np.float32)
            xb[:count], yb[:count], weight[:count] = x[rows], y[rows], 1.0
            step += 1
            feeds = {data_input["input"]: xb, target_input["input"]: yb, names["example_weight"]: weight,
                     names["learning_rate"]: np.array([learning_rate], np.float32)}  # fmt: skip
            if names.get("step"):
                feeds[names["step"]] = np.array([step], np.float32)
            feeds.update({p["input"]: params[p["name"]] for p in training["parameters"]})
            feeds.update({s["input"]: state[s["name"]] for s in training["state"]})
            outputs = [p["output"] for p in training["parameters"]] + [s["output"] for s in training["state"]]
            values = session.run(outputs, feeds)
            params = dict(zip(params, values[: len(params)]))
            state = dict(zip(state, values[len(params) :]))
    return params


def mae(version_dir: Path, data: Data) -> float:
    """Mean absolute forecast error of the version's cloud file on `data`."""
    manifest = read_manifest(version_dir)
    session = _session(Path(version_dir) / manifest["cloud"]["file"])
    (prediction,) = session.run(None, {manifest["inputs"][0]["name"]: data[0].astype(np.float32)})[:1]
    return float(np.mean(np.abs(prediction - data[1])))


class FilePublisher:
    """Writes each round's version into the model folder, as `serve` does, without archiving or MMS."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir

    def publish(self, model: FederatedModel, parameters: dict[str, np.ndarray], provenance: dict[str, Any]) -> FederatedModel:
        version_dir = write_federated_version(self.model_dir, model.version, parameters, provenance)
        return FederatedModel(model.name, version_dir.name, model.parameters, parameters, provenance["round"])


@dataclass
class RoundRow:
    version: str
    round: int | None
    clients: int
    samples: int
    validation_mae: float


def federated_rounds(version_dir: Path, clients: list[Data], validation: Data, *, rounds: int, epochs: int,
                     learning_rate: float, aggregation: str = "fedavg") -> list[RoundRow]:  # fmt: skip
    """Copy the version to a scratch registry, run `rounds` rounds of every client, report MAE per version."""
    scratch = Path(tempfile.mkdtemp(prefix="federated-bench-"))
    try:
        model_dir = scratch / Path(version_dir).parent.name
        shutil.copytree(version_dir, model_dir / Path(version_dir).name)
        current = model_dir / Path(version_dir).name
        manifest = read_manifest(current)
        specs = tuple(ParameterSpec(p["name"], tuple(p["shape"])) for p in manifest["training"]["parameters"])
        model = FederatedModel(model_dir.name, current.name, specs, trainable_parameters(current))
        settings = FederatedSettings(min_clients=len(clients), aggregation=aggregation, max_norm=1e9)
        service = FederatedService(MemoryStore(), settings, [model], FilePublisher(model_dir))
        rows = [RoundRow(current.name, None, 0, 0, mae(current, validation))]
        for _ in range(rounds):
            described = service.describe(model_dir.name)
            base_dir = model_dir / described["base_version"]
            base = trainable_parameters(base_dir)
            for index, data in enumerate(clients):
                new = personalise(base_dir, base, data, epochs=epochs, learning_rate=learning_rate)
                delta = {name: new[name].astype(np.float64) - base[name] for name in base}
                service.submit(model_dir.name, Update(f"bench-client-{index:04d}", described["base_version"], len(data[0]), delta))
            service.tick()
            closed = service.store.rounds(model_dir.name)[-2]
            rows.append(RoundRow(closed.new_version, closed.id, closed.clients, closed.samples, mae(model_dir / closed.new_version, validation)))
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def markdown(rows: list[RoundRow]) -> str:
    lines = ["| version | after round | clients | samples | validation MAE |", "|---|---|---|---|---|"]
    lines += [f"| {r.version} | {r.round or 'original'} | {r.clients} | {r.samples} | {r.validation_mae:.5f} |" for r in rows]
    return "\n".join(lines)


def demo_people() -> tuple[list[Data], Data]:
    """The demo's simulated people (neurokit2): each training person is one client; validation pooled."""
    from edgecloud.builder.data import DataSpec, cut_windows, ecg_signal, simulate_people, split_people

    spec = DataSpec()
    train, validation = split_people(simulate_people(spec), spec.validation_people, spec.seed)
    cut = lambda person: cut_windows(ecg_signal(person, spec), spec.window, spec.horizon, spec.stride)  # noqa: E731
    held_out = [cut(person) for person in validation]
    return [cut(person) for person in train], (np.concatenate([x for x, _ in held_out]), np.concatenate([y for _, y in held_out]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.federated", description=__doc__.splitlines()[0])
    parser.add_argument("version_dir", type=Path, metavar="REGISTRY/NAME/VERSION")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=None, help="default: model.json training.optimizer's")
    args = parser.parse_args(argv)
    learning_rate = args.learning_rate or read_manifest(args.version_dir)["training"]["optimizer"]["learning_rate"]
    clients, validation = demo_people()
    rows = federated_rounds(args.version_dir, clients, validation, rounds=args.rounds, epochs=args.epochs, learning_rate=learning_rate)
    print(markdown(rows))
    print(json.dumps([r.__dict__ for r in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
