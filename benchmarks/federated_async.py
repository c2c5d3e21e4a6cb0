"""Synchronous vs buffered (FedBuff) rounds when a third of the clients arrive late (issue 24 item 5):
`python -m benchmarks.federated_async`.

The demo build's simulated people are the clients, as in `benchmarks.federated` (its cohorts,
publisher and MAE; each client runs the version's own `train.onnx` under onnxruntime on the first
FIRST_SECONDS of its recording). Simulated time advances in steps: a client that is idle and sees
a version newer than the one it last trained on starts training on it; an on-time client delivers
its update one step later, a late one (a third of the clients, drawn with a fixed seed) two steps
later, so by then the version it trained on is usually no longer the current one. Within a step
the deliveries come in a seeded random order, each through the real service (SQLite store), which
closes a round as soon as it holds K updates. Synchronous rounds refuse an update on an older
version (409; that client trains again on the current one), buffered rounds take it when it is
at most S versions old, weighted (1 + s)^-1/2. Both runs stop once UPDATES updates have been
accepted; reported: validation MAE of the version then current, versions made, updates refused by
reason (a client whose stale update landed in the open round and that sends again into that round
is refused as a duplicate, as the service does), the late clients' accepted updates, the
staleness taken, simulated steps. Writes `results/FEDERATED_ASYNC.md` and `federated_async.json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aggregation.service import FederatedModel, FederatedService, ParameterSpec, Refused, Update
from aggregation.settings import FederatedSettings
from aggregation.store import SqliteStore
from export.federated_version import trainable_parameters
from export.manifest import read_manifest
from export.train.runner import train
from registry import Registry

from .federated import COHORT_TITLES, Data, FilePublisher, cohorts, version_mae
from .personalisation import DEFAULT_OUT, EPOCHS, FIRST_SECONDS, LEARNING_RATE, REPO, SEED, demo_registry
from .rerun import rerun_command

BUFFER = 4  # K: updates per version, in both modes (min_clients of a synchronous round)
MAX_STALENESS = 2
UPDATES = 24  # accepted updates after which both runs are compared
LATE_FRACTION = 1 / 3
MAX_STEPS = 200  # a run that has not reached UPDATES by then has stalled


@dataclass
class RunRow:
    rounds: str
    accepted: int
    versions: int
    refused: dict[str, int]  # refused updates by reason (stale-base, duplicate-client: a client sent twice into one round)
    late_accepted: int
    staleness: dict[str, int]  # accepted updates by staleness
    steps: int
    validation_mae: float


@dataclass
class _Client:
    index: int
    data: Data
    late: bool
    trained_on: int = 0  # the last version it started training on (0: none yet)
    due: int | None = None  # the step its update arrives
    update: Update | None = None


def simulate(
    version_dir: Path,
    clients: list[Data],
    late: set[int],
    validation: Data,
    *,
    mode: str,
    buffer: int,
    max_staleness: int,
    updates: int,
    epochs: int,
    learning_rate: float,
) -> RunRow:
    """One run on a scratch copy of the version; see the module docstring for the rules."""
    scratch = Path(tempfile.mkdtemp(prefix="federated-async-"))
    try:
        versions = Registry(scratch)
        first = versions.version_dir(Path(version_dir).parent.name, Path(version_dir).name)
        shutil.copytree(version_dir, first)
        model_dir = versions.model_dir(first.parent.name)
        specs = tuple(ParameterSpec(p["name"], tuple(p["shape"])) for p in read_manifest(first)["training"]["parameters"])
        buffered = mode == "buffered"
        settings = FederatedSettings(
            min_clients=buffer,
            max_norm=1e9,
            rounds=mode,
            buffer=buffer if buffered else None,
            max_staleness=max_staleness if buffered else None,
        )
        store = SqliteStore(scratch / "federated.sqlite")
        name = model_dir.name
        service = FederatedService(
            store, settings, [FederatedModel(name, first.name, specs, trainable_parameters(first))], FilePublisher(model_dir)
        )
        people = [_Client(i, data, i in late) for i, data in enumerate(clients)]
        rng = np.random.default_rng(SEED)
        accepted = late_accepted = step = 0
        staleness: dict[str, int] = {}
        refused: dict[str, int] = {}
        while accepted < updates:
            if step >= MAX_STEPS:
                raise RuntimeError(f"{mode}: {accepted} of {updates} updates accepted after {MAX_STEPS} steps: the rounds stalled")
            current = int(service.describe(name)["base_version"])
            for person in people:  # idle clients that see a new version start on it
                if person.due is None and person.trained_on < current:
                    person.trained_on, person.due = current, step + (2 if person.late else 1)
                    person.update = _trained(versions.version_dir(name, current), person, epochs, learning_rate)
            step += 1
            arriving = [p for p in people if p.due == step]
            for person in (arriving[i] for i in rng.permutation(len(arriving))):
                person.due = None
                try:
                    answer = service.submit(name, person.update)
                except Refused as refusal:
                    refused[refusal.code] = refused.get(refusal.code, 0) + 1
                    continue
                accepted += 1
                late_accepted += person.late
                staleness[str(answer["staleness"])] = staleness.get(str(answer["staleness"]), 0) + 1
                service.tick()  # closes the round once it holds K
                if accepted >= updates:
                    break
        final = service.describe(name)["base_version"]
        made = int(final) - int(first.name)
        store.close()
        return RunRow(
            mode, accepted, made, refused, late_accepted, staleness, step, version_mae(versions.version_dir(name, final), validation)
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _trained(base_dir: Path, person: _Client, epochs: int, learning_rate: float) -> Update:
    """The update `person` sends after personalising the version in `base_dir` (delta against it)."""
    base = trainable_parameters(base_dir)
    x, y = person.data
    new = train(
        base_dir,
        x,
        y,
        epochs=epochs,
        learning_rate=learning_rate,
        shuffle=True,
        seed=SEED + 1000 * int(base_dir.name) + person.index,
        parameters=base,
    ).parameters
    delta = {key: new[key].astype(np.float64) - base[key] for key in base}
    return Update(f"async-client-{person.index:04d}", base_dir.name, len(x), delta)


def late_clients(count: int, fraction: float) -> set[int]:
    """A fixed, seeded draw of round(fraction · count) clients that deliver late."""
    return {int(i) for i in np.random.default_rng(SEED).choice(count, size=round(fraction * count), replace=False)}


def markdown(original: float, rows: list[RunRow]) -> list[str]:
    lines = [
        "| rounds | accepted | versions | refused | late clients' accepted | staleness taken (s: updates) | steps | "
        "validation MAE (mV) | change |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        taken = ", ".join(f"{s}: {n}" for s, n in sorted(r.staleness.items()))
        refused = ", ".join(f"{code} {n}" for code, n in sorted(r.refused.items())) or "0"
        lines.append(
            f"| {r.rounds} | {r.accepted} | {r.versions} | {refused} | {r.late_accepted} | {taken} | {r.steps} | "
            f"{r.validation_mae:.5f} | {100 * (r.validation_mae - original) / original:+.2f} % |"
        )
    return lines


def write_report(out: Path, results: dict[str, Any], settings: dict[str, Any], command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "federated_async.json").write_text(json.dumps({"command": command, "settings": settings, "cohorts": results}, indent=1))
    lines = [
        "# Synchronous vs buffered (FedBuff) rounds when a third of the clients arrive late",
        "",
        f"`{command}`. Clients are the demo build's simulated people; each personalises the current version "
        f"({settings['epochs']} epochs of its head-only `train.onnx`, Adam, learning rate {settings['learning_rate']:g}, "
        f"on the first {settings['first_seconds']:g} s of its recording, in Python under onnxruntime). On-time clients "
        "deliver one simulated step after they start, late ones (a third, seeded draw) two steps after, so their update "
        f"is usually on a version that is no longer current. Every round closes with K = {settings['buffer']} updates. "
        "Synchronous rounds refuse an update on an older version (the client trains again on the current one); "
        f"buffered rounds take it up to S = {settings['max_staleness']} versions old, weighted (1 + s)^-1/2 "
        f"(FedBuff). Both runs stop after {settings['updates']} accepted updates; MAE of the version then current on "
        "the rest of the validation people's recordings.",
    ]
    for cohort, entry in results.items():
        rows = [RunRow(**row) for row in entry["runs"]]
        lines += [
            "",
            f"## {COHORT_TITLES[cohort]}",
            "",
            f"Original version: validation MAE {entry['original_mae']:.5f} mV; "
            f"late clients: {', '.join(map(str, entry['late']))} of {entry['clients']}.",
            "",
            *markdown(entry["original_mae"], rows),
        ]
    path = out / "FEDERATED_ASYNC.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.federated_async", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="report folder (default benchmarks/results)")
    parser.add_argument("--work", type=Path, help="demo build cache (default .edgecloud/bench, shared with benchmarks.run)")
    parser.add_argument("--updates", type=int, default=UPDATES, help=f"accepted updates per run (default {UPDATES})")
    parser.add_argument("--buffer", type=int, default=BUFFER, help=f"K, updates per version (default {BUFFER})")
    parser.add_argument("--max-staleness", type=int, default=MAX_STALENESS, help=f"S of buffered rounds (default {MAX_STALENESS})")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"default {EPOCHS}")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help=f"default {LEARNING_RATE:g}")
    parser.add_argument("--first-seconds", type=float, default=FIRST_SECONDS, help=f"default {FIRST_SECONDS:g}")
    args = parser.parse_args(argv)
    if (
        min(args.updates, args.buffer, args.epochs) < 1
        or args.max_staleness < 0
        or not args.learning_rate > 0
        or not args.first_seconds > 0
    ):
        parser.error(
            "--updates, --buffer and --epochs must be at least 1, --max-staleness >= 0, --learning-rate and --first-seconds positive"
        )
    from edgecloud.builder.report import read_report
    from edgecloud.commands.demo import DEMO_NAME

    from .models import prepare_demo

    work = args.work or REPO / ".edgecloud" / "bench"
    command = rerun_command("benchmarks.federated_async", argv if argv is not None else sys.argv[1:])
    results: dict[str, Any] = {}
    try:
        registry = demo_registry(work / "demo", prepare_demo)
        demo = Registry(registry)
        version_dir = demo.version_dir(DEMO_NAME, demo.latest(DEMO_NAME))
        for cohort, (clients, held_out) in cohorts(read_report(work / "demo" / "build"), args.first_seconds).items():
            late = late_clients(len(clients), LATE_FRACTION)
            runs = [
                simulate(
                    version_dir,
                    clients,
                    late,
                    held_out,
                    mode=mode,
                    buffer=args.buffer,
                    max_staleness=args.max_staleness,
                    updates=args.updates,
                    epochs=args.epochs,
                    learning_rate=args.learning_rate,
                )
                for mode in ("synchronous", "buffered")
            ]
            results[cohort] = {
                "clients": len(clients),
                "late": sorted(late),
                "original_mae": version_mae(version_dir, held_out),
                "runs": [asdict(r) for r in runs],
            }
            print(f"federated_async: {cohort}: " + "; ".join(f"{r.rounds} MAE {r.validation_mae:.5f}" for r in runs), file=sys.stderr)
    except Exception as error:  # noqa: BLE001 - one clear line, exit 1
        print(f"federated_async: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    settings = {
        "updates": args.updates,
        "buffer": args.buffer,
        "max_staleness": args.max_staleness,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "first_seconds": args.first_seconds,
        "late_fraction": LATE_FRACTION,
        "seed": SEED,
    }
    path = write_report(args.out or DEFAULT_OUT, results, settings, command)
    print(f"federated_async: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
