"""Federated personalisation, measured (issue 14 item 9): `python -m benchmarks.federated` (run by `make bench`).

On the demo build's simulated people, each client is one person who personalises the current
shared version on the first FIRST_SECONDS of their own recording, as the demo page does; the
deltas go through the real aggregation service (`FederatedService`, SQLite store, FedAvg) and each
round's close writes the next version with `write_federated_version`, the writer `serve` uses (no
MMS here: serving is tested elsewhere). Reported per version: forecast MAE on the rest of the
validation people's recordings, with clients and samples per round. Two cohorts:

- `unseen`: the clients are the build's training people; the validation people never take part,
  so the MAE says whether the averaged model is better for someone who never shared anything;
- `all`: every person takes part, the validation people included (on their first part only).

Training runs in Python, not in a browser: `export.train.runner` runs the version's very
`train.onnx` under onnxruntime (the graph the page runs; tests/web/test_federated_browser.py shows
the browser's parameters equal it). Writes `results/FEDERATED.md` and `federated.json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aggregation.service import FederatedModel, FederatedService, ParameterSpec, Update
from aggregation.settings import FederatedSettings
from aggregation.store import SqliteStore
from export.federated_version import trainable_parameters, write_federated_version
from export.manifest import read_manifest
from export.train.runner import train

from .personalisation import DEFAULT_OUT, EPOCHS, FIRST_SECONDS, LEARNING_RATE, REPO, SEED, demo_registry, forecast_mae
from .rerun import rerun_command

Data = tuple[np.ndarray, np.ndarray]  # (inputs, targets), one example per row
ROUNDS = 3
COHORT_TITLES = {
    "unseen": "Clients: the training people (the validation people never share)",
    "all": "Clients: every person, the validation people included (their first part only)",
}


class FilePublisher:
    """Writes each round's version into the model folder, as `serve` does, without archiving or MMS."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir

    def publish(
        self, model: FederatedModel, parameters: dict[str, np.ndarray], provenance: dict[str, Any], held: Callable[[], bool]
    ) -> FederatedModel:
        version_dir = write_federated_version(self.model_dir, model.version, parameters, provenance)
        return FederatedModel(model.name, version_dir.name, model.parameters, trainable_parameters(version_dir), provenance["round"])


@dataclass
class RoundRow:
    version: str
    round: int | None
    clients: int
    samples: int
    validation_mae: float


def federated_rounds(
    version_dir: Path, clients: list[Data], validation: Data, *, rounds: int, epochs: int, learning_rate: float, shuffle: bool = True
) -> list[RoundRow]:
    """Copy the version to a scratch registry, run `rounds` rounds of every client, report MAE per version."""
    scratch = Path(tempfile.mkdtemp(prefix="federated-bench-"))
    try:
        model_dir = scratch / Path(version_dir).parent.name
        current = model_dir / Path(version_dir).name
        shutil.copytree(version_dir, current)
        manifest = read_manifest(current)
        specs = tuple(ParameterSpec(p["name"], tuple(p["shape"])) for p in manifest["training"]["parameters"])
        model = FederatedModel(model_dir.name, current.name, specs, trainable_parameters(current))
        settings = FederatedSettings(min_clients=len(clients), max_norm=1e9)
        store = SqliteStore(scratch / "federated.sqlite")
        service = FederatedService(store, settings, [model], FilePublisher(model_dir))
        rows = [RoundRow(current.name, None, 0, 0, version_mae(current, validation))]
        for _ in range(rounds):
            base_version = service.describe(model_dir.name)["base_version"]
            base_dir = model_dir / base_version
            base = trainable_parameters(base_dir)
            for index, (x, y) in enumerate(clients):
                new = train(
                    base_dir, x, y, epochs=epochs, learning_rate=learning_rate, shuffle=shuffle, seed=SEED + index, parameters=base
                ).parameters
                delta = {name: new[name].astype(np.float64) - base[name] for name in base}
                service.submit(model_dir.name, Update(f"bench-client-{index:04d}", base_version, len(x), delta))
            service.tick()
            closed = store.rounds(model_dir.name)[-2]
            if closed.new_version is None:
                raise RuntimeError(f"round {closed.id} did not close: {service.describe(model_dir.name)['last_error']}")
            rows.append(
                RoundRow(
                    closed.new_version, closed.id, closed.clients, closed.samples, version_mae(model_dir / closed.new_version, validation)
                )
            )
        store.close()
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def version_mae(version_dir: Path, data: Data) -> float:
    return forecast_mae(str(Path(version_dir) / read_manifest(version_dir)["cloud"]["file"]), *data)


def cohorts(report: dict[str, Any], first_seconds: float) -> dict[str, tuple[list[Data], Data]]:
    """{cohort: (each client's first part, the validation people's later parts pooled)} of a demo build."""
    from edgecloud.builder.data import DataSpec, Person, ecg_signal, personal_parts

    spec = DataSpec(**report["settings"]["data"])

    def parts(key: str):
        people = [Person(**{k: tuple(v) if isinstance(v, list) else v for k, v in f.items()}) for f in report["data"][key]]
        return [personal_parts(ecg_signal(person, spec), spec, first_seconds) for person in people]

    train_people, validation_people = parts("train_people"), parts("validation_people")
    held_out = (np.concatenate([p.x_later for p in validation_people]), np.concatenate([p.y_later for p in validation_people]))
    first = lambda people: [(p.x_first, p.y_first) for p in people]  # noqa: E731
    return {"unseen": (first(train_people), held_out), "all": (first(train_people + validation_people), held_out)}


def markdown(rows: list[RoundRow]) -> list[str]:
    original = rows[0].validation_mae
    lines = ["| version | after round | clients | samples | validation MAE (mV) | change |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r.version} | {r.round or 'original'} | {r.clients} | {r.samples} | {r.validation_mae:.5f} | "
        f"{100 * (r.validation_mae - original) / original:+.2f} % |"
        for r in rows
    ]
    return lines


def write_report(out: Path, results: dict[str, list[RoundRow]], settings: dict[str, Any], command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    data = {"command": command, "settings": settings, "cohorts": {k: [asdict(r) for r in rows] for k, rows in results.items()}}
    (out / "federated.json").write_text(json.dumps(data, indent=1))
    lines = [
        "# Federated personalisation: the shared demo forecaster after rounds of FedAvg",
        "",
        f"`{command}`. Each client is one simulated person of the demo build: {settings['epochs']} epochs of the "
        f"version's head-only `train.onnx` (Adam, learning rate {settings['learning_rate']:g}, shuffled) on the first "
        f"{settings['first_seconds']:g} s of their recording, in Python under onnxruntime (`export.train.runner`, "
        "the graph the page runs); deltas averaged by the aggregation service (SQLite store, FedAvg weighted by "
        "samples) into the next version by `write_federated_version`. MAE on the rest of the validation people's recordings.",
    ]
    for cohort, rows in results.items():
        lines += ["", f"## {COHORT_TITLES[cohort]}", "", *markdown(rows)]
    path = out / "FEDERATED.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.federated", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="report folder (default benchmarks/results)")
    parser.add_argument("--work", type=Path, help="demo build cache (default .edgecloud/bench, shared with benchmarks.run)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"default {ROUNDS}")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"default {EPOCHS}")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help=f"default {LEARNING_RATE:g}")
    parser.add_argument("--first-seconds", type=float, default=FIRST_SECONDS, help=f"default {FIRST_SECONDS:g}")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.epochs < 1 or not args.learning_rate > 0 or not args.first_seconds > 0:
        parser.error("--rounds and --epochs must be at least 1, --learning-rate and --first-seconds positive")
    from edgecloud.builder.report import read_report
    from edgecloud.commands.demo import DEMO_NAME

    from .models import prepare_demo

    work = args.work or REPO / ".edgecloud" / "bench"
    command = rerun_command("benchmarks.federated", argv if argv is not None else sys.argv[1:])
    try:
        registry = demo_registry(work / "demo", prepare_demo)
        latest = json.loads((registry / DEMO_NAME / "latest.json").read_text())
        version_dir = registry / DEMO_NAME / str(latest["version"])
        results = {
            cohort: federated_rounds(
                version_dir, clients, held_out, rounds=args.rounds, epochs=args.epochs, learning_rate=args.learning_rate
            )
            for cohort, (clients, held_out) in cohorts(read_report(work / "demo" / "build"), args.first_seconds).items()
        }
    except Exception as error:  # noqa: BLE001 - one clear line, exit 1
        print(f"federated: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    settings = {
        "rounds": args.rounds,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "first_seconds": args.first_seconds,
        "seed": SEED,
    }
    path = write_report(args.out or DEFAULT_OUT, results, settings, command)
    print(f"federated: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
